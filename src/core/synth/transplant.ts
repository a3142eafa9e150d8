/**
 * Defect transplant: cut a real defect (image × its mask) out of a few-shot sample and paste it into a normal
 * image, in-distribution without a diffusion model. The defect is rotated, scaled, flipped and its intensity
 * jittered, placed with its centre in the allowed area (region ∩ foreground; the footprint clipped to it), and
 * blended by Poisson image editing (Pérez, Gangnet, Blake, SIGGRAPH 2003, "seamless cloning"): inside the blend
 * area Ω the result keeps the defect's gradients, on Ω's border it meets the normal image, so no seam or
 * brightness step betrays the paste.
 *
 * Ω is the defect mask grown by `blend_border` pixels (∩ the allowed area), so the defect's own edge is blended
 * too. The label mask is the transformed defect mask (binary, inside the allowed area); pixels of Ω outside it
 * may change by the blend (up to `blend_border` px from the mask), every other pixel is copied bit for bit.
 * `blend: 'paste'` copies the transformed defect without blending (Ω = the mask), for comparison.
 *
 * The Poisson equation is solved per colour channel by successive over-relaxation (ω = 1.9, a fixed number of
 * sweeps in a fixed order, so the same seed gives the same bytes) from the pasted values shifted by the mean
 * border difference (close to the solution, so few sweeps suffice).
 */
import { InvalidArgumentError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import { toChannels } from '../image.ts';
import {
  MaskUnsatisfiableError,
  colorChannels,
  defectResult,
  drawIn,
  placementArea,
  startGenerator,
  type DefectResult,
  type Seed,
} from './common.ts';
import { placementSpecs, type OptionSpec, type PlacementOptions, type Range } from './options.ts';

export interface TransplantOptions extends PlacementOptions {
  /** Real defect images (any size, channels converted to the target's). */
  defects: readonly RasterImage[];
  /** One mask per defect image, the same size as it (non-zero = defect). */
  defect_masks: readonly RasterImage[];
  rotation_range: Range;
  scale_range: Range;
  flip: boolean;
  /** Gain and offset jitter: gain in 1 ± this, offset in ± 255·this/2. */
  intensity_jitter: number;
  blend: 'poisson' | 'paste';
  blend_border: number;
  iterations: number;
}

export const TRANSPLANT_SCHEMA: readonly OptionSpec[] = [
  {
    key: 'defects',
    kind: 'images',
    default: [],
    label: 'Defect images',
    help: 'real defect samples to cut from (few-shot defects of the dataset)',
  },
  {
    key: 'defect_masks',
    kind: 'images',
    default: [],
    label: 'Defect masks',
    help: 'one mask per defect image, same size (non-zero = defect)',
  },
  {
    key: 'rotation_range',
    kind: 'range',
    min: -180,
    max: 180,
    default: [-180, 180],
    label: 'Rotation (°)',
    help: 'rotation of the transplanted defect',
  },
  {
    key: 'scale_range',
    kind: 'range',
    min: 0.1,
    max: 4,
    default: [0.8, 1.25],
    label: 'Scale',
    help: 'size factor of the transplanted defect (log-uniform)',
  },
  {
    key: 'flip',
    kind: 'boolean',
    default: true,
    label: 'Random flips',
    help: 'mirror horizontally and/or vertically with probability ½ each',
  },
  {
    key: 'intensity_jitter',
    kind: 'number',
    min: 0,
    max: 1,
    default: 0.1,
    label: 'Intensity jitter',
    help: 'gain 1 ± j and offset ± 127·j on the defect before blending',
  },
  {
    key: 'blend',
    kind: 'enum',
    choices: ['poisson', 'paste'],
    default: 'poisson',
    label: 'Blend',
    help: 'Poisson (seamless) cloning, or a plain paste',
  },
  {
    key: 'blend_border',
    kind: 'number',
    min: 0,
    max: 32,
    integer: true,
    default: 3,
    label: 'Blend border (px)',
    help: 'how far beyond the defect mask the Poisson blend reaches',
  },
  {
    key: 'iterations',
    kind: 'number',
    min: 1,
    max: 5000,
    integer: true,
    default: 300,
    label: 'Poisson sweeps',
    help: 'SOR sweeps of the Poisson solve',
  },
  ...placementSpecs({
    region: 'painted region the defect centre must fall in and its footprint stay inside',
    attempts: 'placements tried before giving up',
  }),
];

/** The defect's bounding box of mask pixels (`null` when the mask is empty). */
function bounds(mask: RasterImage): { x0: number; y0: number; x1: number; y1: number } | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  const c = mask.channels;
  for (let y = 0; y < mask.height; y++)
    for (let x = 0; x < mask.width; x++)
      if (mask.data[(y * mask.width + x) * c] > 0) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  return x1 < 0 ? null : { x0, y0, x1, y1 };
}

/**
 * A transplanted real defect.
 * @param image RasterImage [H, W, C], C ∈ {1, 3, 4}
 * @returns image [H, W, C] (alpha kept), mask [H, W, 1] 0/255 (the transformed defect), params
 */
export function transplantDefect(
  image: RasterImage,
  options: Partial<TransplantOptions> | Record<string, unknown> = {},
  seed: Seed = 0,
): DefectResult {
  const { o, rng } = startGenerator<TransplantOptions>(TRANSPLANT_SCHEMA, image, options, seed);
  if (o.defects.length === 0)
    throw new InvalidArgumentError(
      'defects',
      'at least one real defect image with its mask in defect_masks (e.g. the dataset’s few-shot defects)',
      0,
    );
  if (o.defect_masks.length !== o.defects.length)
    throw new InvalidArgumentError(
      'defect_masks',
      `one mask per defect image (${o.defects.length})`,
      o.defect_masks.length,
    );
  o.defects.forEach((d, i) => {
    const m = o.defect_masks[i];
    if (m.width !== d.width || m.height !== d.height)
      throw new InvalidArgumentError(
        `defect_masks[${i}]`,
        `the size of defects[${i}] (${d.width}×${d.height})`,
        `${m.width}×${m.height}`,
      );
    if (!bounds(m))
      throw new InvalidArgumentError(
        `defect_masks[${i}]`,
        'a mask with at least one defect pixel',
        'an empty mask',
      );
  });
  const { width: W, height: H, channels: C } = image;
  const n = W * H;
  const { allowed, count: allowedCount } = placementArea('transplant', image, o);

  const k = rng.int(0, o.defects.length);
  const src = toChannels(o.defects[k], C);
  const smask = o.defect_masks[k];
  const b = bounds(smask)!;
  const angle = drawIn(rng, o.rotation_range);
  const scale = Math.exp(drawIn(rng, [Math.log(o.scale_range[0]), Math.log(o.scale_range[1])]));
  const flipX = o.flip ? rng.bernoulli(0.5) : false;
  const flipY = o.flip ? rng.bernoulli(0.5) : false;
  const gain = o.intensity_jitter > 0 ? rng.uniform(1 - o.intensity_jitter, 1 + o.intensity_jitter) : 1;
  const offset = o.intensity_jitter > 0 ? rng.uniform(-127.5, 127.5) * o.intensity_jitter : 0;

  // Source frame: the defect's bounding box centre; target → source is S⁻¹·R(−angle)·flip.
  const scx = (b.x0 + b.x1 + 1) / 2;
  const scy = (b.y0 + b.y1 + 1) / 2;
  const rad = (angle * Math.PI) / 180;
  const ca = Math.cos(rad);
  const sa = Math.sin(rad);
  const border = o.blend === 'poisson' ? o.blend_border : 0;
  const half = (Math.hypot(b.x1 - b.x0 + 1, b.y1 - b.y0 + 1) * scale) / 2 + border + 2;
  const toSource = (x: number, y: number, cx: number, cy: number) => {
    let dx = (x + 0.5 - cx) / scale;
    let dy = (y + 0.5 - cy) / scale;
    if (flipX) dx = -dx;
    if (flipY) dy = -dy;
    return { sx: ca * dx + sa * dy + scx, sy: -sa * dx + ca * dy + scy };
  };
  const inMask = (sx: number, sy: number) => {
    const xi = Math.floor(sx);
    const yi = Math.floor(sy);
    if (xi < 0 || yi < 0 || xi >= smask.width || yi >= smask.height) return false;
    return smask.data[(yi * smask.width + xi) * smask.channels] > 0;
  };

  const bits = new Uint8Array(n);
  let pixels = 0;
  let attempts = 0;
  let cx = 0;
  let cy = 0;
  let x0 = 0;
  let x1 = 0;
  let y0 = 0;
  let y1 = 0;
  while (pixels === 0) {
    if (attempts === o.max_attempts)
      throw new MaskUnsatisfiableError('transplant', attempts, allowedCount, n);
    attempts++;
    let p = rng.int(0, n);
    for (let t = 0; t < 64 && allowed !== null && !allowed[p]; t++) p = rng.int(0, n);
    if (allowed !== null && !allowed[p]) continue;
    cx = (p % W) + 0.5;
    cy = Math.floor(p / W) + 0.5;
    x0 = Math.max(0, Math.floor(cx - half));
    x1 = Math.min(W - 1, Math.ceil(cx + half));
    y0 = Math.max(0, Math.floor(cy - half));
    y1 = Math.min(H - 1, Math.ceil(cy + half));
    for (let y = y0; y <= y1; y++)
      for (let x = x0; x <= x1; x++) {
        const q = y * W + x;
        if (allowed !== null && !allowed[q]) continue;
        const { sx, sy } = toSource(x, y, cx, cy);
        if (inMask(sx, sy)) {
          bits[q] = 1;
          pixels++;
        }
      }
  }

  // Blend area Ω: the mask grown by `border` (Chebyshev distance), inside the allowed area and the box.
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const omega = new Uint8Array(bw * bh);
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const q = y * W + x;
      if (allowed !== null && !allowed[q]) continue;
      let hit = false;
      for (let dy = -border; dy <= border && !hit; dy++)
        for (let dx = -border; dx <= border && !hit; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < H && xx >= 0 && xx < W && bits[yy * W + xx]) hit = true;
        }
      if (hit) omega[(y - y0) * bw + (x - x0)] = 1;
    }

  // The transformed, jittered defect over the whole box (bilinear in the source, clamped at its edges), so the
  // guidance gradients across Ω's border are the defect's own.
  const cc = colorChannels(C);
  const guide = new Float32Array(bw * bh * cc);
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const l = (y - y0) * bw + (x - x0);
      const { sx, sy } = toSource(x, y, cx, cy);
      const fx = Math.min(Math.max(sx - 0.5, 0), src.width - 1);
      const fy = Math.min(Math.max(sy - 0.5, 0), src.height - 1);
      const ix = Math.floor(fx);
      const iy = Math.floor(fy);
      const jx = Math.min(ix + 1, src.width - 1);
      const jy = Math.min(iy + 1, src.height - 1);
      const wx = fx - ix;
      const wy = fy - iy;
      for (let c = 0; c < cc; c++) {
        const v00 = src.data[(iy * src.width + ix) * C + c];
        const v01 = src.data[(iy * src.width + jx) * C + c];
        const v10 = src.data[(jy * src.width + ix) * C + c];
        const v11 = src.data[(jy * src.width + jx) * C + c];
        const v = (v00 * (1 - wx) + v01 * wx) * (1 - wy) + (v10 * (1 - wx) + v11 * wx) * wy;
        guide[l * cc + c] = v * gain + offset;
      }
    }

  const out = new Uint8ClampedArray(image.data);
  const solved =
    o.blend === 'poisson' ? poissonBlend(image, guide, omega, x0, y0, bw, bh, cc, o.iterations) : guide;
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const l = (y - y0) * bw + (x - x0);
      if (!omega[l]) continue;
      const q = (y * W + x) * C;
      for (let c = 0; c < cc; c++) out[q + c] = Math.round(solved[l * cc + c]);
    }
  return defectResult(image, out, bits, {
    generator: 'transplant',
    defect_index: k,
    angle,
    scale,
    flip: [flipX, flipY],
    gain,
    offset,
    center: [cx, cy],
    blend: o.blend,
    attempts,
    mask_pixels: pixels,
  });
}

/**
 * Seamless cloning on the box: unknowns f at Ω's pixels with Δf = Δg (g the guide) inside Ω and f = the image
 * on Ω's outside neighbours (Dirichlet), 4-neighbourhood. Neighbours outside the image are left out of the
 * stencil (Neumann at the image edge). Returns the solved values `[bh·bw·cc]` (Ω pixels only are meaningful).
 */
export function poissonBlend(
  image: RasterImage,
  guide: Float32Array,
  omega: Uint8Array,
  x0: number,
  y0: number,
  bw: number,
  bh: number,
  cc: number,
  iterations: number,
): Float32Array {
  const { width: W, height: H, channels: C } = image;
  const f = new Float32Array(guide.length);
  const idx: number[] = [];
  for (let l = 0; l < bw * bh; l++) if (omega[l]) idx.push(l);
  const N4 = [
    [-1, 0],
    [1, 0],
    [0, -1],
    [0, 1],
  ] as const;
  for (let c = 0; c < cc; c++) {
    // Start from the guide shifted by the mean difference on Ω's outer boundary.
    let diff = 0;
    let nb = 0;
    for (const l of idx) {
      const lx = l % bw;
      const ly = (l - lx) / bw;
      for (const [dx, dy] of N4) {
        const x = x0 + lx + dx;
        const y = y0 + ly + dy;
        if (x < 0 || y < 0 || x >= W || y >= H) continue;
        const inBox = lx + dx >= 0 && lx + dx < bw && ly + dy >= 0 && ly + dy < bh;
        if (inBox && omega[l + dy * bw + dx]) continue;
        diff += image.data[(y * W + x) * C + c] - guide[l * cc + c];
        nb++;
      }
    }
    const shift = nb ? diff / nb : 0;
    for (const l of idx) f[l * cc + c] = guide[l * cc + c] + shift;
    for (let it = 0; it < iterations; it++) {
      for (const l of idx) {
        const lx = l % bw;
        const ly = (l - lx) / bw;
        let sum = 0;
        let deg = 0;
        for (const [dx, dy] of N4) {
          const x = x0 + lx + dx;
          const y = y0 + ly + dy;
          if (x < 0 || y < 0 || x >= W || y >= H) continue;
          deg++;
          const inBox = lx + dx >= 0 && lx + dx < bw && ly + dy >= 0 && ly + dy < bh;
          const m = l + dy * bw + dx;
          // Guidance: the guide's own gradient towards the neighbour (the guide covers the whole box).
          const gq = inBox ? guide[m * cc + c] : guide[l * cc + c];
          sum +=
            (inBox && omega[m] ? f[m * cc + c] : image.data[(y * W + x) * C + c]) + guide[l * cc + c] - gq;
        }
        if (deg === 0) continue;
        const cur = f[l * cc + c];
        f[l * cc + c] = cur + 1.9 * (sum / deg - cur);
      }
    }
  }
  return f;
}

/**
 * MemSeg / DRAEM defect (Yang et al. 2023, Zavrtanik et al. 2021): a Perlin-noise region filled with a blend of
 * the image and a foreign "source" — a texture, or the image itself scrambled ("structure" anomaly).
 *
 *   mask   = rotate(perlin(2^kx, 2^ky), angle) > threshold  ∩ foreground ∩ region,  k ∈ perlin_scale, retried
 *            until non-empty (at most max_attempts, then MaskUnsatisfiableError);
 *   source = texture (probability p_texture: a user/dataset image or a procedural texture), otherwise the image
 *            after n_ops random structure ops, cut into a grid × grid board of shuffled tiles;
 *   out    = mask ? factor·source + (1 − factor)·image : image,  factor ~ U(blend_factor).
 *
 * Pixels outside the mask are copied bit for bit; alpha is kept. Only masked pixels of the source are read,
 * and look-up-table ops are never applied to the whole image (see `AugmentPipeline`).
 */
import { InvalidArgumentError } from '../errors.ts';
import { toChannels, type RasterImage } from '../image.ts';
import {
  colorBuffer,
  colorChannels,
  defectResult,
  drawIn,
  perlinDefectMask,
  perlinMaskParams,
  startGenerator,
  type DefectResult,
  type Seed,
} from './common.ts';
import { AugmentPipeline, STRUCTURE_OPS, type StructureOp } from './ops.ts';
import {
  foregroundSpecs,
  maxAttemptsSpec,
  perlinMaskSpecs,
  regionMaskSpec,
  type OptionSpec,
  type PerlinMaskOptions,
  type PlacementOptions,
  type Range,
} from './options.ts';
import { TEXTURE_KINDS, proceduralTexture, type TextureKind } from './textures.ts';

/** Structure ops that look at neighbours or mix channels (not a per-channel look-up table). */
const PIXEL_OPS = new Set<StructureOp>(['sharpness', 'hue_saturation', 'rotate', 'brightness']);

export interface MemSegOptions extends PerlinMaskOptions, PlacementOptions {
  /** Probability of a texture source instead of a structure source. */
  p_texture: number;
  /** factor in out = factor·source + (1 − factor)·image. */
  blend_factor: Range;
  /** Texture images (user-chosen or other dataset images); empty = procedural textures. */
  textures: RasterImage[];
  /** Procedural texture kinds to draw from when `textures` is empty. */
  texture_kinds: TextureKind[];
  /** Structure operations to draw `n_ops` distinct ones from. */
  structure_ops: StructureOp[];
  n_ops: number;
  /** The structure source is cut into grid × grid tiles that are shuffled. */
  grid: number;
}

export const MEMSEG_SCHEMA: readonly OptionSpec[] = [
  ...perlinMaskSpecs(
    { perlin_scale: [0, 5], threshold: 0.5 },
    {
      scaleHelp: 'lattice size 2^k per axis, k drawn from these integers (small k → large blobs)',
      thresholdHelp: 'higher → smaller defects',
    },
  ),
  {
    key: 'p_texture',
    kind: 'number',
    min: 0,
    max: 1,
    default: 0.5,
    label: 'Texture probability',
    help: 'chance of a texture source instead of the scrambled image',
  },
  {
    key: 'blend_factor',
    kind: 'range',
    min: 0,
    max: 1,
    default: [0.15, 1],
    label: 'Blend factor',
    help: 'weight of the source inside the mask',
  },
  {
    key: 'textures',
    kind: 'images',
    default: [],
    label: 'Texture images',
    help: 'images to use as texture sources; none → procedural textures',
  },
  {
    key: 'texture_kinds',
    kind: 'enumList',
    choices: TEXTURE_KINDS,
    default: TEXTURE_KINDS,
    label: 'Procedural textures',
    help: 'kinds used when no texture image is given',
  },
  {
    key: 'structure_ops',
    kind: 'enumList',
    choices: STRUCTURE_OPS,
    default: STRUCTURE_OPS,
    label: 'Structure operations',
    help: 'augmentations the structure source draws from',
  },
  {
    key: 'n_ops',
    kind: 'number',
    min: 1,
    max: STRUCTURE_OPS.length,
    integer: true,
    default: 3,
    label: 'Operations per sample',
    help: 'distinct structure operations applied',
  },
  {
    key: 'grid',
    kind: 'number',
    min: 1,
    max: 64,
    integer: true,
    default: 8,
    label: 'Shuffle grid',
    help: 'the structure source is cut into grid × grid shuffled tiles',
  },
  // MemSeg's form lists the foreground before the region (`placementSpecs` puts the region first).
  ...foregroundSpecs('foreground is gray ≤ threshold (dark objects on a bright background)'),
  regionMaskSpec(),
  maxAttemptsSpec('mask draws before giving up with MaskUnsatisfiableError'),
];

/**
 * A MemSeg defect.
 * @param image RasterImage [H, W, C], C ∈ {1, 3, 4}
 * @returns image [H, W, C] (alpha kept), mask [H, W, 1] of 0/255, params
 * @throws MaskUnsatisfiableError when no non-empty mask is found; InvalidArgumentError for bad options.
 */
export function memsegDefect(
  image: RasterImage,
  options: Partial<MemSegOptions> | Record<string, unknown> = {},
  seed: Seed = 0,
): DefectResult {
  const { o, rng } = startGenerator<MemSegOptions>(MEMSEG_SCHEMA, image, options, seed);
  const { width: W, height: H, channels: C } = image;
  const n = W * H;
  const m = perlinDefectMask('memseg', image, o, rng);
  const bits = m.bits;

  const useTexture = rng.next() < o.p_texture;
  const factor = drawIn(rng, o.blend_factor);
  const params: Record<string, unknown> = {
    generator: 'memseg',
    ...perlinMaskParams(m, o.threshold),
    blend_factor: factor,
    source: useTexture ? 'texture' : 'structure',
    mask_pixels: m.pixels,
  };

  const out = new Uint8ClampedArray(image.data);
  const src = image.data;
  const cc = colorChannels(C);
  const keep = 1 - factor;

  if (useTexture) {
    if (o.textures.length > 0) {
      const k = rng.int(0, o.textures.length);
      const tex = toChannels(o.textures[k], cc === 1 ? 1 : 3);
      params.texture = { image_index: k };
      blendResized(out, src, C, cc, bits, W, H, tex, factor);
    } else {
      const kind = rng.choice(o.texture_kinds);
      const t = proceduralTexture(kind, W, H, cc, rng.fork('texture'), bits).data;
      params.texture = { kind };
      for (let p = 0; p < n; p++) {
        if (bits[p] === 0) continue;
        const i = p * C;
        const j = p * cc;
        for (let c = 0; c < cc; c++) out[i + c] = factor * t[j + c] + keep * src[i + c];
      }
    }
  } else {
    const choices = o.structure_ops.filter((op) => cc === 3 || op !== 'hue_saturation');
    if (choices.length === 0)
      throw new InvalidArgumentError(
        'structure_ops',
        'a list with an op other than hue_saturation for gray images',
        o.structure_ops,
      );
    const ops = rng.sampleIndices(choices.length, o.n_ops).map((i) => choices[i]);
    const grid = o.grid;
    const tw = Math.floor(W / grid);
    const th = Math.floor(H / grid);
    const shuffle = tw > 0 && th > 0 && grid > 1;
    const perm = shuffle ? rng.shuffle(Array.from({ length: grid * grid }, (_, i) => i)) : [0];
    params.grid = shuffle ? grid : 1;
    params.tile_permutation = perm;
    const gw = shuffle ? grid * tw : 0;
    const gh = shuffle ? grid * th : 0;
    // Source pixel read by each output pixel (the tile shuffle as an index map), -1 outside the mask.
    const from = new Int32Array(n).fill(-1);
    const need = new Uint8Array(n);
    for (let y = 0; y < H; y++) {
      const ty = shuffle && y < gh ? Math.floor(y / th) : -1;
      for (let x = 0; x < W; x++) {
        const p = y * W + x;
        if (bits[p] === 0) continue;
        let sx = x;
        let sy = y;
        if (ty >= 0 && x < gw) {
          const tx = Math.floor(x / tw);
          const s = perm[ty * grid + tx];
          sx = (s % grid) * tw + (x - tx * tw);
          sy = Math.floor(s / grid) * th + (y - ty * th);
        }
        from[p] = sy * W + sx;
        need[sy * W + sx] = 1;
      }
    }
    // The last pixel op may compute only the pixels read, unless a histogram op after it looks at all of them.
    let last = -1;
    for (let k = ops.length - 1; k >= 0; k--) {
      if (ops[k] === 'equalize' || ops[k] === 'autocontrast') break;
      if (PIXEL_OPS.has(ops[k])) {
        last = k;
        break;
      }
    }
    const pipe = new AugmentPipeline(colorBuffer(image));
    params.ops = ops.map((op, k) => pipe.apply(op, rng, k === last ? need : null));
    const lut = pipe.lut;
    const buf = pipe.buf.data;
    for (let p = 0; p < n; p++) {
      const q = from[p];
      if (q < 0) continue;
      const j = q * cc;
      const i = p * C;
      for (let c = 0; c < cc; c++) {
        const v = lut === null ? buf[j + c] : lut[c * 256 + buf[j + c]];
        out[i + c] = factor * v + keep * src[i + c];
      }
    }
  }

  return defectResult(image, out, bits, params);
}

/**
 * Blends a texture of any size, bilinearly resized to W × H (the sampling of `resizeBilinear`: half-pixel centres,
 * rounded), at the masked pixels only, so a large texture costs what the mask covers.
 */
function blendResized(
  out: Uint8ClampedArray,
  src: Uint8ClampedArray,
  C: number,
  cc: number,
  bits: Uint8Array,
  W: number,
  H: number,
  tex: RasterImage,
  factor: number,
): void {
  const tw = tex.width;
  const th = tex.height;
  const t = tex.data;
  const sx = tw / W;
  const sy = th / H;
  const keep = 1 - factor;
  for (let y = 0; y < H; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), th - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, th - 1);
    const wy = fy - y0;
    for (let x = 0; x < W; x++) {
      const p = y * W + x;
      if (bits[p] === 0) continue;
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), tw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, tw - 1);
      const wx = fx - x0;
      const i00 = (y0 * tw + x0) * cc;
      const i01 = (y0 * tw + x1) * cc;
      const i10 = (y1 * tw + x0) * cc;
      const i11 = (y1 * tw + x1) * cc;
      for (let c = 0; c < cc; c++) {
        const top = t[i00 + c] + (t[i01 + c] - t[i00 + c]) * wx;
        const bot = t[i10 + c] + (t[i11 + c] - t[i10 + c]) * wx;
        const v = Math.round(top + (bot - top) * wy);
        out[p * C + c] = factor * v + keep * src[p * C + c];
      }
    }
  }
}

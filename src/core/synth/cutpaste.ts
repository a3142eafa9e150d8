/**
 * CutPaste (Li et al., CVPR 2021): cut a patch of the image, colour-jitter it, paste it elsewhere.
 * - `normal`: a rectangle of area_ratio × image area with aspect ratio log-uniform in aspect_ratio;
 * - `scar`: a thin scar_width × scar_height strip rotated by an angle in rotation_range.
 * The paste centre is drawn from the allowed area (region ∩ foreground) and the pasted footprint is clipped to
 * it, so the mask is never empty and nothing outside it changes. Nearest-neighbour placement keeps the patch's
 * own pixels (no resampling blur, which would itself be a cue).
 */
import type { RasterImage } from '../image.ts';
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
import { colorJitterInPlace } from './ops.ts';
import { placementSpecs, type OptionSpec, type PlacementOptions, type Range } from './options.ts';

export interface CutPasteOptions extends PlacementOptions {
  variant: 'normal' | 'scar' | 'random';
  area_ratio: Range;
  aspect_ratio: Range;
  scar_width: Range;
  scar_height: Range;
  rotation_range: Range;
  /** ColorJitter strength (brightness, contrast, saturation, hue each ± this). */
  jitter: number;
}

export const CUTPASTE_SCHEMA: readonly OptionSpec[] = [
  {
    key: 'variant',
    kind: 'enum',
    choices: ['random', 'normal', 'scar'],
    default: 'random',
    label: 'Variant',
    help: 'rectangle (normal) or thin rotated strip (scar)',
  },
  {
    key: 'area_ratio',
    kind: 'range',
    min: 0.0001,
    max: 1,
    default: [0.02, 0.15],
    label: 'Area ratio',
    help: 'patch area / image area (normal)',
  },
  {
    key: 'aspect_ratio',
    kind: 'range',
    min: 0.05,
    max: 20,
    default: [0.3, 3.3],
    label: 'Aspect ratio',
    help: 'width / height, log-uniform (normal)',
  },
  {
    key: 'scar_width',
    kind: 'range',
    min: 1,
    max: 256,
    default: [2, 16],
    label: 'Scar width (px)',
    help: 'scar',
  },
  {
    key: 'scar_height',
    kind: 'range',
    min: 1,
    max: 512,
    default: [10, 25],
    label: 'Scar length (px)',
    help: 'scar',
  },
  {
    key: 'rotation_range',
    kind: 'range',
    min: -180,
    max: 180,
    default: [-45, 45],
    label: 'Scar rotation (°)',
    help: 'scar',
  },
  {
    key: 'jitter',
    kind: 'number',
    min: 0,
    max: 1,
    default: 0.1,
    label: 'Colour jitter',
    help: 'brightness/contrast/saturation/hue strength',
  },
  ...placementSpecs({
    region: 'painted region the patch must stay inside',
    attempts: 'placements tried before giving up',
  }),
];

/**
 * A CutPaste defect.
 * @param image RasterImage [H, W, C], C ∈ {1, 3, 4}
 * @returns image [H, W, C] (alpha kept), mask [H, W, 1] 0/255, params
 */
export function cutPasteDefect(
  image: RasterImage,
  options: Partial<CutPasteOptions> | Record<string, unknown> = {},
  seed: Seed = 0,
): DefectResult {
  const { o, rng } = startGenerator<CutPasteOptions>(CUTPASTE_SCHEMA, image, options, seed);
  const { width: W, height: H, channels: C } = image;
  const n = W * H;
  const { allowed, count: allowedCount } = placementArea('cutpaste', image, o);

  const variant = o.variant === 'random' ? (rng.bernoulli(0.5) ? 'normal' : 'scar') : o.variant;
  let pw: number;
  let ph: number;
  let angle = 0;
  if (variant === 'normal') {
    const area = drawIn(rng, o.area_ratio) * n;
    const logAspect = drawIn(rng, [Math.log(o.aspect_ratio[0]), Math.log(o.aspect_ratio[1])]);
    const aspect = Math.exp(logAspect);
    pw = Math.round(Math.sqrt(area * aspect));
    ph = Math.round(Math.sqrt(area / aspect));
  } else {
    pw = Math.round(drawIn(rng, o.scar_width));
    ph = Math.round(drawIn(rng, o.scar_height));
    angle = drawIn(rng, o.rotation_range);
  }
  pw = Math.max(1, Math.min(W, pw));
  ph = Math.max(1, Math.min(H, ph));
  const sx0 = rng.int(0, W - pw + 1);
  const sy0 = rng.int(0, H - ph + 1);

  // The patch's colour channels, jittered.
  const cc = colorChannels(C);
  const patch = new Uint8ClampedArray(pw * ph * cc);
  for (let y = 0; y < ph; y++)
    for (let x = 0; x < pw; x++) {
      const i = ((sy0 + y) * W + sx0 + x) * C;
      const j = (y * pw + x) * cc;
      for (let c = 0; c < cc; c++) patch[j + c] = image.data[i + c];
    }
  const jitter = o.jitter > 0 ? colorJitterInPlace(patch, cc, o.jitter, rng) : null;

  const rad = (angle * Math.PI) / 180;
  const ca = Math.cos(rad);
  const sa = Math.sin(rad);
  const halfDiag = Math.hypot(pw, ph) / 2 + 1;
  const bits = new Uint8Array(n);
  const out = new Uint8ClampedArray(image.data);
  let pixels = 0;
  let attempts = 0;
  let cx = 0;
  let cy = 0;
  while (pixels === 0) {
    if (attempts === o.max_attempts) throw new MaskUnsatisfiableError('cutpaste', attempts, allowedCount, n);
    attempts++;
    let p = rng.int(0, n);
    for (let t = 0; t < 64 && allowed !== null && !allowed[p]; t++) p = rng.int(0, n);
    if (allowed !== null && !allowed[p]) continue;
    cx = (p % W) + 0.5;
    cy = Math.floor(p / W) + 0.5;
    const x0 = Math.max(0, Math.floor(cx - halfDiag));
    const x1 = Math.min(W - 1, Math.ceil(cx + halfDiag));
    const y0 = Math.max(0, Math.floor(cy - halfDiag));
    const y1 = Math.min(H - 1, Math.ceil(cy + halfDiag));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const q = y * W + x;
        if (allowed !== null && allowed[q] === 0) continue;
        // Patch coordinates of the target pixel centre: R(−angle)·(p − centre) + patch centre.
        const dx = x + 0.5 - cx;
        const dy = y + 0.5 - cy;
        const lx = Math.floor(ca * dx + sa * dy + pw / 2);
        const ly = Math.floor(-sa * dx + ca * dy + ph / 2);
        if (lx < 0 || ly < 0 || lx >= pw || ly >= ph) continue;
        bits[q] = 1;
        pixels++;
        const i = q * C;
        const j = (ly * pw + lx) * cc;
        for (let c = 0; c < cc; c++) out[i + c] = patch[j + c];
      }
    }
  }
  return defectResult(image, out, bits, {
    generator: 'cutpaste',
    variant,
    patch: [pw, ph],
    source: [sx0, sy0],
    center: [cx, cy],
    angle,
    jitter,
    attempts,
    mask_pixels: pixels,
  });
}

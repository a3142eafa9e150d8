/**
 * Blur defect (CSE-style "smooth" anomaly): the image blurred by a Gaussian with a random anisotropic kernel
 * (σx, σy drawn independently) inside a Perlin region drawn exactly like MemSeg's mask. Out-of-focus patches,
 * smeared coating. Outside the mask nothing changes; the blur is computed only where the mask needs it.
 */
import type { RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import {
  MaskUnsatisfiableError,
  allowedArea,
  drawIn,
  maskImage,
  type DefectResult,
  type Seed,
} from './common.ts';
import { gaussianBlur } from './ops.ts';
import { checkImage, checkSeed, resolveOptions, type OptionSpec, type Range } from './options.ts';
import { perlinGradients, rotatedPerlinMask } from './perlin.ts';

export interface BlurOptions {
  /** Gaussian σ range in pixels, drawn per axis. */
  sigma: Range;
  perlin_scale: Range;
  rotation_range: Range;
  threshold: number;
  region_mask: RasterImage | null;
  foreground_threshold: number | null;
  foreground_invert: boolean;
  max_attempts: number;
}

export const BLUR_SCHEMA: readonly OptionSpec[] = [
  {
    key: 'sigma',
    kind: 'range',
    min: 0.3,
    max: 20,
    default: [1.5, 5],
    label: 'Blur σ (px)',
    help: 'Gaussian σ, drawn per axis',
  },
  {
    key: 'perlin_scale',
    kind: 'range',
    min: 0,
    max: 8,
    integer: true,
    default: [0, 5],
    label: 'Perlin scale exponent',
    help: 'lattice size 2^k per axis',
  },
  {
    key: 'rotation_range',
    kind: 'range',
    min: -180,
    max: 180,
    default: [-90, 90],
    label: 'Rotation (°)',
    help: 'rotation of the noise pattern',
  },
  {
    key: 'threshold',
    kind: 'number',
    min: -1,
    max: 1,
    default: 0.5,
    label: 'Noise threshold',
    help: 'higher → smaller regions',
  },
  {
    key: 'region_mask',
    kind: 'mask',
    default: null,
    label: 'Region mask',
    help: 'painted region the defect must stay inside',
  },
  {
    key: 'foreground_threshold',
    kind: 'number',
    min: 0,
    max: 255,
    nullable: true,
    default: null,
    label: 'Foreground threshold',
    help: 'defects only where gray > threshold (null: everywhere)',
  },
  {
    key: 'foreground_invert',
    kind: 'boolean',
    default: false,
    label: 'Invert foreground',
    help: 'foreground is gray ≤ threshold',
  },
  {
    key: 'max_attempts',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 50,
    label: 'Max attempts',
    help: 'mask draws before giving up',
  },
];

/**
 * A blur defect.
 * @param image RasterImage [H, W, C], C ∈ {1, 3, 4}
 * @returns image [H, W, C] (alpha kept), mask [H, W, 1] 0/255, params
 */
export function blurDefect(
  image: RasterImage,
  options: Partial<BlurOptions> | Record<string, unknown> = {},
  seed: Seed = 0,
): DefectResult {
  checkImage('image', image);
  const o = resolveOptions<BlurOptions>(BLUR_SCHEMA, options as Record<string, unknown>, image);
  const rng = new Rng(checkSeed(seed));
  const { width: W, height: H, channels: C } = image;
  const n = W * H;
  const { allowed, count: allowedCount } = allowedArea(
    image,
    o.region_mask,
    o.foreground_threshold,
    o.foreground_invert,
  );
  if (allowedCount === 0) throw new MaskUnsatisfiableError('blur', 0, 0, n);
  const bits = new Uint8Array(n);
  let pixels = 0;
  let attempts = 0;
  let scaleX = 1;
  let scaleY = 1;
  let angle = 0;
  while (pixels === 0) {
    if (attempts === o.max_attempts) throw new MaskUnsatisfiableError('blur', attempts, allowedCount, n);
    attempts++;
    scaleX = Math.min(W, 2 ** rng.int(o.perlin_scale[0], o.perlin_scale[1] + 1));
    scaleY = Math.min(H, 2 ** rng.int(o.perlin_scale[0], o.perlin_scale[1] + 1));
    const g = perlinGradients(scaleX, scaleY, rng);
    angle = drawIn(rng, o.rotation_range);
    pixels = rotatedPerlinMask(bits, W, H, scaleX, scaleY, g, angle, o.threshold, allowed);
  }
  const sigmaX = drawIn(rng, o.sigma);
  const sigmaY = drawIn(rng, o.sigma);
  const blurred = gaussianBlur(image.data, W, H, C, sigmaX, sigmaY, bits);
  const out = new Uint8ClampedArray(image.data);
  const cc = C === 1 ? 1 : 3;
  for (let p = 0; p < n; p++) {
    if (bits[p] === 0) continue;
    for (let c = 0; c < cc; c++) out[p * C + c] = blurred[p * C + c];
  }
  return {
    image: { width: W, height: H, channels: C, data: out },
    mask: maskImage(bits, W, H),
    params: {
      generator: 'blur',
      attempts,
      perlin_scale: [scaleX, scaleY],
      angle,
      threshold: o.threshold,
      sigma: [sigmaX, sigmaY],
      mask_pixels: pixels,
    },
  };
}

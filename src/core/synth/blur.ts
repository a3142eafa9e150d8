/**
 * Blur defect (CSE-style "smooth" anomaly): the image blurred by a Gaussian with a random anisotropic kernel
 * (σx, σy drawn independently) inside a Perlin region drawn exactly like MemSeg's mask. Out-of-focus patches,
 * smeared coating. Outside the mask nothing changes; the blur is computed only where the mask needs it.
 */
import type { RasterImage } from '../image.ts';
import {
  colorChannels,
  defectResult,
  drawIn,
  perlinDefectMask,
  perlinMaskParams,
  startGenerator,
  type DefectResult,
  type Seed,
} from './common.ts';
import { gaussianBlur } from './ops.ts';
import {
  perlinMaskSpecs,
  placementSpecs,
  type OptionSpec,
  type PerlinMaskOptions,
  type PlacementOptions,
  type Range,
} from './options.ts';

export interface BlurOptions extends PerlinMaskOptions, PlacementOptions {
  /** Gaussian σ range in pixels, drawn per axis. */
  sigma: Range;
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
  ...perlinMaskSpecs({ perlin_scale: [0, 5], threshold: 0.5 }),
  ...placementSpecs({ attempts: 'mask draws before giving up' }),
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
  const { o, rng } = startGenerator<BlurOptions>(BLUR_SCHEMA, image, options, seed);
  const { width: W, height: H, channels: C } = image;
  const m = perlinDefectMask('blur', image, o, rng);
  const bits = m.bits;
  const sigmaX = drawIn(rng, o.sigma);
  const sigmaY = drawIn(rng, o.sigma);
  const blurred = gaussianBlur(image.data, W, H, C, sigmaX, sigmaY, bits);
  const out = new Uint8ClampedArray(image.data);
  const cc = colorChannels(C);
  for (let p = 0; p < W * H; p++) {
    if (bits[p] === 0) continue;
    for (let c = 0; c < cc; c++) out[p * C + c] = blurred[p * C + c];
  }
  return defectResult(image, out, bits, {
    generator: 'blur',
    ...perlinMaskParams(m, o.threshold),
    sigma: [sigmaX, sigmaY],
    mask_pixels: m.pixels,
  });
}

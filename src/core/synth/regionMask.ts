/**
 * Random Perlin region masks for the mask library ("where may defects go"): the same rotated, thresholded
 * Perlin pattern as MemSeg's defect mask, as a 0/255 RasterImage.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import { drawPerlinMask, maskImage, type Seed } from './common.ts';
import {
  checkSeed,
  maxAttemptsSpec,
  perlinMaskSpecs,
  resolveOptions,
  type OptionSpec,
  type PerlinMaskOptions,
  type PlacementOptions,
} from './options.ts';

export type RandomPerlinMaskOptions = PerlinMaskOptions & Pick<PlacementOptions, 'max_attempts'>;

export const REGION_MASK_SCHEMA: readonly OptionSpec[] = [
  ...perlinMaskSpecs(
    { perlin_scale: [0, 3], threshold: 0.2 },
    { rotationHelp: 'rotation of the noise', thresholdLabel: 'Threshold' },
  ),
  maxAttemptsSpec('draws before giving up'),
];

/**
 * A random region mask.
 * @returns RasterImage [height, width, 1] of 0/255, never empty
 */
export function randomPerlinMask(
  width: number,
  height: number,
  options: Partial<RandomPerlinMaskOptions> = {},
  seed: Seed = 0,
): RasterImage {
  if (!Number.isInteger(width) || width <= 0)
    throw new InvalidArgumentError('width', 'a positive integer', width);
  if (!Number.isInteger(height) || height <= 0)
    throw new InvalidArgumentError('height', 'a positive integer', height);
  const o = resolveOptions<RandomPerlinMaskOptions>(REGION_MASK_SCHEMA, options, { width, height });
  const rng = new Rng(checkSeed(seed));
  // The whole image is allowed, so the error reports allowed = total pixels.
  const m = drawPerlinMask('perlin region mask', width, height, null, width * height, o, rng);
  return maskImage(m.bits, width, height);
}

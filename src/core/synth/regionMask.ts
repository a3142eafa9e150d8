/**
 * Random Perlin region masks for the mask library ("where may defects go"): the same rotated, thresholded
 * Perlin pattern as MemSeg's defect mask, as a 0/255 RasterImage.
 */
import type { RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import { MaskUnsatisfiableError, drawIn, maskImage, type Seed } from './common.ts';
import { checkSeed, resolveOptions, type OptionSpec, type Range } from './options.ts';
import { perlinGradients, rotatedPerlinMask } from './perlin.ts';
import { InvalidArgumentError } from '../errors.ts';

export interface RandomPerlinMaskOptions {
  perlin_scale: Range;
  rotation_range: Range;
  threshold: number;
  max_attempts: number;
}

export const REGION_MASK_SCHEMA: readonly OptionSpec[] = [
  {
    key: 'perlin_scale',
    kind: 'range',
    min: 0,
    max: 8,
    integer: true,
    default: [0, 3],
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
    help: 'rotation of the noise',
  },
  {
    key: 'threshold',
    kind: 'number',
    min: -1,
    max: 1,
    default: 0.2,
    label: 'Threshold',
    help: 'higher → smaller regions',
  },
  {
    key: 'max_attempts',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 50,
    label: 'Max attempts',
    help: 'draws before giving up',
  },
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
  const bits = new Uint8Array(width * height);
  for (let attempt = 1; attempt <= o.max_attempts; attempt++) {
    const sx = Math.min(width, 2 ** rng.int(o.perlin_scale[0], o.perlin_scale[1] + 1));
    const sy = Math.min(height, 2 ** rng.int(o.perlin_scale[0], o.perlin_scale[1] + 1));
    const g = perlinGradients(sx, sy, rng);
    if (
      rotatedPerlinMask(bits, width, height, sx, sy, g, drawIn(rng, o.rotation_range), o.threshold, null) > 0
    )
      return maskImage(bits, width, height);
  }
  throw new MaskUnsatisfiableError('perlin region mask', o.max_attempts, width * height, width * height);
}

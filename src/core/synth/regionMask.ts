/**
 * Random Perlin region masks ("put defects somewhere in here" without painting) for the mask library and the
 * generation form's "random region per image": the same rotated, thresholded Perlin draw as MemSeg's defect mask
 * (lattice 2^k per axis, rotation, threshold; `drawPerlinMask`), retried until the region covers at least
 * `min_coverage` of the image, as a 0/255 RasterImage. This is the app's only random region mask.
 */
import { DefectLabError, InvalidArgumentError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import { MaskUnsatisfiableError, drawPerlinMask, maskImage, type Seed } from './common.ts';
import {
  checkSeed,
  maxAttemptsSpec,
  perlinMaskSpecs,
  resolveOptions,
  type OptionSpec,
  type PerlinMaskOptions,
  type PlacementOptions,
} from './options.ts';

export interface RandomPerlinMaskOptions extends PerlinMaskOptions, Pick<PlacementOptions, 'max_attempts'> {
  /** Smallest accepted fraction of the image inside the region (a few stray pixels are no region). */
  min_coverage: number;
}

export const REGION_MASK_SCHEMA: readonly OptionSpec[] = [
  ...perlinMaskSpecs(
    { perlin_scale: [0, 3], threshold: 0.2 },
    { rotationHelp: 'rotation of the noise', thresholdLabel: 'Threshold' },
  ),
  {
    key: 'min_coverage',
    kind: 'number',
    min: 0,
    max: 0.99,
    default: 0.005,
    label: 'Minimum coverage',
    help: 'smallest fraction of the image the region must cover',
  },
  maxAttemptsSpec('draws before giving up'),
];

/** No draw covered `min_coverage` of the image within `max_attempts`. */
export class RegionCoverageError extends DefectLabError {
  constructor(
    readonly attempts: number,
    readonly minCoverage: number,
    readonly threshold: number,
  ) {
    super(
      'RegionCoverageError',
      `perlin region mask: no draw covered ${(100 * minCoverage).toFixed(2)}% of the image above threshold ${threshold} in ${attempts} attempts`,
      'lower threshold or min_coverage, use smaller perlin_scale exponents, or raise max_attempts',
    );
  }
}

export interface RandomPerlinMaskResult {
  /** [height, width, 1] of 0/255, covering at least min_coverage (and never empty). */
  mask: RasterImage;
  /** The draw that made it: lattice size per axis, angle (°), threshold, attempts, covered fraction. */
  params: {
    perlin_scale: [number, number];
    angle: number;
    threshold: number;
    attempts: number;
    coverage: number;
  };
}

/**
 * A random region mask. Each attempt draws exactly what one `drawPerlinMask` attempt draws, so where the first
 * draw covers enough the mask is the one MemSeg would draw from the same Rng state.
 * @throws RegionCoverageError when max_attempts draws all cover less than min_coverage
 */
export function randomPerlinMask(
  width: number,
  height: number,
  options: Partial<RandomPerlinMaskOptions> = {},
  seed: Seed = 0,
): RandomPerlinMaskResult {
  if (!Number.isInteger(width) || width <= 0)
    throw new InvalidArgumentError('width', 'a positive integer', width);
  if (!Number.isInteger(height) || height <= 0)
    throw new InvalidArgumentError('height', 'a positive integer', height);
  const o = resolveOptions<RandomPerlinMaskOptions>(REGION_MASK_SCHEMA, options, { width, height });
  const rng = new Rng(checkSeed(seed));
  const n = width * height;
  const need = Math.max(1, Math.ceil(o.min_coverage * n));
  const one = { ...o, max_attempts: 1 };
  for (let attempt = 1; attempt <= o.max_attempts; attempt++) {
    try {
      // The whole image is allowed, so a failed draw reports allowed = total pixels.
      const m = drawPerlinMask('perlin region mask', width, height, null, n, one, rng);
      if (m.pixels < need) continue;
      return {
        mask: maskImage(m.bits, width, height),
        params: {
          perlin_scale: [m.scaleX, m.scaleY],
          angle: m.angle,
          threshold: o.threshold,
          attempts: attempt,
          coverage: m.pixels / n,
        },
      };
    } catch (e) {
      if (!(e instanceof MaskUnsatisfiableError)) throw e;
    }
  }
  throw new RegionCoverageError(o.max_attempts, o.min_coverage, o.threshold);
}

/**
 * Random region masks from thresholded Perlin noise (the blobs DRAEM/MemSeg use for defect shapes), for the mask
 * library: "put defects somewhere in here" without painting. Pure and seeded.
 */
import { DefectLabError, InvalidArgumentError } from '../errors.ts';
import { createRaster, type RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import { perlin2D } from '../synth/perlin.ts';

export interface RegionMaskOptions {
  /** Lattice scale 2^k per axis with k an integer drawn uniformly from [minScaleExp, maxScaleExp). */
  minScaleExp?: number;
  maxScaleExp?: number;
  /** Noise values above this are in (DRAEM uses 0.5; lower gives larger regions). Noise lies in [−1, 1]. */
  threshold?: number;
  /** Smallest accepted fraction of the image covered, in [0, 1). */
  minCoverage?: number;
  /** Draws before giving up. */
  maxTries?: number;
}

export class EmptyRegionMaskError extends DefectLabError {
  constructor(tries: number, threshold: number, minCoverage: number) {
    super(
      'EmptyRegionMaskError',
      `no Perlin region covered ${(minCoverage * 100).toFixed(2)}% of the image above threshold ${threshold} in ${tries} tries`,
      'lower the threshold or minCoverage, or use larger scales',
    );
  }
}

export interface RegionMaskResult {
  mask: RasterImage;
  /** What was drawn, so the mask can be described and regenerated. */
  params: { scaleX: number; scaleY: number; threshold: number; tries: number; coverage: number };
}

/**
 * A binary [H, W] 0/255 mask of the Perlin field's super-level set, retried until it covers at least
 * `minCoverage` of the image (bounded by `maxTries`, then `EmptyRegionMaskError`).
 */
export function randomRegionMask(
  width: number,
  height: number,
  seed: number | string,
  options: RegionMaskOptions = {},
): RegionMaskResult {
  const minExp = options.minScaleExp ?? 1;
  const maxExp = options.maxScaleExp ?? 4;
  const threshold = options.threshold ?? 0.5;
  const minCoverage = options.minCoverage ?? 0.005;
  const maxTries = options.maxTries ?? 50;
  if (!Number.isInteger(minExp) || minExp < 0)
    throw new InvalidArgumentError('minScaleExp', 'an integer ≥ 0', minExp);
  if (!Number.isInteger(maxExp) || maxExp <= minExp)
    throw new InvalidArgumentError('maxScaleExp', `an integer > minScaleExp (${minExp})`, maxExp);
  if (!(threshold > -1 && threshold < 1))
    throw new InvalidArgumentError('threshold', 'in (−1, 1)', threshold);
  if (!(minCoverage >= 0 && minCoverage < 1))
    throw new InvalidArgumentError('minCoverage', 'in [0, 1)', minCoverage);
  if (!Number.isInteger(maxTries) || maxTries < 1)
    throw new InvalidArgumentError('maxTries', 'an integer ≥ 1', maxTries);
  const rng = new Rng(seed);
  const need = Math.max(1, Math.ceil(minCoverage * width * height));
  for (let tries = 1; tries <= maxTries; tries++) {
    // A lattice finer than the image has no meaning (perlin2D rejects it), so scales are capped at the size.
    const scaleX = Math.min(width, 2 ** rng.int(minExp, maxExp));
    const scaleY = Math.min(height, 2 ** rng.int(minExp, maxExp));
    const field = perlin2D(width, height, scaleX, scaleY, rng);
    const mask = createRaster(width, height, 1);
    let n = 0;
    for (let i = 0; i < field.data.length; i++) {
      if (field.data[i] > threshold) {
        mask.data[i] = 255;
        n++;
      }
    }
    if (n >= need)
      return { mask, params: { scaleX, scaleY, threshold, tries, coverage: n / (width * height) } };
  }
  throw new EmptyRegionMaskError(maxTries, threshold, minCoverage);
}

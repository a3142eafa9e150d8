/**
 * What every generator shares: the result shape, the "no room for a defect" error, and the allowed area
 * (user region mask ∩ foreground mask) a defect must stay inside.
 */
import { DefectLabError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import type { WorkBuffer } from './ops.ts';

/** A generated sample. `image` has the input's size and channels; `mask` is single-channel 0/255. */
export interface DefectResult {
  image: RasterImage;
  /** Exact label mask [height, width, 1]: every pixel that differs from the input is 255 here. */
  mask: RasterImage;
  /** Every random draw that shaped the sample (JSON-serializable), for provenance and debugging. */
  params: Record<string, unknown>;
}

export type Seed = number | string;

/** `fn(image, options, seed)`; every option has a default, so `fn(image, {}, seed)` works. */
export type GeneratorFn<O = Record<string, unknown>> = (
  image: RasterImage,
  options: Partial<O> | Record<string, unknown>,
  seed: Seed,
) => DefectResult;

/**
 * No non-empty defect mask could be drawn: the allowed area (region ∩ foreground) is empty, or every one of
 * `attempts` draws missed it. Thrown after a bounded number of tries, never looped on.
 */
export class MaskUnsatisfiableError extends DefectLabError {
  constructor(
    readonly generator: string,
    readonly attempts: number,
    readonly allowedPixels: number,
    readonly totalPixels: number,
  ) {
    const pct = ((100 * allowedPixels) / totalPixels).toFixed(2);
    super(
      'MaskUnsatisfiableError',
      allowedPixels === 0
        ? `${generator}: the allowed area (region mask ∩ foreground mask) is empty, so no defect can be placed`
        : `${generator}: no non-empty defect mask after ${attempts} attempts (allowed area ${allowedPixels} px, ${pct}% of the image)`,
      allowedPixels === 0
        ? 'paint a larger region, or change foreground_threshold / foreground_invert'
        : 'enlarge the region mask, lower perlin_scale, or raise max_attempts',
    );
  }
}

/**
 * The area a defect may occupy: non-zero pixels of `region` ∩ the foreground of `image` (gray > threshold, or
 * ≤ threshold when inverted). Null `allowed` means everywhere.
 * @returns allowed Uint8Array [height × width] of 0/1, and its pixel count.
 */
export function allowedArea(
  image: RasterImage,
  region: RasterImage | null,
  foregroundThreshold: number | null,
  foregroundInvert: boolean,
): { allowed: Uint8Array | null; count: number } {
  const n = image.width * image.height;
  if (region === null && foregroundThreshold === null) return { allowed: null, count: n };
  const allowed = new Uint8Array(n);
  const c = image.channels;
  const d = image.data;
  let count = 0;
  for (let p = 0; p < n; p++) {
    if (region !== null && region.data[p] === 0) continue;
    if (foregroundThreshold !== null) {
      const i = p * c;
      const gray = c === 1 ? d[i] : (d[i] * 299 + d[i + 1] * 587 + d[i + 2] * 114) / 1000;
      if (gray > foregroundThreshold === foregroundInvert) continue;
    }
    allowed[p] = 1;
    count++;
  }
  return { allowed, count };
}

/** A copy of the colour channels (alpha dropped) as a working buffer. */
export function colorBuffer(image: RasterImage): WorkBuffer {
  const { width, height, channels } = image;
  if (channels === 1) return { width, height, cc: 1, data: new Uint8ClampedArray(image.data) };
  if (channels === 3) return { width, height, cc: 3, data: new Uint8ClampedArray(image.data) };
  const n = width * height;
  const out = new Uint8ClampedArray(n * 3);
  for (let p = 0; p < n; p++) {
    out[3 * p] = image.data[4 * p];
    out[3 * p + 1] = image.data[4 * p + 1];
    out[3 * p + 2] = image.data[4 * p + 2];
  }
  return { width, height, cc: 3, data: out };
}

/** Builds the 0/255 mask image from a 0/1 map. */
export function maskImage(bits: Uint8Array, width: number, height: number): RasterImage {
  const data = new Uint8ClampedArray(bits.length);
  for (let i = 0; i < bits.length; i++) data[i] = bits[i] ? 255 : 0;
  return { width, height, channels: 1, data };
}

/** Uniform draw in a [lo, hi] option range (lo when the range is a single value). */
export function drawIn(
  rng: { uniform(lo: number, hi: number): number },
  r: readonly [number, number],
): number {
  return r[0] === r[1] ? r[0] : rng.uniform(r[0], r[1]);
}

/**
 * What every generator shares: the result shape and how it is built, the "no room for a defect" error, the
 * allowed area (user region mask ∩ foreground mask) a defect must stay inside, and the Perlin mask draw.
 */
import { DefectLabError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import type { WorkBuffer } from './ops.ts';
import {
  checkImage,
  checkSeed,
  resolveOptions,
  type OptionSpec,
  type PerlinMaskOptions,
  type PlacementOptions,
} from './options.ts';
import { perlinGradients, rotatedPerlinMask } from './perlin.ts';

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

/**
 * A generator's preamble, in the order errors are reported: the image is checked, then the options are
 * resolved against `schema` (masks must match the image's size), then the seed.
 * @param image RasterImage [H, W, C], C ∈ {1, 3, 4}
 * @returns the resolved options and the generator's only source of randomness
 */
export function startGenerator<O>(
  schema: readonly OptionSpec[],
  image: RasterImage,
  options: Partial<O> | Record<string, unknown>,
  seed: Seed,
): { o: O; rng: Rng } {
  checkImage('image', image);
  const o = resolveOptions<O>(schema, options as Record<string, unknown>, image);
  return { o, rng: new Rng(checkSeed(seed)) };
}

/**
 * `allowedArea` for a generator's `PlacementOptions`, throwing `MaskUnsatisfiableError` (0 attempts) right away
 * when it is empty. Draws nothing from the Rng.
 * @returns allowed Uint8Array [H × W] of 0/1 (null = everywhere) and its pixel count (> 0)
 */
export function placementArea(
  generator: string,
  image: RasterImage,
  o: PlacementOptions,
): { allowed: Uint8Array | null; count: number } {
  const area = allowedArea(image, o.region_mask, o.foreground_threshold, o.foreground_invert);
  if (area.count === 0) throw new MaskUnsatisfiableError(generator, 0, 0, image.width * image.height);
  return area;
}

/** A drawn Perlin mask and the draws that shaped it. */
export interface PerlinMaskDraw {
  /** Uint8Array [H × W] of 0/1: the mask, inside the allowed area, never empty. */
  bits: Uint8Array;
  /** Number of 1s in `bits` (> 0). */
  pixels: number;
  /** Draws it took (1 … max_attempts). */
  attempts: number;
  /** Lattice size of the successful draw, 2^k per axis clipped to the image size. */
  scaleX: number;
  scaleY: number;
  /** Rotation of the successful draw in degrees. */
  angle: number;
}

/**
 * Draws rotated, thresholded Perlin masks (∩ `allowed`) until one is non-empty, at most `o.max_attempts`
 * times. Per attempt the Rng is drawn in this order: kx, ky (integers in perlin_scale), the (2^kx + 1) ×
 * (2^ky + 1) gradient lattice, the angle (no draw when rotation_range is a single value).
 * @param allowed Uint8Array [height × width] of 0/1, or null for everywhere
 * @param allowedCount pixels allowed (width × height when `allowed` is null); only reported in the error
 * @throws MaskUnsatisfiableError after `o.max_attempts` empty masks
 */
export function drawPerlinMask(
  generator: string,
  width: number,
  height: number,
  allowed: Uint8Array | null,
  allowedCount: number,
  o: PerlinMaskOptions & Pick<PlacementOptions, 'max_attempts'>,
  rng: Rng,
): PerlinMaskDraw {
  const n = width * height;
  const bits = new Uint8Array(n);
  let pixels = 0;
  let attempts = 0;
  let scaleX = 1;
  let scaleY = 1;
  let angle = 0;
  while (pixels === 0) {
    if (attempts === o.max_attempts) throw new MaskUnsatisfiableError(generator, attempts, allowedCount, n);
    attempts++;
    scaleX = Math.min(width, 2 ** rng.int(o.perlin_scale[0], o.perlin_scale[1] + 1));
    scaleY = Math.min(height, 2 ** rng.int(o.perlin_scale[0], o.perlin_scale[1] + 1));
    const g = perlinGradients(scaleX, scaleY, rng);
    angle = drawIn(rng, o.rotation_range);
    pixels = rotatedPerlinMask(bits, width, height, scaleX, scaleY, g, angle, o.threshold, allowed);
  }
  return { bits, pixels, attempts, scaleX, scaleY, angle };
}

/**
 * The defect region of a Perlin-shaped generator (MemSeg, blur): `placementArea`, then `drawPerlinMask` inside
 * it. Same errors, same Rng draws.
 * @param image RasterImage [H, W, C]; the mask is [H × W]
 */
export function perlinDefectMask(
  generator: string,
  image: RasterImage,
  o: PerlinMaskOptions & PlacementOptions,
  rng: Rng,
): PerlinMaskDraw {
  const { allowed, count } = placementArea(generator, image, o);
  return drawPerlinMask(generator, image.width, image.height, allowed, count, o, rng);
}

/** The Perlin part of a generator's params: { attempts, perlin_scale: [scaleX, scaleY], angle, threshold }. */
export function perlinMaskParams(m: PerlinMaskDraw, threshold: number): Record<string, unknown> {
  return { attempts: m.attempts, perlin_scale: [m.scaleX, m.scaleY], angle: m.angle, threshold };
}

/** Colour channels a generator changes: 1 for gray, 3 for RGB and RGBA (alpha is never touched). */
export function colorChannels(channels: number): 1 | 3 {
  return channels === 1 ? 1 : 3;
}

/**
 * Wraps a generator's output.
 * @param input the input image [H, W, C]: size and channels of the output
 * @param data output pixels, length H × W × C
 * @param bits Uint8Array [H × W] of 0/1: every changed pixel is 1
 */
export function defectResult(
  input: RasterImage,
  data: Uint8ClampedArray,
  bits: Uint8Array,
  params: Record<string, unknown>,
): DefectResult {
  const { width, height, channels } = input;
  return { image: { width, height, channels, data }, mask: maskImage(bits, width, height), params };
}

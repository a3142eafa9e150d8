/**
 * Many samples from one generator: source images taken round-robin, optional region masks per image, a
 * per-sample seed derived from the batch seed (so any sample regenerates alone from its recorded seed),
 * progress, cancel between samples, and failures (no room for a mask) reported per sample instead of
 * stopping the batch.
 */
import { InvalidArgumentError, type DefectLabError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import {
  etaSeconds,
  throwIfCancelled,
  yieldToEventLoop,
  type CancelSignal,
  type ProgressFn,
} from '../progress.ts';
import { hashString } from '../rng.ts';
import { blurMask } from '../mask/morph.ts';
import { MaskUnsatisfiableError, type DefectResult, type GeneratorFn, type Seed } from './common.ts';
import { featherDefect } from './feather.ts';
import { checkImage, checkSeed } from './options.ts';
import { getGenerator } from './registry.ts';

export interface BatchSample {
  /** Position in the batch, 0…n−1. */
  index: number;
  /** Index into `images` of the source image. */
  sourceIndex: number;
  generator: string;
  /** The seed this sample was made with: `fn(images[sourceIndex], {…options, region_mask}, seed)` repeats it. */
  seed: number;
  image: RasterImage;
  mask: RasterImage;
  params: Record<string, unknown>;
}

export interface BatchFailure {
  index: number;
  sourceIndex: number;
  seed: number;
  reason: string;
  message: string;
}

export interface BatchResult {
  generator: string;
  samples: BatchSample[];
  failures: BatchFailure[];
}

export interface BatchOptions {
  signal?: CancelSignal;
  onProgress?: ProgressFn;
  /**
   * Called with each sample as soon as it exists (the staging strip fills while the batch runs). A returned
   * promise is awaited, so a consumer across a worker boundary can apply back-pressure.
   */
  onSample?: (s: BatchSample) => void | Promise<void>;
  /**
   * Feather σ (pixels) per image, aligned like `masks` (or one for all): each sample made inside a region is
   * blended back with that region's soft edge (`featherDefect`, label masks stay binary). 0 or absent = none.
   */
  feathers?: readonly number[];
  /**
   * Indices already made by an earlier, interrupted run of the same batch (same seed, same inputs): skipped, so
   * a resumed batch ends with each index once. Sample i depends only on (seed, i), so the rest come out the same.
   */
  skip?: readonly number[];
}

/** The seed of sample `index` of a batch seeded with `seed`. */
export function sampleSeed(seed: Seed, index: number): number {
  return hashString(`${seed}:${index}`);
}

/**
 * Generates `n` samples.
 * @param images source images (any sizes/channels), used round-robin: sample i uses images[i % images.length]
 * @param masks null, or region masks aligned with `images` (null entries = anywhere), or one mask for all;
 *   a mask overrides `options.region_mask`; with `feathers`, samples are feathered along it
 * @throws CancelledError when `signal` fires (between samples); InvalidArgumentError for bad arguments.
 */
export async function generateBatch(
  images: readonly RasterImage[],
  masks: readonly (RasterImage | null)[] | null,
  generator: string | { name: string; fn: GeneratorFn },
  options: Record<string, unknown>,
  n: number,
  seed: Seed,
  { signal, onProgress, onSample, feathers, skip }: BatchOptions = {},
): Promise<BatchResult> {
  if (!Array.isArray(images) || images.length === 0)
    throw new InvalidArgumentError('images', 'a non-empty list of images', images);
  images.forEach((img, i) => checkImage(`images[${i}]`, img));
  if (masks !== null && masks.length !== images.length && masks.length !== 1)
    throw new InvalidArgumentError('masks.length', `1 or ${images.length} (one per image)`, masks.length);
  if (!Number.isInteger(n) || n < 1 || n > 100_000)
    throw new InvalidArgumentError('n', 'an integer in [1, 100000]', n);
  checkSeed(seed);
  if (feathers && feathers.length !== images.length && feathers.length !== 1)
    throw new InvalidArgumentError(
      'feathers.length',
      `1 or ${images.length} (one per image)`,
      feathers.length,
    );
  // The soft region edge, made once per region (many samples share it).
  const soft = new Map<RasterImage, RasterImage>();
  const feather = (i: number, region: RasterImage | undefined, r: DefectResult): DefectResult => {
    const sigma = feathers ? (feathers.length === 1 ? feathers[0] : feathers[i]) : 0;
    if (!region || !sigma) return r;
    let sm = soft.get(region);
    if (!sm) soft.set(region, (sm = blurMask(region, sigma)));
    return featherDefect(images[i], r, region, sigma, sm);
  };
  const { name, fn } =
    typeof generator === 'string' ? { name: generator, fn: getGenerator(generator).fn } : generator;

  const samples: BatchSample[] = [];
  const failures: BatchFailure[] = [];
  const t0 = performance.now();
  let lastYield = t0;
  const skipped = new Set(skip ?? []);
  for (let i = 0; i < n; i++) {
    if (skipped.has(i)) continue;
    throwIfCancelled(signal, `${name} generation`, `${samples.length} of ${n} samples were finished`);
    const sourceIndex = i % images.length;
    const s = sampleSeed(seed, i);
    const region =
      masks === null ? undefined : ((masks.length === 1 ? masks[0] : masks[sourceIndex]) ?? undefined);
    const opts = region === undefined ? options : { ...options, region_mask: region };
    try {
      const r = feather(sourceIndex, region, fn(images[sourceIndex], opts, s));
      const sample: BatchSample = { index: i, sourceIndex, generator: name, seed: s, ...r };
      samples.push(sample);
      await onSample?.(sample);
    } catch (e) {
      // Only "no room for a defect" is a per-sample outcome; anything else is a bug or bad options.
      if (!(e instanceof MaskUnsatisfiableError)) throw e;
      failures.push({
        index: i,
        sourceIndex,
        seed: s,
        reason: e.code,
        message: (e as DefectLabError).message,
      });
    }
    const now = performance.now();
    onProgress?.({
      stage: 'generate',
      done: i + 1,
      total: n,
      unit: 'items',
      etaSeconds: etaSeconds(t0, now, i + 1, n),
      message: `${name}: ${samples.length} made, ${failures.length} failed`,
    });
    // Yield now and then so a cancel message reaches the worker without slowing fast generators down.
    if (now - lastYield > 20) {
      await yieldToEventLoop();
      lastYield = performance.now();
    }
  }
  return { generator: name, samples, failures };
}

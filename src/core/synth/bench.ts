/**
 * Throughput of the MemSeg generator on a synthetic RGB surface, callable from Node (`bench/synth.ts`) and from a
 * browser worker (the synth engine's `benchmark`), so both report the same figure.
 */
import { createRaster, type Channels, type RasterImage } from '../image.ts';
import type { GeneratorFn } from './common.ts';
import { memsegDefect } from './memseg.ts';

export interface SynthBenchResult {
  width: number;
  height: number;
  channels: Channels;
  samples: number;
  seconds: number;
  defectsPerSecond: number;
  msPerDefect: number;
}

/** A smooth gradient with fine noise: a stand-in surface whose histogram is not degenerate. */
export function benchSurface(width: number, height: number, channels: Channels): RasterImage {
  const img = createRaster(width, height, channels);
  let s = 12345;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const base = 60 + (120 * x) / width + (40 * y) / height + ((s >>> 24) % 16);
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) img.data[o + c] = c === 3 ? 255 : base + 10 * c;
    }
  return img;
}

/** Runs MemSeg with default options for at least `minSeconds` (after `warmup` samples) and reports the rate. */
export function benchmarkMemseg(
  width: number,
  height: number,
  opts: { channels?: Channels; minSeconds?: number; warmup?: number; minSamples?: number } = {},
): SynthBenchResult {
  return benchmarkGenerator(memsegDefect, width, height, opts);
}

/** The same measurement for any generator (default options, seeds 0, 1, 2, …). */
export function benchmarkGenerator(
  fn: GeneratorFn,
  width: number,
  height: number,
  { channels = 3 as Channels, minSeconds = 2, warmup = 20, minSamples = 20 } = {},
): SynthBenchResult {
  const img = benchSurface(width, height, channels);
  for (let i = 0; i < warmup; i++) fn(img, {}, 1_000_000 + i);
  const t0 = performance.now();
  let samples = 0;
  while (samples < minSamples || performance.now() - t0 < minSeconds * 1000) fn(img, {}, samples++);
  const seconds = (performance.now() - t0) / 1000;
  return {
    width,
    height,
    channels,
    samples,
    seconds,
    defectsPerSecond: samples / seconds,
    msPerDefect: (1000 * seconds) / samples,
  };
}

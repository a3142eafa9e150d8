/**
 * Metrics on 10^6 scores (issue 5: "10^6 scores in well under a second") and AUPRO on 100 maps of 256×256.
 * Figures are milliseconds on this machine, best of 3 after one warm-up.
 */
import {
  auPro,
  averagePrecision,
  bestF1Threshold,
  rocAuc,
  type MaskLike,
  type ScoreMap,
} from '../src/core/metrics/index.ts';
import { Rng } from '../src/core/rng.ts';

function best(fn: () => unknown): number {
  fn();
  let t = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

export async function run(): Promise<Record<string, unknown>> {
  const rng = new Rng(1);
  const n = 1_000_000;
  const labels = new Uint8Array(n);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.next() < 0.1 ? 1 : 0;
    scores[i] = rng.normal() + labels[i];
  }
  const maps: ScoreMap[] = [];
  const masks: MaskLike[] = [];
  for (let k = 0; k < 100; k++) {
    const data = new Float32Array(256 * 256);
    const mask = new Uint8Array(256 * 256);
    const cx = rng.int(20, 236);
    const cy = rng.int(20, 236);
    for (let y = 0; y < 256; y++)
      for (let x = 0; x < 256; x++) {
        const inside = (x - cx) ** 2 + (y - cy) ** 2 < 100;
        mask[y * 256 + x] = inside ? 255 : 0;
        data[y * 256 + x] = rng.normal() + (inside ? 2 : 0);
      }
    maps.push({ width: 256, height: 256, data });
    masks.push({ width: 256, height: 256, data: mask });
  }
  return {
    scores: n,
    averagePrecisionMs: best(() => averagePrecision(scores, labels)),
    rocAucMs: best(() => rocAuc(scores, labels)),
    bestF1Ms: best(() => bestF1Threshold(scores, labels)),
    auProPixels: 100 * 256 * 256,
    auProMs: best(() => auPro(maps, masks)),
  };
}

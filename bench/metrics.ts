/**
 * Metrics on 10^6 scores (issue 5: "10^6 scores in well under a second") and AUPRO on 100 maps of 256×256.
 * Figures are milliseconds on this machine, best of 3 after one warm-up. Side by side, scikit-learn on the same
 * scores (`tests/reference/metrics_sklearn.py`, when a python3 with sklearn is found): `averagePrecisionToSklearn`
 * and `rocAucToSklearn` = our time / its time (target ≤ 0.7), and the absolute difference of the values.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pythonWith } from './_python.ts';
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
  const averagePrecisionMs = best(() => averagePrecision(scores, labels));
  const rocAucMs = best(() => rocAuc(scores, labels));
  return {
    scores: n,
    averagePrecisionMs,
    rocAucMs,
    sklearn: sklearnFigures(scores, labels, averagePrecisionMs, rocAucMs),
    bestF1Ms: best(() => bestF1Threshold(scores, labels)),
    auProPixels: 100 * 256 * 256,
    auProMs: best(() => auPro(maps, masks)),
  };
}

function sklearnFigures(
  scores: Float32Array,
  labels: Uint8Array,
  apMs: number,
  aucMs: number,
): Record<string, unknown> {
  const py = pythonWith('sklearn');
  if ('skipped' in py) return py;
  const dir = mkdtempSync(join(tmpdir(), 'dl-bench-metrics-'));
  try {
    writeFileSync(join(dir, 's.f32'), scores);
    writeFileSync(join(dir, 'l.u8'), labels);
    const script = resolve(import.meta.dirname, '../tests/reference/metrics_sklearn.py');
    const ref = JSON.parse(
      execFileSync(py.python, [script, join(dir, 's.f32'), join(dir, 'l.u8')], {
        encoding: 'utf8',
        timeout: 300_000,
      }),
    ) as {
      sklearn: string;
      averagePrecision: number;
      rocAuc: number;
      averagePrecisionMs: number;
      rocAucMs: number;
    };
    return {
      ...ref,
      averagePrecisionToSklearn: apMs / ref.averagePrecisionMs,
      rocAucToSklearn: aucMs / ref.rocAucMs,
      averagePrecisionAbsDiff: Math.abs(averagePrecision(scores, labels) - ref.averagePrecision),
      rocAucAbsDiff: Math.abs(rocAuc(scores, labels) - ref.rocAuc),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { averagePrecision, rocAuc, thresholdCounts } from '../../src/core/metrics/index.ts';

/**
 * AP and AUROC of float32 scores go through a radix sort and a one-pass sweep; the reference is the general path
 * (plain number arrays: native float64 sort, `thresholdCounts` curve) on the very same values. They must agree
 * exactly (the same sums in the same order), including ties, ±0 and ±Infinity.
 */
function scoresWithTies(n: number, seed: number): { f32: Float32Array; labels: Uint8Array } {
  const rng = new Rng(seed);
  const f32 = new Float32Array(n);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.next() < 0.2 ? 1 : 0;
    const r = rng.next();
    // Coarse values make many ties; a few special values test the key transform's ends and signed zero.
    f32[i] =
      r < 0.01
        ? -0
        : r < 0.02
          ? 0
          : r < 0.025
            ? Infinity
            : r < 0.03
              ? -Infinity
              : Math.round((rng.normal() + labels[i]) * 50) / 7;
  }
  return { f32, labels };
}

function curveAp(scores: number[], labels: Uint8Array): number {
  const c = thresholdCounts(scores, labels);
  let ap = 0;
  let prev = 0;
  for (let k = 0; k < c.thresholds.length; k++) {
    if (c.tps[k] !== prev) ap += ((c.tps[k] - prev) / c.positives) * (c.tps[k] / (c.tps[k] + c.fps[k]));
    prev = c.tps[k];
  }
  return ap;
}

describe('AP and AUROC on float32 scores (radix-sorted sweep)', () => {
  it.each([1000, 20_000, 100_001])('equal the general path exactly on %i scores with ties', (n) => {
    const { f32, labels } = scoresWithTies(n, n);
    const plain = Array.from(f32);
    expect(averagePrecision(f32, labels)).toBe(averagePrecision(plain, labels));
    expect(averagePrecision(f32, labels)).toBe(curveAp(plain, labels));
    expect(rocAuc(f32, labels)).toBe(rocAuc(plain, labels));
  });

  it('ranks by value, not by bit pattern (negative scores below positive ones)', () => {
    const n = 4096;
    const f32 = new Float32Array(n);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 2;
      f32[i] = labels[i] ? 1 + i : -1 - i; // every defect above every normal
    }
    expect(rocAuc(f32, labels)).toBe(1);
    expect(averagePrecision(f32, labels)).toBe(1);
    f32.forEach((v, i) => (f32[i] = -v)); // every defect below every normal
    expect(rocAuc(f32, labels)).toBe(0);
  });
});

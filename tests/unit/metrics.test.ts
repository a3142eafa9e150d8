import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  averagePrecision,
  bestF1Threshold,
  confusionAt,
  f1,
  fpr,
  mcc,
  precision,
  precisionRecallCurve,
  recall,
  rocAuc,
  rocCurve,
  thresholdAtFpr,
} from '../../src/core/metrics/index.ts';
import { Rng } from '../../src/core/rng.ts';

interface GoldenCase {
  labels: number[];
  scores: number[];
  expected: {
    ap: number;
    auroc: number;
    threshold: number;
    tp: number;
    fp: number;
    tn: number;
    fn: number;
    mcc: number;
    best_f1: number;
    best_f1_threshold: number;
    best_f1_precision: number;
    best_f1_recall: number;
  };
}

// scikit-learn 1.2.1 outputs, read in place (never copied into the repo).
const golden = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../../shared/reference/golden/metrics-golden.json'), 'utf8'),
) as { cases: GoldenCase[] };

const TOL = 1e-9; // the tolerance against scikit-learn

describe('metrics vs scikit-learn golden file (tolerance 1e-9)', () => {
  it('has cases, including heavy ties', () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(5);
    expect(golden.cases.some((c) => new Set(c.scores).size < c.scores.length / 2)).toBe(true);
  });

  golden.cases.forEach((c, i) => {
    it(`case ${i} (${c.labels.length} samples)`, () => {
      const e = c.expected;
      expect(Math.abs(averagePrecision(c.scores, c.labels) - e.ap)).toBeLessThan(TOL);
      expect(Math.abs(rocAuc(c.scores, c.labels) - e.auroc)).toBeLessThan(TOL);
      const conf = confusionAt(c.scores, c.labels, e.threshold);
      expect(conf).toEqual({ tp: e.tp, fp: e.fp, tn: e.tn, fn: e.fn });
      expect(Math.abs(mcc(conf) - e.mcc)).toBeLessThan(TOL);
      const b = bestF1Threshold(c.scores, c.labels);
      expect(b.threshold).toBe(e.best_f1_threshold);
      expect(Math.abs(b.f1 - e.best_f1)).toBeLessThan(TOL);
      expect(Math.abs(b.precision - e.best_f1_precision)).toBeLessThan(TOL);
      expect(Math.abs(b.recall - e.best_f1_recall)).toBeLessThan(TOL);
      // Typed-array input gives the same numbers as plain arrays.
      expect(
        averagePrecision(
          Float32Array.from(c.scores, (s) => s),
          Uint8Array.from(c.labels),
        ),
      ).toBeCloseTo(averagePrecision(Float32Array.from(c.scores), c.labels), 12);
    });
  });
});

describe('metrics by hand', () => {
  // scores 0.1(0) 0.4(0) 0.35(1) 0.8(1): sklearn's documented example, AP = 0.8333…, AUROC = 0.75.
  const s = [0.1, 0.4, 0.35, 0.8];
  const y = [0, 0, 1, 1];
  it('AP and AUROC of the scikit-learn docstring example', () => {
    expect(averagePrecision(s, y)).toBeCloseTo(0.8333333333333333, 15);
    expect(rocAuc(s, y)).toBeCloseTo(0.75, 15);
  });

  it('precision_recall_curve as scikit-learn prints it', () => {
    const c = precisionRecallCurve(s, y);
    expect(Array.from(c.thresholds)).toEqual([0.1, 0.35, 0.4, 0.8]);
    expect(Array.from(c.precision)).toEqual([0.5, 2 / 3, 0.5, 1, 1]);
    expect(Array.from(c.recall)).toEqual([1, 1, 0.5, 0.5, 0]);
  });

  it('roc_curve full points starting at (0, 0)', () => {
    const c = rocCurve(s, y);
    expect(Array.from(c.fpr)).toEqual([0, 0, 0.5, 0.5, 1]);
    expect(Array.from(c.tpr)).toEqual([0, 0.5, 0.5, 1, 1]);
    expect(c.thresholds[0]).toBe(Infinity);
  });

  it('confusion-derived metrics; positive when score ≥ threshold', () => {
    const c = confusionAt(s, y, 0.35);
    expect(c).toEqual({ tp: 2, fp: 1, tn: 1, fn: 0 });
    expect(precision(c)).toBeCloseTo(2 / 3, 15);
    expect(recall(c)).toBe(1);
    expect(fpr(c)).toBe(0.5);
    expect(f1(c)).toBeCloseTo(0.8, 15);
    // (2·1 − 1·0) / sqrt(3·1·2·2)
    expect(mcc(c)).toBeCloseTo(2 / Math.sqrt(12), 15);
  });

  it('best F1: exact ties go to the lowest threshold', () => {
    // t=0.9 → tp1 fp0 fn1: F1 = 2/3; t=0.5 → tp2 fp2 fn0: F1 = 4/6 = 2/3 exactly. Lowest wins: 0.5.
    const b = bestF1Threshold([0.9, 0.7, 0.6, 0.5], [1, 0, 0, 1]);
    expect(b.threshold).toBe(0.5);
    expect(b.f1).toBeCloseTo(2 / 3, 15);
  });

  it('thresholdAtFpr picks the most sensitive threshold within the FPR budget', () => {
    // negatives 0.1 0.4 0.6 0.7 0.9; positives 0.8 0.95. FPR ≤ 0.2 allows one negative (0.9) above: t = 0.8.
    const sc = [0.1, 0.4, 0.6, 0.7, 0.9, 0.8, 0.95];
    const lb = [0, 0, 0, 0, 0, 1, 1];
    expect(thresholdAtFpr(sc, lb, 0.2)).toBe(0.8);
    expect(thresholdAtFpr(sc, lb, 0)).toBe(0.95);
    expect(thresholdAtFpr([0.9, 0.1], [0, 1], 0)).toBe(Infinity);
    expect(fpr(confusionAt(sc, lb, thresholdAtFpr(sc, lb, 0.4)))).toBeLessThanOrEqual(0.4);
  });

  it('single-class input gives NaN, never throws', () => {
    expect(averagePrecision([0.1, 0.2], [0, 0])).toBeNaN();
    expect(averagePrecision([0.1, 0.2], [1, 1])).toBe(1); // defined: every prediction is right
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNaN();
    expect(rocAuc([], [])).toBeNaN();
    expect(mcc(confusionAt([0.1, 0.2], [0, 0], 0.15))).toBeNaN();
    expect(bestF1Threshold([0.1, 0.2], [0, 0]).f1).toBeNaN();
    expect(thresholdAtFpr([0.1, 0.2], [1, 1], 0.1)).toBeNaN();
    expect(recall(confusionAt([0.3], [0], 0.5))).toBeNaN();
  });

  it('rejects malformed input with a named fix', () => {
    expect(() => averagePrecision([0.1], [0, 1])).toThrow(/labels.length.*fix/);
    expect(() => averagePrecision([0.1, NaN], [0, 1])).toThrow(/scores\[1\]/);
    expect(() => averagePrecision([0.1, 0.2], [0, 2])).toThrow(/0 or 1/);
  });

  it('AP/AUROC agree with a brute-force definition on random tied data', () => {
    const rng = new Rng(7);
    const n = 300;
    const sc = Array.from({ length: n }, () => Math.round(rng.normal() * 4) / 4);
    const lb = sc.map((v) => (rng.next() < 1 / (1 + Math.exp(-v)) ? 1 : 0));
    // AUROC = P(score+ > score−) + ½ P(tie)
    let wins = 0;
    let pairs = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        if (lb[i] === 1 && lb[j] === 0) {
          pairs++;
          wins += sc[i] > sc[j] ? 1 : sc[i] === sc[j] ? 0.5 : 0;
        }
    expect(rocAuc(sc, lb)).toBeCloseTo(wins / pairs, 12);
    // AP = Σ over distinct thresholds of ΔR · P, computed with confusionAt at each distinct score.
    const ts = [...new Set(sc)].sort((a, b) => b - a);
    let ap = 0;
    let prevR = 0;
    for (const t of ts) {
      const c = confusionAt(sc, lb, t);
      ap += (recall(c) - prevR) * precision(c);
      prevR = recall(c);
    }
    expect(averagePrecision(sc, lb)).toBeCloseTo(ap, 12);
  });
});

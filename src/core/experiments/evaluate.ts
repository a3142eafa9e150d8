/**
 * The evaluation panel's logic, pure: threshold choice with its label, the metric row, score histograms and the
 * confusion-matrix cells (which images fall where).
 */
import { bestF1Threshold, metricRow, thresholdAtFpr, type MetricRow } from '../metrics/index.ts';
import { SYNTHETIC_ONLY_WARNING, TEST_TUNED_WARNING, type ThresholdChoice } from './threshold.ts';

export type ThresholdMode = 'trained' | 'val-best-f1' | 'val-fpr' | 'test-best-f1' | 'test-fpr' | 'manual';

export interface ThresholdInputs {
  test: { scores: ArrayLike<number>; labels: ArrayLike<number> };
  /** Validation scores, when the head kept them; `synthetic` says its defects are generated only. */
  val?: { scores: ArrayLike<number>; labels: ArrayLike<number>; synthetic: boolean };
  /** The threshold chosen at training time and its source. */
  trained?: { threshold: number; source: string };
  maxFpr?: number;
  manual?: number;
}

/** Threshold for a panel mode, labelled with where it came from; test-derived ones carry a warning. */
export function panelThreshold(mode: ThresholdMode, x: ThresholdInputs): ThresholdChoice {
  const maxFpr = x.maxFpr ?? 0.05;
  switch (mode) {
    case 'trained':
      if (!x.trained)
        return { threshold: NaN, source: 'none', warnings: ['this head has no stored threshold'] };
      return {
        threshold: x.trained.threshold,
        source: x.trained.source,
        warnings:
          x.trained.source.includes('synthetic') && !x.trained.source.includes('real')
            ? [SYNTHETIC_ONLY_WARNING]
            : [],
      };
    case 'val-best-f1':
    case 'val-fpr': {
      if (!x.val)
        return { threshold: NaN, source: 'none', warnings: ['no validation scores: pick another threshold'] };
      const src = x.val.synthetic ? 'val:synthetic' : 'val:real';
      const warnings = x.val.synthetic ? [SYNTHETIC_ONLY_WARNING] : [];
      return mode === 'val-best-f1'
        ? { threshold: bestF1Threshold(x.val.scores, x.val.labels).threshold, source: src, warnings }
        : {
            threshold: thresholdAtFpr(x.val.scores, x.val.labels, maxFpr),
            source: `${src}@fpr≤${maxFpr}`,
            warnings: [],
          };
    }
    case 'test-best-f1':
      return {
        threshold: bestF1Threshold(x.test.scores, x.test.labels).threshold,
        source: 'test (tuned on test)',
        warnings: [TEST_TUNED_WARNING],
      };
    case 'test-fpr':
      return {
        threshold: thresholdAtFpr(x.test.scores, x.test.labels, maxFpr),
        source: `test@fpr≤${maxFpr} (tuned on test)`,
        warnings: [TEST_TUNED_WARNING],
      };
    case 'manual':
      return { threshold: x.manual ?? NaN, source: 'manual', warnings: [] };
  }
}

export interface Histogram {
  /** bins + 1 edges, ascending. */
  edges: number[];
  normal: number[];
  defect: number[];
}

/** Equal-width histogram of scores per class over their common range. */
export function scoreHistogram(scores: ArrayLike<number>, labels: ArrayLike<number>, bins = 20): Histogram {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) continue;
    lo = Math.min(lo, scores[i]);
    hi = Math.max(hi, scores[i]);
  }
  if (!Number.isFinite(lo)) return { edges: [], normal: [], defect: [] };
  if (hi === lo) hi = lo + 1;
  const w = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * w);
  const normal = new Array<number>(bins).fill(0);
  const defect = new Array<number>(bins).fill(0);
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) continue;
    const b = Math.min(bins - 1, Math.floor((scores[i] - lo) / w));
    (labels[i] === 1 ? defect : normal)[b]++;
  }
  return { edges, normal, defect };
}

/** Indices of the images in each confusion cell (positive when score ≥ threshold). */
export function confusionCells(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): { tp: number[]; fp: number[]; tn: number[]; fn: number[] } {
  const out = { tp: [] as number[], fp: [] as number[], tn: [] as number[], fn: [] as number[] };
  for (let i = 0; i < scores.length; i++) {
    const p = scores[i] >= threshold;
    if (labels[i] === 1) (p ? out.tp : out.fn).push(i);
    else (p ? out.fp : out.tn).push(i);
  }
  return out;
}

/** The table row of the evaluation panel; `auPro` is added by the caller when heat maps and masks exist. */
export function evaluationRow(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): MetricRow {
  return metricRow(scores, labels, threshold);
}

/**
 * The evaluation panel's logic, pure: its threshold modes (through the one chooser, `threshold.ts`), the metric
 * row, per-defect-class metrics (the runner's own rule), score histograms and the confusion-matrix cells (which
 * images fall where).
 */
import {
  averagePrecision,
  confusionAt,
  metricRow,
  recall,
  rocAuc,
  type MetricRow,
} from '../metrics/index.ts';
import { chooseThreshold, defectSourcesOf, type ThresholdChoice } from './threshold.ts';
import type { ThresholdPolicy } from './types.ts';

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
  if (mode === 'trained' && !x.trained)
    return { threshold: NaN, source: 'none', warnings: ['this head has no stored threshold'] };
  if ((mode === 'val-best-f1' || mode === 'val-fpr') && !x.val)
    return { threshold: NaN, source: 'none', warnings: ['no validation scores: pick another threshold'] };
  const policy: ThresholdPolicy =
    mode === 'trained'
      ? { mode: 'given', threshold: x.trained!.threshold, source: x.trained!.source }
      : mode === 'manual'
        ? { mode: 'given', threshold: x.manual ?? NaN, source: 'manual' }
        : mode === 'val-fpr' || mode === 'test-fpr'
          ? { mode, maxFpr }
          : { mode };
  const val = x.val
    ? { ...x.val, defectSources: defectSourcesOf(x.val.labels, x.val.synthetic) }
    : { scores: [], labels: [], defectSources: [] };
  return chooseThreshold(policy, val, x.test);
}

export interface ClassRow {
  defectClass: string;
  /** Defects of this class. */
  n: number;
  ap: number;
  auroc: number;
  /** Recall of this class's defects at the threshold, and how many that is. */
  recall: number;
  detected: number;
}

/**
 * Per-defect-class metrics: each named class's defects against all normals of the split, so a class that
 * synthetic defects help and one they hurt show apart. Defects without a class name are left out.
 */
export function perClassMetrics(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: readonly (string | undefined)[],
  threshold: number,
): ClassRow[] {
  const names = new Set<string>();
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1 && classes[i]) names.add(classes[i] as string);
  return [...names].sort().map((k) => {
    const s: number[] = [];
    const l: number[] = [];
    for (let i = 0; i < labels.length; i++)
      if (labels[i] === 0 || classes[i] === k) {
        s.push(scores[i]);
        l.push(labels[i]);
      }
    const c = confusionAt(s, l, threshold);
    return {
      defectClass: k,
      n: c.tp + c.fn,
      ap: averagePrecision(s, l),
      auroc: rocAuc(s, l),
      recall: recall(c),
      detected: c.tp,
    };
  });
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

/**
 * Image-level and pixel-level metrics of defect detection, pure TypeScript (no DOM, no workers).
 *
 * Conventions shared by every function here:
 * - `scores` are `ArrayLike<number>` (higher = more defective), `labels` are `ArrayLike<number>` of 0/1
 *   (1 = defect = positive). A sample is predicted positive when `score >= threshold`.
 * - Definitions follow scikit-learn (the golden file `../shared/reference/golden/metrics-golden.json` was made
 *   with it): average precision is the step-wise sum Σ (Rₙ − Rₙ₋₁)·Pₙ, not the trapezoid.
 * - A metric that is undefined for the input (single-class labels, empty input) is `NaN`; nothing here throws
 *   for that. Malformed input (length mismatch, NaN scores, labels other than 0/1) does throw, with a fix.
 * - Cost: one sort per call, O(n log n). Positives and negatives are sorted apart with the native numeric
 *   typed-array sort and merged, which is several times faster than sorting indices with a comparator.
 */
import { InvalidArgumentError } from '../errors.ts';

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/**
 * The cumulative counts behind every threshold curve, at each distinct score, highest first.
 * `tps[k]`/`fps[k]` count positives/negatives with `score >= thresholds[k]`.
 */
export interface ThresholdCounts {
  thresholds: Float64Array;
  tps: Float64Array;
  fps: Float64Array;
  /** Number of positives / negatives in the input. */
  positives: number;
  negatives: number;
}

/** Throws on length mismatch, non-finite-or-NaN scores (±Infinity are allowed) and labels other than 0/1. */
function validate(scores: ArrayLike<number>, labels: ArrayLike<number>): void {
  if (scores.length !== labels.length)
    throw new InvalidArgumentError(
      'labels.length',
      `equal to scores.length (${scores.length})`,
      labels.length,
    );
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw new InvalidArgumentError(`scores[${i}]`, 'a number (not NaN)', NaN);
    const l = labels[i];
    if (l !== 0 && l !== 1) throw new InvalidArgumentError(`labels[${i}]`, '0 or 1', l);
  }
}

/** Counts of positives and negatives at every distinct threshold (descending). O(n log n). */
export function thresholdCounts(scores: ArrayLike<number>, labels: ArrayLike<number>): ThresholdCounts {
  validate(scores, labels);
  let p = 0;
  for (let i = 0; i < labels.length; i++) p += labels[i];
  const n = labels.length - p;
  const pos = new Float64Array(p);
  const neg = new Float64Array(n);
  for (let i = 0, a = 0, b = 0; i < scores.length; i++) {
    if (labels[i] === 1) pos[a++] = scores[i];
    else neg[b++] = scores[i];
  }
  pos.sort();
  neg.sort();
  const thr = new Float64Array(scores.length);
  const tps = new Float64Array(scores.length);
  const fps = new Float64Array(scores.length);
  let i = p - 1;
  let j = n - 1;
  let k = 0;
  let tp = 0;
  let fp = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? neg[j] : j < 0 ? pos[i] : Math.max(pos[i], neg[j]);
    while (i >= 0 && pos[i] === t) {
      tp++;
      i--;
    }
    while (j >= 0 && neg[j] === t) {
      fp++;
      j--;
    }
    thr[k] = t;
    tps[k] = tp;
    fps[k] = fp;
    k++;
  }
  return {
    thresholds: thr.slice(0, k),
    tps: tps.slice(0, k),
    fps: fps.slice(0, k),
    positives: p,
    negatives: n,
  };
}

/**
 * Scores split by class and sorted ascending, for the one-pass sweeps of AP and AUROC. Float32 scores stay
 * float32 (every float32 is exact there, ties and order are the same as in float64, and the sort moves half the
 * bytes); anything else is sorted as float64.
 */
function sortedByClass(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): { pos: Float32Array | Float64Array; neg: Float32Array | Float64Array } {
  validate(scores, labels);
  let p = 0;
  for (let i = 0; i < labels.length; i++) p += labels[i];
  const n = labels.length - p;
  const f32 = scores instanceof Float32Array;
  const Arr = f32 ? Float32Array : Float64Array;
  const pos = new Arr(p);
  const neg = new Arr(n);
  for (let i = 0, a = 0, b = 0; i < scores.length; i++) {
    if (labels[i] === 1) pos[a++] = scores[i];
    else neg[b++] = scores[i];
  }
  if (f32) {
    radixSortFloat32(pos as Float32Array);
    radixSortFloat32(neg as Float32Array);
  } else {
    pos.sort();
    neg.sort();
  }
  return { pos, neg };
}

/**
 * Sorts float32 values ascending in place: LSD radix sort, three passes of 11 bits over the order-preserving
 * integer image of each value (sign bit flipped for positives, all bits for negatives), O(n) where the native
 * comparison sort is O(n log n) — the sort was most of AP and AUROC's time on 10^6 scores. The only order it
 * adds to the native sort's is −0 before +0, which are adjacent and equal under `===`, so the sweeps group
 * them as one threshold just the same. No NaN reaches here (`validate`).
 */
function radixSortFloat32(values: Float32Array): void {
  const n = values.length;
  if (n < 512) {
    values.sort();
    return;
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  let src = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    src[i] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  }
  let dst = new Uint32Array(n);
  const count = new Uint32Array(2048);
  for (let shift = 0; shift < 32; shift += 11) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(src[i] >>> shift) & 2047]++;
    let sum = 0;
    for (let k = 0; k < 2048; k++) {
      const c = count[k];
      count[k] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const v = src[i];
      dst[count[(v >>> shift) & 2047]++] = v;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  for (let i = 0; i < n; i++) {
    const k = src[i];
    bits[i] = k & 0x80000000 ? (k & 0x7fffffff) >>> 0 : ~k >>> 0;
  }
}

/**
 * Average precision as scikit-learn's `average_precision_score`: Σₖ (Rₖ − Rₖ₋₁)·Pₖ over distinct thresholds.
 * NaN when there is no positive. The same sum, in the same order, as over `thresholdCounts`, but swept during
 * the merge without materialising the curve (it allocated and copied three n-long arrays).
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const { pos, neg } = sortedByClass(scores, labels);
  const positives = pos.length;
  if (positives === 0) return NaN;
  let i = positives - 1;
  let j = neg.length - 1;
  let tp = 0;
  let fp = 0;
  let ap = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? neg[j] : j < 0 ? pos[i] : Math.max(pos[i], neg[j]);
    const prevTp = tp;
    while (i >= 0 && pos[i] === t) {
      tp++;
      i--;
    }
    while (j >= 0 && neg[j] === t) {
      fp++;
      j--;
    }
    if (tp !== prevTp) ap += ((tp - prevTp) / positives) * (tp / (tp + fp));
  }
  return ap;
}

/**
 * Area under the ROC curve (exact trapezoid, ties handled as in scikit-learn). NaN for single-class input.
 * Swept during the merge, like `averagePrecision`.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const { pos, neg } = sortedByClass(scores, labels);
  const positives = pos.length;
  const negatives = neg.length;
  if (positives === 0 || negatives === 0) return NaN;
  // Twice the area in count units, summed in integers (exact below 2^53), divided once at the end.
  let area2 = 0;
  let i = positives - 1;
  let j = negatives - 1;
  let tp = 0;
  let fp = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? neg[j] : j < 0 ? pos[i] : Math.max(pos[i], neg[j]);
    const prevTp = tp;
    const prevFp = fp;
    while (i >= 0 && pos[i] === t) {
      tp++;
      i--;
    }
    while (j >= 0 && neg[j] === t) {
      fp++;
      j--;
    }
    area2 += (fp - prevFp) * (tp + prevTp);
  }
  return area2 / (2 * positives * negatives);
}

export interface PrCurve {
  /** Precision at each point; the last point is (recall 0, precision 1) as in scikit-learn. */
  precision: Float64Array;
  recall: Float64Array;
  /** Increasing distinct scores; one fewer than points (the appended end point has no threshold). */
  thresholds: Float64Array;
}

/**
 * scikit-learn's `precision_recall_curve` (thresholds increasing; precision/recall one longer, ending at
 * (P = 1, R = 0)). Precision at a threshold with no predicted positive is 0; recall is 1 when there is no positive.
 */
export function precisionRecallCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): PrCurve {
  const c = thresholdCounts(scores, labels);
  const m = c.thresholds.length;
  const precision = new Float64Array(m + 1);
  const recall = new Float64Array(m + 1);
  const thresholds = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const r = m - 1 - k;
    const pp = c.tps[r] + c.fps[r];
    precision[k] = pp === 0 ? 0 : c.tps[r] / pp;
    recall[k] = c.positives === 0 ? 1 : c.tps[r] / c.positives;
    thresholds[k] = c.thresholds[r];
  }
  precision[m] = 1;
  recall[m] = 0;
  return { precision, recall, thresholds };
}

export interface RocCurve {
  fpr: Float64Array;
  tpr: Float64Array;
  /** Decreasing; `thresholds[0] = Infinity` for the (0, 0) start point (scikit-learn ≥ 1.3 convention). */
  thresholds: Float64Array;
}

/**
 * The full ROC curve (every distinct threshold, no intermediate point dropped), starting at (0, 0).
 * FPR (TPR) is NaN throughout when there is no negative (positive).
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): RocCurve {
  const c = thresholdCounts(scores, labels);
  const m = c.thresholds.length;
  const fpr = new Float64Array(m + 1);
  const tpr = new Float64Array(m + 1);
  const thresholds = new Float64Array(m + 1);
  thresholds[0] = Infinity;
  fpr[0] = c.negatives === 0 ? NaN : 0;
  tpr[0] = c.positives === 0 ? NaN : 0;
  for (let k = 0; k < m; k++) {
    fpr[k + 1] = c.fps[k] / c.negatives;
    tpr[k + 1] = c.tps[k] / c.positives;
    thresholds[k + 1] = c.thresholds[k];
  }
  return { fpr, tpr, thresholds };
}

/** Confusion counts with positive ⇔ `score >= threshold`. */
export function confusionAt(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): Confusion {
  validate(scores, labels);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const predicted = scores[i] >= threshold;
    if (labels[i] === 1) {
      if (predicted) c.tp++;
      else c.fn++;
    } else if (predicted) c.fp++;
    else c.tn++;
  }
  return c;
}

/**
 * Matthews correlation coefficient. As scikit-learn, 0 when a marginal is empty but the input is not
 * single-class; NaN when the labels are single-class (or there are no samples), where it is undefined.
 */
export function mcc(c: Confusion): number {
  const pos = c.tp + c.fn;
  const neg = c.tn + c.fp;
  if (pos === 0 || neg === 0) return NaN;
  const den = Math.sqrt(pos * neg * (c.tp + c.fp) * (c.tn + c.fn));
  if (den === 0) return 0;
  return (c.tp * c.tn - c.fp * c.fn) / den;
}

/** TP / (TP + FP); NaN when nothing is predicted positive. */
export function precision(c: Confusion): number {
  const d = c.tp + c.fp;
  return d === 0 ? NaN : c.tp / d;
}

/** TP / (TP + FN) (= TPR); NaN when there is no positive. */
export function recall(c: Confusion): number {
  const d = c.tp + c.fn;
  return d === 0 ? NaN : c.tp / d;
}

/** FP / (FP + TN); NaN when there is no negative. */
export function fpr(c: Confusion): number {
  const d = c.fp + c.tn;
  return d === 0 ? NaN : c.fp / d;
}

/** 2TP / (2TP + FP + FN); NaN when there is no positive (it would be 0/0 or meaningless). */
export function f1(c: Confusion): number {
  if (c.tp + c.fn === 0) return NaN;
  return (2 * c.tp) / (2 * c.tp + c.fp + c.fn);
}

export interface F1Point {
  threshold: number;
  f1: number;
  precision: number;
  recall: number;
}

/**
 * The threshold with the highest exact F1 = 2tp/(2tp+fp+fn) among thresholds equal to the distinct score
 * values; exact ties go to the lowest threshold (the golden file's rule). Compared as integer fractions
 * (2tp·d' vs 2tp'·d) so float rounding cannot break a tie. All NaN when there is no positive.
 */
export function bestF1Threshold(scores: ArrayLike<number>, labels: ArrayLike<number>): F1Point {
  const c = thresholdCounts(scores, labels);
  if (c.positives === 0) return { threshold: NaN, f1: NaN, precision: NaN, recall: NaN };
  let best = -1;
  let bestNum = -1;
  let bestDen = 1;
  for (let k = 0; k < c.thresholds.length; k++) {
    const tp = c.tps[k];
    const num = 2 * tp;
    const den = 2 * tp + c.fps[k] + (c.positives - tp);
    // k runs from the highest threshold down, so ">=" hands exact ties to the lower threshold.
    if (best < 0 || num * bestDen >= bestNum * den) {
      best = k;
      bestNum = num;
      bestDen = den;
    }
  }
  const tp = c.tps[best];
  return {
    threshold: c.thresholds[best],
    f1: bestNum / bestDen,
    precision: tp / (tp + c.fps[best]),
    recall: tp / c.positives,
  };
}

/**
 * The lowest threshold (among the distinct score values) whose FPR is at most `maxFpr`, i.e. the most
 * sensitive operating point within the false-alarm budget. `Infinity` (flag nothing) when even the highest
 * score exceeds the budget; NaN when there is no negative.
 */
export function thresholdAtFpr(scores: ArrayLike<number>, labels: ArrayLike<number>, maxFpr: number): number {
  if (!(maxFpr >= 0 && maxFpr <= 1)) throw new InvalidArgumentError('maxFpr', 'a number in [0, 1]', maxFpr);
  const c = thresholdCounts(scores, labels);
  if (c.negatives === 0) return NaN;
  let t = Infinity;
  // fps grows as the threshold falls, so the last index within budget is the answer.
  for (let k = 0; k < c.thresholds.length; k++) {
    if (c.fps[k] / c.negatives <= maxFpr) t = c.thresholds[k];
    else break;
  }
  return t;
}

/** Every threshold metric at one operating point. */
export interface MetricRow extends Confusion {
  threshold: number;
  ap: number;
  auroc: number;
  precision: number;
  recall: number;
  f1: number;
  mcc: number;
  fpr: number;
}

/** AP, AUROC and the confusion-derived metrics at `threshold`, in one call (the evaluation table's row). */
export function metricRow(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): MetricRow {
  const c = confusionAt(scores, labels, threshold);
  return {
    threshold,
    ap: averagePrecision(scores, labels),
    auroc: rocAuc(scores, labels),
    ...c,
    precision: precision(c),
    recall: recall(c),
    f1: f1(c),
    mcc: mcc(c),
    fpr: fpr(c),
  };
}

export { pro, proCurve, auPro, labelComponents, type ScoreMap, type MaskLike, type ProCurve } from './pro.ts';

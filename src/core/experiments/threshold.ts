/**
 * The one threshold chooser of DefectLab: the runner's cells (Train tab, grids, CLI, server), the evaluation
 * panel's re-thresholding and the server's metrics route all call `chooseThreshold`. Every threshold carries
 * its source. Thresholds tuned on synthetic defects are optimistic, so a synthetic-only source raises a warning
 * that quotes this run's own validation and test AP; tuning on the test set exists for exploration only and says
 * so.
 */
import { averagePrecision, bestF1Threshold, thresholdAtFpr } from '../metrics/index.ts';
import type { ThresholdPolicy } from './types.ts';

export interface ThresholdChoice {
  threshold: number;
  /**
   * 'val:real', 'val:synthetic', 'val:real+synthetic', 'val:normals@fpr≤x',
   * 'test (tuned on test)', 'test@fpr≤x (tuned on test)', or a given threshold's source.
   */
  source: string;
  warnings: string[];
}

export const TEST_TUNED_WARNING =
  'threshold tuned on the test set: the test metrics at this threshold are optimistic';

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');

/**
 * The synthetic-only warning with this run's numbers: validation AP on synthetic defects against test AP on the
 * real ones (when the test split has both classes).
 */
export function syntheticOnlyWarning(valAp: number, testAp: number): string {
  const numbers = Number.isFinite(testAp)
    ? `validation AP ${fmt(valAp)} on synthetic defects vs test AP ${fmt(testAp)} on real ones in this run`
    : `validation AP ${fmt(valAp)} on synthetic defects in this run`;
  return `threshold chosen on synthetic defects only (${numbers}): validation metrics are optimistic — add real validation defects to trust it`;
}

export interface ThresholdScores {
  scores: ArrayLike<number>;
  labels: ArrayLike<number>;
}

/** Validation scores with where each defect came from (normals' entries are ignored). */
export interface ValidationScores extends ThresholdScores {
  defectSources: ('real' | 'synthetic')[];
}

/**
 * FPR ≤ `maxFpr` on the normals of `x`. With too few normals no threshold at or below a normal's score meets the
 * target (the metrics kernel says +∞, "nothing is a defect"); then the threshold is just above the highest
 * normal score (FPR 0 on them), which stays a finite, storable number, and a warning says why.
 */
function fprThreshold(x: ThresholdScores, maxFpr: number): { threshold: number; warnings: string[] } {
  const t = thresholdAtFpr(x.scores, x.labels, maxFpr);
  if (t !== Infinity) return { threshold: t, warnings: [] };
  let max = -Infinity;
  let n = 0;
  for (let i = 0; i < x.labels.length; i++)
    if (x.labels[i] === 0) {
      n++;
      max = Math.max(max, x.scores[i]);
    }
  return {
    threshold: max + Math.max(Math.abs(max) * 1e-6, 1e-12),
    warnings: [
      `only ${n} validation normal(s): FPR ≤ ${maxFpr} cannot be measured on them, so the threshold sits just above their highest score — add validation normals`,
    ],
  };
}

function apOf(x: ThresholdScores): number {
  const l = Array.from(x.labels);
  return l.includes(0) && l.includes(1) ? averagePrecision(x.scores, x.labels) : NaN;
}

/**
 * Picks the threshold for `policy`. `val` rows say whether each defect is real or synthetic. When the validation
 * set has no defect, best F1 is undefined, so the threshold falls back to FPR ≤ `fallbackFpr` on its normals
 * (with a warning saying so).
 */
export function chooseThreshold(
  policy: ThresholdPolicy,
  val: ValidationScores,
  test: ThresholdScores,
  fallbackFpr = 0.05,
): ThresholdChoice {
  switch (policy.mode) {
    case 'given':
      return {
        threshold: policy.threshold,
        source: policy.source,
        warnings:
          policy.source.includes('synthetic') && !policy.source.includes('real')
            ? [syntheticOnlyWarning(apOf(val), apOf(test))]
            : [],
      };
    case 'test-best-f1':
      return {
        threshold: bestF1Threshold(test.scores, test.labels).threshold,
        source: 'test (tuned on test)',
        warnings: [TEST_TUNED_WARNING],
      };
    case 'test-fpr': {
      const f = fprThreshold(test, policy.maxFpr);
      return {
        threshold: f.threshold,
        source: `test@fpr≤${policy.maxFpr} (tuned on test)`,
        warnings: [TEST_TUNED_WARNING, ...f.warnings],
      };
    }
  }
  const hasReal = val.defectSources.includes('real');
  const hasSynthetic = val.defectSources.includes('synthetic');
  const kind =
    hasReal && hasSynthetic ? 'real+synthetic' : hasReal ? 'real' : hasSynthetic ? 'synthetic' : '';
  const hasNormals = Array.from(val.labels).includes(0);
  if (!hasNormals)
    return {
      threshold: NaN,
      source: 'none',
      warnings: ['the validation set has no normal image: no threshold — add validation normals'],
    };
  const synthWarning = kind === 'synthetic' ? [syntheticOnlyWarning(apOf(val), apOf(test))] : [];
  if (policy.mode === 'val-fpr') {
    const f = fprThreshold(val, policy.maxFpr);
    // FPR only reads the normals' scores, whatever the validation defects are.
    return { threshold: f.threshold, source: `val:normals@fpr≤${policy.maxFpr}`, warnings: f.warnings };
  }
  if (kind === '') {
    const f = fprThreshold(val, fallbackFpr);
    return {
      threshold: f.threshold,
      source: `val:normals@fpr≤${fallbackFpr}`,
      warnings: [
        `validation set has no defect: threshold at FPR ≤ ${fallbackFpr} on validation normals`,
        ...f.warnings,
      ],
    };
  }
  return {
    threshold: bestF1Threshold(val.scores, val.labels).threshold,
    source: `val:${kind}`,
    warnings: synthWarning,
  };
}

/** The validation sources of `chooseThreshold` from a panel's "its defects are synthetic only" flag. */
export function defectSourcesOf(labels: ArrayLike<number>, synthetic: boolean): ('real' | 'synthetic')[] {
  return Array.from(labels)
    .filter((l) => l === 1)
    .map(() => (synthetic ? 'synthetic' : 'real'));
}

/**
 * A threshold on one scored set (the metrics route and `cli metrics`): a given value, FPR ≤ `maxFpr` or best F1
 * on these very scores, which are then the evaluated set, so a tuned threshold is labelled "tuned on test".
 */
export function thresholdOnScores(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  o: { threshold?: number; maxFpr?: number },
): ThresholdChoice {
  const policy: ThresholdPolicy =
    o.threshold !== undefined
      ? { mode: 'given', threshold: o.threshold, source: 'given' }
      : o.maxFpr !== undefined
        ? { mode: 'test-fpr', maxFpr: o.maxFpr }
        : { mode: 'test-best-f1' };
  return chooseThreshold(policy, { scores: [], labels: [], defectSources: [] }, { scores, labels });
}

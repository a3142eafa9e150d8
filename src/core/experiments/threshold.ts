/**
 * Threshold choice with its provenance. Thresholds tuned on synthetic defects are optimistic (validation AP ≈ 0.97
 * where real test AP was ≈ 0.78 in a reference run), so the source is carried next to every threshold and a
 * warning is raised when it is synthetic only. Tuning on the test set exists for exploration only and says so.
 */
import { bestF1Threshold, thresholdAtFpr } from '../metrics/index.ts';
import type { ThresholdPolicy } from './types.ts';

export interface ThresholdChoice {
  threshold: number;
  /** 'val:real', 'val:synthetic', 'val:real+synthetic', 'val:normals@fpr≤x', 'test (tuned on test)'. */
  source: string;
  warnings: string[];
}

export const SYNTHETIC_ONLY_WARNING =
  'threshold chosen on synthetic defects only: validation metrics are optimistic (val AP ≈ 0.97 vs real test AP ≈ 0.78 in a reference run) — add real validation defects to trust it';
export const TEST_TUNED_WARNING =
  'threshold tuned on the test set: the test metrics at this threshold are optimistic';

/**
 * Picks the threshold for `policy`. `val` rows say whether each defect is real or synthetic. When the validation
 * set has no defect, best F1 is undefined, so the threshold falls back to FPR ≤ `fallbackFpr` on its normals.
 */
export function chooseThreshold(
  policy: ThresholdPolicy,
  val: { scores: ArrayLike<number>; labels: ArrayLike<number>; defectSources: ('real' | 'synthetic')[] },
  test: { scores: ArrayLike<number>; labels: ArrayLike<number> },
  fallbackFpr = 0.05,
): ThresholdChoice {
  if (policy.mode === 'test-best-f1')
    return {
      threshold: bestF1Threshold(test.scores, test.labels).threshold,
      source: 'test (tuned on test)',
      warnings: [TEST_TUNED_WARNING],
    };
  const hasReal = val.defectSources.includes('real');
  const hasSynthetic = val.defectSources.includes('synthetic');
  const kind =
    hasReal && hasSynthetic ? 'real+synthetic' : hasReal ? 'real' : hasSynthetic ? 'synthetic' : '';
  if (policy.mode === 'val-fpr' || kind === '') {
    const maxFpr = policy.mode === 'val-fpr' ? policy.maxFpr : fallbackFpr;
    const warnings =
      policy.mode === 'val-fpr'
        ? []
        : [`validation set has no defect: threshold at FPR ≤ ${maxFpr} on validation normals`];
    return {
      threshold: thresholdAtFpr(val.scores, val.labels, maxFpr),
      source: `val:normals@fpr≤${maxFpr}`,
      warnings,
    };
  }
  return {
    threshold: bestF1Threshold(val.scores, val.labels).threshold,
    source: `val:${kind}`,
    warnings: kind === 'synthetic' ? [SYNTHETIC_ONLY_WARNING] : [],
  };
}

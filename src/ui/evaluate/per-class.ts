/**
 * Per-defect-class metrics for the evaluation panel: each named class's defects against all normals of the
 * split (the experiment runner's rule, `src/core/experiments/runner.ts`), so a class that synthetic defects help
 * and one they hurt show apart. Defects without a class name are left out; no named class → no rows.
 */
import { averagePrecision, confusionAt, recall, rocAuc } from '../../core/metrics/index.ts';

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

/** Per-defect-class metrics for the evaluation panel: the runner's own function (`src/core/experiments`). */
export { perClassMetrics, type ClassRow } from '../../core/experiments/evaluate.ts';

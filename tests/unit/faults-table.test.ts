/**
 * bench/README.md's long-session table is written by code: `bench/faults.ts --table` prints it from the recorded
 * full run (`bench/faults-long-run.json`, the figures `tests/e2e/faults/long-run.spec.ts` wrote). The committed
 * block must be exactly that print, and the recorded run must be the full size and within the margins
 * the spec states (a run recorded from a failed or reduced session would not be the README's figures).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECORDED_FIGURES, longRunTable, readLongRunFigures, withLongRunBlock } from '../../bench/faults.ts';
import { REPO_ROOT } from './repo-sources.ts';

describe('the long-run table of bench/README.md', () => {
  const figures = readLongRunFigures(RECORDED_FIGURES);

  it('is what bench/faults.ts --table prints from the recorded run', () => {
    const text = readFileSync(join(REPO_ROOT, 'bench/README.md'), 'utf8');
    expect(withLongRunBlock(text, longRunTable(figures), 'bench/README.md')).toBe(text);
    expect(() => withLongRunBlock('no markers', '', 'X.md')).toThrow(
      /X\.md has no <!-- faults:long-run:begin --> … <!-- faults:long-run:end --> block — fix: add the two markers/,
    );
  });

  it('comes from a full-size run within the margins the spec states', () => {
    expect(figures.full).toBe(true);
    expect(figures.sizes).toEqual({ images: 5000, samples: 500, trainings: 10, grids: 3 });
    expect(figures.images).toBeGreaterThanOrEqual(5500);
    expect(figures.heapAfterMiB).toBeLessThanOrEqual(figures.heapBeforeMiB * 1.25 + 8);
    for (const [w, n] of Object.entries(figures.tensorsAfter))
      expect(n, w).toBeLessThanOrEqual((figures.tensorsBefore[w] ?? 0) + 4);
    expect(figures.ortSessionsBefore.train).toBeGreaterThan(0);
    for (const [w, n] of Object.entries(figures.ortSessionsAfter))
      expect(n, w).toBeLessThanOrEqual(figures.ortSessionsBefore[w] ?? 1);
    expect(figures.workersAfter).toBeLessThanOrEqual(figures.workersBefore + 1);
  });
});

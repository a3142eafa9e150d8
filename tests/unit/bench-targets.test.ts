/**
 * bench/README.md's target table is the render of the committed runs in bench/runs/ (a hand edit fails here),
 * and the renderer marks what it should: a missed bound, a figure a run did not measure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BEGIN,
  END,
  loadRuns,
  renderTargets,
  rewriteTargetsBlock,
  TARGETS,
  type BenchRun,
} from '../../bench/_targets.ts';
import { EXECUTORS_BEGIN, EXECUTORS_END, renderExecutorTable } from '../../bench/features.ts';

const ROOT = resolve(import.meta.dirname, '../..');

describe('bench target table', () => {
  it('bench/README.md holds the render of bench/runs/features-tfjs-executor-*.json (the executor table) unchanged', () => {
    const dir = join(ROOT, 'bench/runs');
    const files = readdirSync(dir)
      .filter((f) => /^features-tfjs-executor-\d+\.json$/.test(f))
      .sort();
    expect(files.length).toBeGreaterThanOrEqual(1);
    const runs = files.map((f) => ({
      name: f.replace(/\.json$/, ''),
      json: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>,
    }));
    const readme = readFileSync(join(ROOT, 'bench/README.md'), 'utf8');
    const body = readme.slice(
      readme.indexOf(EXECUTORS_BEGIN) + EXECUTORS_BEGIN.length + 1,
      readme.indexOf(EXECUTORS_END),
    );
    const table = renderExecutorTable(runs);
    expect(body).toBe(table);
    // One row per run, each with the tfjs executor's own ratio measured.
    expect(table.split('\n').filter((l) => l.startsWith('| features-tfjs-executor-'))).toHaveLength(
      files.length,
    );
    expect(table).not.toMatch(/\| — \|/);
  });

  it('bench/README.md holds the render of bench/runs/quiet-*.json unchanged', () => {
    const dir = join(ROOT, 'bench/runs');
    const files = readdirSync(dir)
      .filter((f) => /^quiet-\d+\.json$/.test(f))
      .sort()
      .map((f) => join(dir, f));
    expect(files.length, 'three quiet runs committed (issue 16 asks for three)').toBeGreaterThanOrEqual(3);
    const readme = readFileSync(join(ROOT, 'bench/README.md'), 'utf8');
    const body = readme.slice(readme.indexOf(BEGIN) + BEGIN.length + 1, readme.indexOf(END));
    expect(body).toBe(renderTargets(loadRuns(files)));
  });

  it('marks a missed bound and a missing figure, and says "yes" only when every run met it', () => {
    const run = (predict: number | undefined): BenchRun => ({
      machine: { cpus: 2, cpuModel: 'test', loadavgStart: [0.5], loadavgEnd: [0.7] },
      results: { patchcore: predict === undefined ? {} : { nodeOrtPredictMs: predict } },
    });
    const row = (md: string) => md.split('\n').find((l) => l.includes('`patchcore.nodeOrtPredictMs`'))!;
    expect(row(renderTargets([{ name: 'a', run: run(12) }]))).toMatch(/\| 12\.0 ms \| yes \|$/);
    expect(
      row(
        renderTargets([
          { name: 'a', run: run(12) },
          { name: 'b', run: run(41.8) },
        ]),
      ),
    ).toMatch(/\| 12\.0 ms \| 41\.8 ms ✗ \| no \|$/);
    expect(row(renderTargets([{ name: 'a', run: run(undefined) }]))).toMatch(/\| — ✗ \| no \|$/);
    // ≥ bounds compare the other way.
    const ratio = TARGETS.find((t) => t.key === 'features.mobilenetv2-12-int8.wasmToNode')!;
    expect(ratio.op).toBe('≥');
    const md = renderTargets([
      { name: 'a', run: { results: { features: { 'mobilenetv2-12-int8': { wasmToNode: 0.26 } } } } },
    ]);
    expect(md.split('\n').find((l) => l.includes(ratio.key))).toMatch(/0\.26× ✗ \| no \|$/);
  });

  it('rewrites only its block and names the fix when the markers are missing', () => {
    const text = `a\n${BEGIN}\nold\n${END}\nb\n`;
    expect(rewriteTargetsBlock(text, 'new\n', 'x.md')).toBe(`a\n${BEGIN}\nnew\n${END}\nb\n`);
    expect(() => rewriteTargetsBlock('no block', 'new\n', 'x.md')).toThrow(/x\.md.*fix: add the two marker/);
  });
});

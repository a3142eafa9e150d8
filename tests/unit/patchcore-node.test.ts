/**
 * PatchCore's Node runtime (`src/runtime/heads/patchcore-node.ts`): the nearest-neighbour search on
 * onnxruntime-node against a scan of the whole bank (and against the tfjs search), with the bank and the queries
 * cut into several blocks so the merge of per-block top-k lists is exercised; the threaded coreset against the
 * sequential `greedyCoreset` (identical picks, ties across thread ranges included). Timings live in
 * `npm run bench patchcore`, not here.
 */
import { describe, expect, it } from 'vitest';
import { greedyCoreset, randomProjection } from '../../src/core/patchcore/coreset.ts';
import { Rng } from '../../src/core/rng.ts';
import { CancelledError } from '../../src/core/errors.ts';
import { nodeBankSearch, threadedGreedyCoreset } from '../../src/runtime/heads/patchcore-node.ts';
import { nearestGraph, ortBankSearch, ortProjectRows } from '../../src/runtime/heads/patchcore-ort.ts';
import { tfjsBankSearch } from '../../src/runtime/heads/patchcore.ts';
import { createSession } from '../../src/runtime/ort-node.ts';
import { initTf } from '../../src/runtime/tf.ts';

/** Squared distances from query row r to every bank row, in float64, and the bank rows sorted by them. */
function scan(q: Float32Array, r: number, bank: Float32Array, M: number, D: number) {
  const d = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += (q[r * D + j] - bank[m * D + j]) ** 2;
    d[m] = s;
  }
  const order = Array.from({ length: M }, (_, m) => m).sort((a, b) => d[a] - d[b] || a - b);
  return { d, order };
}

describe('nearest-neighbour search on onnxruntime-node', () => {
  const rng = new Rng('ort-nearest');
  const D = 24;
  const M = 2000;
  const bank = rng.normalArray(M * D);
  const Q = 300;
  const q = rng.normalArray(Q * D);

  it('the k nearest bank rows (k = 1 and 9) are the scan’s, over 7 bank blocks and 5 query blocks', async () => {
    const search = await ortBankSearch(bank, M, D, (b, name) => createSession(b, { name }), {
      bankBlock: 300,
      queryBlock: 64,
    });
    try {
      const [one, nine] = [await search.nearest(q, Q, 1), await search.nearest(q, Q, 9)];
      expect([one.length, nine.length]).toEqual([Q, Q * 9]);
      for (let r = 0; r < Q; r++) {
        const { d, order } = scan(q, r, bank, M, D);
        for (const [k, idx] of [
          [1, one],
          [9, nine],
        ] as const) {
          for (let j = 0; j < k; j++) {
            // The expanded form ranks in float32: a different row is fine only at a distance equal to 1e-5.
            const got = idx[r * k + j];
            const want = order[j];
            expect(Math.abs(d[got] - d[want])).toBeLessThanOrEqual(1e-5 * d[want] + 1e-6);
          }
          expect(new Set(idx.subarray(r * k, (r + 1) * k)).size).toBe(k);
        }
      }
    } finally {
      search.dispose();
    }
  });

  it('agrees with the tfjs search row for row (one block, the default threads)', async () => {
    await initTf('cpu');
    const ort = await nodeBankSearch(bank, M, D);
    const tfs = tfjsBankSearch(bank, M, D);
    try {
      expect(ort.label).toMatch(/^onnxruntime-node cpu, \d+ threads?$/);
      const a = await ort.nearest(q, Q, 1);
      const b = await tfs.nearest(q, Q, 1);
      let same = 0;
      for (let r = 0; r < Q; r++) {
        if (a[r] === b[r]) same++;
        else {
          const { d } = scan(q, r, bank, M, D);
          expect(Math.abs(d[a[r]] - d[b[r]])).toBeLessThanOrEqual(1e-5 * d[b[r]]);
        }
      }
      expect(same).toBeGreaterThan(Q * 0.95);
    } finally {
      ort.dispose();
      tfs.dispose();
    }
  });

  it('a bank with fewer rows than k answers every row once, and a bad query length is named', async () => {
    const small = rng.normalArray(5 * D);
    const search = await ortBankSearch(small, 5, D, (b, name) => createSession(b, { name }), {
      bankBlock: 2,
    });
    try {
      const idx = await search.nearest(q.subarray(0, 2 * D), 2, 9);
      expect(idx.length).toBe(2 * 5);
      for (let r = 0; r < 2; r++) expect([...idx.subarray(r * 5, r * 5 + 5)].sort()).toEqual([0, 1, 2, 3, 4]);
      await expect(search.nearest(q.subarray(0, D + 1), 1, 1)).rejects.toThrow(/query features must be 1×24/);
    } finally {
      search.dispose();
    }
    expect(nearestGraph(small, 0, 5, D).length).toBeGreaterThan(5 * D * 4);
  });
});

describe('random projection on onnxruntime-node', () => {
  it('equals the core projection (same matrix; float32 sums, 1e-4 relative), over several row blocks', async () => {
    const x = new Rng('ort-proj').normalArray(20_000 * 40);
    const want = randomProjection(x, 20_000, 40, 16, 3);
    const got = await ortProjectRows(x, 20_000, 40, 16, 3, (b, name) => createSession(b, { name }));
    expect(got.length).toBe(want.data.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++)
      worst = Math.max(worst, Math.abs(got[i] - want.data[i]) / Math.max(1, Math.abs(want.data[i])));
    expect(worst).toBeLessThanOrEqual(1e-4);
  });
});

describe('threaded greedy coreset', () => {
  it('picks exactly what the sequential greedyCoreset picks, ties across thread ranges included', async () => {
    const rng = new Rng('threaded-coreset');
    const N = 6000;
    const d = 32;
    const centres = Array.from({ length: 8 }, () => rng.normalArray(d));
    const x = new Float32Array(N * d);
    for (let i = 0; i < N; i++) {
      // Rows i and i + 3000 (ranges of different threads for 2 and 3 threads) are equal for every 97th i:
      // equal distances, so the first index must win as in the sequential scan.
      const src = i >= 3000 && (i - 3000) % 97 === 0 ? i - 3000 : -1;
      for (let k = 0; k < d; k++)
        x[i * d + k] =
          src >= 0 ? x[src * d + k] : centres[i % 8][k] * 2 + rng.normal() * (i % 13 === 0 ? 3 : 0.5);
    }
    const n = 200;
    const want = greedyCoreset(x, N, d, n, { projectionDim: d, seed: 4 });
    for (const threads of [2, 3]) {
      const steps: number[] = [];
      const got = await threadedGreedyCoreset(x, N, d, n, {
        seed: 4,
        threads,
        minRowsPerThread: 1,
        onStep: (done) => steps.push(done),
      });
      expect(Array.from(got)).toEqual(Array.from(want));
      expect(steps).toEqual([64, 128, 192]);
    }
    // One thread, or too few rows per thread: the sequential scan itself.
    expect(Array.from(await threadedGreedyCoreset(x, N, d, n, { seed: 4, threads: 4 }))).toEqual(
      Array.from(want),
    );
  });

  it('stops with CancelledError when the signal is set, and names bad sizes', async () => {
    const x = new Rng('cancel').normalArray(4000 * 8);
    const signal = { aborted: false };
    await expect(
      threadedGreedyCoreset(x, 4000, 8, 300, {
        threads: 2,
        minRowsPerThread: 1,
        signal,
        onStep: () => (signal.aborted = true),
      }),
    ).rejects.toBeInstanceOf(CancelledError);
    await expect(threadedGreedyCoreset(x, 4000, 8, 4001)).rejects.toThrow(/coreset size/);
  });
});

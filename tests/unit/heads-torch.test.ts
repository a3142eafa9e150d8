import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { trainBceHead, trainBceHeadWith } from '../../src/runtime/heads/bce.ts';
import { columnStats, glorotUniform, stratifiedSplit } from '../../src/runtime/heads/common.ts';
import { initTf } from '../../src/runtime/tf.ts';

/**
 * The BCE heads train to what PyTorch computes for the same data, initial weights, minibatch order, loss and Adam
 * (`tests/reference/heads_torch.py train`, /usr/bin/python3 with Debian's python3-torch). The linear head runs
 * on the typed-array trainer (`linear-trainer.ts`), the MLP heads (8 and 33 hidden units: 33 exercises the
 * odd remainders of the blocked products; 24 inputs are padded to the kernel's 32) on theirs (`mlp-trainer.ts`,
 * which in Node runs its WebAssembly SIMD kernel; `mlp-kernel.test.ts` ties the scalar fallback to it); the
 * tfjs trainer they replaced is checked against them too. The minibatch orders are drawn here with the same
 * seeded streams the trainer uses (`bce:<seed>` → fork 'init', fork 'train' → stratified split → one shuffle per
 * epoch), so both sides see identical batches.
 *
 * Tolerances: final weights within 2e-4 absolute (float32 PyTorch against float64 JS (linear) / float32 sums in
 * WebAssembly SIMD lanes (MLP) / float32 tfjs, after 40 Adam steps of lr 1e-2, weights of size ~0.1–0.5) and
 * per-epoch mean losses within 1e-4 relative.
 */
const SCRIPT = resolve(import.meta.dirname, '../reference/heads_torch.py');
const N = 80;
const D = 24;
const BATCH = 16;
const EPOCHS = 8;
const LR = 1e-2;

function data() {
  const rng = new Rng('heads-torch');
  const u = rng.normalArray(D);
  const x: Float32Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < N; i++) {
    const v = rng.normalArray(D);
    let s = 0;
    for (let j = 0; j < D; j++) s += u[j] * v[j];
    for (let j = 0; j < D; j++) v[j] = v[j] * (1 + j / D) + 2;
    x.push(v);
    y.push(s + 0.5 * rng.normal() > 0.8 ? 1 : 0);
  }
  return { x, y };
}

function torchTrain(req: unknown): {
  losses: number[];
  w1?: number[];
  b1?: number[];
  w2: number[];
  b2: number[];
} {
  const out = execFileSync('/usr/bin/python3', [SCRIPT, 'train'], {
    input: JSON.stringify(req),
    encoding: 'utf8',
    timeout: 120_000,
  });
  return JSON.parse(out);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each([0, 8, 33])('BCE head (hidden %i) against PyTorch', (hidden) => {
  it('ends with the weights and epoch losses PyTorch computes for the same batches', async () => {
    await initTf('wasm');
    const { x, y } = data();
    const seed = 3;
    const { head, history } = await trainBceHead(x, y, {
      hidden,
      epochs: EPOCHS,
      batchSize: BATCH,
      learningRate: LR,
      validationFraction: 0,
      seed,
    });
    try {
      // The trainer's draws, replayed.
      const rng = new Rng(`bce:${seed}`);
      const init = rng.fork('init');
      const trainRng = rng.fork('train');
      const { train } = stratifiedSplit(y, 0, trainRng);
      const order = [...train];
      const orders = Array.from({ length: EPOCHS }, () => [...trainRng.shuffle(order)]);
      const npos = y.filter((v) => v > 0.5).length;
      const w = y.map((v) => (v ? N / (2 * npos) : N / (2 * (N - npos))));
      const { mean, std } = columnStats(x, D);
      const xs = x.map((r) => Array.from(r, (v, j) => Math.fround((v - mean[j]) / std[j])));
      const initWeights =
        hidden > 0
          ? {
              w1: Array.from(glorotUniform(init, D, hidden)),
              b1: new Array(hidden).fill(0),
              w2: Array.from(glorotUniform(init, hidden, 1)),
              b2: [0],
            }
          : { w2: new Array(D).fill(0), b2: [0] };
      const ref = torchTrain({ x: xs, y, w, hidden, lr: LR, batch: BATCH, orders, init: initWeights });
      const ours = await head.weights();
      // The weights moved (a trainer that did nothing would differ from PyTorch by their size).
      expect(Math.max(...ref.w2.map(Math.abs))).toBeGreaterThan(0.05);
      expect(maxAbsDiff(ours.w2, ref.w2)).toBeLessThan(2e-4);
      expect(maxAbsDiff(ours.b2, ref.b2)).toBeLessThan(2e-4);
      if (hidden > 0) {
        expect(maxAbsDiff(ours.w1, ref.w1!)).toBeLessThan(2e-4);
        expect(maxAbsDiff(ours.b1, ref.b1!)).toBeLessThan(2e-4);
      }
      expect(history).toHaveLength(EPOCHS);
      history.forEach((h, e) => expect(Math.abs(h.loss - ref.losses[e]) / ref.losses[e]).toBeLessThan(1e-4));
    } finally {
      head.dispose();
    }
  }, 180_000);
});

describe('the MLP typed-array trainer against the tfjs trainer it replaced', () => {
  it('same init, batches and Adam: weights within 1e-5 and epoch losses within 1e-5 relative', async () => {
    await initTf('wasm');
    // Both float32: the SIMD kernel (what trainBceHead picks in Node) against tfjs's kernels.
    const { x, y } = data();
    // A batch (13) that does not divide N, so the last minibatch of each epoch is short.
    const opts = { hidden: 16, epochs: 6, batchSize: 13, learningRate: LR, validationFraction: 0, seed: 5 };
    const typed = await trainBceHeadWith('typed-array', x, y, opts);
    const ref = await trainBceHeadWith('tfjs', x, y, opts);
    try {
      const a = await typed.head.weights();
      const b = await ref.head.weights();
      // The initial W1, drawn as the trainer draws it.
      const init = { w1: glorotUniform(new Rng(`bce:${opts.seed}`).fork('init'), D, opts.hidden) };
      // Training moved the weights well beyond the tolerance.
      expect(maxAbsDiff(a.w1, init.w1)).toBeGreaterThan(0.01);
      for (const k of ['w1', 'b1', 'w2', 'b2']) expect(maxAbsDiff(a[k], b[k]), k).toBeLessThan(1e-5);
      typed.history.forEach((h, e) =>
        expect(Math.abs(h.loss - ref.history[e].loss) / ref.history[e].loss).toBeLessThan(1e-5),
      );
    } finally {
      typed.head.dispose();
      ref.head.dispose();
    }
  }, 180_000);
});

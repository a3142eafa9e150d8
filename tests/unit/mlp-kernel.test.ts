import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { glorotUniform } from '../../src/runtime/heads/common.ts';
import { MLP_WASM } from '../../src/runtime/heads/kernels/mlp-wasm.ts';
import { type MlpProblem, mlpStepper } from '../../src/runtime/heads/mlp-trainer.ts';

/**
 * The MLP head's WebAssembly SIMD kernel (`src/runtime/heads/kernels/mlp.as.ts`): the committed module is what
 * its source compiles to, it runs without imports, it takes the same steps as the scalar JS kernel it falls back
 * to, and the fallback happens where WebAssembly SIMD is missing. Agreement with PyTorch itself (through
 * `trainBceHead`, which picks this kernel in Node) is `heads-torch.test.ts`.
 *
 * Tolerance SIMD vs scalar: weights within 1e-5 absolute and step losses within 1e-5 relative after 30 Adam
 * steps of lr 1e-2 (float32 sums in four lanes against float64 sums; the scalar–tfjs check uses the same bounds).
 */
const ROOT = resolve(import.meta.dirname, '../..');

// Shapes that leave remainders everywhere: D = 37 (rows padded to 64 floats), H = 5 (padded to 6), batches of
// 13 (the forward's blocks of 4 rows end short), N = 41.
const N = 41;
const D = 37;
const H = 5;
const BATCH = 13;
const STEPS = 30;
const LR = 1e-2;

function problem(): { p: MlpProblem; y: Float32Array; w: Float32Array } {
  const rng = new Rng('mlp-kernel');
  const x = rng.normalArray(N * D);
  const u = rng.normalArray(D);
  const y = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += u[j] * x[i * D + j];
    y[i] = s > 0.5 ? 1 : 0;
  }
  const w = Float32Array.from(y, (v) => (v ? 1.5 : 0.75));
  const init = {
    w1: glorotUniform(rng, D, H),
    b1: new Float32Array(H),
    w2: glorotUniform(rng, H, 1),
    b2: new Float32Array(1),
  };
  return { p: { x, dim: D, hidden: H, learningRate: LR, init }, y, w };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

afterEach(() => vi.restoreAllMocks());

describe('the MLP WebAssembly SIMD kernel', () => {
  it('is committed as what scripts/build-kernels.mjs compiles from its source', () => {
    // Throws (exit 1, naming the fix) when the committed module differs from a fresh asc build.
    const out = execFileSync(process.execPath, ['scripts/build-kernels.mjs', '--check'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out).toMatch(/up to date/);
  }, 90_000);

  it('is SIMD code with no imports, exporting its memory and two kernels', () => {
    const bytes = Uint8Array.from(atob(MLP_WASM), (c) => c.charCodeAt(0));
    const mod = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(mod)).toEqual([]);
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['memory', 'heapBase', 'forward', 'backwardAdam']));
  });

  it('takes the same steps as the scalar kernel (weights 1e-5, losses 1e-5 relative)', async () => {
    const { p, y, w } = problem();
    const simd = mlpStepper(p);
    const scalar = mlpStepper(p, 'scalar');
    expect(simd.kernel).toBe('wasm-simd');
    expect(scalar.kernel).toBe('scalar');
    const order = new Rng('mlp-kernel-order');
    const all = Array.from({ length: N }, (_, i) => i);
    for (let s = 0; s < STEPS; s++) {
      const idx = order.sampleIndices(N, BATCH);
      const yb = Float32Array.from(idx, (i) => y[i]);
      const wb = Float32Array.from(idx, (i) => w[i]);
      const a = simd.step(idx, yb, wb) as number;
      const b = scalar.step(idx, yb, wb) as number;
      expect(Math.abs(a - b) / b, `step ${s}`).toBeLessThan(1e-5);
      if (s === 10) {
        simd.snapshot();
        scalar.snapshot();
      }
    }
    const ws = simd.weights();
    const wr = scalar.weights();
    // Training moved the weights far beyond the tolerance.
    expect(maxAbsDiff(wr.w1, p.init.w1)).toBeGreaterThan(0.05);
    for (const k of ['w1', 'b1', 'w2', 'b2'] as const) expect(maxAbsDiff(ws[k], wr[k]), k).toBeLessThan(1e-5);
    const ev = await simd.evaluate(all, y, w);
    const er = await scalar.evaluate(all, y, w);
    expect(maxAbsDiff(ev.logits, er.logits)).toBeLessThan(1e-4);
    expect(Math.abs(ev.loss - er.loss) / er.loss).toBeLessThan(1e-5);
    // restore() puts back the step-10 weights on both.
    simd.restore();
    scalar.restore();
    const rs = simd.weights();
    expect(maxAbsDiff(rs.w1, ws.w1)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(rs.w1, scalar.weights().w1)).toBeLessThan(1e-5);
    simd.dispose();
    scalar.dispose();
  });

  it('falls back to the scalar kernel where WebAssembly SIMD is missing', () => {
    const { p } = problem();
    // An engine without SIMD refuses the module's bytes in validate.
    vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    expect(mlpStepper(p).kernel).toBe('scalar');
    expect(() => mlpStepper(p, 'wasm-simd')).toThrow(/WebAssembly SIMD.*scalar/);
  });
});

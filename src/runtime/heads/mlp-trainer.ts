/**
 * The MLP BCE head's training step on typed arrays: `z = relu(x·W1 + b1)·w2 + b2` on standardized rows,
 * class-weighted BCE normalised by the batch's weight sum, Adam with tfjs's semantics (β1 0.9, β2 0.999,
 * ε 1e-7, bias-corrected moments) — the step `fitBinary`'s tfjs stepper takes for the same head, without tfjs
 * (the linear head's reasons, `linear-trainer.ts`: on one Node thread tfjs-wasm took 4.7× PyTorch's epoch, most
 * of it per-op cost around three small matrix products).
 *
 * Two kernels for the same step: a WebAssembly SIMD one (`kernels/mlp.as.ts`, f32x4) where the engine validates
 * it, and the scalar JS loops below as the fallback. The step is ~10 M multiply-adds (forward 32 × 1280 × 128,
 * the ReLU-sparse W1 gradient, Adam over 164 k weights); scalar JS does them at ~2 GFLOP/s, PyTorch with MKL's
 * SIMD GEMMs several times faster, hence the kernel. Only the two big loops run in WebAssembly; the output
 * layer, the loss and the small parameters' Adam (B × H work) are the same JS for both kernels.
 *
 * Shapes (B batch rows, D inputs, H hidden): x `[N, D]`, W1 kept transposed as `[H, D]` so both products run
 * along contiguous rows, b1 `[H]`, w2 `[H]`, b2 scalar. Per step:
 * - forward: `pre[B, H] = x_b · W1ᵀ`, dot products blocked rows × hidden units;
 * - backward: `g = w·(σ(z) − y)/Σw`, `dpre = g·w2 ⊙ [pre > 0]`, and for each hidden unit its W1 gradient row
 *   `Σ_k dpre[k]·x_k` (rows with dpre = 0, about half after the ReLU, skipped), followed at once by that row's
 *   Adam update while it is in cache.
 * Parameters and Adam moments are float32 like tfjs's and PyTorch's. Sums: float64 in the scalar kernel (JS
 * arithmetic), float32 in the SIMD one (as tfjs and PyTorch); both agree with PyTorch within the same
 * tolerance (`tests/unit/heads-torch.test.ts`) and with each other (`tests/unit/mlp-kernel.test.ts`).
 */
import type { BinaryStepper } from './common.ts';
import { MLP_WASM } from './kernels/mlp-wasm.ts';

export interface MlpProblem {
  /** Standardized rows, row-major `[N, D]`. */
  x: Float32Array;
  dim: number;
  hidden: number;
  learningRate: number;
  /** Initial weights as the tfjs head holds them: w1 `[D, H]`, b1 `[H]`, w2 `[H, 1]`, b2 `[1]`. */
  init: { w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array };
}

export interface MlpStepper extends BinaryStepper {
  /** Which kernel runs the step: WebAssembly SIMD, or the scalar JS fallback. */
  readonly kernel: MlpKernel;
  /** The current weights in the tfjs head's layout (w1 `[D, H]`). */
  weights(): { w1: Float32Array; b1: Float32Array; w2: Float32Array; b2: Float32Array };
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-7;

function bce(z: number, y: number): number {
  return Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
}

export type MlpKernel = 'wasm-simd' | 'scalar';

/** The best epoch's weights, kept by copy (`fitBinary` snapshots after an improving epoch, restores at the end). */
function bestKeeper(w1t: Float32Array, small: Float32Array) {
  let best: { w1t: Float32Array; small: Float32Array } | null = null;
  return {
    snapshot() {
      best = { w1t: w1t.slice(), small: small.slice() };
    },
    restore() {
      if (!best) return;
      w1t.set(best.w1t);
      small.set(best.small);
    },
    dispose() {
      best = null;
    },
  };
}

/**
 * The stepper for an MLP problem: on the WebAssembly SIMD kernel when this engine has WebAssembly SIMD (and lets
 * this thread compile it), else on scalar JS. `kernel` forces one ('wasm-simd' throws where it cannot run).
 */
export function mlpStepper(p: MlpProblem, kernel: MlpKernel | 'auto' = 'auto'): MlpStepper {
  if (kernel === 'scalar') return scalarStepper(p);
  const mod = simdModule();
  if (mod && kernel === 'wasm-simd') return simdStepper(p, mod);
  if (mod) {
    try {
      return simdStepper(p, mod);
    } catch {
      // Its memory could not grow to the problem (or this thread may not instantiate): the scalar kernel needs
      // no second copy of the rows.
      return scalarStepper(p);
    }
  }
  if (kernel === 'wasm-simd')
    throw new Error(
      'The MLP kernel needs WebAssembly SIMD (Chrome 91+, Firefox 89+, Safari 16.4+, Node 16.4+): use the scalar kernel here.',
    );
  return scalarStepper(p);
}

let compiled: WebAssembly.Module | null = null;

/**
 * The compiled kernel, or null where it cannot run: no WebAssembly, no SIMD (`WebAssembly.validate` refuses
 * the bytes), or a synchronous compile refused (a CSP without 'wasm-unsafe-eval'; a browser main thread caps
 * synchronous compiles at 4 KB — workers do not).
 */
function simdModule(): WebAssembly.Module | null {
  if (typeof WebAssembly !== 'object') return null;
  const bytes = Uint8Array.from(atob(MLP_WASM), (c) => c.charCodeAt(0));
  if (!WebAssembly.validate(bytes)) return null;
  try {
    compiled ??= new WebAssembly.Module(bytes);
  } catch {
    return null;
  }
  return compiled;
}

/**
 * The output layer for rows k < B from their hidden pre-activations `pre[k·stride + h]` (b1 included): adds
 * each row's gradient into `gSmall` ([b1 (H), w2 (H), b2]), writes `dpre` (same stride; 0 where the ReLU is
 * closed) and returns the weighted loss sum.
 */
function outputBackward(
  pre: Float32Array | Float64Array,
  dpre: Float32Array | Float64Array,
  stride: number,
  H: number,
  small: Float32Array,
  gSmall: Float64Array,
  y: ArrayLike<number>,
  w: ArrayLike<number>,
  wsum: number,
): number {
  let loss = 0;
  gSmall.fill(0);
  for (let k = 0; k < y.length; k++) {
    const z = logitOf(pre, stride, k, H, small);
    loss += w[k] * bce(z, y[k]);
    const g = (w[k] * (1 / (1 + Math.exp(-z)) - y[k])) / wsum;
    gSmall[2 * H] += g;
    const o = k * stride;
    for (let h = 0; h < H; h++) {
      const a = pre[o + h];
      if (a > 0) {
        gSmall[H + h] += g * a;
        const d = g * small[H + h];
        dpre[o + h] = d;
        gSmall[h] += d;
      } else dpre[o + h] = 0;
    }
  }
  return loss;
}

/** Logit of row k from its pre-activations. */
function logitOf(
  pre: Float32Array | Float64Array,
  stride: number,
  k: number,
  H: number,
  small: Float32Array,
) {
  let z = small[2 * H];
  const o = k * stride;
  for (let h = 0; h < H; h++) {
    const a = pre[o + h];
    if (a > 0) z += a * small[H + h];
  }
  return z;
}

/** Adam on `theta[from … to)` with gradient `grad[0 …]`, bias corrections c1, c2. */
function adam(
  theta: Float32Array,
  m: Float32Array,
  v: Float32Array,
  from: number,
  to: number,
  grad: Float64Array,
  lr: number,
  c1: number,
  c2: number,
) {
  for (let at = from, i = 0; at < to; at++, i++) {
    const g = grad[i];
    const mj = (m[at] = BETA1 * m[at] + (1 - BETA1) * g);
    const vj = (v[at] = BETA2 * v[at] + (1 - BETA2) * g * g);
    theta[at] -= (lr * (mj * c1)) / (Math.sqrt(vj * c2) + EPSILON);
  }
}

function sumOf(w: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < w.length; k++) s += w[k];
  return s;
}

/** The small parameters [b1 (H), w2 (H), b2] of the tfjs head's initial weights. */
function smallParams(p: MlpProblem): Float32Array {
  const H = p.hidden;
  const small = new Float32Array(2 * H + 1);
  small.set(p.init.b1, 0);
  small.set(p.init.w2, H);
  small[2 * H] = p.init.b2[0];
  return small;
}

/** The weights in the tfjs head's layout from W1ᵀ rows of `stride` floats. */
function tfjsWeights(w1t: Float32Array, stride: number, small: Float32Array, D: number, H: number) {
  const w1 = new Float32Array(D * H);
  for (let h = 0; h < H; h++) for (let j = 0; j < D; j++) w1[j * H + h] = w1t[h * stride + j];
  return { w1, b1: small.slice(0, H), w2: small.slice(H, 2 * H), b2: small.slice(2 * H, 2 * H + 1) };
}

/**
 * The step on the WebAssembly SIMD kernel. Its memory holds x (rows padded to DP floats), W1ᵀ and its moments
 * ([HP, DP]), b1, pre-activations and their gradients ([NP, HP]) and the row indices; JS reads and writes them
 * through views made once, after the memory reached its size (growing it would detach them).
 */
function simdStepper(p: MlpProblem, mod: WebAssembly.Module): MlpStepper {
  const { dim: D, hidden: H } = p;
  const N = p.x.length / D;
  const DP = Math.ceil(D / 32) * 32;
  const HP = Math.ceil(H / 2) * 2;
  const NP = Math.max(4, Math.ceil(N / 4) * 4);
  const ex = new WebAssembly.Instance(mod, {}).exports as unknown as {
    memory: WebAssembly.Memory;
    heapBase(): number;
    forward(
      x: number,
      rows: number,
      nb: number,
      w1t: number,
      b1: number,
      pre: number,
      hp: number,
      dp: number,
    ): void;
    backwardAdam(...args: number[]): void;
  };
  let at = ex.heapBase();
  const take = (floats: number): number => {
    const o = at;
    at += Math.ceil((floats * 4) / 64) * 64;
    return o;
  };
  const xAt = take(N * DP);
  const w1At = take(HP * DP);
  const m1At = take(HP * DP);
  const v1At = take(HP * DP);
  const b1At = take(HP);
  const preAt = take(NP * HP);
  const dpreAt = take(NP * HP);
  const rowsAt = take(NP);
  const actAt = take(NP);
  const dvAt = take(NP);
  const pages = Math.ceil(at / 65536) - ex.memory.buffer.byteLength / 65536;
  if (pages > 0) ex.memory.grow(pages);
  const buf = ex.memory.buffer;
  const xs = new Float32Array(buf, xAt, N * DP);
  for (let i = 0; i < N; i++) xs.set(p.x.subarray(i * D, (i + 1) * D), i * DP);
  const w1t = new Float32Array(buf, w1At, HP * DP);
  for (let j = 0; j < D; j++) for (let h = 0; h < H; h++) w1t[h * DP + j] = p.init.w1[j * H + h];
  const b1 = new Float32Array(buf, b1At, HP);
  const pre = new Float32Array(buf, preAt, NP * HP);
  const dpre = new Float32Array(buf, dpreAt, NP * HP);
  const rows = new Int32Array(buf, rowsAt, NP);
  const small = smallParams(p);
  const ms = new Float32Array(2 * H + 1);
  const vs = new Float32Array(2 * H + 1);
  const gSmall = new Float64Array(2 * H + 1);
  const best = bestKeeper(w1t, small);
  let b1t = 1;
  let b2t = 1;

  /** pre[k·HP + h] for the rows `idx` (at most NP of them). */
  const hiddenPre = (idx: ArrayLike<number>): void => {
    const B = idx.length;
    for (let k = 0; k < B; k++) rows[k] = idx[k];
    // The kernel takes rows 4 at a time: a short last block repeats a row, its results unused.
    const nb = Math.ceil(B / 4) * 4;
    for (let k = B; k < nb; k++) rows[k] = idx[0];
    b1.set(small.subarray(0, H));
    ex.forward(xAt, rowsAt, nb, w1At, b1At, preAt, HP, DP);
  };

  return {
    kernel: 'wasm-simd',
    step(idx, y, w) {
      if (idx.length > NP)
        throw new Error(
          `A batch of ${idx.length} rows from a problem of ${N}: batches are drawn from its rows.`,
        );
      hiddenPre(idx);
      const wsum = sumOf(w);
      const loss = outputBackward(pre, dpre, HP, H, small, gSmall, y, w, wsum);
      b1t *= BETA1;
      b2t *= BETA2;
      const c1 = 1 / (1 - b1t);
      const c2 = 1 / (1 - b2t);
      const lr = p.learningRate;
      ex.backwardAdam(xAt, rowsAt, idx.length, dpreAt, H, HP, w1At, m1At, v1At, DP, lr, c1, c2, actAt, dvAt);
      // Updated after W1, whose gradient used the old w2 (as autograd does).
      adam(small, ms, vs, 0, 2 * H + 1, gSmall, lr, c1, c2);
      return loss / wsum;
    },
    evaluate(idx, y, w) {
      const logits = new Float32Array(idx.length);
      let loss = 0;
      for (let s = 0; s < idx.length; s += NP) {
        const part = idx.slice(s, s + NP);
        hiddenPre(part);
        for (let k = 0; k < part.length; k++) {
          const z = logitOf(pre, HP, k, H, small);
          logits[s + k] = z;
          loss += w[s + k] * bce(z, y[s + k]);
        }
      }
      return Promise.resolve({ loss: loss / sumOf(w), logits });
    },
    ...best,
    threads: () => Promise.resolve(1),
    weights: () => tfjsWeights(w1t, DP, small, D, H),
  };
}

function scalarStepper(p: MlpProblem): MlpStepper {
  const { x, dim: D, hidden: H } = p;
  // W1ᵀ [H, D] and its Adam moments; the small parameters [b1 (H), w2 (H), b2 (1)] in one array.
  const w1t = new Float32Array(H * D);
  for (let j = 0; j < D; j++) for (let h = 0; h < H; h++) w1t[h * D + j] = p.init.w1[j * H + h];
  const m1 = new Float32Array(H * D);
  const v1 = new Float32Array(H * D);
  const small = smallParams(p);
  const ms = new Float32Array(2 * H + 1);
  const vs = new Float32Array(2 * H + 1);
  const gSmall = new Float64Array(2 * H + 1);
  const gRow = new Float64Array(D);
  const best = bestKeeper(w1t, small);
  let pre = new Float64Array(0);
  let dpre = new Float64Array(0);
  let b1t = 1;
  let b2t = 1;

  /** pre[k·H + h] = b1[h] + x_{idx[k]} · W1ᵀ_h for the rows `idx`: blocks of 4 rows × 2 hidden units. */
  const hiddenPre = (idx: readonly number[]): Float64Array => {
    const B = idx.length;
    if (pre.length < B * H) pre = new Float64Array(B * H);
    for (let k = 0; k < B; k += 4) {
      // A short last block repeats its first row; the repeats are computed and not stored.
      const n = Math.min(4, B - k);
      const r0 = idx[k] * D;
      const r1 = n > 1 ? idx[k + 1] * D : r0;
      const r2 = n > 2 ? idx[k + 2] * D : r0;
      const r3 = n > 3 ? idx[k + 3] * D : r0;
      for (let h = 0; h < H; h += 2) {
        const wa = h * D;
        const wb = h + 1 < H ? wa + D : wa;
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let a3 = 0;
        let b0 = 0;
        let b1 = 0;
        let b2 = 0;
        let b3 = 0;
        for (let j = 0; j < D; j++) {
          const u = w1t[wa + j];
          const v = w1t[wb + j];
          const x0 = x[r0 + j];
          const x1 = x[r1 + j];
          const x2 = x[r2 + j];
          const x3 = x[r3 + j];
          a0 += x0 * u;
          a1 += x1 * u;
          a2 += x2 * u;
          a3 += x3 * u;
          b0 += x0 * v;
          b1 += x1 * v;
          b2 += x2 * v;
          b3 += x3 * v;
        }
        const o = k * H + h;
        const c = small[h];
        pre[o] = a0 + c;
        if (n > 1) pre[o + H] = a1 + c;
        if (n > 2) pre[o + 2 * H] = a2 + c;
        if (n > 3) pre[o + 3 * H] = a3 + c;
        if (h + 1 < H) {
          const e = small[h + 1];
          pre[o + 1] = b0 + e;
          if (n > 1) pre[o + H + 1] = b1 + e;
          if (n > 2) pre[o + 2 * H + 1] = b2 + e;
          if (n > 3) pre[o + 3 * H + 1] = b3 + e;
        }
      }
    }
    return pre;
  };

  /**
   * gRow = Σ_k dpre[k, h]·x_{idx[k]} over the rows whose dpre is not 0 (the ReLU let them through), 4 rows per
   * pass over gRow.
   */
  let active = new Int32Array(0);
  const gradRow = (idx: readonly number[], h: number): void => {
    const B = idx.length;
    if (active.length < B) active = new Int32Array(B);
    let n = 0;
    for (let k = 0; k < B; k++) if (dpre[k * H + h] !== 0) active[n++] = k;
    gRow.fill(0);
    for (let t = 0; t < n; t += 4) {
      const m = Math.min(4, n - t);
      const k0 = active[t];
      const d0 = dpre[k0 * H + h];
      const o0 = idx[k0] * D;
      const d1 = m > 1 ? dpre[active[t + 1] * H + h] : 0;
      const o1 = m > 1 ? idx[active[t + 1]] * D : o0;
      const d2 = m > 2 ? dpre[active[t + 2] * H + h] : 0;
      const o2 = m > 2 ? idx[active[t + 2]] * D : o0;
      const d3 = m > 3 ? dpre[active[t + 3] * H + h] : 0;
      const o3 = m > 3 ? idx[active[t + 3]] * D : o0;
      for (let j = 0; j < D; j++)
        gRow[j] += d0 * x[o0 + j] + d1 * x[o1 + j] + d2 * x[o2 + j] + d3 * x[o3 + j];
    }
  };

  return {
    kernel: 'scalar',
    step(idx, y, w) {
      const B = idx.length;
      const pr = hiddenPre(idx);
      if (dpre.length < B * H) dpre = new Float64Array(B * H);
      const wsum = sumOf(w);
      const loss = outputBackward(pr, dpre, H, H, small, gSmall, y, w, wsum);
      b1t *= BETA1;
      b2t *= BETA2;
      const c1 = 1 / (1 - b1t);
      const c2 = 1 / (1 - b2t);
      const lr = p.learningRate;
      // W1: one hidden unit at a time, its gradient row then its Adam update.
      for (let h = 0; h < H; h++) {
        gradRow(idx, h);
        adam(w1t, m1, v1, h * D, (h + 1) * D, gRow, lr, c1, c2);
      }
      // Updated after W1, whose gradient used the old w2 (as autograd does).
      adam(small, ms, vs, 0, 2 * H + 1, gSmall, lr, c1, c2);
      return loss / wsum;
    },
    evaluate(idx, y, w) {
      const pr = hiddenPre(idx);
      const logits = new Float32Array(idx.length);
      let loss = 0;
      let wsum = 0;
      for (let k = 0; k < idx.length; k++) {
        const z = logitOf(pr, H, k, H, small);
        logits[k] = z;
        loss += w[k] * bce(z, y[k]);
        wsum += w[k];
      }
      return Promise.resolve({ loss: loss / wsum, logits });
    },
    ...best,
    threads: () => Promise.resolve(1),
    weights: () => tfjsWeights(w1t, D, small, D, H),
  };
}

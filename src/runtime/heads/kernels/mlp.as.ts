// AssemblyScript, not TypeScript: compiled by `npm run build:kernels` (scripts/build-kernels.mjs) into
// `mlp-wasm.ts`. tsc cannot type AssemblyScript's builtins (v128, load<T>, usize), hence the two lines below.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-nocheck
/**
 * The MLP BCE head's two heavy loops as WebAssembly SIMD (f32x4), for `mlp-trainer.ts`: the hidden layer's
 * forward product and, per hidden unit, the W1 gradient row followed at once by its Adam update. Everything else
 * of the step (the output layer, the loss, the small parameters' Adam) stays in JS: it is B × H work.
 *
 * Memory is the caller's: it lays out the buffers after `heapBase()` and passes byte addresses. All arrays are
 * float32 except `rows` (i32 row indices into x). Rows of x and of W1ᵀ are `dp` floats long, zero-padded, with
 * `dp` a multiple of 32 (so the gradient's 8-vector chunks and the forward's 1-vector steps need no remainder);
 * the padding stays zero, because its gradient is zero and Adam moves a weight with zero moments by 0.
 * Sums are float32 in four lanes, added across lanes at the end (tfjs and PyTorch accumulate in float32 too).
 */

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-7;
// 1 − β as literals: f32 arithmetic would round 1 − 0.9 to 0.100000024, where JS's float64 gives 0.1.
const ONE_MINUS_BETA1: f32 = 0.1;
const ONE_MINUS_BETA2: f32 = 0.001;

/** The first byte after the module's own data, rounded up to 64. */
export function heapBase(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}

function hsum(v: v128): f32 {
  return (
    f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3)
  );
}

/**
 * pre[k·hp + h] = b1[h] + x[rows[k]] · w1t[h] for k < nb, h < hp.
 * nb: a multiple of 4 (the caller repeats a row to pad it); hp: a multiple of 2 (padded units have zero weights).
 * Blocks of 2 hidden units × 4 rows (8 accumulators): the two W1ᵀ rows stay in L1 while the batch's rows
 * stream past them.
 */
export function forward(
  x: usize,
  rows: usize,
  nb: i32,
  w1t: usize,
  b1: usize,
  pre: usize,
  hp: i32,
  dp: i32,
): void {
  const rs = (<usize>dp) << 2;
  const ps = (<usize>hp) << 2;
  for (let h = 0; h < hp; h += 2) {
    const wa = w1t + <usize>h * rs;
    const wb = wa + rs;
    const ca = load<f32>(b1 + ((<usize>h) << 2));
    const cb = load<f32>(b1 + ((<usize>h) << 2), 4);
    for (let k = 0; k < nb; k += 4) {
      const ri = rows + ((<usize>k) << 2);
      const r0 = x + <usize>load<i32>(ri) * rs;
      const r1 = x + <usize>load<i32>(ri, 4) * rs;
      const r2 = x + <usize>load<i32>(ri, 8) * rs;
      const r3 = x + <usize>load<i32>(ri, 12) * rs;
      let a0 = f32x4.splat(0);
      let a1 = f32x4.splat(0);
      let a2 = f32x4.splat(0);
      let a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0);
      let b1v = f32x4.splat(0);
      let b2 = f32x4.splat(0);
      let b3 = f32x4.splat(0);
      for (let j: usize = 0; j < rs; j += 16) {
        const u = v128.load(wa + j);
        const v = v128.load(wb + j);
        let t = v128.load(r0 + j);
        a0 = f32x4.add(a0, f32x4.mul(t, u));
        b0 = f32x4.add(b0, f32x4.mul(t, v));
        t = v128.load(r1 + j);
        a1 = f32x4.add(a1, f32x4.mul(t, u));
        b1v = f32x4.add(b1v, f32x4.mul(t, v));
        t = v128.load(r2 + j);
        a2 = f32x4.add(a2, f32x4.mul(t, u));
        b2 = f32x4.add(b2, f32x4.mul(t, v));
        t = v128.load(r3 + j);
        a3 = f32x4.add(a3, f32x4.mul(t, u));
        b3 = f32x4.add(b3, f32x4.mul(t, v));
      }
      const o = pre + <usize>k * ps + ((<usize>h) << 2);
      store<f32>(o, hsum(a0) + ca);
      store<f32>(o, hsum(b0) + cb, 4);
      store<f32>(o + ps, hsum(a1) + ca);
      store<f32>(o + ps, hsum(b1v) + cb, 4);
      store<f32>(o + 2 * ps, hsum(a2) + ca);
      store<f32>(o + 2 * ps, hsum(b2) + cb, 4);
      store<f32>(o + 3 * ps, hsum(a3) + ca);
      store<f32>(o + 3 * ps, hsum(b3) + cb, 4);
    }
  }
}

/** Adam on 4 weights at w, m, v (byte addresses) with gradient g (tfjs's update, bias-corrected moments). */
function adam4(w: usize, m: usize, v: usize, g: v128, lr: v128, c1: v128, c2: v128): void {
  const mj = f32x4.add(
    f32x4.mul(f32x4.splat(BETA1), v128.load(m)),
    f32x4.mul(f32x4.splat(ONE_MINUS_BETA1), g),
  );
  const vj = f32x4.add(
    f32x4.mul(f32x4.splat(BETA2), v128.load(v)),
    f32x4.mul(f32x4.splat(ONE_MINUS_BETA2), f32x4.mul(g, g)),
  );
  v128.store(m, mj);
  v128.store(v, vj);
  const step = f32x4.div(
    f32x4.mul(lr, f32x4.mul(mj, c1)),
    f32x4.add(f32x4.sqrt(f32x4.mul(vj, c2)), f32x4.splat(EPSILON)),
  );
  v128.store(w, f32x4.sub(v128.load(w), step));
}

/**
 * For each hidden unit h < hidden: its W1 gradient row g = Σ_k dpre[k·hp + h] · x[rows[k]] over the rows
 * k < nb whose dpre is not 0 (the ReLU blocked about half), then Adam on w1t[h] (moments m1, v1) with g, 32
 * weights at a time while their gradient is still in registers. Units with no active row still take their Adam
 * step (g = 0: the moments decay and move the weight). act, dv: scratch for nb addresses and nb floats.
 */
export function backwardAdam(
  x: usize,
  rows: usize,
  nb: i32,
  dpre: usize,
  hidden: i32,
  hp: i32,
  w1t: usize,
  m1: usize,
  v1: usize,
  dp: i32,
  lr: f32,
  c1: f32,
  c2: f32,
  act: usize,
  dv: usize,
): void {
  const rs = (<usize>dp) << 2;
  const ps = (<usize>hp) << 2;
  const vlr = f32x4.splat(lr);
  const vc1 = f32x4.splat(c1);
  const vc2 = f32x4.splat(c2);
  for (let h = 0; h < hidden; h++) {
    let n: usize = 0;
    const col = dpre + ((<usize>h) << 2);
    for (let k = 0; k < nb; k++) {
      const d = load<f32>(col + <usize>k * ps);
      if (d != 0) {
        store<usize>(act + (n << 2), x + <usize>load<i32>(rows + ((<usize>k) << 2)) * rs);
        store<f32>(dv + (n << 2), d);
        n++;
      }
    }
    const w = w1t + <usize>h * rs;
    const m = m1 + <usize>h * rs;
    const v = v1 + <usize>h * rs;
    for (let j: usize = 0; j < rs; j += 128) {
      let g0 = f32x4.splat(0);
      let g1 = f32x4.splat(0);
      let g2 = f32x4.splat(0);
      let g3 = f32x4.splat(0);
      let g4 = f32x4.splat(0);
      let g5 = f32x4.splat(0);
      let g6 = f32x4.splat(0);
      let g7 = f32x4.splat(0);
      for (let t: usize = 0; t < n; t++) {
        const p = load<usize>(act + (t << 2)) + j;
        const d = v128.load32_splat(dv + (t << 2));
        g0 = f32x4.add(g0, f32x4.mul(d, v128.load(p)));
        g1 = f32x4.add(g1, f32x4.mul(d, v128.load(p, 16)));
        g2 = f32x4.add(g2, f32x4.mul(d, v128.load(p, 32)));
        g3 = f32x4.add(g3, f32x4.mul(d, v128.load(p, 48)));
        g4 = f32x4.add(g4, f32x4.mul(d, v128.load(p, 64)));
        g5 = f32x4.add(g5, f32x4.mul(d, v128.load(p, 80)));
        g6 = f32x4.add(g6, f32x4.mul(d, v128.load(p, 96)));
        g7 = f32x4.add(g7, f32x4.mul(d, v128.load(p, 112)));
      }
      adam4(w + j, m + j, v + j, g0, vlr, vc1, vc2);
      adam4(w + j + 16, m + j + 16, v + j + 16, g1, vlr, vc1, vc2);
      adam4(w + j + 32, m + j + 32, v + j + 32, g2, vlr, vc1, vc2);
      adam4(w + j + 48, m + j + 48, v + j + 48, g3, vlr, vc1, vc2);
      adam4(w + j + 64, m + j + 64, v + j + 64, g4, vlr, vc1, vc2);
      adam4(w + j + 80, m + j + 80, v + j + 80, g5, vlr, vc1, vc2);
      adam4(w + j + 96, m + j + 96, v + j + 96, g6, vlr, vc1, vc2);
      adam4(w + j + 112, m + j + 112, v + j + 112, g7, vlr, vc1, vc2);
    }
  }
}

/**
 * PatchCore's scoring after the nearest-neighbour search (Roth et al., §3.3), pure: the patch distance map is
 * upsampled to the input frame and smoothed with a Gaussian of σ = 4 (the paper's and anomalib's choice), and
 * the image score is either the maximum of that map or the paper's reweighted maximum patch distance
 *
 *   s = (1 − exp‖m_test,* − m*‖ / Σ_{m ∈ N_b(m*)} exp‖m_test,* − m‖) · s*,
 *
 * where m_test,* is the test patch farthest from the bank, s* its distance, m* its nearest bank patch and
 * N_b(m*) the b nearest bank patches of m* (m* itself included, as in anomalib; b = 9). The weight shrinks the
 * score of a patch whose bank neighbourhood is dense (a rare but normal appearance is judged less harshly).
 */
import { InvalidArgumentError } from '../errors.ts';

/** 1-D Gaussian taps for σ: radius `floor(4σ + ½)` (kernel 33 for σ = 4, as anomalib), normalized. */
export function gaussianKernel(sigma: number): Float32Array {
  if (!(sigma > 0)) throw new InvalidArgumentError('sigma', 'a positive number', sigma);
  const r = Math.floor(4 * sigma + 0.5);
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/** Mirror index without repeating the edge (torch/OpenCV 'reflect_101': −1 → 1, n → n − 2). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = ((i % period) + period) % period;
  if (m >= n) m = period - m;
  return m;
}

/** Separable Gaussian blur of an `[H, W]` map, reflected borders. */
export function gaussianBlur(map: Float32Array, H: number, W: number, sigma: number): Float32Array {
  if (map.length !== H * W) throw new InvalidArgumentError('map length', `${H}×${W}`, map.length);
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  // Reflected source index of every tap position, once per axis (the blur is the map's whole cost).
  const rx = new Int32Array(W + 2 * r);
  for (let i = 0; i < rx.length; i++) rx[i] = reflect(i - r, W);
  const ry = new Int32Array(H + 2 * r);
  for (let i = 0; i < ry.length; i++) ry[i] = reflect(i - r, H);
  const tmp = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    const row = y * W;
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let t = 0; t < k.length; t++) s += k[t] * map[row + rx[x + t]];
      tmp[row + x] = s;
    }
  }
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let t = 0; t < k.length; t++) s += k[t] * tmp[ry[y + t] * W + x];
      out[y * W + x] = s;
    }
  return out;
}

/** Bilinear upsampling of `[h, w]` to `[H, W]`, half-pixel centres, edges clamped. */
export function upsampleBilinear(
  map: ArrayLike<number>,
  h: number,
  w: number,
  H: number,
  W: number,
): Float32Array {
  const out = new Float32Array(H * W);
  for (let y = 0; y < H; y++) {
    const fy = Math.min(Math.max(((y + 0.5) * h) / H - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.min(Math.max(((x + 0.5) * w) / W - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const wx = fx - x0;
      const top = map[y0 * w + x0] * (1 - wx) + map[y0 * w + x1] * wx;
      const bot = map[y1 * w + x0] * (1 - wx) + map[y1 * w + x1] * wx;
      out[y * W + x] = top * (1 - wy) + bot * wy;
    }
  }
  return out;
}

/**
 * The paper's weight `1 − softmax(d)[0]` for the distances `d` from the worst test patch to N_b(m*), `d[0]`
 * being the distance to m* itself. Stable (the max is subtracted before exp).
 */
export function reweightFactor(d: ArrayLike<number>): number {
  if (d.length === 0) throw new InvalidArgumentError('neighbour distances', 'at least one distance', 0);
  let m = -Infinity;
  for (let i = 0; i < d.length; i++) m = Math.max(m, d[i]);
  let s = 0;
  for (let i = 0; i < d.length; i++) s += Math.exp(d[i] - m);
  return 1 - Math.exp(d[0] - m) / s;
}

/** Index of the largest value (first on ties). */
export function argMax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/**
 * One axis of upsample-then-blur as a matrix `[N, n]` (float64), banded: row `y` holds the weights of the `n`
 * source cells in the output pixel `y`, nonzero only in `lo[y] … hi[y]`. Bilinear upsampling (`U`, `[N, n]`)
 * and the reflected Gaussian (`G`, `[N, N]`) are both linear and separable, so the whole map is `A · M · Bᵀ`
 * with `A = G_H U_H` and `B = G_W U_W` — the same numbers as `gaussianBlur(upsampleBilinear(…))` up to float
 * summation order, for ~5× fewer multiply-adds at 14² → 224² (the map was a third of `predict` in the bench).
 */
interface AxisOperator {
  n: number;
  N: number;
  /** `[N, n]` row-major. */
  w: Float64Array;
  lo: Int32Array;
  hi: Int32Array;
}

function axisOperator(n: number, N: number, sigma: number): AxisOperator {
  // U: bilinear weights, half-pixel centres, edges clamped (as `upsampleBilinear`).
  const U = new Float64Array(N * n);
  for (let y = 0; y < N; y++) {
    const f = Math.min(Math.max(((y + 0.5) * n) / N - 0.5, 0), n - 1);
    const y0 = Math.floor(f);
    const y1 = Math.min(y0 + 1, n - 1);
    U[y * n + y0] += 1 - (f - y0);
    U[y * n + y1] += f - y0;
  }
  let w = U;
  if (sigma > 0) {
    // Float64 taps (the float32 `gaussianKernel` would round them).
    const r = Math.floor(4 * sigma + 0.5);
    const k = new Float64Array(2 * r + 1);
    let z = 0;
    for (let i = -r; i <= r; i++) z += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
    for (let i = 0; i < k.length; i++) k[i] /= z;
    w = new Float64Array(N * n);
    for (let y = 0; y < N; y++)
      for (let t = -r; t <= r; t++) {
        const src = reflect(y + t, N) * n;
        const kt = k[t + r];
        for (let c = 0; c < n; c++) w[y * n + c] += kt * U[src + c];
      }
  }
  const lo = new Int32Array(N);
  const hi = new Int32Array(N);
  for (let y = 0; y < N; y++) {
    let a = 0;
    let b = n - 1;
    while (a < b && w[y * n + a] === 0) a++;
    while (b > a && w[y * n + b] === 0) b--;
    lo[y] = a;
    hi[y] = b;
  }
  return { n, N, w, lo, hi };
}

/** A few recent operators: every image of a run has the same grid and frame. */
const operators = new Map<string, AxisOperator>();
function cachedOperator(n: number, N: number, sigma: number): AxisOperator {
  const key = `${n}:${N}:${sigma}`;
  let op = operators.get(key);
  if (!op) {
    if (operators.size >= 16) operators.clear();
    op = axisOperator(n, N, sigma);
    operators.set(key, op);
  }
  return op;
}

/**
 * The anomaly map of one image from its patch distances `[h·w]`: upsampled to the frame `[H, W]`, then the
 * Gaussian blur (`σ = 0` skips it), computed as `A · M · Bᵀ` (see `axisOperator`) in float64. Equal to
 * `gaussianBlur(upsampleBilinear(…))` within float32 rounding (`tests/unit/patchcore.test.ts`).
 */
export function anomalyMap(
  patchDist: ArrayLike<number>,
  h: number,
  w: number,
  H: number,
  W: number,
  sigma = 4,
): Float32Array {
  if (patchDist.length !== h * w)
    throw new InvalidArgumentError('patch distances', `${h}×${w} values`, patchDist.length);
  const A = cachedOperator(h, H, sigma);
  const B = cachedOperator(w, W, sigma);
  // T = M · Bᵀ: [h, W].
  const T = new Float64Array(h * W);
  for (let i = 0; i < h; i++)
    for (let x = 0; x < W; x++) {
      let s = 0;
      const bo = x * w;
      for (let c = B.lo[x]; c <= B.hi[x]; c++) s += patchDist[i * w + c] * B.w[bo + c];
      T[i * W + x] = s;
    }
  // out = A · T: [H, W], row by row over A's band.
  const out = new Float32Array(H * W);
  const acc = new Float64Array(W);
  for (let y = 0; y < H; y++) {
    acc.fill(0);
    const ao = y * h;
    for (let i = A.lo[y]; i <= A.hi[y]; i++) {
      const a = A.w[ao + i];
      const t = i * W;
      for (let x = 0; x < W; x++) acc[x] += a * T[t + x];
    }
    out.set(acc, y * W);
  }
  return out;
}

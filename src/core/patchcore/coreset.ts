/**
 * PatchCore's memory-bank reduction (Roth et al., §3.2, Algorithm 1), pure: greedy k-centre selection — each
 * step adds the patch farthest from everything chosen so far — on a Johnson–Lindenstrauss random projection of
 * the features (the paper projects to 128 dimensions to make the distance updates cheap; the chosen rows keep
 * their full features). Greedy k-centre is a 2-approximation of the minimal covering radius, so the bank covers
 * the normal patches far better than a random subset of the same size (`tests/unit/patchcore.test.ts`).
 *
 * Shapes: features `[N, D]` row-major; the result is `n` row indices into them, in selection order.
 */
import { InvalidArgumentError } from '../errors.ts';
import { Rng } from '../rng.ts';

export interface CoresetOptions {
  /** Random-projection dimension (the paper's 128); no projection when `D ≤ projectionDim`. */
  projectionDim?: number;
  seed?: number;
  /** Called every 64 selections with (selected, n), e.g. for progress. */
  onStep?: (done: number, total: number) => void;
}

/**
 * The Gaussian projection matrix `[D, d]` (row-major, variance 1/d) of a seed, so a faster matrix product
 * (tfjs in `src/runtime/heads/patchcore.ts`) projects exactly as `randomProjection` does.
 */
export function projectionMatrix(dim: number, d: number, seed: number): Float32Array {
  const rng = new Rng(`patchcore-projection:${seed}`);
  const M = new Float32Array(dim * d);
  const s = 1 / Math.sqrt(d);
  for (let i = 0; i < M.length; i++) M[i] = rng.normal() * s;
  return M;
}

/**
 * `[N, D]` → `[N, d]` with a Gaussian matrix of variance 1/d (distances kept in expectation), or the features
 * themselves when `D ≤ d`.
 */
export function randomProjection(
  data: Float32Array,
  n: number,
  dim: number,
  d: number,
  seed: number,
): { data: Float32Array; dim: number } {
  if (dim <= d) return { data, dim };
  const M = projectionMatrix(dim, d, seed);
  // Transposed to [d, dim] (each output's weights contiguous) so every output is one unrolled dot product.
  const R = new Float32Array(d * dim);
  for (let k = 0; k < dim; k++) for (let j = 0; j < d; j++) R[j * dim + k] = M[k * d + j];
  const out = new Float32Array(n * d);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < d; j++) out[r * d + j] = dot(data, r * dim, R, j * dim, dim);
  return { data: out, dim: d };
}

/**
 * Greedy k-centre coreset: `n` row indices of `[N, D]` features. The first centre is drawn from the seed; then
 * `minDist[i]` (squared distance of row i to its nearest chosen centre) is updated with each new centre and the
 * arg-max becomes the next one. O(N · n · d), less in practice: the triangle-inequality skip below, a
 * principal-subspace lower bound (`principalBound`), and each distance stops as soon as its partial sum shows
 * the row did not get closer (`sqDistBelow`); none of them changes a pick.
 */
export function greedyCoreset(
  data: Float32Array,
  N: number,
  dim: number,
  n: number,
  o: CoresetOptions = {},
): Int32Array {
  if (!Number.isInteger(N) || N < 1 || data.length !== N * dim)
    throw new InvalidArgumentError('coreset features', `${N} rows of ${dim} values`, data.length);
  if (!Number.isInteger(n) || n < 1 || n > N)
    throw new InvalidArgumentError('coreset size', `an integer in [1, ${N}]`, n);
  const seed = o.seed ?? 0;
  const p = randomProjection(data, N, dim, o.projectionDim ?? 128, seed);
  const x = p.data;
  const d = p.dim;
  const minDist = new Float32Array(N).fill(Infinity);
  // Nearest chosen centre of each row, and squared distances from the newest centre to every chosen one:
  // by the triangle inequality a row whose centre is ≥ 2·r away from the new centre (r its current distance)
  // cannot get closer to the new one, so its distance is not computed (same picks as the plain scan, several
  // times fewer distance evaluations once the radii shrink).
  const owner = new Int32Array(N).fill(-1);
  const centreGap = new Float32Array(n);
  const chosen = new Int32Array(n);
  const pb = principalBound(x, N, d);
  let next = firstCentre(N, seed);
  for (let k = 0; k < n; k++) {
    chosen[k] = next;
    minDist[next] = -1; // never picked again
    const c = next * d;
    for (let q = 0; q < k; q++) centreGap[q] = sqDistRows(x, c, chosen[q] * d, d);
    const best = coresetScan(x, d, 0, N, c, k, minDist, owner, centreGap, pb.z, pb.r, next * pb.r, pb.floor);
    if (best < 0) break;
    next = best;
    if (o.onStep && k % 64 === 63) o.onStep(k + 1, n);
  }
  return chosen;
}

/** The greedy's first centre: drawn from the seed (every implementation of the scan starts here). */
export function firstCentre(N: number, seed: number): number {
  return new Rng(`patchcore-coreset:${seed}`).int(0, N);
}

/**
 * A lower bound on every squared distance, cheap to evaluate: the rows' coordinates `z` `[N, r]` (float64) in an
 * orthonormal basis `Q` of the top-`r` principal subspace of the rows (subspace iteration on the covariance of
 * ≤ 4096 evenly spaced rows, around their mean). An orthonormal projection never lengthens a vector, so
 * `‖z_i − z_c‖² ≤ ‖x_i − x_c‖²` for any `Q`; the principal one makes the bound tight, so most rows are shown not
 * to get closer from `r` numbers instead of the ~60 of 128 dimensions the early stop needed (measured on the
 * bench's 100k real patches). `floor`: an absolute slack (1e-11 of the largest squared deviation) that, with the
 * 1e-6 relative one in `coresetScan`, covers the float64 rounding of `z`, so a row is pruned only where its exact
 * distance could not have been below its current one: the picks are those of the scan without the bound.
 * `r = 0` (no bound) for `d ≤ 16`, where the bound would cost as much as the distance.
 */
export function principalBound(
  x: Float32Array,
  N: number,
  d: number,
  r = d > 16 ? 16 : 0,
): { z: Float64Array; r: number; floor: number } {
  if (r <= 0) return { z: new Float64Array(0), r: 0, floor: 0 };
  const S = Math.min(N, 4096);
  const step = Math.floor(N / S);
  const mu = new Float64Array(d);
  for (let s = 0; s < S; s++) for (let j = 0; j < d; j++) mu[j] += x[s * step * d + j];
  for (let j = 0; j < d; j++) mu[j] /= S;
  const C = new Float64Array(d * d);
  const v = new Float64Array(d);
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < d; j++) v[j] = x[s * step * d + j] - mu[j];
    for (let a = 0; a < d; a++) {
      const va = v[a];
      if (va !== 0) for (let b = 0; b < d; b++) C[a * d + b] += va * v[b];
    }
  }
  // Subspace iteration from a fixed start (any orthonormal Q keeps the bound valid; iterations only tighten it).
  let Q = new Float64Array(d * r);
  for (let i = 0; i < Q.length; i++) Q[i] = Math.sin(i * 12.9898 + 1);
  orthonormalize(Q, d, r);
  for (let it = 0; it < 20; it++) {
    const Z = new Float64Array(d * r);
    for (let a = 0; a < d; a++)
      for (let b = 0; b < d; b++) {
        const cab = C[a * d + b];
        for (let c = 0; c < r; c++) Z[a * r + c] += cab * Q[b * r + c];
      }
    orthonormalize(Z, d, r);
    Q = Z;
  }
  const z = new Float64Array(N * r);
  let worst = 0;
  for (let i = 0; i < N; i++) {
    let dev = 0;
    for (let j = 0; j < d; j++) {
      v[j] = x[i * d + j] - mu[j];
      dev += v[j] * v[j];
    }
    worst = Math.max(worst, dev);
    for (let c = 0; c < r; c++) {
      let t = 0;
      for (let j = 0; j < d; j++) t += v[j] * Q[j * r + c];
      z[i * r + c] = t;
    }
  }
  return { z, r, floor: 1e-11 * worst };
}

/** Modified Gram–Schmidt on the `r` columns of `M` `[d, r]`, twice (orthonormal to float64 rounding). */
function orthonormalize(M: Float64Array, d: number, r: number): void {
  for (let pass = 0; pass < 2; pass++)
    for (let c = 0; c < r; c++) {
      for (let p = 0; p < c; p++) {
        let t = 0;
        for (let j = 0; j < d; j++) t += M[j * r + c] * M[j * r + p];
        for (let j = 0; j < d; j++) M[j * r + c] -= t * M[j * r + p];
      }
      let n = 0;
      for (let j = 0; j < d; j++) n += M[j * r + c] * M[j * r + c];
      n = Math.sqrt(n) || 1;
      for (let j = 0; j < d; j++) M[j * r + c] /= n;
    }
}

/**
 * One greedy step over the rows `[lo, hi)`: each row's distance to the new centre (its row offset `c` in `x`,
 * selection step `k`) lowers `minDist` and sets `owner` where it is closer, with the triangle-inequality skip
 * over `centreGap` (squared distances from the new centre to centres `0 … k−1`) and the principal-subspace
 * bound (`principalBound`: the rows' `z` `[*, r]`, the centre's at offset `cz`, its slack `floor`); answers the
 * row of the largest `minDist` in the range (first on ties), or −1 when every row there is chosen. Rows only
 * read and write their own entries, so disjoint ranges can run on separate threads and, taken in range order,
 * give the picks of one scan over all rows (`src/runtime/heads/patchcore-node.ts` does, over shared memory).
 * Self-contained (it calls only `sqDistBelow`): the Node threads run its source text.
 */
export function coresetScan(
  x: Float32Array,
  d: number,
  lo: number,
  hi: number,
  c: number,
  k: number,
  minDist: Float32Array,
  owner: Int32Array,
  centreGap: Float32Array,
  z: Float64Array,
  r: number,
  cz: number,
  floor: number,
): number {
  let best = -1;
  let bestVal = -Infinity;
  for (let i = lo; i < hi; i++) {
    let m = minDist[i];
    if (m < 0) continue;
    const a = owner[i];
    if (a < 0 || centreGap[a] < 4 * m) {
      let b = 0;
      for (let t = 0, zi = i * r; t < r; t++) {
        const u = z[zi + t] - z[cz + t];
        b += u * u;
      }
      if (r === 0 || b * (1 - 1e-6) < m + floor) {
        const v = sqDistBelow(x, i * d, c, d, m);
        if (v < m) {
          m = v;
          minDist[i] = v;
          owner[i] = k;
        }
      }
    }
    if (m > bestVal) {
      bestVal = m;
      best = i;
    }
  }
  return best;
}

/** The coreset size for a fraction of `N` patches (at least 1). */
export function coresetSize(N: number, ratio: number): number {
  if (!(ratio > 0 && ratio <= 1)) throw new InvalidArgumentError('coreset ratio', 'in (0, 1]', ratio);
  return Math.max(1, Math.min(N, Math.round(N * ratio)));
}

/** Squared distance of two rows of one array; four accumulators, because this loop is the whole cost. */
export function sqDistRows(x: Float32Array, a: number, b: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < d; j += 4) {
    const t0 = x[a + j] - x[b + j];
    const t1 = x[a + j + 1] - x[b + j + 1];
    const t2 = x[a + j + 2] - x[b + j + 2];
    const t3 = x[a + j + 3] - x[b + j + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; j < d; j++) {
    const t = x[a + j] - x[b + j];
    s0 += t * t;
  }
  return s0 + s1 + (s2 + s3);
}

/**
 * `sqDistRows`, or any value ≥ `limit` as soon as the partial sum reaches `limit` (checked every 16 dimensions):
 * the partial sums only grow (non-negative terms, monotone rounding), so stopping early never hides a value
 * below `limit`, and one that is below it comes out bit-identical to `sqDistRows` (same accumulators, same
 * order). The greedy scan only asks whether a row got closer, so most rows stop after a fraction of the
 * dimensions.
 */
export function sqDistBelow(x: Float32Array, a: number, b: number, d: number, limit: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  while (j + 3 < d) {
    const end = Math.min(j + 16, d - 3);
    for (; j < end; j += 4) {
      const t0 = x[a + j] - x[b + j];
      const t1 = x[a + j + 1] - x[b + j + 1];
      const t2 = x[a + j + 2] - x[b + j + 2];
      const t3 = x[a + j + 3] - x[b + j + 3];
      s0 += t0 * t0;
      s1 += t1 * t1;
      s2 += t2 * t2;
      s3 += t3 * t3;
    }
    if (s0 + s1 + (s2 + s3) >= limit) return s0 + s1 + (s2 + s3);
  }
  for (; j < d; j++) {
    const t = x[a + j] - x[b + j];
    s0 += t * t;
  }
  return s0 + s1 + (s2 + s3);
}

function dot(x: Float32Array, a: number, y: Float32Array, b: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < d; j += 4) {
    s0 += x[a + j] * y[b + j];
    s1 += x[a + j + 1] * y[b + j + 1];
    s2 += x[a + j + 2] * y[b + j + 2];
    s3 += x[a + j + 3] * y[b + j + 3];
  }
  for (; j < d; j++) s0 += x[a + j] * y[b + j];
  return s0 + s1 + (s2 + s3);
}

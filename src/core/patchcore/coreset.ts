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
 * arg-max becomes the next one. O(N · n · d), less in practice: the triangle-inequality skip below, and each
 * distance stops as soon as its partial sum shows the row did not get closer (`sqDistBelow`).
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
  let next = firstCentre(N, seed);
  for (let k = 0; k < n; k++) {
    chosen[k] = next;
    minDist[next] = -1; // never picked again
    const c = next * d;
    for (let q = 0; q < k; q++) centreGap[q] = sqDistRows(x, c, chosen[q] * d, d);
    const best = coresetScan(x, d, 0, N, c, k, minDist, owner, centreGap);
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
 * One greedy step over the rows `[lo, hi)`: each row's distance to the new centre (its row offset `c` in `x`,
 * selection step `k`) lowers `minDist` and sets `owner` where it is closer, with the triangle-inequality skip
 * over `centreGap` (squared distances from the new centre to centres `0 … k−1`); answers the row of the largest
 * `minDist` in the range (first on ties), or −1 when every row there is chosen. Rows only read and write their own
 * entries, so disjoint ranges can run on separate threads and, taken in range order, give the picks of one scan
 * over all rows (`src/runtime/heads/patchcore-node.ts` does, over shared memory). Self-contained (it calls only
 * `sqDistBelow`): the Node threads run its source text.
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
): number {
  let best = -1;
  let bestVal = -Infinity;
  for (let i = lo; i < hi; i++) {
    let m = minDist[i];
    if (m < 0) continue;
    const a = owner[i];
    if (a < 0 || centreGap[a] < 4 * m) {
      const v = sqDistBelow(x, i * d, c, d, m);
      if (v < m) {
        m = v;
        minDist[i] = v;
        owner[i] = k;
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

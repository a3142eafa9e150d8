/**
 * CSE head (seed 004): learns an embedding of backbone feature-map locations in which synthetic defects stand
 * apart from normal texture, without any real defect.
 *
 * - Embedder (pointwise conv = per-location MLP): standardize → Linear(C → hidden) → BatchNorm → ReLU →
 *   Linear(hidden → E).
 * - Frozen, randomly initialised decoder Linear(E → C): the reconstruction loss `λ · MSE(decoder(e), x)` (λ = 10)
 *   keeps the embedding informative, so contrastive training cannot collapse it.
 * - Pairs (normal anchor, other): `other` is another normal image (p = 0.5) or a synthetic defect made from the
 *   anchor; cosine contrastive loss pulls matching locations together and pushes defect locations below
 *   `margin` cosine similarity.
 * - After training, spherical k-means (k = 1 default) on normal location embeddings; anomaly score per location
 *   = min over centroids of the cosine distance `1 − cos(e, c)`, per image = the max over locations.
 *
 * The paper's recipe (the authors' code, github.com/SimonThomine/CSE), each an option with it as the default:
 * - `reconstruction: 'normal'`: both images of a pair go through the embedder in one batch (BatchNorm statistics
 *   span both) but the reconstruction term covers the defect-free anchor only (`cal_loss(decoder(output1), …)`).
 * - `pool: 2`: `AvgPool2d(2, stride 2)` after the embedder; the contrastive loss and the scores use the pooled
 *   map (`xReduced`), so a `[C, 14, 14]` input scores on a 7 × 7 grid. Windows as PyTorch's (no padding, floor).
 * - `fusion`: the caller concatenates a stride-16 map with the upsampled stride-32 map (`fuseMaps`); the head
 *   records whether its maps were fused so a saved head is fed the same way.
 * - `schedule: 'one-cycle'`: Adam with PyTorch's `OneCycleLR` defaults (`oneCycleLr`), peak = `learningRate`.
 * - `bestCheckpoint`: with validation pairs, the weights of the epoch with the lowest validation loss are kept.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { CSE_DEFAULTS as CORE_CSE_DEFAULTS } from '../../core/experiments/head-options.ts';
import { Rng } from '../../core/rng.ts';
import { yieldToEventLoop } from '../../core/progress.ts';
import { tf } from '../tf.ts';
import type { TrainResult } from './bce.ts';
import {
  type EpochReport,
  type HeadArtifacts,
  type TrainHooks,
  decodeHead,
  encodeHead,
  glorotUniform,
} from './common.ts';
import { type FeatureMap, channelStats, toLocations } from './spatial.ts';

export interface CsePair {
  /** Feature map of a normal image, `[C, H, W]`. */
  anchor: FeatureMap;
  /** Another normal image's map, or the map of a synthetic defect made from the anchor image. */
  other: FeatureMap;
  /** `[H·W]`: 1 where `other` holds a defect at that location, else 0 (all 0 for a normal pair). */
  defect: Float32Array;
}

/** Makes one training pair; called `pairsPerStep` times per step (synthetic defects are made on the fly). */
export type CsePairSource = (rng: Rng) => Promise<CsePair>;

export interface CseOptions {
  hidden: number;
  embedDim: number;
  /** Weight of the reconstruction loss. */
  lambda: number;
  learningRate: number;
  epochs: number;
  stepsPerEpoch: number;
  pairsPerStep: number;
  /** Cosine similarity defect locations are pushed below. */
  margin: number;
  /** Number of k-means centroids on normal embeddings. */
  k: number;
  seed: number;
  /** `one-cycle`: PyTorch's `OneCycleLR` (defaults) with `learningRate` as its peak; `constant`: no schedule. */
  schedule: 'one-cycle' | 'constant';
  /** Whether the maps are a stride-16 map fused with the upsampled stride-32 map (set by the caller). */
  fusion: boolean;
  /** Average pool `pool × pool`, stride `pool`, after the embedder (1 = none). */
  pool: number;
  /** Which images the reconstruction loss covers: the defect-free anchors only (the paper) or both. */
  reconstruction: 'normal' | 'both';
  /** Keep the weights of the epoch with the lowest validation loss (needs validation pairs). */
  bestCheckpoint: boolean;
  /** Share of the normals the app trainer holds out for validation pairs. */
  validationFraction: number;
}

/** The defaults are the core head-option schema's, so the Train tab, the grid and the head agree. */
export const CSE_DEFAULTS: CseOptions = { ...CORE_CSE_DEFAULTS };

/**
 * Options of heads saved before the paper's recipe was an option: they were trained on one map, without pooling,
 * a schedule or a checkpoint, so a restored head scores as it did.
 */
export const CSE_LEGACY: Pick<
  CseOptions,
  'schedule' | 'fusion' | 'pool' | 'reconstruction' | 'bestCheckpoint' | 'validationFraction'
> = {
  schedule: 'constant',
  fusion: false,
  pool: 1,
  reconstruction: 'both',
  bestCheckpoint: false,
  validationFraction: 0,
};

export function cseOptions(o: Partial<CseOptions> = {}): CseOptions {
  const r = { ...CSE_DEFAULTS, ...o };
  for (const k of ['hidden', 'embedDim', 'epochs', 'stepsPerEpoch', 'pairsPerStep', 'k', 'pool'] as const)
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new InvalidArgumentError(k, 'an integer ≥ 1', r[k]);
  if (!(r.lambda >= 0)) throw new InvalidArgumentError('lambda', '≥ 0', r.lambda);
  if (!(r.learningRate > 0)) throw new InvalidArgumentError('learningRate', '> 0', r.learningRate);
  if (!(r.margin >= -1 && r.margin < 1)) throw new InvalidArgumentError('margin', 'in [-1, 1)', r.margin);
  if (r.schedule !== 'one-cycle' && r.schedule !== 'constant')
    throw new InvalidArgumentError('schedule', "'one-cycle' or 'constant'", r.schedule);
  if (r.reconstruction !== 'normal' && r.reconstruction !== 'both')
    throw new InvalidArgumentError('reconstruction', "'normal' or 'both'", r.reconstruction);
  if (!(r.validationFraction >= 0 && r.validationFraction < 1))
    throw new InvalidArgumentError('validationFraction', 'in [0, 1)', r.validationFraction);
  return r;
}

/**
 * PyTorch's `OneCycleLR` with its defaults (pct_start 0.3, cosine annealing in both phases, div_factor 25,
 * final_div_factor 1e4, two phases): the learning rate of optimizer step `step` (0-based) of `total`, peak `max`.
 * Warm-up from max/25 to max over the first 30 % of the steps, then a cosine anneal to max/25/1e4.
 */
export function oneCycleLr(step: number, total: number, max: number): number {
  const initial = max / 25;
  const min = initial / 1e4;
  const cos = (a: number, b: number, pct: number) => b + ((a - b) / 2) * (Math.cos(Math.PI * pct) + 1);
  const warmEnd = 0.3 * total - 1;
  const end = total - 1;
  if (step <= warmEnd) return cos(initial, max, warmEnd > 0 ? step / warmEnd : 1);
  return cos(max, min, end - warmEnd > 0 ? (step - warmEnd) / (end - warmEnd) : 1);
}

/** Output size of a `p × p`, stride-`p` pool without padding (PyTorch's floor), the kernel clamped to the map. */
export function poolGrid(h: number, w: number, p: number): { h: number; w: number; k: number } {
  const k = Math.max(1, Math.min(p, h, w));
  return { h: Math.floor((h - k) / k) + 1, w: Math.floor((w - k) / k) + 1, k };
}

/** `[h'·w', h·w]`: row j averages the locations of pooled cell j (the pool as a matrix product). */
function poolMatrix(h: number, w: number, p: number): Float32Array {
  const g = poolGrid(h, w, p);
  const m = new Float32Array(g.h * g.w * h * w);
  for (let oy = 0; oy < g.h; oy++)
    for (let ox = 0; ox < g.w; ox++)
      for (let dy = 0; dy < g.k; dy++)
        for (let dx = 0; dx < g.k; dx++)
          m[(oy * g.w + ox) * h * w + (oy * g.k + dy) * w + ox * g.k + dx] = 1 / (g.k * g.k);
  return m;
}

/** Per-location defect labels `[n·h·w]` pooled like the embedding: a pooled cell holding any defect is one. */
export function poolDefects(defect: Float32Array, n: number, h: number, w: number, p: number): Float32Array {
  const g = poolGrid(h, w, p);
  if (g.k === 1) return defect;
  const out = new Float32Array(n * g.h * g.w);
  for (let i = 0; i < n; i++)
    for (let oy = 0; oy < g.h; oy++)
      for (let ox = 0; ox < g.w; ox++) {
        let v = 0;
        for (let dy = 0; dy < g.k; dy++)
          for (let dx = 0; dx < g.k; dx++)
            v = Math.max(v, defect[i * h * w + (oy * g.k + dy) * w + ox * g.k + dx]);
        out[(i * g.h + oy) * g.w + ox] = v;
      }
  return out;
}

/**
 * The paper's two-map input: a fine map `[C1, h, w]` (stride 16) and a coarse one `[C2, h2, w2]` (stride 32)
 * bilinearly upsampled to `h × w` with aligned corners (`nn.Upsample(scale_factor=2, mode='bilinear',
 * align_corners=True)` in the authors' embedder), concatenated along channels: `[C1 + C2, h, w]`.
 */
export function fuseMaps(fine: FeatureMap, coarse: FeatureMap): FeatureMap {
  const [c1, h, w] = fine.dims;
  const [c2, h2, w2] = coarse.dims;
  const out = new Float32Array((c1 + c2) * h * w);
  out.set(fine.data.subarray(0, c1 * h * w));
  const sy = h > 1 ? (h2 - 1) / (h - 1) : 0;
  const sx = w > 1 ? (w2 - 1) / (w - 1) : 0;
  for (let y = 0; y < h; y++) {
    const fy = y * sy;
    const y0 = Math.floor(fy);
    const y1 = Math.min(h2 - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = x * sx;
      const x0 = Math.floor(fx);
      const x1 = Math.min(w2 - 1, x0 + 1);
      const tx = fx - x0;
      for (let c = 0; c < c2; c++) {
        const b = c * h2 * w2;
        const d = coarse.data;
        const top = d[b + y0 * w2 + x0] * (1 - tx) + d[b + y0 * w2 + x1] * tx;
        const bottom = d[b + y1 * w2 + x0] * (1 - tx) + d[b + y1 * w2 + x1] * tx;
        out[(c1 + c) * h * w + y * w + x] = top * (1 - ty) + bottom * ty;
      }
    }
  }
  return { data: out, dims: [c1 + c2, h, w] };
}

const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.9;

export class CseHead {
  readonly kind = 'cse' as const;
  private constructor(
    readonly dims: readonly [number, number, number],
    readonly options: CseOptions,
    private readonly mean: Float32Array,
    private readonly std: Float32Array,
    /** w1 [C, hidden], b1 [hidden], gamma/beta [hidden], w2 [hidden, E], b2 [E]. */
    readonly vars: Record<string, tf.Variable>,
    /** Not trained: BatchNorm running mean/var [hidden] and the decoder wd [E, C]. */
    readonly fixed: Record<string, tf.Variable>,
    /** Unit-norm centroids, `k × E`, set after training. */
    public centroids: Float32Array[] = [],
  ) {
    const [, h, w] = dims;
    const g = poolGrid(h, w, options.pool);
    this.grid = [g.h, g.w];
    this.poolT = g.k > 1 ? tf.tensor2d(poolMatrix(h, w, options.pool), [g.h * g.w, h * w]) : null;
  }

  /** The score grid `[h', w']`: the input grid after the average pool. */
  readonly grid: readonly [number, number];
  /** `[h'·w', h·w]` pooling matrix, or null without pooling. */
  private readonly poolT: tf.Tensor2D | null;

  /** Average-pools embeddings `[n·h·w, E]` of n maps to `[n·h'·w', E]` (identity without pooling). */
  pool(e: tf.Tensor2D, n: number): tf.Tensor2D {
    if (!this.poolT) return e;
    const [, h, w] = this.dims;
    const E = this.options.embedDim;
    const hw2 = this.grid[0] * this.grid[1];
    // [n·hw, E] → [hw, n·E]: one matrix product pools every map and channel at once.
    const cols = tf.reshape(tf.transpose(tf.reshape(e, [n, h * w, E]), [1, 0, 2]), [h * w, n * E]);
    const pooled = tf.matMul(this.poolT, cols as tf.Tensor2D);
    return tf.reshape(tf.transpose(tf.reshape(pooled, [hw2, n, E]), [1, 0, 2]), [n * hw2, E]) as tf.Tensor2D;
  }

  static create(
    dims: readonly [number, number, number],
    o: CseOptions,
    mean: Float32Array,
    std: Float32Array,
    rng: Rng,
  ): CseHead {
    const C = dims[0];
    const { hidden: Hd, embedDim: E } = o;
    // tf.variable keeps its initial tensor alive beside the variable: made inside tidy, the initial tensors
    // are disposed and only the variables are kept (else each head left 9 tensors behind after dispose()).
    const { vars, fixed } = tf.tidy(() => ({
      vars: {
        w1: tf.variable(tf.tensor2d(glorotUniform(rng, C, Hd), [C, Hd])),
        b1: tf.variable(tf.zeros([Hd])),
        gamma: tf.variable(tf.ones([Hd])),
        beta: tf.variable(tf.zeros([Hd])),
        w2: tf.variable(tf.tensor2d(glorotUniform(rng, Hd, E), [Hd, E])),
        b2: tf.variable(tf.zeros([E])),
      },
      fixed: {
        runMean: tf.variable(tf.zeros([Hd]), false),
        runVar: tf.variable(tf.ones([Hd]), false),
        wd: tf.variable(tf.tensor2d(glorotUniform(rng, E, C), [E, C]), false),
      },
    }));
    return new CseHead(dims, o, mean, std, vars, fixed);
  }

  /** Standardized locations `[N·H·W, C]` of maps. */
  locations(maps: readonly FeatureMap[]): tf.Tensor2D {
    const [C, H, W] = this.dims;
    return tf.tensor2d(toLocations(maps, this.mean, this.std), [maps.length * H * W, C]);
  }

  /** Embeddings `[M, E]` of locations `[M, C]`; `training` uses batch statistics and returns them. */
  embed(
    x: tf.Tensor2D,
    training: boolean,
  ): { e: tf.Tensor2D; batchMean?: tf.Tensor1D; batchVar?: tf.Tensor1D } {
    const v = this.vars;
    const h = tf.add(tf.matMul(x, v.w1), v.b1) as tf.Tensor2D;
    let mu: tf.Tensor1D;
    let variance: tf.Tensor1D;
    if (training) {
      const m = tf.moments(h, 0);
      mu = m.mean as tf.Tensor1D;
      variance = m.variance as tf.Tensor1D;
    } else {
      mu = this.fixed.runMean as tf.Tensor1D;
      variance = this.fixed.runVar as tf.Tensor1D;
    }
    const bn = tf.batchNorm(h, mu, variance, v.beta as tf.Tensor1D, v.gamma as tf.Tensor1D, BN_EPS);
    const e = tf.add(tf.matMul(tf.relu(bn), v.w2), v.b2) as tf.Tensor2D;
    return training ? { e, batchMean: mu, batchVar: variance } : { e };
  }

  /** Unit-norm pooled embeddings `[N, h'·w', E]` of maps, as one Float32Array (inference mode). */
  async embedMaps(maps: readonly FeatureMap[]): Promise<Float32Array> {
    const t = tf.tidy(() => {
      const e = this.pool(this.embed(this.locations(maps), false).e, maps.length);
      return tf.div(e, tf.add(tf.norm(e, 'euclidean', 1, true), 1e-8));
    });
    const out = Float32Array.from(await t.data());
    t.dispose();
    return out;
  }

  /**
   * Anomaly scores: per image the max over locations, and per-location maps `[h', w']` (`grid`: the input grid
   * after the pool) of `min_k (1 − cos(e, c_k))` (in [0, 2]).
   */
  async predict(maps: readonly FeatureMap[]): Promise<{ scores: Float32Array; heatmaps: Float32Array[] }> {
    if (this.centroids.length === 0)
      throw new InvalidArgumentError('CSE head centroids', 'fitted (train the head first)', 0);
    const hw = this.grid[0] * this.grid[1];
    const E = this.options.embedDim;
    const scores = new Float32Array(maps.length);
    const heatmaps: Float32Array[] = [];
    // Chunks bound memory on big evaluation sets.
    for (let s = 0; s < maps.length; s += 64) {
      const chunk = maps.slice(s, s + 64);
      const emb = await this.embedMaps(chunk);
      chunk.forEach((_, i) => {
        const map = new Float32Array(hw);
        let best = -Infinity;
        for (let p = 0; p < hw; p++) {
          const off = (i * hw + p) * E;
          let d = Infinity;
          for (const c of this.centroids) {
            let dot = 0;
            for (let j = 0; j < E; j++) dot += emb[off + j] * c[j];
            d = Math.min(d, 1 - dot);
          }
          map[p] = d;
          if (d > best) best = d;
        }
        scores[s + i] = best;
        heatmaps.push(map);
      });
    }
    return { scores, heatmaps };
  }

  /** Fits the centroids on normal maps (spherical k-means, k-means++ seeding). */
  async fitCentroids(normals: readonly FeatureMap[], rng: Rng): Promise<void> {
    const E = this.options.embedDim;
    const emb = await this.embedMaps(normals);
    this.centroids = sphericalKMeans(emb, E, this.options.k, rng);
  }

  toArtifacts(): Promise<HeadArtifacts> {
    return encodeHead(
      'cse',
      {
        dims: [...this.dims],
        options: this.options,
        mean: Array.from(this.mean),
        std: Array.from(this.std),
        centroids: this.centroids.map((c) => Array.from(c)),
      },
      { ...this.vars, ...this.fixed },
    );
  }

  static fromArtifacts(a: HeadArtifacts): CseHead {
    const t = decodeHead(a, 'cse');
    const c = a.config as {
      dims: [number, number, number];
      options: CseOptions;
      mean: number[];
      std: number[];
      centroids: number[][];
    };
    const trainable = ['w1', 'b1', 'gamma', 'beta', 'w2', 'b2'];
    const vars: Record<string, tf.Variable> = {};
    const fixed: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(t)) {
      if (trainable.includes(k)) vars[k] = tf.variable(v);
      else fixed[k] = tf.variable(v, false);
    }
    // tf.variable keeps its initial tensor alive beside the variable: dispose those, keep the variables.
    for (const v of Object.values(t)) v.dispose();
    return new CseHead(
      c.dims,
      { ...CSE_LEGACY, ...c.options },
      Float32Array.from(c.mean),
      Float32Array.from(c.std),
      vars,
      fixed,
      c.centroids.map((x) => Float32Array.from(x)),
    );
  }

  async weights(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries({ ...this.vars, ...this.fixed }))
      out[k] = Float32Array.from(await v.data());
    return out;
  }

  dispose(): void {
    for (const v of [...Object.values(this.vars), ...Object.values(this.fixed)]) v.dispose();
    this.poolT?.dispose();
  }
}

/**
 * Spherical k-means on unit rows `[M, E]`: k-means++ seeding (cosine distance), 20 Lloyd iterations, centroids
 * re-normalized. Returns k unit vectors.
 */
export function sphericalKMeans(
  rows: Float32Array,
  dim: number,
  k: number,
  rng: Rng,
  iterations = 20,
): Float32Array[] {
  const m = rows.length / dim;
  if (m < 1) throw new InvalidArgumentError('k-means rows', 'at least one embedding', m);
  const kk = Math.min(k, m);
  const dot = (i: number, c: Float32Array) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += rows[i * dim + j] * c[j];
    return s;
  };
  const normalize = (v: Float32Array) => {
    const n = Math.hypot(...v) || 1;
    for (let j = 0; j < dim; j++) v[j] /= n;
    return v;
  };
  if (kk === 1) {
    // k = 1 has a closed form: the normalized mean direction.
    const mean = new Float32Array(dim);
    for (let i = 0; i < m; i++) for (let j = 0; j < dim; j++) mean[j] += rows[i * dim + j];
    return [normalize(mean)];
  }
  const first = rng.int(0, m);
  const centroids: Float32Array[] = [Float32Array.from(rows.subarray(first * dim, (first + 1) * dim))];
  const dist = new Float64Array(m);
  while (centroids.length < kk) {
    let total = 0;
    for (let i = 0; i < m; i++) {
      let d = Infinity;
      for (const c of centroids) d = Math.min(d, Math.max(0, 1 - dot(i, c)));
      dist[i] = d * d;
      total += dist[i];
    }
    let r = rng.next() * total;
    let pick = m - 1;
    for (let i = 0; i < m; i++) {
      r -= dist[i];
      if (r <= 0) {
        pick = i;
        break;
      }
    }
    centroids.push(Float32Array.from(rows.subarray(pick * dim, (pick + 1) * dim)));
  }
  const assign = new Int32Array(m);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < m; i++) {
      let best = -Infinity;
      for (let c = 0; c < kk; c++) {
        const s = dot(i, centroids[c]);
        if (s > best) {
          best = s;
          assign[i] = c;
        }
      }
    }
    const sums = centroids.map(() => new Float32Array(dim));
    for (let i = 0; i < m; i++) for (let j = 0; j < dim; j++) sums[assign[i]][j] += rows[i * dim + j];
    sums.forEach((s, c) => {
      if (s.some((v) => v !== 0)) centroids[c] = normalize(s);
    });
  }
  return centroids;
}

/** The step's inputs, made once per batch of pairs. */
interface PairBatch {
  xa: tf.Tensor2D;
  xb: tf.Tensor2D;
  /** Pooled per-location defect labels `[P·h'·w']`. */
  dt: tf.Tensor1D;
  P: number;
  nDef: number;
  nSim: number;
}

function pairBatch(head: CseHead, batch: readonly CsePair[]): PairBatch {
  const [, h, w] = head.dims;
  const P = batch.length;
  const raw = new Float32Array(P * h * w);
  batch.forEach((p, i) => raw.set(p.defect, i * h * w));
  const defect = poolDefects(raw, P, h, w, head.options.pool);
  let nDef = 0;
  for (const v of defect) nDef += v;
  return {
    xa: head.locations(batch.map((p) => p.anchor)),
    xb: head.locations(batch.map((p) => p.other)),
    dt: tf.tensor1d(defect),
    P,
    nDef,
    nSim: defect.length - nDef,
  };
}

function disposeBatch(b: PairBatch): void {
  b.xa.dispose();
  b.xb.dispose();
  b.dt.dispose();
}

/**
 * The loss of a batch of pairs: anchors and others go through the embedder as one batch (so BatchNorm statistics
 * span both images of each pair), the reconstruction term covers the anchors (defect-free) or both, and the
 * cosine contrast compares the pooled embeddings location by location.
 */
function pairLoss(head: CseHead, b: PairBatch, training: boolean) {
  const o = head.options;
  const x = tf.concat([b.xa, b.xb], 0) as tf.Tensor2D;
  const { e, batchMean, batchVar } = head.embed(x, training);
  const n = b.xa.shape[0];
  const reconIn = o.reconstruction === 'normal' ? tf.slice(e, [0, 0], [n, -1]) : e;
  const reconTarget = o.reconstruction === 'normal' ? b.xa : x;
  const recon = tf.mean(tf.square(tf.sub(tf.matMul(reconIn, head.fixed.wd), reconTarget))) as tf.Scalar;
  const pa = head.pool(tf.slice(e, [0, 0], [n, -1]) as tf.Tensor2D, b.P);
  const pb = head.pool(tf.slice(e, [n, 0], [n, -1]) as tf.Tensor2D, b.P);
  const unit = (t: tf.Tensor2D) => tf.div(t, tf.add(tf.norm(t, 'euclidean', 1, true), 1e-8));
  const cos = tf.sum(tf.mul(unit(pa), unit(pb)), 1);
  // Similar and defect locations are averaged separately: defects cover a few % of locations only.
  const simTerm = b.nSim > 0 ? tf.div(tf.sum(tf.mul(tf.sub(1, cos), tf.sub(1, b.dt))), b.nSim) : tf.scalar(0);
  const defTerm =
    b.nDef > 0 ? tf.div(tf.sum(tf.mul(tf.relu(tf.sub(cos, o.margin)), b.dt)), b.nDef) : tf.scalar(0);
  const contrastive = tf.add(simTerm, defTerm) as tf.Scalar;
  const total = tf.add(contrastive, tf.mul(recon, o.lambda)) as tf.Scalar;
  return { total, contrastive, recon, batchMean, batchVar };
}

/** Extra inputs of `trainCseHead`. */
export interface CseTrainExtras {
  /**
   * Pairs made from held-out normals: each epoch ends with their loss (inference mode), reported as `valLoss`;
   * with `bestCheckpoint` the weights of the epoch with the lowest one are kept. Drawn once (a fixed set of
   * `2 · pairsPerStep` pairs), so epochs are compared on the same pairs.
   */
  validation?: CsePairSource;
}

/** The result of `trainCseHead`: `bestEpoch` is the epoch whose weights the head holds (1-based). */
export type CseTrainResult = TrainResult<CseHead> & { bestEpoch: number };

/**
 * Trains a CSE head. `normals` (normal training maps) give the channel statistics and the k-means centroids;
 * `pairs` supplies training pairs (see `makeCsePairSource`).
 */
export async function trainCseHead(
  normals: readonly FeatureMap[],
  pairs: CsePairSource,
  options: Partial<CseOptions> = {},
  hooks: TrainHooks = {},
  extras: CseTrainExtras = {},
): Promise<CseTrainResult> {
  const o = cseOptions(options);
  if (normals.length < 1) throw new InvalidArgumentError('normals', 'at least one normal feature map', 0);
  const rng = new Rng(`cse:${o.seed}`);
  const { mean, std } = channelStats(normals);
  const head = CseHead.create(normals[0].dims, o, mean, std, rng.fork('init'));
  const pairRng = rng.fork('pairs');
  const total = o.epochs * o.stepsPerEpoch;
  const lrAt = (step: number) =>
    o.schedule === 'one-cycle' ? oneCycleLr(step, total, o.learningRate) : o.learningRate;
  const optimizer = tf.train.adam(lrAt(0));
  // tfjs's Adam reads its (protected) learning rate at every step: the schedule sets it before each one.
  const setLr = (lr: number) => ((optimizer as unknown as { learningRate: number }).learningRate = lr);
  const trainable = Object.values(head.vars);
  const history: EpochReport[] = [];
  let stopped: 'completed' | 'cancelled' = 'completed';
  let val: PairBatch | null = null;
  let best: { loss: number; epoch: number; weights: Record<string, tf.Tensor> } | null = null;
  let step = 0;
  try {
    if (extras.validation) {
      const valRng = rng.fork('validation');
      const vp: CsePair[] = [];
      for (let i = 0; i < 2 * o.pairsPerStep; i++) vp.push(await extras.validation(valRng));
      val = pairBatch(head, vp);
    }
    for (let epoch = 0; epoch < o.epochs && stopped === 'completed'; epoch++) {
      const t0 = performance.now();
      let sumLoss = 0;
      let sumC = 0;
      let sumR = 0;
      for (let s = 0; s < o.stepsPerEpoch; s++) {
        if (hooks.signal?.aborted) {
          stopped = 'cancelled';
          break;
        }
        const batch: CsePair[] = [];
        for (let i = 0; i < o.pairsPerStep; i++) batch.push(await pairs(pairRng));
        const b = pairBatch(head, batch);
        setLr(lrAt(step++));
        let kept: tf.Tensor[] = [];
        const cost = optimizer.minimize(
          () => {
            const l = pairLoss(head, b, true);
            kept = [l.contrastive, l.recon, l.batchMean!, l.batchVar!].map((t) => tf.keep(t));
            return l.total;
          },
          true,
          trainable,
        );
        const [kc, kr, bm, bv] = kept;
        // Running BatchNorm statistics follow the batches, outside the gradient.
        tf.tidy(() => {
          head.fixed.runMean.assign(
            tf.add(tf.mul(head.fixed.runMean, BN_MOMENTUM), tf.mul(bm, 1 - BN_MOMENTUM)),
          );
          head.fixed.runVar.assign(
            tf.add(tf.mul(head.fixed.runVar, BN_MOMENTUM), tf.mul(bv, 1 - BN_MOMENTUM)),
          );
        });
        sumC += (await kc.data())[0];
        sumR += (await kr.data())[0];
        kept.forEach((t) => t.dispose());
        sumLoss += cost ? (await cost.data())[0] : 0;
        cost?.dispose();
        disposeBatch(b);
        await yieldToEventLoop();
      }
      if (stopped === 'cancelled' && sumLoss === 0) break;
      const steps = o.stepsPerEpoch;
      const r: EpochReport = {
        epoch: epoch + 1,
        epochs: o.epochs,
        loss: sumLoss / steps,
        parts: { contrastive: sumC / steps, reconstruction: sumR / steps },
        ms: performance.now() - t0,
      };
      if (val) {
        const v = val;
        const t = tf.tidy(() => pairLoss(head, v, false).total);
        r.valLoss = (await t.data())[0];
        t.dispose();
        if (o.bestCheckpoint && (best === null || r.valLoss < best.loss)) {
          for (const w of Object.values(best?.weights ?? {})) w.dispose();
          const weights: Record<string, tf.Tensor> = {};
          for (const [k, w] of Object.entries({ ...head.vars, ...head.fixed })) weights[k] = tf.clone(w);
          best = { loss: r.valLoss, epoch: epoch + 1, weights };
        }
      }
      history.push(r);
      hooks.onEpoch?.(r);
    }
    let bestEpoch = history.length;
    if (best) {
      for (const [k, w] of Object.entries({ ...head.vars, ...head.fixed })) w.assign(best.weights[k]);
      bestEpoch = best.epoch;
    }
    await head.fitCentroids(normals, rng.fork('kmeans'));
    return { head, history, stopped, bestEpoch };
  } catch (e) {
    head.dispose();
    throw e;
  } finally {
    optimizer.dispose();
    if (val) disposeBatch(val);
    for (const w of Object.values(best?.weights ?? {})) w.dispose();
  }
}

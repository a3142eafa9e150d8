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
}

/** The defaults are the core head-option schema's, so the Train tab, the grid and the head agree. */
export const CSE_DEFAULTS: CseOptions = { ...CORE_CSE_DEFAULTS };

export function cseOptions(o: Partial<CseOptions> = {}): CseOptions {
  const r = { ...CSE_DEFAULTS, ...o };
  for (const k of ['hidden', 'embedDim', 'epochs', 'stepsPerEpoch', 'pairsPerStep', 'k'] as const)
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new InvalidArgumentError(k, 'an integer ≥ 1', r[k]);
  if (!(r.lambda >= 0)) throw new InvalidArgumentError('lambda', '≥ 0', r.lambda);
  if (!(r.learningRate > 0)) throw new InvalidArgumentError('learningRate', '> 0', r.learningRate);
  if (!(r.margin >= -1 && r.margin < 1)) throw new InvalidArgumentError('margin', 'in [-1, 1)', r.margin);
  return r;
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
  ) {}

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

  /** Unit-norm embeddings `[N, H·W, E]` of maps, as one Float32Array (inference mode). */
  async embedMaps(maps: readonly FeatureMap[]): Promise<Float32Array> {
    const t = tf.tidy(() => {
      const { e } = this.embed(this.locations(maps), false);
      return tf.div(e, tf.add(tf.norm(e, 'euclidean', 1, true), 1e-8));
    });
    const out = Float32Array.from(await t.data());
    t.dispose();
    return out;
  }

  /**
   * Anomaly scores: per image the max over locations, and per-location maps `[H, W]` of
   * `min_k (1 − cos(e, c_k))` (in [0, 2]).
   */
  async predict(maps: readonly FeatureMap[]): Promise<{ scores: Float32Array; heatmaps: Float32Array[] }> {
    if (this.centroids.length === 0)
      throw new InvalidArgumentError('CSE head centroids', 'fitted (train the head first)', 0);
    const [, H, W] = this.dims;
    const hw = H * W;
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
    return new CseHead(
      c.dims,
      c.options,
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

/**
 * Trains a CSE head. `normals` (normal training maps) give the channel statistics and the k-means centroids;
 * `pairs` supplies training pairs (see `makeCsePairSource`).
 */
export async function trainCseHead(
  normals: readonly FeatureMap[],
  pairs: CsePairSource,
  options: Partial<CseOptions> = {},
  hooks: TrainHooks = {},
): Promise<TrainResult<CseHead>> {
  const o = cseOptions(options);
  if (normals.length < 1) throw new InvalidArgumentError('normals', 'at least one normal feature map', 0);
  const rng = new Rng(`cse:${o.seed}`);
  const { mean, std } = channelStats(normals);
  const head = CseHead.create(normals[0].dims, o, mean, std, rng.fork('init'));
  const pairRng = rng.fork('pairs');
  const optimizer = tf.train.adam(o.learningRate);
  const trainable = Object.values(head.vars);
  const history: EpochReport[] = [];
  let stopped: 'completed' | 'cancelled' = 'completed';
  const hw = normals[0].dims[1] * normals[0].dims[2];
  try {
    for (let epoch = 0; epoch < o.epochs && stopped === 'completed'; epoch++) {
      const t0 = performance.now();
      let sumLoss = 0;
      let sumC = 0;
      let sumR = 0;
      for (let step = 0; step < o.stepsPerEpoch; step++) {
        if (hooks.signal?.aborted) {
          stopped = 'cancelled';
          break;
        }
        const batch: CsePair[] = [];
        for (let i = 0; i < o.pairsPerStep; i++) batch.push(await pairs(pairRng));
        const P = batch.length;
        const defect = new Float32Array(P * hw);
        batch.forEach((p, i) => defect.set(p.defect, i * hw));
        let nDef = 0;
        for (const v of defect) nDef += v;
        const nSim = defect.length - nDef;
        const xa = head.locations(batch.map((p) => p.anchor));
        const xb = head.locations(batch.map((p) => p.other));
        const dt = tf.tensor1d(defect);
        let kept: tf.Tensor[] = [];
        const cost = optimizer.minimize(
          () => {
            const x = tf.concat([xa, xb], 0) as tf.Tensor2D;
            const { e, batchMean, batchVar } = head.embed(x, true);
            const recon = tf.mean(tf.square(tf.sub(tf.matMul(e, head.fixed.wd), x)));
            const n = P * hw;
            const unit = tf.div(e, tf.add(tf.norm(e, 'euclidean', 1, true), 1e-8));
            const ua = tf.slice(unit, [0, 0], [n, -1]);
            const ub = tf.slice(unit, [n, 0], [n, -1]);
            const cos = tf.sum(tf.mul(ua, ub), 1);
            // Similar and defect locations are averaged separately: defects cover a few % of locations only.
            const simTerm =
              nSim > 0 ? tf.div(tf.sum(tf.mul(tf.sub(1, cos), tf.sub(1, dt))), nSim) : tf.scalar(0);
            const defTerm =
              nDef > 0 ? tf.div(tf.sum(tf.mul(tf.relu(tf.sub(cos, o.margin)), dt)), nDef) : tf.scalar(0);
            const contrastive = tf.add(simTerm, defTerm);
            kept = [contrastive, recon, batchMean!, batchVar!].map((t) => tf.keep(t));
            return tf.add(contrastive, tf.mul(recon, o.lambda)) as tf.Scalar;
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
        xa.dispose();
        xb.dispose();
        dt.dispose();
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
      history.push(r);
      hooks.onEpoch?.(r);
    }
    await head.fitCentroids(normals, rng.fork('kmeans'));
    return { head, history, stopped };
  } catch (e) {
    head.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
}

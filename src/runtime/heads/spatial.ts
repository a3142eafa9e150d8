/**
 * Spatial head on a backbone feature map: per-channel standardize → 1×1 conv (C → 1) → logit map `[H, W]` →
 * image logit `a · max(map) + b · mean(map) + c` (max catches small defects, mean large ones; a, b learned).
 * The logit map is the defect heat map (PRO, UI overlay). Input maps `[C, H, W]`, all the same size.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { tf } from '../tf.ts';
import type { TrainResult } from './bce.ts';
import {
  type HeadArtifacts,
  type SupervisedOptions,
  type TrainHooks,
  decodeHead,
  encodeHead,
  fitBinary,
  glorotUniform,
  supervisedOptions,
} from './common.ts';

/** A feature map `[C, H, W]`, planar. */
export interface FeatureMap {
  data: Float32Array;
  dims: readonly [number, number, number];
}

/** Per-channel mean/std over every location of every map. */
export function channelStats(maps: readonly FeatureMap[]): { mean: Float32Array; std: Float32Array } {
  const [C, H, W] = maps[0].dims;
  const hw = H * W;
  const sum = new Float64Array(C);
  const sq = new Float64Array(C);
  for (const m of maps)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < hw; p++) {
        const v = m.data[c * hw + p];
        sum[c] += v;
        sq[c] += v * v;
      }
  const n = maps.length * hw;
  const mean = new Float32Array(C);
  const std = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    mean[c] = sum[c] / n;
    std[c] = Math.max(1e-6, Math.sqrt(Math.max(0, sq[c] / n - mean[c] * mean[c])));
  }
  return { mean, std };
}

/** Maps `[N × [C, H, W]]` → standardized location-major buffer `[N, H·W, C]`. */
export function toLocations(
  maps: readonly FeatureMap[],
  mean: Float32Array,
  std: Float32Array,
): Float32Array {
  const [C, H, W] = maps[0].dims;
  const hw = H * W;
  const out = new Float32Array(maps.length * hw * C);
  maps.forEach((m, i) => {
    if (m.dims[0] !== C || m.dims[1] !== H || m.dims[2] !== W)
      throw new InvalidArgumentError(`maps[${i}].dims`, `[${C}, ${H}, ${W}] like maps[0]`, m.dims);
    const base = i * hw * C;
    for (let c = 0; c < C; c++) {
      const mu = mean[c];
      const inv = 1 / std[c];
      for (let p = 0; p < hw; p++) out[base + p * C + c] = (m.data[c * hw + p] - mu) * inv;
    }
  });
  return out;
}

export class SpatialHead {
  readonly kind = 'spatial' as const;
  private constructor(
    readonly dims: readonly [number, number, number],
    private readonly mean: Float32Array,
    private readonly std: Float32Array,
    /** w [C, 1], b [1] (the 1×1 conv); pool [2] (max, mean weights), c [1]. */
    readonly vars: Record<string, tf.Variable>,
  ) {}

  static create(
    dims: readonly [number, number, number],
    mean: Float32Array,
    std: Float32Array,
    rng: Rng,
  ): SpatialHead {
    const C = dims[0];
    // Made inside tidy: tf.variable keeps its initial tensor alive beside the variable otherwise.
    const vars = tf.tidy(() => ({
      w: tf.variable(tf.tensor2d(glorotUniform(rng, C, 1), [C, 1])),
      b: tf.variable(tf.zeros([1])),
      pool: tf.variable(tf.tensor1d([0.5, 0.5])),
      c: tf.variable(tf.zeros([1])),
    }));
    return new SpatialHead(dims, mean, std, vars);
  }

  input(maps: readonly FeatureMap[]): tf.Tensor3D {
    const [C, H, W] = this.dims;
    return tf.tensor3d(toLocations(maps, this.mean, this.std), [maps.length, H * W, C]);
  }

  /** Logit maps `[N, H·W]` of a standardized batch `[N, H·W, C]`. */
  logitMap(x: tf.Tensor): tf.Tensor2D {
    const [C, H, W] = this.dims;
    const n = x.shape[0];
    const flat = tf.reshape(x, [n * H * W, C]) as tf.Tensor2D;
    return tf.reshape(tf.add(tf.matMul(flat, this.vars.w), this.vars.b), [n, H * W]);
  }

  /** Image logits `[N]`. */
  forward(x: tf.Tensor): tf.Tensor1D {
    const map = this.logitMap(x);
    const pooled = tf.stack([tf.max(map, 1), tf.mean(map, 1)], 1) as tf.Tensor2D; // [N, 2]
    return tf.add(tf.reshape(tf.matMul(pooled, tf.reshape(this.vars.pool, [2, 1])), [-1]), this.vars.c);
  }

  /** Image defect probabilities `[N]` and logit heat maps (`[H, W]` each). */
  async predict(maps: readonly FeatureMap[]): Promise<{ scores: Float32Array; heatmaps: Float32Array[] }> {
    const [, H, W] = this.dims;
    if (maps.length === 0) return { scores: new Float32Array(0), heatmaps: [] };
    const [p, m] = tf.tidy(() => {
      const x = this.input(maps);
      return [tf.sigmoid(this.forward(x)), this.logitMap(x)];
    });
    const scores = Float32Array.from(await p.data());
    const all = await m.data();
    p.dispose();
    m.dispose();
    const heatmaps = maps.map((_, i) => Float32Array.from(all.subarray(i * H * W, (i + 1) * H * W)));
    return { scores, heatmaps };
  }

  async weights(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(this.vars)) out[k] = Float32Array.from(await v.data());
    return out;
  }

  toArtifacts(): Promise<HeadArtifacts> {
    return encodeHead(
      'spatial',
      { dims: [...this.dims], mean: Array.from(this.mean), std: Array.from(this.std) },
      this.vars,
    );
  }

  static fromArtifacts(a: HeadArtifacts): SpatialHead {
    const t = decodeHead(a, 'spatial');
    const c = a.config as { dims: [number, number, number]; mean: number[]; std: number[] };
    const vars: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(t)) vars[k] = tf.variable(v);
    // tf.variable keeps its initial tensor alive beside the variable: dispose those, keep the variables.
    for (const v of Object.values(t)) v.dispose();
    return new SpatialHead(c.dims, Float32Array.from(c.mean), Float32Array.from(c.std), vars);
  }

  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
  }
}

/** Trains a spatial head on feature maps `[C, H, W]` with image labels (0 normal, 1 defect). */
export async function trainSpatialHead(
  maps: readonly FeatureMap[],
  labels: ArrayLike<number>,
  options: Partial<SupervisedOptions> = {},
  hooks: TrainHooks = {},
): Promise<TrainResult<SpatialHead>> {
  const o = supervisedOptions(options);
  if (maps.length !== labels.length)
    throw new InvalidArgumentError('labels.length', `${maps.length} (one per map)`, labels.length);
  if (maps.length < 2) throw new InvalidArgumentError('maps', 'at least 2 feature maps', maps.length);
  const rng = new Rng(`spatial:${o.seed}`);
  const { mean, std } = channelStats(maps);
  const head = SpatialHead.create(maps[0].dims, mean, std, rng.fork('init'));
  const x = head.input(maps);
  try {
    const fit = await fitBinary(
      {
        labels,
        batch: (idx) => tf.gather(x, Int32Array.from(idx)),
        forward: (t) => head.forward(t),
        variables: Object.values(head.vars),
        options: o,
        rng: rng.fork('train'),
      },
      hooks,
    );
    return { head, history: fit.history, stopped: fit.stopped };
  } catch (e) {
    head.dispose();
    throw e;
  } finally {
    x.dispose();
  }
}

/**
 * BCE classifier head on pooled features: standardize → (linear | Linear-ReLU-Linear) → logit; score = sigmoid.
 * Input `[N, D]` rows, output `[N]` defect probabilities.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { tf } from '../tf.ts';
import {
  type EpochReport,
  type HeadArtifacts,
  type SupervisedOptions,
  type TrainHooks,
  columnStats,
  decodeHead,
  encodeHead,
  fitBinary,
  fitBinaryWith,
  glorotUniform,
  supervisedOptions,
} from './common.ts';
import { linearStepper } from './linear-trainer.ts';
import { mlpStepper } from './mlp-trainer.ts';

export interface TrainResult<H> {
  head: H;
  history: EpochReport[];
  stopped: 'completed' | 'early' | 'cancelled';
}

export class BceHead {
  readonly kind = 'bce' as const;
  private constructor(
    readonly dim: number,
    readonly hidden: number,
    private readonly mean: Float32Array,
    private readonly std: Float32Array,
    /** w1 [D, H], b1 [H], w2 [H, 1], b2 [1] with a hidden layer; w2 [D, 1], b2 [1] without. */
    readonly vars: Record<string, tf.Variable>,
  ) {}

  static create(dim: number, hidden: number, mean: Float32Array, std: Float32Array, rng: Rng): BceHead {
    const vars: Record<string, tf.Variable> = {};
    // tf.variable keeps its initial tensor alive beside the variable: made inside tidy, the initial tensors are
    // disposed and only the variables are kept (the full-size long session found them left per grid cell).
    tf.tidy(() => {
      if (hidden > 0) {
        vars.w1 = tf.variable(tf.tensor2d(glorotUniform(rng, dim, hidden), [dim, hidden]));
        vars.b1 = tf.variable(tf.zeros([hidden]));
        vars.w2 = tf.variable(tf.tensor2d(glorotUniform(rng, hidden, 1), [hidden, 1]));
      } else {
        // Logistic regression is convex, so zero init loses nothing and makes the first Adam steps move every
        // weight along its own gradient sign, which matters with the small default lr (1e-4).
        vars.w2 = tf.variable(tf.zeros([dim, 1]));
      }
      vars.b2 = tf.variable(tf.zeros([1]));
    });
    return new BceHead(dim, hidden, mean, std, vars);
  }

  /** Rows `[N, D]` → standardized tensor `[N, D]`. */
  input(rows: readonly Float32Array[]): tf.Tensor2D {
    const n = rows.length;
    const buf = new Float32Array(n * this.dim);
    rows.forEach((r, i) => {
      if (r.length !== this.dim)
        throw new InvalidArgumentError(`features[${i}].length`, String(this.dim), r.length);
      for (let j = 0; j < this.dim; j++) buf[i * this.dim + j] = (r[j] - this.mean[j]) / this.std[j];
    });
    return tf.tensor2d(buf, [n, this.dim]);
  }

  /** Logits `[N]` of a standardized batch `[N, D]`. */
  forward(x: tf.Tensor): tf.Tensor1D {
    let h = x as tf.Tensor2D;
    if (this.hidden > 0) h = tf.relu(tf.add(tf.matMul(h, this.vars.w1), this.vars.b1)) as tf.Tensor2D;
    return tf.reshape(tf.add(tf.matMul(h, this.vars.w2), this.vars.b2), [-1]);
  }

  /** Defect probabilities `[N]` for feature rows `[N, D]`. */
  async predict(rows: readonly Float32Array[]): Promise<Float32Array> {
    if (rows.length === 0) return new Float32Array(0);
    const p = tf.tidy(() => tf.sigmoid(this.forward(this.input(rows))));
    const out = (await p.data()) as Float32Array;
    p.dispose();
    return Float32Array.from(out);
  }

  async weights(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(this.vars)) out[k] = Float32Array.from(await v.data());
    return out;
  }

  toArtifacts(): Promise<HeadArtifacts> {
    return encodeHead(
      'bce',
      { dim: this.dim, hidden: this.hidden, mean: Array.from(this.mean), std: Array.from(this.std) },
      this.vars,
    );
  }

  static fromArtifacts(a: HeadArtifacts): BceHead {
    const t = decodeHead(a, 'bce');
    const c = a.config as { dim: number; hidden: number; mean: number[]; std: number[] };
    const vars: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(t)) vars[k] = tf.variable(v);
    // tf.variable keeps its initial tensor alive beside the variable: dispose those, keep the variables.
    for (const v of Object.values(t)) v.dispose();
    return new BceHead(c.dim, c.hidden, Float32Array.from(c.mean), Float32Array.from(c.std), vars);
  }

  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
  }
}

/**
 * Trains a BCE head on pooled feature rows `[N, D]` with labels (0 normal, 1 defect).
 * Defaults: linear, Adam lr 1e-4, batch 32, 50 epochs, class weighting, 20 % validation, patience 10.
 * Both the linear and the MLP head train on typed arrays (`linear-trainer.ts`, `mlp-trainer.ts`).
 */
export function trainBceHead(
  features: readonly Float32Array[],
  labels: ArrayLike<number>,
  options: Partial<SupervisedOptions> = {},
  hooks: TrainHooks = {},
): Promise<TrainResult<BceHead>> {
  return trainBceHeadWith('typed-array', features, labels, options, hooks);
}

/**
 * `trainBceHead` on a chosen trainer: `'typed-array'` (what the app uses) or `'tfjs'` (`fitBinary`'s tfjs
 * stepper: the same init, batches, loss and Adam in tfjs ops — the reference the typed-array trainers are
 * checked against, and what the heads bench compares them with).
 */
export async function trainBceHeadWith(
  trainer: 'typed-array' | 'tfjs',
  features: readonly Float32Array[],
  labels: ArrayLike<number>,
  options: Partial<SupervisedOptions> = {},
  hooks: TrainHooks = {},
): Promise<TrainResult<BceHead>> {
  const o = supervisedOptions(options);
  if (features.length !== labels.length)
    throw new InvalidArgumentError(
      'labels.length',
      `${features.length} (one per feature row)`,
      labels.length,
    );
  if (features.length < 2) throw new InvalidArgumentError('features', 'at least 2 rows', features.length);
  const dim = features[0].length;
  const rng = new Rng(`bce:${o.seed}`);
  const { mean, std } = columnStats(features, dim);
  const head = BceHead.create(dim, o.hidden, mean, std, rng.fork('init'));
  if (trainer === 'typed-array' && o.hidden > 0) {
    // Starts from the head's own initial weights (same draws as the tfjs path), ends in its variables.
    const init = await head.weights();
    const stepper = mlpStepper({
      x: standardized(features, mean, std, dim),
      dim,
      hidden: o.hidden,
      learningRate: o.learningRate,
      init: { w1: init.w1, b1: init.b1, w2: init.w2, b2: init.b2 },
    });
    try {
      const fit = await fitBinaryWith(stepper, labels, o, rng.fork('train'), hooks);
      const w = stepper.weights();
      assignFrom(head.vars.w1, tf.tensor2d(w.w1, [dim, o.hidden]));
      assignFrom(head.vars.b1, tf.tensor1d(w.b1));
      assignFrom(head.vars.w2, tf.tensor2d(w.w2, [o.hidden, 1]));
      assignFrom(head.vars.b2, tf.tensor1d(w.b2));
      return { head, history: fit.history, stopped: fit.stopped };
    } catch (e) {
      head.dispose();
      throw e;
    }
  }
  if (trainer === 'typed-array' && o.hidden === 0) {
    // The linear head trains on typed arrays (linear-trainer.ts says why); the result goes into its variables.
    const stepper = linearStepper({
      x: standardized(features, mean, std, dim),
      dim,
      learningRate: o.learningRate,
    });
    try {
      const fit = await fitBinaryWith(stepper, labels, o, rng.fork('train'), hooks);
      const { w, b } = stepper.weights();
      assignFrom(head.vars.w2, tf.tensor2d(w, [dim, 1]));
      assignFrom(head.vars.b2, tf.tensor1d([b]));
      return { head, history: fit.history, stopped: fit.stopped };
    } catch (e) {
      head.dispose();
      throw e;
    }
  }
  const x = head.input(features);
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

/**
 * `v.assign(t)`, then `t` disposed: a variable takes its own reference to the data, and the tensor made to carry
 * the typed-array trainer's weights would otherwise stay live (the long session found 4 per MLP head).
 */
function assignFrom(v: tf.Variable, t: tf.Tensor): void {
  v.assign(t);
  t.dispose();
}

/** Rows `[N, D]` → one row-major standardized buffer (the same arithmetic as `BceHead.input`). */
function standardized(
  rows: readonly Float32Array[],
  mean: Float32Array,
  std: Float32Array,
  dim: number,
): Float32Array {
  const buf = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new InvalidArgumentError(`features[${i}].length`, String(dim), r.length);
    for (let j = 0; j < dim; j++) buf[i * dim + j] = (r[j] - mean[j]) / std[j];
  });
  return buf;
}

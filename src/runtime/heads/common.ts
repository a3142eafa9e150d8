/**
 * What the three heads share: options, seeded initializers, the minibatch training loop with class weighting and
 * early stopping, and (de)serialization to tfjs weight artifacts (the stored form; the tfjs layers-model export
 * is `export.ts`).
 *
 * tfjs-core has no layers API, so heads are explicit `tf.Variable`s updated by `tf.train.adam`. Every random
 * draw (init, split, shuffling) comes from one seeded `Rng`, and the CPU/WASM kernels are deterministic, so the
 * same seed gives the same weights.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { SUPERVISED_DEFAULTS as CORE_SUPERVISED_DEFAULTS } from '../../core/experiments/head-options.ts';
import { averagePrecision } from '../../core/metrics/index.ts';
import type { CancelSignal } from '../../core/progress.ts';
import { yieldToEventLoop } from '../../core/progress.ts';
import type { Rng } from '../../core/rng.ts';
import { tf, tfWasmThreads } from '../tf.ts';
import { withCores } from '../threads.ts';

// One declaration of the trained heads' kinds: the experiment runner's.
export type { HeadKind } from '../../core/experiments/types.ts';
import type { HeadKind } from '../../core/experiments/types.ts';

/** One epoch's numbers, for live curves. */
export interface EpochReport {
  epoch: number;
  epochs: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Validation loss (BCE heads with a validation split). */
  valLoss?: number;
  /** Validation AP (BCE heads with both classes in the validation split). */
  valAp?: number;
  /** Head-specific parts of the loss (CSE: contrastive, reconstruction). */
  parts?: Record<string, number>;
  ms: number;
}

export interface TrainHooks {
  onEpoch?: (r: EpochReport) => void;
  /** Stops training after the current step; the head trained so far (best weights) is returned. */
  signal?: CancelSignal;
}

/** Options of the supervised heads (BCE and spatial). Defaults per issue 5, from `core/experiments/head-options.ts`. */
export interface SupervisedOptions {
  /** 0 = linear head; > 0 = one hidden ReLU layer of this width (BCE head only). */
  hidden: number;
  learningRate: number;
  batchSize: number;
  epochs: number;
  /** Weight each class by n / (2 · n_class), so a 10:1 imbalance does not teach "always normal". */
  classWeighting: boolean;
  seed: number;
  /** Fraction of the training set held out (stratified) for early stopping; 0 disables it. */
  validationFraction: number;
  /** Epochs without a validation-loss improvement before stopping. */
  patience: number;
}

/** The defaults are the core head-option schema's, so the Train tab, the grid and the heads agree. */
export const SUPERVISED_DEFAULTS: SupervisedOptions = { ...CORE_SUPERVISED_DEFAULTS };

export function supervisedOptions(o: Partial<SupervisedOptions> = {}): SupervisedOptions {
  const r = { ...SUPERVISED_DEFAULTS, ...o };
  const posInt = (name: keyof SupervisedOptions, min: number) => {
    const v = r[name] as number;
    if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(name, `an integer ≥ ${min}`, v);
  };
  posInt('hidden', 0);
  posInt('batchSize', 1);
  posInt('epochs', 1);
  posInt('patience', 1);
  if (!(r.learningRate > 0 && r.learningRate < 10))
    throw new InvalidArgumentError('learningRate', 'in (0, 10)', r.learningRate);
  if (!(r.validationFraction >= 0 && r.validationFraction < 1))
    throw new InvalidArgumentError('validationFraction', 'in [0, 1)', r.validationFraction);
  return r;
}

/** Glorot/Xavier uniform init, `[fanIn · fanOut]` row-major for a `[fanIn, fanOut]` matrix. */
export function glorotUniform(rng: Rng, fanIn: number, fanOut: number): Float32Array {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-limit, limit);
  return out;
}

/** Per-column mean and standard deviation (floored at 1e-6) of row vectors. */
export function columnStats(
  rows: readonly Float32Array[],
  dim: number,
): { mean: Float32Array; std: Float32Array } {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  let n = 0;
  for (const r of rows) {
    for (let j = 0; j < dim; j++) {
      mean[j] += r[j];
      sq[j] += r[j] * r[j];
    }
    n++;
  }
  const m = new Float32Array(dim);
  const s = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    m[j] = mean[j] / n;
    s[j] = Math.max(1e-6, Math.sqrt(Math.max(0, sq[j] / n - m[j] * m[j])));
  }
  return { mean: m, std: s };
}

/** Stratified split of indices into train and validation (both classes in both parts when possible). */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  fraction: number,
  rng: Rng,
): { train: number[]; val: number[] } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < labels.length; i++) (labels[i] > 0.5 ? pos : neg).push(i);
  rng.shuffle(pos);
  rng.shuffle(neg);
  const take = (a: number[]) =>
    fraction > 0 && a.length >= 4 ? Math.max(1, Math.round(a.length * fraction)) : 0;
  const vp = take(pos);
  const vn = take(neg);
  if (vp === 0 || vn === 0) return { train: [...pos, ...neg].sort((a, b) => a - b), val: [] };
  return {
    val: [...pos.slice(0, vp), ...neg.slice(0, vn)].sort((a, b) => a - b),
    train: [...pos.slice(vp), ...neg.slice(vn)].sort((a, b) => a - b),
  };
}

/** Weighted binary cross-entropy on logits, numerically stable: `w · (max(z,0) − z·y + log(1 + e^−|z|))`. */
export function bceWithLogits(z: tf.Tensor, y: tf.Tensor, w: tf.Tensor): tf.Scalar {
  const loss = tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
  return tf.div(tf.sum(tf.mul(loss, w)), tf.sum(w)) as tf.Scalar;
}

export interface BinaryFitSpec {
  /** Number of samples; rows are addressed by index. */
  labels: ArrayLike<number>;
  /** Builds the input tensor of a minibatch (the head decides its shape). */
  batch(indices: readonly number[]): tf.Tensor;
  /** Logits `[B]` of a batch tensor. */
  forward(x: tf.Tensor): tf.Tensor1D;
  variables: tf.Variable[];
  options: SupervisedOptions;
  rng: Rng;
}

/**
 * One binary head's training step and evaluation, whatever computes them (tfjs variables, or typed arrays for
 * the linear BCE head: `linear-trainer.ts`). `y` is 0/1, `w` the per-sample class weight.
 */
export interface BinaryStepper {
  /** One optimiser step on a minibatch; the batch's weighted BCE before the step (or a tensor of it). */
  step(idx: readonly number[], y: Float32Array, w: Float32Array): number | tf.Scalar;
  /** Weighted BCE and logits `[B]` of a set, without training. */
  evaluate(
    idx: readonly number[],
    y: Float32Array,
    w: Float32Array,
  ): Promise<{ loss: number; logits: ArrayLike<number> }>;
  /** Keeps a copy of the current weights (the best so far); `restore` puts the last copy back. */
  snapshot(): void;
  restore(): void;
  /** Threads the step runs on (the cores lock is taken per epoch when > 1). */
  threads(): Promise<number>;
  dispose(): void;
}

/** The tfjs stepper: `optimizer.minimize` inside one `tf.tidy` per batch, losses read back once per epoch. */
function tfStepper(spec: BinaryFitSpec): BinaryStepper {
  const optimizer = tf.train.adam(spec.options.learningRate);
  let best: tf.Tensor[] | null = null;
  return {
    step(idx, y, w) {
      return tf.tidy(() => {
        const x = spec.batch(idx);
        const yt = tf.tensor1d(y);
        const wt = tf.tensor1d(w);
        return (
          optimizer.minimize(() => bceWithLogits(spec.forward(x), yt, wt), true, spec.variables) ??
          tf.scalar(NaN)
        );
      });
    },
    async evaluate(idx, y, w) {
      const [vl, z] = tf.tidy(() => {
        const logits = spec.forward(spec.batch(idx));
        return [bceWithLogits(logits, tf.tensor1d(y), tf.tensor1d(w)), logits];
      });
      const loss = (await vl.data())[0];
      const logits = await z.data();
      vl.dispose();
      z.dispose();
      return { loss, logits };
    },
    snapshot() {
      best?.forEach((t) => t.dispose());
      best = spec.variables.map((v) => tf.clone(v));
    },
    restore() {
      if (best) spec.variables.forEach((v, i) => v.assign(best![i]));
    },
    threads: () => tfWasmThreads(),
    dispose() {
      optimizer.dispose();
      best?.forEach((t) => t.dispose());
      best = null;
    },
  };
}

/**
 * The minibatch loop shared by the BCE and spatial heads: stratified validation split, per-epoch shuffling,
 * class-weighted BCE, Adam, early stopping on validation loss with the best weights restored.
 */
export function fitBinary(
  spec: BinaryFitSpec,
  hooks: TrainHooks = {},
): Promise<{ epochs: number; stopped: 'completed' | 'early' | 'cancelled'; history: EpochReport[] }> {
  return fitBinaryWith(tfStepper(spec), spec.labels, spec.options, spec.rng, hooks);
}

/** `fitBinary`'s loop over any stepper (the order of random draws is the same whatever the stepper). */
export async function fitBinaryWith(
  stepper: BinaryStepper,
  labels: ArrayLike<number>,
  o: SupervisedOptions,
  rng: Rng,
  hooks: TrainHooks = {},
): Promise<{ epochs: number; stopped: 'completed' | 'early' | 'cancelled'; history: EpochReport[] }> {
  const { train, val } = stratifiedSplit(labels, o.validationFraction, rng);
  let npos = 0;
  for (const i of train) if (labels[i] > 0.5) npos++;
  const nneg = train.length - npos;
  if (npos === 0 || nneg === 0) {
    stepper.dispose();
    throw new InvalidArgumentError(
      'training labels',
      'both classes (normal = 0 and defect = 1) in the training split',
      `${npos} defects and ${nneg} normals`,
    );
  }
  const wPos = o.classWeighting ? train.length / (2 * npos) : 1;
  const wNeg = o.classWeighting ? train.length / (2 * nneg) : 1;
  const history: EpochReport[] = [];
  let best = Infinity;
  let improved = false;
  let sinceBest = 0;
  let stopped: 'completed' | 'early' | 'cancelled' = 'completed';
  const labelsOf = (idx: readonly number[]) => {
    const y = new Float32Array(idx.length);
    const w = new Float32Array(idx.length);
    idx.forEach((i, k) => {
      y[k] = labels[i] > 0.5 ? 1 : 0;
      w[k] = y[k] ? wPos : wNeg;
    });
    return { y, w };
  };
  const order = [...train];
  const threads = await stepper.threads();
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const t0 = performance.now();
      rng.shuffle(order);
      // One epoch holds the cores (threads.ts): another worker's pool waits for it rather than oversubscribing.
      const { sum, count } = await withCores(threads, async () => {
        const costs: (number | tf.Scalar)[] = [];
        const sizes: number[] = [];
        for (let s = 0; s < order.length; s += o.batchSize) {
          if (hooks.signal?.aborted) break;
          const idx = order.slice(s, s + o.batchSize);
          const { y, w } = labelsOf(idx);
          costs.push(stepper.step(idx, y, w));
          sizes.push(idx.length);
        }
        // tfjs losses are read back once per epoch: a readback per batch costs more than a linear step.
        const scalars = costs.filter((c): c is tf.Scalar => typeof c !== 'number');
        const read = scalars.length ? await tf.stack(scalars).data() : new Float32Array(0);
        scalars.forEach((c) => c.dispose());
        let k = 0;
        let total = 0;
        let n = 0;
        costs.forEach((c, i) => {
          total += (typeof c === 'number' ? c : read[k++]) * sizes[i];
          n += sizes[i];
        });
        return { sum: total, count: n };
      });
      if (hooks.signal?.aborted) {
        stopped = 'cancelled';
        break;
      }
      const report: EpochReport = {
        epoch: epoch + 1,
        epochs: o.epochs,
        loss: sum / Math.max(1, count),
        ms: 0,
      };
      if (val.length > 0) {
        const { y, w } = labelsOf(val);
        const { loss, logits } = await stepper.evaluate(val, y, w);
        report.valLoss = loss;
        report.valAp = averagePrecision(logits, y);
        if (report.valLoss < best - 1e-6) {
          best = report.valLoss;
          sinceBest = 0;
          improved = true;
          stepper.snapshot();
        } else if (++sinceBest >= o.patience) {
          stopped = 'early';
        }
      }
      report.ms = performance.now() - t0;
      history.push(report);
      hooks.onEpoch?.(report);
      await yieldToEventLoop();
      if (stopped === 'early') break;
    }
    if (improved) stepper.restore();
  } finally {
    stepper.dispose();
  }
  return { epochs: history.length, stopped, history };
}

/** A head's weights and config in tfjs artifact form: `weightSpecs` + one binary buffer. */
export interface HeadArtifacts {
  format: 'defectlab-head/1';
  kind: HeadKind;
  /** Everything besides weights needed to rebuild the head (sizes, standardization, centroids, …). */
  config: Record<string, unknown>;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

export async function encodeHead(
  kind: HeadKind,
  config: Record<string, unknown>,
  tensors: Record<string, tf.Tensor>,
): Promise<HeadArtifacts> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const weightData = Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : (data as ArrayBuffer);
  return { format: 'defectlab-head/1', kind, config, weightSpecs: specs, weightData };
}

export function decodeHead(a: HeadArtifacts, kind: HeadKind): tf.NamedTensorMap {
  if (a.format !== 'defectlab-head/1' || a.kind !== kind)
    throw new InvalidArgumentError(
      'head artifacts',
      `a defectlab-head/1 ${kind} head`,
      `${a.format} ${a.kind}`,
    );
  return tf.io.decodeWeights(a.weightData, a.weightSpecs);
}

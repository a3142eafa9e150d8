/**
 * Mask-supervised per-location head (the idea of DRAEM and MemSeg: the generators know exactly where each
 * synthetic defect is, so use its mask as pixel labels instead of one image label). Input per image: the same
 * locally aware patch features as PatchCore (`src/core/patchcore/features.ts`: taps averaged over 3×3, brought to
 * one grid, concatenated) `[h·w, D]`; labels per cell: the fraction of defect pixels in the cell ≥
 * `cellThreshold` (the mask mapped through the backbone geometry by the caller). Model per cell: standardize →
 * D → `hidden` ReLU → 1 logit (a 1×1 two-layer conv), trained by the shared loop (`fitBinary`: class-weighted
 * BCE over cells, stratified validation split, Adam, early stopping). Image score: the maximum of the defect
 * probability map upsampled to the frame and smoothed (σ, as PatchCore's map), so one small defect suffices.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { type TapMap, patchFeatures } from '../../core/patchcore/features.ts';
import { anomalyMap } from '../../core/patchcore/score.ts';
import { Rng } from '../../core/rng.ts';
import { tf } from '../tf.ts';
import {
  type HeadArtifacts,
  type SupervisedOptions,
  type TrainHooks,
  columnStats,
  decodeHead,
  encodeHead,
  fitBinary,
  glorotUniform,
  supervisedOptions,
} from './common.ts';

export interface MaskedOptions extends SupervisedOptions {
  /** Tap names the maps come from, in order (stored with the head). */
  taps: string[];
  /** A cell is a defect cell when at least this fraction of its pixels is in the mask. */
  cellThreshold: number;
  /** σ of the map smoothing in frame pixels; 0 = none. */
  sigma: number;
}

export const MASKED_DEFAULTS: Partial<MaskedOptions> = {
  taps: ['s16', 's32'],
  hidden: 32,
  learningRate: 1e-3,
  batchSize: 256,
  epochs: 30,
  cellThreshold: 0.25,
  sigma: 4,
};

export function maskedOptions(o: Partial<MaskedOptions> = {}): MaskedOptions {
  const r = { ...MASKED_DEFAULTS, ...o };
  const s = supervisedOptions(r);
  const taps = r.taps ?? [];
  if (!Array.isArray(taps) || taps.length === 0)
    throw new InvalidArgumentError('masked.taps', 'a non-empty list of tap names', r.taps);
  const cellThreshold = r.cellThreshold ?? 0.25;
  if (!(cellThreshold > 0 && cellThreshold <= 1))
    throw new InvalidArgumentError('masked.cellThreshold', 'in (0, 1]', cellThreshold);
  const sigma = r.sigma ?? 4;
  if (!(sigma >= 0)) throw new InvalidArgumentError('masked.sigma', 'a number ≥ 0', sigma);
  if (s.hidden < 1) throw new InvalidArgumentError('masked.hidden', 'an integer ≥ 1', s.hidden);
  return { ...s, taps, cellThreshold, sigma };
}

/** One training image: its tap maps, the frame they cover and its cell labels `[h·w]` (fractions in [0, 1]). */
export interface MaskedSample {
  maps: readonly TapMap[];
  /** Defect fraction per grid cell (all zero for a normal image). */
  cells: Float32Array;
}

export interface MaskedPrediction {
  scores: Float32Array;
  /** Smoothed defect-probability maps `[H·W]` over the frame. */
  heatmaps: Float32Array[];
  /** Per-cell probabilities `[h·w]`. */
  cellMaps: Float32Array[];
}

export class MaskedHead {
  private constructor(
    readonly dim: number,
    readonly options: MaskedOptions,
    readonly frame: [number, number],
    readonly mean: Float32Array,
    readonly std: Float32Array,
    readonly vars: Record<string, tf.Variable>,
  ) {}

  static create(
    dim: number,
    o: MaskedOptions,
    frame: [number, number],
    mean: Float32Array,
    std: Float32Array,
    rng: Rng,
  ) {
    const h = o.hidden;
    // Made inside tidy: tf.variable keeps its initial tensor alive beside the variable otherwise.
    const vars = tf.tidy(() => ({
      w1: tf.variable(tf.tensor2d(glorotUniform(rng, dim, h), [dim, h])),
      b1: tf.variable(tf.zeros([h])),
      w2: tf.variable(tf.tensor2d(glorotUniform(rng, h, 1), [h, 1])),
      b2: tf.variable(tf.zeros([1])),
    }));
    return new MaskedHead(dim, o, frame, mean, std, vars);
  }

  /** Standardized rows `[N, D]` as a tensor. */
  input(rows: Float32Array, n: number): tf.Tensor2D {
    return tf.tidy(() =>
      tf.div(tf.sub(tf.tensor2d(rows, [n, this.dim]), tf.tensor1d(this.mean)), tf.tensor1d(this.std)),
    ) as tf.Tensor2D;
  }

  /** Cell logits `[N]` of standardized rows `[N, D]`. */
  forward(x: tf.Tensor): tf.Tensor1D {
    const v = this.vars;
    const hdn = tf.relu(tf.add(tf.matMul(x as tf.Tensor2D, v.w1), v.b1));
    return tf.reshape(tf.add(tf.matMul(hdn, v.w2), v.b2), [-1]);
  }

  async predict(
    inputs: readonly { maps: readonly TapMap[]; frame?: { width: number; height: number } }[],
  ): Promise<MaskedPrediction> {
    const out: MaskedPrediction = { scores: new Float32Array(inputs.length), heatmaps: [], cellMaps: [] };
    for (let i = 0; i < inputs.length; i++) {
      const f = patchFeatures(inputs[i].maps);
      if (f.dim !== this.dim)
        throw new InvalidArgumentError(
          'masked head input',
          `maps of the taps ${this.options.taps.join(' + ')} (${this.dim} channels)`,
          `${f.dim} channels`,
        );
      const p = tf.tidy(() => tf.sigmoid(this.forward(this.input(f.data, f.rows))));
      const cells = Float32Array.from(await p.data());
      p.dispose();
      const H = inputs[i].frame?.height ?? this.frame[0];
      const W = inputs[i].frame?.width ?? this.frame[1];
      const map = anomalyMap(cells, f.h, f.w, H, W, this.options.sigma);
      let mx = -Infinity;
      for (let k = 0; k < map.length; k++) if (map[k] > mx) mx = map[k];
      out.scores[i] = mx;
      out.heatmaps.push(map);
      out.cellMaps.push(cells);
    }
    return out;
  }

  toArtifacts(): Promise<HeadArtifacts> {
    return encodeHead(
      'masked',
      {
        dim: this.dim,
        options: { ...this.options },
        frame: [...this.frame],
        mean: Array.from(this.mean),
        std: Array.from(this.std),
      },
      this.vars,
    );
  }

  static fromArtifacts(a: HeadArtifacts): MaskedHead {
    const t = decodeHead(a, 'masked');
    const c = a.config as {
      dim: number;
      options: MaskedOptions;
      frame: [number, number];
      mean: number[];
      std: number[];
    };
    const vars: Record<string, tf.Variable> = {};
    for (const [k, v] of Object.entries(t)) vars[k] = tf.variable(v);
    // tf.variable keeps its initial tensor alive beside the variable: dispose those, keep the variables.
    for (const v of Object.values(t)) v.dispose();
    return new MaskedHead(
      c.dim,
      maskedOptions(c.options),
      c.frame,
      Float32Array.from(c.mean),
      Float32Array.from(c.std),
      vars,
    );
  }

  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
  }
}

/**
 * Trains the per-location head on images with cell labels (normals: all zero; synthetic and real defects: their
 * masks on the grid). Needs defect cells and normal cells.
 */
export async function trainMaskedHead(
  samples: readonly MaskedSample[],
  options: Partial<MaskedOptions> = {},
  frame: [number, number] = [224, 224],
  hooks: TrainHooks = {},
) {
  const o = maskedOptions(options);
  if (samples.length === 0) throw new InvalidArgumentError('masked head samples', 'at least one image', 0);
  const feats = samples.map((s) => patchFeatures(s.maps));
  const { dim, rows } = feats[0];
  feats.forEach((f, i) => {
    if (f.dim !== dim || f.rows !== rows)
      throw new InvalidArgumentError(
        `masked head sample ${i}`,
        `maps of one size (${dim} channels, ${rows} cells)`,
        `${f.dim} channels, ${f.rows} cells`,
      );
    if (samples[i].cells.length !== f.rows)
      throw new InvalidArgumentError(
        `masked head sample ${i} cells`,
        `${f.rows} cell labels (the ${f.h}×${f.w} grid)`,
        samples[i].cells.length,
      );
  });
  const N = feats.length * rows;
  const all = new Float32Array(N * dim);
  const labels = new Float32Array(N);
  feats.forEach((f, i) => {
    all.set(f.data, i * rows * dim);
    for (let k = 0; k < rows; k++) labels[i * rows + k] = samples[i].cells[k] >= o.cellThreshold ? 1 : 0;
  });
  const rowViews = Array.from({ length: N }, (_, r) => all.subarray(r * dim, (r + 1) * dim));
  const { mean, std } = columnStats(rowViews, dim);
  const rng = new Rng(`masked:${o.seed}`);
  const head = MaskedHead.create(dim, o, frame, mean, std, rng.fork('init'));
  const x = head.input(all, N);
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
    return {
      head,
      history: fit.history,
      stopped: fit.stopped,
      cells: N,
      defectCells: labels.reduce((a, b) => a + b, 0),
    };
  } catch (e) {
    head.dispose();
    throw e;
  } finally {
    x.dispose();
  }
}

/**
 * PatchCore (Roth et al., CVPR 2022) as a head: the memory bank of locally aware normal patch features, reduced
 * by greedy coreset selection, and nearest-neighbour scoring as matrix products: ‖q − b‖² = ‖q‖² − 2 q·bᵀ + ‖b‖²
 * for a block of query patches against the whole bank in one fused product (the bank stored as −2·bᵀ, its
 * squared norms ‖b‖² computed once and added as the product's bias, so one kernel replaces product, scale and
 * subtraction), then the arg-min per row. Who multiplies is injected (`PatchCoreRuntime`): tfjs by default
 * (WebGPU / WASM in the browser, the fallback everywhere); Node entry points pass onnxruntime-node's threaded
 * GEMM and a threaded coreset (`patchcore-node.ts`), which this module never imports, so the browser bundle
 * stays free of them. The arg-min's distance is then recomputed directly in float64
 * on the CPU, so the cancellation of the expanded form cannot blur the scores: they equal a brute-force search
 * up to float32 storage of the features (`tests/unit/patchcore.test.ts`).
 *
 * Pure parts (patch features, coreset, map smoothing, the paper's reweighting) live in `src/core/patchcore/`.
 * Inputs are the tap maps of one image, `[C_t, h_t, w_t]` each in the head's tap order; the anomaly map is
 * `[H, W]` over the backbone frame the maps cover (default: the frame the head was trained on).
 */
import { CancelledError, InvalidArgumentError } from '../../core/errors.ts';
import { coresetSize, greedyCoreset, projectionMatrix } from '../../core/patchcore/coreset.ts';
import { type TapMap, patchFeatures } from '../../core/patchcore/features.ts';
import { anomalyMap, argMax, reweightFactor } from '../../core/patchcore/score.ts';
import type { CancelSignal } from '../../core/progress.ts';
import { yieldToEventLoop } from '../../core/progress.ts';
import { tf } from '../tf.ts';
import { type HeadArtifacts, decodeHead, encodeHead } from './common.ts';

export interface PatchCoreOptions {
  /** Names of the taps the maps come from, in order (stored with the head; e.g. ['s16', 's32']). */
  taps: string[];
  /** Local aggregation neighbourhood (the paper's p = 3). */
  patchSize: number;
  /** Grid the taps are brought to (the paper: the finest). */
  grid: 'finest' | 'coarsest';
  /** Fraction of the normal patches kept in the memory bank (the paper: 1–10 %). */
  coresetRatio: number;
  /** Random-projection dimension of the coreset selection (the paper: 128). */
  projectionDim: number;
  /** b of the reweighting: bank neighbours of m* (anomalib: 9). */
  neighbours: number;
  /** σ of the Gaussian smoothing of the anomaly map, in frame pixels (the paper: 4). */
  sigma: number;
  /** `map-max`: the smoothed map's maximum (the rule); `reweighted`: the paper's weighted s*. */
  imageScore: 'map-max' | 'reweighted';
  /** Frame `[H, W]` of the anomaly map (the backbone input); default the finest grid × 8. */
  frame?: [number, number];
  seed: number;
}

/**
 * Defaults. Taps: MobileNetV2-int8's stride-16 and stride-32 block outputs on the 14×14 grid, the analogue of
 * the paper's layer2 + layer3 one level up. Measured on the magnetic tiles (100 normals, 100 test images, Node,
 * exact int8 features): s16 + s32 AP 0.769, s8 + s16 on the 14×14 grid 0.680 (stride 8 is too low-level in
 * this small network), pooled k-NN 0.695. A 14×14 grid also keeps the coreset of 100 images (19 600 patches)
 * to seconds.
 */
export const PATCHCORE_DEFAULTS: PatchCoreOptions = {
  taps: ['s16', 's32'],
  patchSize: 3,
  grid: 'finest',
  coresetRatio: 0.1,
  projectionDim: 128,
  neighbours: 9,
  sigma: 4,
  imageScore: 'map-max',
  seed: 0,
};

export function patchCoreOptions(o: Partial<PatchCoreOptions> = {}): PatchCoreOptions {
  const r = { ...PATCHCORE_DEFAULTS, ...o };
  if (!Array.isArray(r.taps) || r.taps.length === 0)
    throw new InvalidArgumentError('patchcore.taps', 'a non-empty list of tap names', r.taps);
  if (!Number.isInteger(r.patchSize) || r.patchSize < 1 || r.patchSize % 2 === 0)
    throw new InvalidArgumentError('patchcore.patchSize', 'an odd integer ≥ 1', r.patchSize);
  if (!['finest', 'coarsest'].includes(r.grid))
    throw new InvalidArgumentError('patchcore.grid', "'finest' or 'coarsest'", r.grid);
  if (!(r.coresetRatio > 0 && r.coresetRatio <= 1))
    throw new InvalidArgumentError('patchcore.coresetRatio', 'in (0, 1]', r.coresetRatio);
  if (!Number.isInteger(r.projectionDim) || r.projectionDim < 1)
    throw new InvalidArgumentError('patchcore.projectionDim', 'an integer ≥ 1', r.projectionDim);
  if (!Number.isInteger(r.neighbours) || r.neighbours < 1)
    throw new InvalidArgumentError('patchcore.neighbours', 'an integer ≥ 1', r.neighbours);
  if (!(r.sigma >= 0)) throw new InvalidArgumentError('patchcore.sigma', 'a number ≥ 0', r.sigma);
  if (!['map-max', 'reweighted'].includes(r.imageScore))
    throw new InvalidArgumentError('patchcore.imageScore', "'map-max' or 'reweighted'", r.imageScore);
  return r;
}

/** One image's input: its tap maps in the head's tap order, and optionally the frame they cover. */
export interface PatchCoreInput {
  maps: readonly TapMap[];
  frame?: { width: number; height: number };
}

export interface PatchCorePrediction {
  /** Image scores `[N]`, higher = more anomalous. */
  scores: Float32Array;
  /** Smoothed anomaly maps `[H·W]` over each image's frame. */
  heatmaps: Float32Array[];
  /** Frame size of each heat map. */
  frames: { width: number; height: number }[];
  /** Raw nearest-neighbour distance per patch `[h·w]` (before upsampling and smoothing). */
  patchScores: Float32Array[];
  /** The paper's reweighted image score, whatever `imageScore` says. */
  reweighted: Float32Array;
}

/** Query rows per `matMul` block: 4096 × a 10k bank is a 160 MB distance block at most. */
const BLOCK_ROWS = 4096;

/**
 * The nearest-neighbour search over one memory bank: for each query row the `k` bank rows of smallest
 * `‖b‖² − 2 q·b` (‖q‖² is constant per row, so this is the Euclidean order), nearest first, first index on
 * ties. Distances are not its business: the head recomputes them exactly from the indices.
 */
export interface BankSearch {
  /** Where the product runs, for result lines and the bench ('tfjs wasm', 'onnxruntime-node cpu, 16 threads'). */
  readonly label: string;
  /** Indices `[rows, k]` (row-major) of the `k` nearest bank rows of each query row of `q` `[rows, D]`. */
  nearest(q: Float32Array, rows: number, k: number): Promise<Int32Array>;
  dispose(): void;
}

/** Builds the search over a bank `[rows, dim]` (row-major float32; the caller keeps it unchanged). */
export type BankSearchFactory = (
  bank: Float32Array,
  rows: number,
  dim: number,
) => BankSearch | Promise<BankSearch>;

/**
 * The greedy coreset over already projected rows `[N, d]` (`d ≤ projectionDim`): `n` row indices in selection
 * order, the picks of `greedyCoreset` (`src/core/patchcore/coreset.ts`, the sequential reference and default).
 */
export type CoresetSelect = (
  x: Float32Array,
  N: number,
  d: number,
  n: number,
  o: { seed: number; onStep?: (done: number, total: number) => void; signal?: CancelSignal },
) => Int32Array | Promise<Int32Array>;

/** Platform-specific speed-ups of PatchCore; every field is optional and defaults to the tfjs / core code. */
export interface PatchCoreRuntime {
  search?: BankSearchFactory;
  coreset?: CoresetSelect;
  /** The coreset's random projection `[N, dim] → [N, d]` (default `projectRows`, tfjs). */
  project?: typeof projectRows;
}

/**
 * The default search, tfjs (any backend). −2 × the bank transposed, `[D, M]`: tfjs WASM multiplies by it 13×
 * faster than with `transposeB` (bench); the factor −2 is exact in float32, so `q · bankT + bankSq` is
 * `bankSq − 2 q·bᵀ` up to where XNNPACK adds the bias.
 */
export function tfjsBankSearch(bank: Float32Array, M: number, D: number): BankSearch {
  const rows = tf.tensor2d(bank, [M, D]);
  const bankT = tf.tidy(() => tf.mul(tf.transpose(rows), -2)) as tf.Tensor2D;
  /** ‖b‖² per bank row `[M]`, the fused product's bias. */
  const bankSq = tf.tidy(() => tf.sum(tf.square(rows), 1)) as tf.Tensor1D;
  rows.dispose();
  return {
    label: `tfjs ${tf.getBackend()}`,
    async nearest(q, n, k) {
      const kk = Math.min(k, M);
      const out = new Int32Array(n * kk);
      for (let s = 0; s < n; s += BLOCK_ROWS) {
        const r = Math.min(BLOCK_ROWS, n - s);
        const idx = tf.tidy(() => {
          const x = tf.tensor2d(q.subarray(s * D, (s + r) * D), [r, D]);
          const e = tf.fused.matMul({ a: x, b: bankT, bias: bankSq }) as tf.Tensor2D;
          return kk === 1 ? tf.argMin(e, 1) : tf.topk(tf.neg(e), kk).indices;
        });
        out.set(await idx.data(), s * kk);
        idx.dispose();
      }
      return out;
    },
    dispose() {
      bankT.dispose();
      bankSq.dispose();
    },
  };
}

export class PatchCoreHead {
  /** The search, built on first use (the ORT one is asynchronous to create). */
  private searchP?: Promise<BankSearch>;
  /** The search once built, so `dispose` frees it at once. */
  private built?: BankSearch;
  private disposed = false;
  private constructor(
    /** The memory bank `[M, D]` (row-major, float32). */
    readonly bank: Float32Array,
    readonly dim: number,
    readonly options: PatchCoreOptions,
    /** Default frame `[H, W]` of the anomaly maps. */
    readonly frame: [number, number],
    private readonly searchFactory: BankSearchFactory,
  ) {}

  static fromBank(
    bank: Float32Array,
    dim: number,
    options: PatchCoreOptions,
    frame: [number, number],
    runtime: PatchCoreRuntime = {},
  ) {
    if (!(dim > 0) || bank.length % dim !== 0 || bank.length === 0)
      throw new InvalidArgumentError('patchcore bank', `rows of ${dim} values`, bank.length);
    return new PatchCoreHead(bank, dim, options, frame, runtime.search ?? tfjsBankSearch);
  }

  /** The bank's search (created on first use). */
  search(): Promise<BankSearch> {
    if (this.disposed)
      throw new InvalidArgumentError('PatchCore head', 'a head that is not disposed', 'a disposed head');
    this.searchP ??= Promise.resolve()
      .then(() => this.searchFactory(this.bank, this.bankSize, this.dim))
      .then((s) => {
        // Disposed while it was being built: nobody else will release it.
        if (this.disposed) s.dispose();
        else this.built = s;
        return s;
      });
    return this.searchP;
  }

  get bankSize(): number {
    return this.bank.length / this.dim;
  }

  /**
   * Nearest bank row and its Euclidean distance for each of `rows` query features `[rows, D]`. The arg-min
   * comes from the matrix product, the distance from a direct float64 sum.
   */
  async nearest(q: Float32Array, rows: number): Promise<{ index: Int32Array; dist: Float32Array }> {
    const D = this.dim;
    if (q.length !== rows * D) throw new InvalidArgumentError('query features', `${rows}×${D}`, q.length);
    const index = await (await this.search()).nearest(q, rows, 1);
    const dist = new Float32Array(rows);
    for (let r = 0; r < rows; r++) dist[r] = Math.sqrt(sqDist(q, r * D, this.bank, index[r] * D, D));
    return { index, dist };
  }

  /** The b nearest bank rows of bank row `m` (itself first), by the same search. */
  private async bankNeighbours(m: number): Promise<Int32Array> {
    const b = Math.min(this.options.neighbours, this.bankSize);
    const D = this.dim;
    const idx = await (await this.search()).nearest(this.bank.subarray(m * D, (m + 1) * D), 1, b);
    // m itself is at distance 0; float error may rank an equal duplicate first, so put m first explicitly.
    const rest = Array.from(idx).filter((i) => i !== m);
    return Int32Array.from([m, ...rest].slice(0, b));
  }

  /** Scores and anomaly maps of images. */
  async predict(inputs: readonly PatchCoreInput[], signal?: CancelSignal): Promise<PatchCorePrediction> {
    const o = this.options;
    const out: PatchCorePrediction = {
      scores: new Float32Array(inputs.length),
      heatmaps: [],
      frames: [],
      patchScores: [],
      reweighted: new Float32Array(inputs.length),
    };
    for (let i = 0; i < inputs.length; i++) {
      if (signal?.aborted)
        throw new CancelledError('PatchCore scoring', `${i} of ${inputs.length} images scored`);
      const f = patchFeatures(inputs[i].maps, { patchSize: o.patchSize, grid: o.grid });
      if (f.dim !== this.dim)
        throw new InvalidArgumentError(
          'patchcore input',
          `maps of the taps ${o.taps.join(' + ')} (${this.dim} channels)`,
          `${f.dim} channels`,
        );
      const { index, dist } = await this.nearest(f.data, f.rows);
      const H = inputs[i].frame?.height ?? this.frame[0];
      const W = inputs[i].frame?.width ?? this.frame[1];
      const map = anomalyMap(dist, f.h, f.w, H, W, o.sigma);
      const worst = argMax(dist);
      const nb = await this.bankNeighbours(index[worst]);
      const dn = Array.from(nb, (m) =>
        Math.sqrt(sqDist(f.data, worst * this.dim, this.bank, m * this.dim, this.dim)),
      );
      out.reweighted[i] = reweightFactor(dn) * dist[worst];
      let mx = -Infinity;
      for (let k = 0; k < map.length; k++) if (map[k] > mx) mx = map[k];
      out.scores[i] = o.imageScore === 'map-max' ? mx : out.reweighted[i];
      out.heatmaps.push(map);
      out.frames.push({ width: W, height: H });
      out.patchScores.push(dist);
      if (i % 8 === 7) await yieldToEventLoop();
    }
    return out;
  }

  async toArtifacts(): Promise<HeadArtifacts> {
    const bank = tf.tensor2d(this.bank, [this.bankSize, this.dim]);
    try {
      return await encodeHead(
        'patchcore',
        { dim: this.dim, options: { ...this.options }, frame: [...this.frame] },
        { bank },
      );
    } finally {
      bank.dispose();
    }
  }

  static fromArtifacts(a: HeadArtifacts, runtime: PatchCoreRuntime = {}): PatchCoreHead {
    const t = decodeHead(a, 'patchcore');
    const c = a.config as { dim: number; options: PatchCoreOptions; frame: [number, number] };
    const bank = t.bank.dataSync() as Float32Array;
    t.bank.dispose();
    return PatchCoreHead.fromBank(
      Float32Array.from(bank),
      c.dim,
      patchCoreOptions(c.options),
      c.frame,
      runtime,
    );
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.built?.dispose();
    this.built = undefined;
  }
}

function sqDist(a: Float32Array, ao: number, b: Float32Array, bo: number, D: number): number {
  let s = 0;
  for (let k = 0; k < D; k++) {
    const t = a[ao + k] - b[bo + k];
    s += t * t;
  }
  return s;
}

/**
 * The coreset's random projection `[N, D] → [N, d]` as tfjs matrix products (blocks of rows), with the core's
 * matrix for the seed: the same numbers as `randomProjection` up to float32 summation order, many times faster
 * than the scalar loop.
 */
export async function projectRows(
  data: Float32Array,
  N: number,
  dim: number,
  d: number,
  seed: number,
): Promise<Float32Array> {
  const out = new Float32Array(N * d);
  const R = tf.tensor2d(projectionMatrix(dim, d, seed), [dim, d]);
  try {
    for (let s = 0; s < N; s += BLOCK_ROWS * 4) {
      const n = Math.min(BLOCK_ROWS * 4, N - s);
      const y = tf.tidy(() => tf.matMul(tf.tensor2d(data.subarray(s * dim, (s + n) * dim), [n, dim]), R));
      out.set(await y.data(), s * d);
      y.dispose();
    }
  } finally {
    R.dispose();
  }
  return out;
}

export interface PatchCoreTrainResult {
  head: PatchCoreHead;
  /** Normal patches before the coreset, and the bank size after it. */
  patches: number;
  bankSize: number;
  ms: { features: number; coreset: number };
}

/**
 * Builds the memory bank from normal images only: patch features of every image, stacked `[N·h·w, D]`, then the
 * greedy coreset of `coresetRatio` of them (ratio 1 keeps every patch).
 */
export async function trainPatchCore(
  normals: readonly PatchCoreInput[],
  options: Partial<PatchCoreOptions> = {},
  hooks: {
    signal?: CancelSignal;
    onProgress?: (done: number, total: number) => void;
    runtime?: PatchCoreRuntime;
  } = {},
): Promise<PatchCoreTrainResult> {
  const o = patchCoreOptions(options);
  if (normals.length === 0) throw new InvalidArgumentError('normal images', 'at least one', 0);
  if (normals.some((n) => n.maps.length !== o.taps.length))
    throw new InvalidArgumentError(
      'patchcore input',
      `${o.taps.length} tap maps per image (${o.taps.join(', ')})`,
      normals.map((n) => n.maps.length).join(','),
    );
  const t0 = performance.now();
  const feats = normals.map((n) => patchFeatures(n.maps, { patchSize: o.patchSize, grid: o.grid }));
  const { dim, h, w } = feats[0];
  if (feats.some((f) => f.dim !== dim || f.h !== h || f.w !== w))
    throw new InvalidArgumentError(
      'patchcore input',
      `maps of one size (${dim} channels on a ${h}×${w} grid)`,
      'maps of different sizes (extract the normals at one resolution)',
    );
  const N = feats.reduce((s, f) => s + f.rows, 0);
  const all = new Float32Array(N * dim);
  let off = 0;
  for (const f of feats) {
    all.set(f.data, off);
    off += f.data.length;
  }
  const t1 = performance.now();
  await yieldToEventLoop();
  if (hooks.signal?.aborted) throw new CancelledError('PatchCore training', 'patch features done');
  let bank = all;
  if (o.coresetRatio < 1) {
    const n = coresetSize(N, o.coresetRatio);
    const project = hooks.runtime?.project ?? projectRows;
    const projected = dim > o.projectionDim ? await project(all, N, dim, o.projectionDim, o.seed) : all;
    const d = Math.min(dim, o.projectionDim);
    const select: CoresetSelect =
      hooks.runtime?.coreset ??
      ((x, rows, dd, k, so) => greedyCoreset(x, rows, dd, k, { ...so, projectionDim: o.projectionDim }));
    const idx = await select(projected, N, d, n, {
      seed: o.seed,
      onStep: hooks.onProgress,
      signal: hooks.signal,
    });
    bank = new Float32Array(n * dim);
    for (let k = 0; k < n; k++) bank.set(all.subarray(idx[k] * dim, (idx[k] + 1) * dim), k * dim);
  }
  const f0 = normals[0].frame;
  const frame: [number, number] = o.frame ?? (f0 ? [f0.height, f0.width] : [h * 8, w * 8]);
  const head = PatchCoreHead.fromBank(bank, dim, { ...o, frame }, frame, hooks.runtime);
  return {
    head,
    patches: N,
    bankSize: head.bankSize,
    ms: { features: t1 - t0, coreset: performance.now() - t1 },
  };
}

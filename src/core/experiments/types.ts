/**
 * The experiment runner's contracts. The core never imports onnxruntime, tfjs or IndexedDB: the feature
 * extractor, the head trainers, the generators and the cell store are injected, so the runner is pure and runs
 * the same in Node (CLI, tests with fakes) and in the experiments worker.
 */
import type { RasterImage } from '../image.ts';
import type { MetricRow } from '../metrics/index.ts';
import type { CancelSignal, ProgressFn } from '../progress.ts';

/**
 * Generator axis of the grid. `in-out` mixes the `in` and `out` generators 50/50 (In&Out). `accepted` uses the
 * synthetic defects already accepted into the dataset (Paint & generate tab) instead of making new ones: the
 * Train tab's cell.
 */
export type GeneratorChoice =
  'none' | 'memseg' | 'random-walk' | 'transplant' | 'diffusion' | 'in-out' | 'accepted';
export const GENERATOR_CHOICES: readonly GeneratorChoice[] = [
  'none',
  'memseg',
  'random-walk',
  'transplant',
  'diffusion',
  'in-out',
  'accepted',
];

/** Head axis: trained heads, plus the two defect-free baselines computed on the same features. */
export type HeadChoice = 'bce' | 'spatial' | 'cse' | 'patchcore' | 'masked' | 'knn' | 'mean';
export const HEAD_CHOICES: readonly HeadChoice[] = [
  'bce',
  'spatial',
  'cse',
  'patchcore',
  'masked',
  'knn',
  'mean',
];
export const BASELINE_HEADS: readonly HeadChoice[] = ['knn', 'mean'];
/** Heads that learn from normals only (real and synthetic defects never reach them). */
export const UNSUPERVISED_HEADS: readonly HeadChoice[] = ['cse', 'knn', 'mean'];
/** Heads that are trained (and saved, exported, re-evaluated), as opposed to the defect-free baselines. */
export type HeadKind = Exclude<HeadChoice, 'knn' | 'mean'>;

/** One image of an experiment's data. `load` is lazy so a 1000-image set is not held decoded at once. */
export interface ExperimentImage {
  /** Stable id (file name or sha256): the feature-cache key together with the extractor id. */
  id: string;
  /** 0 normal, 1 defect. */
  label: 0 | 1;
  /** Defect class when known (per-class metrics); normals may say 'normal' or nothing. */
  defectClass?: string;
  /** The generator that made it (accepted synthetic defects). */
  generator?: string;
  /** Stored pixel size, when known without decoding (heat maps of normals are drawn at it for PRO). */
  size?: { width: number; height: number };
  load(): Promise<RasterImage>;
  /** Binary ground-truth mask [H, W] for defects, when known. */
  loadMask?(): Promise<RasterImage | null>;
}

export interface ExperimentData {
  /** Dataset name, stored with every cell. */
  name: string;
  /** Defect-free training images (the canvases of synthetic defects, the baselines' reference set). */
  trainNormals: ExperimentImage[];
  /** Real defects usable for training (few-shot); never evaluated on. */
  realDefects: ExperimentImage[];
  /** Synthetic defects already accepted into the dataset's train split (generator `accepted`). */
  acceptedSynthetic?: ExperimentImage[];
  /** Optional real validation images (both classes) for threshold choice; otherwise a synthetic split is held out. */
  validation?: ExperimentImage[];
  /** Held-out test images (both classes). */
  test: ExperimentImage[];
  /**
   * Masks the diffusion generator may inpaint in: the dataset's region/library masks and the label masks of its
   * real training defects (never test masks, which would leak the test defects' shapes).
   */
  regionMasks?: () => Promise<RasterImage[]>;
}

/**
 * Pooled features of a backbone. `id` names backbone + preprocessing so cached features are only reused when
 * both match. Returns one `[D]` vector per image, in order.
 */
export interface FeatureExtractor {
  readonly id: string;
  extract(images: RasterImage[], signal?: CancelSignal): Promise<Float32Array[]>;
}

/** One training or scoring row: pooled features plus, for heads that need pixels (CSE, spatial), the image. */
export interface HeadSample {
  id: string;
  /** Pooled feature vector [D]. */
  features: Float32Array;
  /** 0 normal, 1 defect (scoring rows carry their label too, but heads must not read it). */
  label: 0 | 1;
  source: 'normal' | 'synthetic' | 'real';
  load?: () => Promise<RasterImage>;
  /** The defect's binary mask [H, W] (synthetic defects, masked real ones): heads supervised by masks read it. */
  loadMask?: () => Promise<RasterImage | null>;
}

export interface HeadTrainOptions {
  seed: number;
  epochs?: number;
  signal?: CancelSignal;
  onProgress?: ProgressFn;
  /** Head-specific options from the grid spec (learning rate, hidden units, λ, …). */
  extra?: Record<string, unknown>;
}

export interface TrainedHead {
  /** Anomaly scores, one per row, higher = more defective. */
  score(rows: HeadSample[]): Promise<Float32Array>;
  dispose?(): void;
}

export interface HeadTrainer {
  readonly kind: HeadChoice;
  /** True when the head needs no defect at all (CSE, baselines): it is trained on the normal rows only. */
  readonly unsupervised?: boolean;
  train(rows: HeadSample[], options: HeadTrainOptions): Promise<TrainedHead>;
}

/**
 * Settings of the diffusion generator, stored in every cell that uses it (so the cell re-runs from its config).
 * Defaults are DIAG's (Girella et al.): expert prompts, its negative prompt, 30 steps, guidance 20, strength 0.99.
 */
export interface DiffusionGenOptions {
  /** Model id: a folder under models/tiny (Node) or a model cached by the Models tab (browser). */
  model: string;
  /** Prompt pool; each sample draws one (DIAG's random (image, prompt, mask) triplets). */
  prompts: string[];
  negativePrompt: string;
  steps: number;
  guidanceScale: number;
  strength: number;
  /**
   * Where the inpainting masks come from: `dataset` the dataset's region masks and the label masks of its real
   * training defects (never test masks), `perlin` random Perlin regions, `auto` the dataset's when it has any.
   */
  masks: 'auto' | 'dataset' | 'perlin';
  /**
   * DIAG's crop-around-mask (diffusers' `padding_mask_crop`): inpaint the mask's bounding box grown by `padding`
   * pixels, resized to the model's resolution, and paste it back. Absent = the whole image (cells stored before).
   */
  onlyMasked?: boolean;
  padding?: number;
}

/** What a generator may need beyond (image, seed): the cell's settings for it and the dataset's masks. */
export interface GeneratorContext {
  /** The cell's diffusion settings (generator `diffusion` only). */
  diffusion?: DiffusionGenOptions;
  /** Region masks of the dataset (any size, 0/255), loaded once per run. */
  regionMasks?: () => Promise<RasterImage[]>;
  /**
   * The dataset's real training defects that have masks, loaded once per run: what the transplant generator cuts
   * from (never test defects).
   */
  realDefects?: () => Promise<{ image: RasterImage; mask: RasterImage }[]>;
  signal?: CancelSignal;
}

/** A synthetic-defect generator: same (image, seed, settings) → same output. `mask` is binary 0/255, [H, W]. */
export type GeneratorFn = (
  image: RasterImage,
  seed: number,
  ctx?: GeneratorContext,
) => Promise<{ image: RasterImage; mask: RasterImage }> | { image: RasterImage; mask: RasterImage };

/**
 * How the threshold of a cell (or of the evaluation panel) is chosen. Test-set tuning exists only when asked and
 * is labelled so. `given` is a fixed threshold: a saved head's stored one or a value typed in the panel, with
 * where it came from.
 */
export type ThresholdPolicy =
  | { mode: 'val-best-f1' }
  | { mode: 'val-fpr'; maxFpr: number }
  | { mode: 'test-best-f1' }
  | { mode: 'test-fpr'; maxFpr: number }
  | { mode: 'given'; threshold: number; source: string };

/** How the training set is put together. `mixed` is ISP-AD mixed supervision (see `stream.ts`). */
export type StreamMode = 'concat' | 'mixed';

/** Everything a cell needs to be re-run bit for bit (with the same data, extractor and trainers). */
export interface CellConfig {
  dataset: string;
  extractor: string;
  generator: GeneratorChoice;
  /** Number of synthetic defects made from the training normals. */
  nAug: number;
  head: HeadChoice;
  /** Whether the real few-shot defects join the training set. */
  fewShot: boolean;
  stream: StreamMode;
  /** Probability of a real defect per draw in the mixed stream (ISP-AD: 1/32). */
  realProbability: number;
  /**
   * Fraction of the real few-shot defects used (ISP-AD's nested fractions 1/16 … 1): the first ⌈f·n⌉ of one
   * seed-shuffled order, so a smaller fraction's defects are always among a larger one's. Absent = all.
   */
  realFraction?: number;
  /**
   * Augment each real defect drawn into the training set (ISP-AD: rotation, scale, shear, flips,
   * brightness/contrast; `REAL_DEFECT_AUGMENT`), a fresh draw per occurrence. Absent = as they are.
   */
  augmentReal?: boolean;
  seed: number;
  epochs?: number;
  threshold: ThresholdPolicy;
  /** Fraction of normals (and synthetic defects) held out for validation when no real validation set exists. */
  valFraction: number;
  /** Generators mixed by `in-out`, alternating (`in` for even, `out` for odd indices): an even N_aug is 50/50. */
  inOut: { in: string; out: string };
  /** Diffusion settings; present exactly when the cell uses the diffusion generator (alone or in In&Out). */
  diffusion?: DiffusionGenOptions;
  headOptions?: Record<string, unknown>;
}

export interface ClassMetrics {
  n: number;
  ap: number;
  auroc: number;
  /** Recall of this class's defects at the cell's threshold. */
  recall: number;
}

/** The metric row of the evaluation table (AP, AUROC, P/R/F1/MCC/FPR and the confusion at the threshold). */
export interface CellMetrics extends MetricRow {
  /** AP on the validation set the threshold came from (NaN without validation defects). */
  valAp: number;
  /** Image-level AUPRO is not defined; PRO appears only for heads with heat maps (spatial, CSE) and masks. */
  auPro?: number;
  /** Pixel-level AUROC over every scored test pixel (heads with heat maps, test masks). */
  pixelAuroc?: number;
}

/** Images a cell trained on, validated on and was tested on, by kind. */
export interface CellCounts {
  train: { normal: number; synthetic: number; real: number };
  val: { normal: number; synthetic: number; real: number };
  test: { normal: number; defect: number };
}

/** Pixel-level PRO of a head with heat maps (MVTec AD definition, `src/core/metrics/pro.ts`). */
export interface PixelEvaluation {
  /** Normalized area under the PRO curve for FPR ∈ [0, fprLimit]. */
  auPro: number;
  fprLimit: number;
  /** Pixel-level AUROC over the same pixels. */
  pixelAuroc?: number;
  /** Connected defect regions, and images scored (normal test images count with an empty mask). */
  regions: number;
  images: number;
  /** Where it was computed. */
  resolution: string;
}

/** A defect-free baseline evaluated inside a cell (same split, features and threshold policy as its head). */
export interface BaselineResult {
  kind: 'mean' | 'knn';
  label: string;
  scores: number[];
  threshold: number;
  thresholdSource: string;
  metrics: CellMetrics;
}

export interface CellResult {
  id: string;
  config: CellConfig;
  status: 'done' | 'failed';
  metrics?: CellMetrics;
  counts?: CellCounts;
  /** PRO with its provenance, when the head has heat maps and test defects have masks. */
  pixel?: PixelEvaluation;
  /** Validation scores the threshold came from (when asked: `keepScores`). */
  val?: { scores: number[]; labels: number[]; synthetic: boolean };
  /** Test heat maps on the feature grid `[h·w]` per test image (when asked: `keepMaps`). */
  maps?: { h: number; w: number; data: number[][] };
  /** The defect-free baselines of the same cell (when asked: `withBaselines`). */
  baselines?: BaselineResult[];
  /** Where the threshold came from: 'val:real', 'val:synthetic', 'val:normals@fpr≤0.05', 'test (tuned on test)'. */
  thresholdSource?: string;
  perClass?: Record<string, ClassMetrics>;
  /** Synthetic defects made for the cell, per generator name (In&Out: half each). */
  synthetic?: Record<string, number>;
  /** Test scores in the order of `data.test` (for curves, histograms, confusion cells). */
  scores?: number[];
  warnings: string[];
  error?: string;
  ms: number;
  finishedAt: number;
}

/** Where finished cells go, so a run interrupted by a reload or Ctrl-C skips them on resume. */
export interface CellStore {
  get(id: string): Promise<CellResult | undefined>;
  put(result: CellResult): Promise<void>;
  list(): Promise<CellResult[]>;
}

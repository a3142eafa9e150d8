/**
 * The experiment runner: runs each cell of a grid (or one stored cell config) against injected features, heads
 * and generators, stores finished cells in a `CellStore` (resume skips them) and aggregates the table.
 *
 * Per cell, with everything random derived from the cell's seed:
 * 1. the training normals are split into train/validation (`valFraction`, the same split for every cell of a
 *    seed, so heads and baselines see the same images);
 * 2. `nAug` synthetic defects are made from the train-part normals (generator seeds derived from (generator,
 *    seed, i), so cells that share them share cached features), all of them for training; validation defects
 *    (round(valFraction · nAug), at least one) are made in addition on the held-out normals. The dataset's
 *    accepted defects (generator `accepted`) are a fixed set, so valFraction of them is held out instead;
 * 3. the head trains on normals + synthetic (+ the real few-shot defects), concatenated or as the ISP-AD mixed
 *    stream; unsupervised heads (CSE, baselines) see the normals only;
 * 4. the threshold comes from validation (real when given, else the synthetic split — labelled and warned) or,
 *    only when asked, from the test set (labelled "tuned on test");
 * 5. test metrics, per-defect-class metrics and (for heads with heat maps and masks) AUPRO.
 */
import { CancelledError, DefectLabError, errorInfo } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import {
  auPro,
  averagePrecision,
  labelComponents,
  metricRow,
  rocAuc,
  type MaskLike,
  type ScoreMap,
} from '../metrics/index.ts';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress.ts';
import { Rng, hashString } from '../rng.ts';
import { REAL_DEFECT_AUGMENT, augmentDefect } from '../synth/augment.ts';
import { knnTrainer, meanDistanceTrainer } from './baselines.ts';
import { cellId, expandGrid, stableStringify, type GridSpec } from './grid.ts';
import { composeTrainingSet } from './stream.ts';
import { aggregate, type TableRow } from './table.ts';
import { perClassMetrics } from './evaluate.ts';
import { chooseThreshold, type ThresholdChoice } from './threshold.ts';
import type {
  BaselineResult,
  CellConfig,
  CellCounts,
  CellMetrics,
  CellResult,
  CellStore,
  ClassMetrics,
  ExperimentData,
  ExperimentImage,
  FeatureExtractor,
  GeneratorContext,
  GeneratorFn,
  HeadChoice,
  HeadSample,
  HeadTrainer,
  PixelEvaluation,
  ThresholdPolicy,
  TrainedHead,
} from './types.ts';

export class MissingDependencyError extends DefectLabError {
  constructor(what: string, fix: string) {
    super('MissingDependencyError', what, fix);
  }
}

/**
 * A trained head that also draws heat maps (spatial, CSE): maps on the feature grid per row, and how one is
 * brought onto an image's pixels (through the backbone's preprocessing geometry). Then PRO is reported when test
 * defects have masks, and the viewer can overlay the maps.
 */
export interface HeatMapHead extends TrainedHead {
  /** Maps `[h·w]` per row on the feature grid. */
  gridMaps(rows: HeadSample[]): Promise<{ h: number; w: number; maps: Float32Array[] }>;
  /** One grid map `[h·w]` on an image of `width × height` pixels. */
  toImage(map: Float32Array, h: number, w: number, width: number, height: number): Float32Array;
}

/** What `runCell` can keep or do beyond the table's numbers (the Train tab asks for all of it). */
export interface CellOptions {
  signal?: CancelSignal;
  onProgress?: ProgressFn;
  /** Keep per-image test and validation scores (curves, histograms, re-thresholding); default true. */
  keepScores?: boolean;
  /** Keep the test heat maps on the feature grid (viewer overlays). */
  keepMaps?: boolean;
  /** Evaluate the defect-free baselines (mean, k-NN) inside the cell, on its split and threshold policy. */
  withBaselines?: boolean;
  /**
   * Called with the trained head and the finished result before the head is disposed (the Train tab saves it
   * here). Errors fail the cell.
   */
  onHead?: (head: TrainedHead, result: CellResult) => Promise<void>;
  /** Throw a failure (with its code and fix) instead of returning it as `status: 'failed'`. */
  throwOnError?: boolean;
}

/** Optional persistent feature cache (the app's IndexedDB cache, a JSON file in the CLI). */
export interface FeatureCacheLike {
  get(key: string): Promise<Float32Array | undefined>;
  put(key: string, features: Float32Array): Promise<void>;
}

export interface ExperimentEnv {
  extractor: FeatureExtractor;
  /** Trainers by head; `knn` and `mean` default to the built-in baselines. */
  trainers: Partial<Record<HeadChoice, HeadTrainer>>;
  /** Generators by name ('memseg', 'random-walk', 'diffusion', …). */
  generators: Record<string, GeneratorFn>;
  featureCache?: FeatureCacheLike;
  /** Images per extractor call (default 16). */
  batchSize?: number;
}

export interface RunOptions extends Pick<CellOptions, 'keepScores' | 'keepMaps' | 'withBaselines'> {
  store?: CellStore;
  signal?: CancelSignal;
  onProgress?: ProgressFn;
  /** Called after every finished (or loaded-from-store) cell, for live tables. */
  onCell?: (r: CellResult, resumed: boolean) => void;
}

export interface ExperimentResult {
  cells: CellResult[];
  table: TableRow[];
  /** Distinct warnings of all cells. */
  warnings: string[];
  /** Cells taken from the store instead of being run. */
  resumed: number;
}

interface Row extends HeadSample {
  defectClass?: string;
}

/** Features per image key, cached in memory and optionally in a persistent cache. */
class FeatureBank {
  private readonly mem = new Map<string, Float32Array>();
  constructor(private readonly env: ExperimentEnv) {}

  async get(
    items: { key: string; load: () => Promise<RasterImage> }[],
    signal?: CancelSignal,
  ): Promise<Float32Array[]> {
    const missing: typeof items = [];
    for (const it of items) {
      if (this.mem.has(it.key) || missing.some((m) => m.key === it.key)) continue;
      const cached = await this.env.featureCache?.get(it.key);
      if (cached) this.mem.set(it.key, cached);
      else missing.push(it);
    }
    const bs = this.env.batchSize ?? 16;
    for (let i = 0; i < missing.length; i += bs) {
      throwIfCancelled(signal, 'feature extraction');
      const chunk = missing.slice(i, i + bs);
      const images = await Promise.all(chunk.map((c) => c.load()));
      const feats = await this.env.extractor.extract(images, signal);
      for (let k = 0; k < chunk.length; k++) {
        this.mem.set(chunk[k].key, feats[k]);
        await this.env.featureCache?.put(chunk[k].key, feats[k]);
      }
    }
    return items.map((it) => this.mem.get(it.key) as Float32Array);
  }
}

/** Memoizes generated images so a cell's synthetic defects are made once per (generator, settings, canvas, seed). */
class SynthBank {
  private readonly made = new Map<string, Promise<{ image: RasterImage; mask: RasterImage }>>();
  private regionMasks: Promise<RasterImage[]> | null = null;
  constructor(
    private readonly env: ExperimentEnv,
    private readonly data: ExperimentData,
  ) {}
  /** The dataset's region masks, loaded once per run and shared by every cell. */
  private masks = (): Promise<RasterImage[]> => {
    this.regionMasks ??= this.data.regionMasks ? this.data.regionMasks() : Promise.resolve([]);
    return this.regionMasks;
  };
  private realWithMasks: Promise<{ image: RasterImage; mask: RasterImage }[]> | null = null;
  /** The real training defects with masks (transplant's sources), loaded once per run. */
  private realDefects = (): Promise<{ image: RasterImage; mask: RasterImage }[]> => {
    this.realWithMasks ??= Promise.all(
      this.data.realDefects.map(async (d) => {
        const mask = (await d.loadMask?.()) ?? null;
        return mask ? { image: await d.load(), mask } : null;
      }),
    ).then((xs) => xs.filter((x): x is { image: RasterImage; mask: RasterImage } => x !== null));
    return this.realWithMasks;
  };
  /** The generator's output for (generator, settings, canvas, seed), made once. */
  private output(
    name: string,
    canvas: ExperimentImage,
    seed: number,
    settingsKey: string,
    ctx: Omit<GeneratorContext, 'regionMasks' | 'realDefects'>,
  ): Promise<{ image: RasterImage; mask: RasterImage }> {
    const key = `${name}|${settingsKey}|${canvas.id}|${seed}`;
    let p = this.made.get(key);
    if (!p) {
      const gen = this.env.generators[name];
      if (!gen) throw missingGenerator(name);
      p = canvas
        .load()
        .then(async (img) =>
          gen(img, seed, { ...ctx, regionMasks: this.masks, realDefects: this.realDefects }),
        );
      this.made.set(key, p);
    }
    return p;
  }
  /** Loaders of a synthetic defect's image and of its mask (heads supervised by masks read the latter). */
  load(
    name: string,
    canvas: ExperimentImage,
    seed: number,
    settingsKey: string,
    ctx: Omit<GeneratorContext, 'regionMasks' | 'realDefects'>,
  ): { load: () => Promise<RasterImage>; loadMask: () => Promise<RasterImage> } {
    return {
      load: async () => (await this.output(name, canvas, seed, settingsKey, ctx)).image,
      loadMask: async () => (await this.output(name, canvas, seed, settingsKey, ctx)).mask,
    };
  }
  /** Forget images (features stay cached) so memory does not grow with the grid. */
  clear(): void {
    this.made.clear();
  }
}

function missingGenerator(name: string): MissingDependencyError {
  return new MissingDependencyError(
    `generator "${name}" is not available here`,
    name === 'diffusion'
      ? "load a diffusion model (Models tab; in Node run npm run models:tiny and name its folder in the grid's diffusion.model) or drop diffusion and In&Out from the grid"
      : `register it in the experiment environment or drop "${name}" from the grid`,
  );
}

/** Generator names a cell calls (In&Out: both of its pair). */
export function cellGenerators(c: CellConfig): string[] {
  if (c.generator === 'none' || c.generator === 'accepted' || c.nAug === 0) return [];
  return c.generator === 'in-out' ? [...new Set([c.inOut.in, c.inOut.out])] : [c.generator];
}

/** The state shared by the cells of one run (feature and synthetic caches). */
export class ExperimentContext {
  readonly features: FeatureBank;
  readonly synth: SynthBank;
  constructor(
    readonly data: ExperimentData,
    readonly env: ExperimentEnv,
  ) {
    this.features = new FeatureBank(env);
    this.synth = new SynthBank(env, data);
  }

  trainer(head: HeadChoice): HeadTrainer {
    const t =
      this.env.trainers[head] ??
      (head === 'knn' ? knnTrainer : head === 'mean' ? meanDistanceTrainer : undefined);
    if (!t)
      throw new MissingDependencyError(
        `no trainer for head "${head}" in this environment`,
        `pass a ${head} trainer in env.trainers or drop "${head}" from the grid`,
      );
    return t;
  }

  private key(imageKey: string): string {
    return `${this.env.extractor.id}|${imageKey}`;
  }

  async rows(
    items: {
      key: string;
      load: () => Promise<RasterImage>;
      loadMask?: () => Promise<RasterImage | null>;
      label: 0 | 1;
      source: Row['source'];
      defectClass?: string;
    }[],
    signal?: CancelSignal,
  ): Promise<Row[]> {
    const feats = await this.features.get(
      items.map((i) => ({ key: this.key(i.key), load: i.load })),
      signal,
    );
    return items.map((it, k) => ({
      id: it.key,
      features: feats[k],
      label: it.label,
      source: it.source,
      load: it.load,
      ...(it.loadMask ? { loadMask: it.loadMask } : {}),
      defectClass: it.defectClass,
    }));
  }

  realRows(
    images: ExperimentImage[],
    source: 'real' | 'normal' | 'synthetic' | 'auto',
    signal?: CancelSignal,
  ): Promise<Row[]> {
    return this.rows(
      images.map((im) => ({
        key: `img:${im.id}`,
        load: () => im.load(),
        ...(im.loadMask ? { loadMask: () => im.loadMask!() } : {}),
        label: im.label,
        source:
          source === 'auto' ? (im.label === 0 ? 'normal' : im.generator ? 'synthetic' : 'real') : source,
        defectClass: im.defectClass,
      })),
      signal,
    );
  }
}

function isHeatMapHead(h: TrainedHead): h is HeatMapHead {
  return typeof (h as Partial<HeatMapHead>).gridMaps === 'function';
}

/** Threshold, metrics and per-class metrics of one scorer (a head or a baseline) on a cell's val/test rows. */
function evaluateScores(
  policy: ThresholdPolicy,
  valRows: Row[],
  valScores: Float32Array,
  testRows: Row[],
  testScores: Float32Array,
): { choice: ThresholdChoice; metrics: CellMetrics; perClass: Record<string, ClassMetrics> } {
  const testLabels = testRows.map((r) => r.label);
  const valLabels = valRows.map((r) => r.label);
  const choice = chooseThreshold(
    policy,
    {
      scores: valScores,
      labels: valLabels,
      defectSources: valRows
        .filter((r) => r.label === 1)
        .map((r) => (r.source === 'synthetic' ? 'synthetic' : 'real')),
    },
    { scores: testScores, labels: testLabels },
  );
  const metrics: CellMetrics = {
    ...metricRow(testScores, testLabels, choice.threshold),
    valAp: valLabels.includes(1) && valLabels.includes(0) ? averagePrecision(valScores, valLabels) : NaN,
  };
  const perClass: Record<string, ClassMetrics> = {};
  for (const c of perClassMetrics(
    testScores,
    testLabels,
    testRows.map((r) => r.defectClass),
    choice.threshold,
  ))
    perClass[c.defectClass] = { n: c.n, ap: c.ap, auroc: c.auroc, recall: c.recall };
  return { choice, metrics, perClass };
}

const BASELINE_LABELS = {
  mean: 'baseline: cosine distance to mean normal',
  knn: 'baseline: k-NN cosine distance (k = 1)',
} as const;

/**
 * PRO at each test image's own pixels (AUPRO@0.3): grid maps brought onto the mask through the head's geometry.
 * Normal test images count with an empty mask (their pixels are the false positives); defect images without a
 * mask are left out. Undefined without any defect region.
 */
async function pixelEvaluation(
  head: HeatMapHead,
  images: ExperimentImage[],
  rows: Row[],
  grid: { h: number; w: number; maps: Float32Array[] },
): Promise<PixelEvaluation | undefined> {
  const maps: ScoreMap[] = [];
  const masks: MaskLike[] = [];
  let regions = 0;
  for (let i = 0; i < images.length; i++) {
    const im = images[i];
    const raw = im.label === 1 ? ((await im.loadMask?.()) ?? null) : null;
    if (!raw && im.label === 1) continue;
    let mask: MaskLike;
    if (raw) {
      mask = { width: raw.width, height: raw.height, data: raw.data.map((v) => (v > 127 ? 1 : 0)) };
      regions += labelComponents(mask).count;
    } else {
      const size = im.size ?? (await rows[i].load!());
      mask = { width: size.width, height: size.height, data: new Uint8Array(size.width * size.height) };
    }
    masks.push(mask);
    maps.push({
      width: mask.width,
      height: mask.height,
      data: head.toImage(grid.maps[i], grid.h, grid.w, mask.width, mask.height),
    });
  }
  if (regions === 0) return undefined;
  const total = maps.reduce((a, m) => a + m.data.length, 0);
  const px = new Float32Array(total);
  const pl = new Uint8Array(total);
  let o = 0;
  for (let i = 0; i < maps.length; i++) {
    px.set(maps[i].data, o);
    pl.set(masks[i].data, o);
    o += maps[i].data.length;
  }
  return {
    auPro: auPro(maps, masks, 0.3),
    fprLimit: 0.3,
    pixelAuroc: rocAuc(px, pl),
    regions,
    images: maps.length,
    resolution: 'mask pixels (heat map upsampled bilinearly through the preprocessing geometry)',
  };
}

/**
 * ISP-AD's real-defect augmentation: every real defect drawn into the training rows is replaced by a seeded
 * augmented copy (a fresh draw per occurrence: key and seed carry the position), image and mask transformed
 * together; its features are extracted like any other row's.
 */
async function augmentedReal(
  rows: Row[],
  config: CellConfig,
  ctx: ExperimentContext,
  signal?: CancelSignal,
): Promise<Row[]> {
  const at: number[] = [];
  const items: Parameters<ExperimentContext['rows']>[0] = [];
  rows.forEach((r, k) => {
    if (r.source !== 'real' || !r.load) return;
    const seed = `${r.id}:${config.seed}:${k}`;
    let made: Promise<ReturnType<typeof augmentDefect>> | null = null;
    const once = () =>
      (made ??= (async () =>
        augmentDefect(await r.load!(), (await r.loadMask?.()) ?? null, REAL_DEFECT_AUGMENT, seed))());
    at.push(k);
    items.push({
      key: `aug:${r.id}:${config.seed}:${k}`,
      load: async () => (await once()).image,
      ...(r.loadMask ? { loadMask: async () => (await once()).mask } : {}),
      label: 1,
      source: 'real',
      defectClass: r.defectClass,
    });
  });
  const aug = await ctx.rows(items, signal);
  const out = [...rows];
  at.forEach((k, j) => (out[k] = aug[j]));
  return out;
}

/**
 * The real few-shot defects a cell uses: all of them, or the first ⌈f·n⌉ of a shuffle seeded by (dataset, seed)
 * alone, so the fractions of one seed are nested (1/16 ⊂ 1/8 ⊂ … ⊂ 1).
 */
export function realSubset(data: ExperimentData, config: CellConfig): ExperimentImage[] {
  const f = config.realFraction;
  if (f === undefined || f >= 1) return data.realDefects;
  const order = new Rng(`real:${data.name}:${config.seed}`).shuffle(data.realDefects.map((_, i) => i));
  const n = Math.max(1, Math.ceil(f * data.realDefects.length));
  return order.slice(0, n).map((i) => data.realDefects[i]);
}

/** Runs one cell from its config. Throws only on cancel; other failures come back as `status: 'failed'`. */
export async function runCell(
  config: CellConfig,
  ctx: ExperimentContext,
  opts: CellOptions = {},
): Promise<CellResult> {
  const t0 = Date.now();
  const id = cellId(config);
  const warnings: string[] = [];
  try {
    const { data } = ctx;
    const signal = opts.signal;
    if (data.trainNormals.length < 2)
      throw new MissingDependencyError(
        'the experiment needs at least 2 training normals',
        'add defect-free training images',
      );
    // 1. Split normals (seed-only stream: every head of a seed sees the same split).
    const splitRng = new Rng(`split:${data.name}:${config.seed}`);
    const order = splitRng.shuffle(data.trainNormals.map((_, i) => i));
    // At least one validation normal whenever there is a hold-out at all (a threshold needs normals), never all.
    const nValNormals =
      data.validation || config.valFraction <= 0
        ? 0
        : Math.min(order.length - 1, Math.max(1, Math.round(order.length * config.valFraction)));
    const valNormals = order.slice(0, nValNormals).map((i) => data.trainNormals[i]);
    const trainNormals = order.slice(nValNormals).map((i) => data.trainNormals[i]);

    // 2. Synthetic defects from the train-part normals. In&Out alternates its pair, so an even N_aug is 50/50.
    const synthItems: Parameters<ExperimentContext['rows']>[0] = [];
    const valSynthItems: Parameters<ExperimentContext['rows']>[0] = [];
    const synthetic: Record<string, number> = {};
    if (config.generator === 'accepted') {
      // The dataset's accepted synthetic defects, in their stored order (the first nAug of them).
      const accepted = (data.acceptedSynthetic ?? []).slice(0, config.nAug);
      for (const im of accepted) {
        const generator = im.generator ?? 'accepted';
        synthetic[generator] = (synthetic[generator] ?? 0) + 1;
        synthItems.push({
          key: `img:${im.id}`,
          load: () => im.load(),
          label: 1,
          source: 'synthetic',
          defectClass: im.defectClass,
        });
      }
    } else if (config.generator !== 'none' && config.nAug > 0) {
      // Settings that change the images are part of the synthetic image's key (feature cache included).
      const diffusionKey = config.diffusion
        ? hashString(stableStringify(config.diffusion)).toString(16).padStart(8, '0')
        : '';
      const make = (pool: ExperimentImage[], n: number, part: 'train' | 'val') => {
        const canvasRng = new Rng(
          part === 'train' ? `canvas:${data.name}:${config.seed}` : `val-canvas:${data.name}:${config.seed}`,
        );
        const items: typeof synthItems = [];
        for (let i = 0; i < n; i++) {
          const name =
            config.generator === 'in-out'
              ? i % 2 === 0
                ? config.inOut.in
                : config.inOut.out
              : config.generator;
          if (name === 'diffusion' && !config.diffusion)
            throw new MissingDependencyError(
              'this cell uses the diffusion generator but its config has no diffusion settings',
              'give the grid a "diffusion" block (model, prompts, steps, guidanceScale, strength, masks)',
            );
          const canvas = pool[canvasRng.int(0, pool.length)];
          const seed = hashString(
            part === 'train' ? `${name}:${config.seed}:${i}` : `${name}:val:${config.seed}:${i}`,
          );
          const tag = name === 'diffusion' ? `${name}@${diffusionKey}` : name;
          if (part === 'train') synthetic[name] = (synthetic[name] ?? 0) + 1;
          items.push({
            key: `syn:${tag}:${canvas.id}:${seed}`,
            ...ctx.synth.load(name, canvas, seed, name === 'diffusion' ? diffusionKey : '', {
              diffusion: name === 'diffusion' ? config.diffusion : undefined,
              signal,
            }),
            label: 1,
            source: 'synthetic',
          });
        }
        return items;
      };
      synthItems.push(...make(trainNormals, config.nAug, 'train'));
      // N_aug means N_aug: validation defects are made in addition, on the held-out normals (never on a
      // training canvas), so all N_aug synthetic defects reach training.
      if (!data.validation && valNormals.length && config.valFraction > 0)
        valSynthItems.push(
          ...make(valNormals, Math.max(1, Math.round(config.nAug * config.valFraction)), 'val'),
        );
    }
    // Accepted defects are a fixed set: without a val split, valFraction of them is held out for validation.
    const nHeldOut =
      config.generator === 'accepted' && !data.validation
        ? Math.round(synthItems.length * config.valFraction)
        : 0;
    const synthRows = await ctx.rows(synthItems, signal);
    const trainSynth = synthRows.slice(0, synthRows.length - nHeldOut);
    const valSynth = [
      ...synthRows.slice(synthRows.length - nHeldOut),
      ...(await ctx.rows(valSynthItems, signal)),
    ];

    const normalRows = await ctx.realRows(trainNormals, 'normal', signal);
    const realRows = config.fewShot ? await ctx.realRows(realSubset(data, config), 'real', signal) : [];
    const valRows = data.validation
      ? await ctx.realRows(data.validation, 'auto', signal)
      : [...(await ctx.realRows(valNormals, 'normal', signal)), ...valSynth];
    const testRows = await ctx.realRows(data.test, 'auto', signal);

    // 3. Training rows.
    const trainer = ctx.trainer(config.head);
    let rows: Row[];
    if (trainer.unsupervised) rows = normalRows;
    else
      rows = composeTrainingSet(
        { normal: normalRows, synthetic: trainSynth, real: realRows },
        { mode: config.stream, realProbability: config.realProbability },
        new Rng(`stream:${config.seed}`),
      ).rows;
    if (config.augmentReal && !trainer.unsupervised) rows = await augmentedReal(rows, config, ctx, signal);
    if (!trainer.unsupervised && !rows.some((r) => r.label === 1))
      throw new MissingDependencyError(
        `head "${config.head}" needs defects to learn from, but this cell has none`,
        'pick a generator with N_aug > 0 or turn few-shot real defects on',
      );
    throwIfCancelled(signal, 'the experiment');
    const head = await trainer.train(rows, {
      seed: config.seed,
      epochs: config.epochs,
      signal,
      onProgress: opts.onProgress,
      extra: { ...config.headOptions, generator: config.generator },
    });
    ctx.synth.clear();
    try {
      // 4. Scores, threshold, metrics and per-class metrics.
      const testScores = await head.score(testRows);
      const valScores = valRows.length ? await head.score(valRows) : new Float32Array(0);
      const { choice, metrics, perClass } = evaluateScores(
        config.threshold,
        valRows,
        valScores,
        testRows,
        testScores,
      );
      warnings.push(...choice.warnings);
      const counts: CellCounts = {
        train: {
          normal: rows.filter((r) => r.source === 'normal').length,
          synthetic: rows.filter((r) => r.source === 'synthetic').length,
          real: rows.filter((r) => r.source === 'real').length,
        },
        val: {
          normal: valRows.filter((r) => r.label === 0).length,
          synthetic: valRows.filter((r) => r.source === 'synthetic').length,
          real: valRows.filter((r) => r.label === 1 && r.source !== 'synthetic').length,
        },
        test: {
          normal: testRows.filter((r) => r.label === 0).length,
          defect: testRows.filter((r) => r.label === 1).length,
        },
      };
      // 5. Heat maps: PRO when test defects have masks; the grid maps themselves when asked.
      let pixel: PixelEvaluation | undefined;
      let maps: CellResult['maps'];
      if (isHeatMapHead(head) && (opts.keepMaps || data.test.some((t) => t.loadMask))) {
        const grid = await head.gridMaps(testRows);
        if (data.test.some((t) => t.loadMask)) pixel = await pixelEvaluation(head, data.test, testRows, grid);
        if (opts.keepMaps) maps = { h: grid.h, w: grid.w, data: grid.maps.map((m) => Array.from(m)) };
      }
      if (pixel) {
        metrics.auPro = pixel.auPro;
        metrics.pixelAuroc = pixel.pixelAuroc;
      }
      // 6. The defect-free baselines on the same split and policy (a given threshold belongs to the head).
      let baselines: BaselineResult[] | undefined;
      if (opts.withBaselines) {
        const policy: ThresholdPolicy =
          config.threshold.mode === 'given' ? { mode: 'val-best-f1' } : config.threshold;
        baselines = [];
        for (const kind of ['mean', 'knn'] as const) {
          const b = await ctx.trainer(kind).train(normalRows, { seed: config.seed, signal });
          const bTest = await b.score(testRows);
          const bVal = valRows.length ? await b.score(valRows) : new Float32Array(0);
          const e = evaluateScores(policy, valRows, bVal, testRows, bTest);
          baselines.push({
            kind,
            label: BASELINE_LABELS[kind],
            scores: Array.from(bTest),
            threshold: e.choice.threshold,
            thresholdSource: e.choice.source,
            metrics: e.metrics,
          });
          b.dispose?.();
        }
      }
      const keep = opts.keepScores !== false;
      const result: CellResult = {
        id,
        config,
        status: 'done',
        metrics,
        counts,
        ...(pixel ? { pixel } : {}),
        ...(keep
          ? {
              val: {
                scores: Array.from(valScores),
                labels: valRows.map((r) => r.label),
                synthetic: !valRows.some((r) => r.label === 1 && r.source !== 'synthetic'),
              },
            }
          : {}),
        ...(maps ? { maps } : {}),
        ...(baselines ? { baselines } : {}),
        thresholdSource: choice.source,
        perClass,
        ...(synthItems.length ? { synthetic } : {}),
        scores: keep ? Array.from(testScores) : undefined,
        warnings,
        ms: Date.now() - t0,
        finishedAt: Date.now(),
      };
      await opts.onHead?.(head, result);
      return result;
    } finally {
      head.dispose?.();
    }
  } catch (e) {
    if (e instanceof CancelledError || opts.throwOnError) throw e;
    return {
      id,
      config,
      status: 'failed',
      warnings,
      error: errorInfo(e).message,
      ms: Date.now() - t0,
      finishedAt: Date.now(),
    };
  }
}

/**
 * Runs every cell of the grid. Cells already `done` in `opts.store` are skipped (resume); failed ones are
 * retried. Cancel stops between cells (and inside extraction/training when they honour the signal) with a
 * `CancelledError` saying how many cells are safe in the store.
 */
export async function runExperiment(
  spec: GridSpec,
  data: ExperimentData,
  env: ExperimentEnv,
  opts: RunOptions = {},
): Promise<ExperimentResult> {
  const configs = expandGrid(spec, data.name, env.extractor.id);
  return runCells(configs, data, env, opts);
}

/** Runs a list of cell configs (a grid, or configs read back from an export to reproduce them). */
export async function runCells(
  configs: CellConfig[],
  data: ExperimentData,
  env: ExperimentEnv,
  opts: RunOptions = {},
): Promise<ExperimentResult> {
  // A generator the environment lacks would fail every cell that needs it: say so once, before any work
  // (cells already done in the store need nothing).
  const todo: CellConfig[] = [];
  for (const c of configs) if ((await opts.store?.get(cellId(c)))?.status !== 'done') todo.push(c);
  const missing = [...new Set(todo.flatMap(cellGenerators))].filter((g) => !env.generators[g]);
  if (missing.length) throw missingGenerator(missing[0]);
  const ctx = new ExperimentContext(data, env);
  const cells: CellResult[] = [];
  let resumed = 0;
  for (let i = 0; i < configs.length; i++) {
    const id = cellId(configs[i]);
    const stored = await opts.store?.get(id);
    opts.onProgress?.({ stage: 'cells', done: i, total: configs.length, unit: 'items', message: id });
    if (stored && stored.status === 'done') {
      cells.push(stored);
      resumed++;
      opts.onCell?.(stored, true);
      continue;
    }
    throwIfCancelled(
      opts.signal,
      'the experiment',
      `${i} of ${configs.length} cells are stored; run again to resume`,
    );
    let r: CellResult;
    try {
      r = await runCell(configs[i], ctx, opts);
    } catch (e) {
      if (e instanceof CancelledError)
        throw new CancelledError(
          'the experiment',
          `${i} of ${configs.length} cells are stored; run again to resume`,
        );
      throw e;
    }
    await opts.store?.put(r);
    cells.push(r);
    opts.onCell?.(r, false);
  }
  opts.onProgress?.({ stage: 'cells', done: configs.length, total: configs.length, unit: 'items' });
  const warnings = [
    ...new Set(cells.flatMap((c) => [...c.warnings, ...(c.error ? [`${c.id}: ${c.error}`] : [])])),
  ];
  return { cells, table: aggregate(cells), warnings, resumed };
}

/**
 * The experiment runner: runs each cell of a grid (or one stored cell config) against injected features, heads
 * and generators, stores finished cells in a `CellStore` (resume skips them) and aggregates the table.
 *
 * Per cell, with everything random derived from the cell's seed:
 * 1. the training normals are split into train/validation (`valFraction`, the same split for every cell of a
 *    seed, so heads and baselines see the same images);
 * 2. `nAug` synthetic defects are made from the train-part normals (generator seeds derived from (generator,
 *    seed, i), so cells that share them share cached features); `valFraction` of them go to validation;
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
  confusionAt,
  f1,
  fpr,
  mcc,
  precision,
  recall,
  rocAuc,
  type ScoreMap,
} from '../metrics/index.ts';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../progress.ts';
import { Rng, hashString } from '../rng.ts';
import { knnTrainer, meanDistanceTrainer } from './baselines.ts';
import { cellId, expandGrid, stableStringify, type GridSpec } from './grid.ts';
import { mixedSupervisionStream } from './stream.ts';
import { aggregate, type TableRow } from './table.ts';
import { chooseThreshold } from './threshold.ts';
import type {
  CellConfig,
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
  TrainedHead,
} from './types.ts';

export class MissingDependencyError extends DefectLabError {
  constructor(what: string, fix: string) {
    super('MissingDependencyError', what, fix);
  }
}

/** A trained head may also draw heat maps [H, W] per row (spatial, CSE): then AUPRO is reported when masks exist. */
export interface HeatMapHead extends TrainedHead {
  heatMaps(rows: HeadSample[]): Promise<ScoreMap[]>;
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

export interface RunOptions {
  store?: CellStore;
  signal?: CancelSignal;
  onProgress?: ProgressFn;
  /** Called after every finished (or loaded-from-store) cell, for live tables. */
  onCell?: (r: CellResult, resumed: boolean) => void;
  /** Keep per-image test scores in each cell (curves, histograms); default true. */
  keepScores?: boolean;
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
  private readonly made = new Map<string, Promise<RasterImage>>();
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
  load(
    name: string,
    canvas: ExperimentImage,
    seed: number,
    settingsKey: string,
    ctx: Omit<GeneratorContext, 'regionMasks'>,
  ): () => Promise<RasterImage> {
    return () => {
      const key = `${name}|${settingsKey}|${canvas.id}|${seed}`;
      let p = this.made.get(key);
      if (!p) {
        const gen = this.env.generators[name];
        if (!gen) throw missingGenerator(name);
        p = canvas
          .load()
          .then(async (img) => (await gen(img, seed, { ...ctx, regionMasks: this.masks })).image);
        this.made.set(key, p);
      }
      return p;
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
  if (c.generator === 'none' || c.nAug === 0) return [];
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
      defectClass: it.defectClass,
    }));
  }

  realRows(
    images: ExperimentImage[],
    source: 'real' | 'normal' | 'auto',
    signal?: CancelSignal,
  ): Promise<Row[]> {
    return this.rows(
      images.map((im) => ({
        key: `img:${im.id}`,
        load: () => im.load(),
        label: im.label,
        source: source === 'auto' ? (im.label === 1 ? 'real' : 'normal') : source,
        defectClass: im.defectClass,
      })),
      signal,
    );
  }
}

function isHeatMapHead(h: TrainedHead): h is HeatMapHead {
  return typeof (h as Partial<HeatMapHead>).heatMaps === 'function';
}

/** Runs one cell from its config. Throws only on cancel; other failures come back as `status: 'failed'`. */
export async function runCell(
  config: CellConfig,
  ctx: ExperimentContext,
  opts: { signal?: CancelSignal; onProgress?: ProgressFn; keepScores?: boolean } = {},
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
    const nValNormals = data.validation ? 0 : Math.round(order.length * config.valFraction);
    const valNormals = order.slice(0, nValNormals).map((i) => data.trainNormals[i]);
    const trainNormals = order.slice(nValNormals).map((i) => data.trainNormals[i]);

    // 2. Synthetic defects from the train-part normals. In&Out alternates its pair, so an even N_aug is 50/50.
    const synthItems: Parameters<ExperimentContext['rows']>[0] = [];
    const synthetic: Record<string, number> = {};
    if (config.generator !== 'none' && config.nAug > 0) {
      const canvasRng = new Rng(`canvas:${data.name}:${config.seed}`);
      // Settings that change the images are part of the synthetic image's key (feature cache included).
      const diffusionKey = config.diffusion
        ? hashString(stableStringify(config.diffusion)).toString(16).padStart(8, '0')
        : '';
      for (let i = 0; i < config.nAug; i++) {
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
        const canvas = trainNormals[canvasRng.int(0, trainNormals.length)];
        const seed = hashString(`${name}:${config.seed}:${i}`);
        const tag = name === 'diffusion' ? `${name}@${diffusionKey}` : name;
        synthetic[name] = (synthetic[name] ?? 0) + 1;
        synthItems.push({
          key: `syn:${tag}:${canvas.id}:${seed}`,
          load: ctx.synth.load(name, canvas, seed, name === 'diffusion' ? diffusionKey : '', {
            diffusion: name === 'diffusion' ? config.diffusion : undefined,
            signal,
          }),
          label: 1,
          source: 'synthetic',
        });
      }
    }
    const nValSynth = data.validation ? 0 : Math.round(synthItems.length * config.valFraction);
    const synthRows = await ctx.rows(synthItems, signal);
    const valSynth = synthRows.slice(synthRows.length - nValSynth);
    const trainSynth = synthRows.slice(0, synthRows.length - nValSynth);

    const normalRows = await ctx.realRows(trainNormals, 'normal', signal);
    const realRows = config.fewShot ? await ctx.realRows(data.realDefects, 'real', signal) : [];
    const valRows = data.validation
      ? await ctx.realRows(data.validation, 'auto', signal)
      : [...(await ctx.realRows(valNormals, 'normal', signal)), ...valSynth];
    const testRows = await ctx.realRows(data.test, 'auto', signal);

    // 3. Training rows.
    const trainer = ctx.trainer(config.head);
    let rows: Row[];
    if (trainer.unsupervised) rows = normalRows;
    else if (config.stream === 'mixed') {
      const draws = mixedSupervisionStream(
        { normal: normalRows.length, synthetic: trainSynth.length, real: realRows.length },
        2 * Math.max(normalRows.length, trainSynth.length),
        new Rng(`stream:${config.seed}`),
        config.realProbability,
      );
      const pools = { normal: normalRows, synthetic: trainSynth, real: realRows };
      rows = draws.map((d) => pools[d.source][d.index]);
    } else rows = [...normalRows, ...trainSynth, ...realRows];
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
      // 4. Scores and threshold.
      const testScores = await head.score(testRows);
      const valScores = valRows.length ? await head.score(valRows) : new Float32Array(0);
      const testLabels = testRows.map((r) => r.label);
      const valLabels = valRows.map((r) => r.label);
      const choice = chooseThreshold(
        config.threshold,
        {
          scores: valScores,
          labels: valLabels,
          defectSources: valRows
            .filter((r) => r.label === 1)
            .map((r) => (r.source === 'synthetic' ? 'synthetic' : 'real')),
        },
        { scores: testScores, labels: testLabels },
      );
      warnings.push(...choice.warnings);
      const c = confusionAt(testScores, testLabels, choice.threshold);
      const metrics: CellMetrics = {
        ap: averagePrecision(testScores, testLabels),
        auroc: rocAuc(testScores, testLabels),
        precision: precision(c),
        recall: recall(c),
        f1: f1(c),
        mcc: mcc(c),
        fpr: fpr(c),
        threshold: choice.threshold,
        ...c,
        valAp: valLabels.includes(1) ? averagePrecision(valScores, valLabels) : NaN,
      };
      // 5. Per defect class: the class's defects against all test normals.
      const perClass: Record<string, ClassMetrics> = {};
      const classes = [
        ...new Set(
          testRows.filter((r) => r.label === 1 && r.defectClass).map((r) => r.defectClass as string),
        ),
      ];
      for (const k of classes.sort()) {
        const idx = testRows
          .map((r, i) => (r.label === 0 || r.defectClass === k ? i : -1))
          .filter((i) => i >= 0);
        const s = idx.map((i) => testScores[i]);
        const l = idx.map((i) => testLabels[i]);
        const cc = confusionAt(s, l, choice.threshold);
        perClass[k] = {
          n: l.filter((v) => v === 1).length,
          ap: averagePrecision(s, l),
          auroc: rocAuc(s, l),
          recall: recall(cc),
        };
      }
      if (isHeatMapHead(head) && data.test.some((t) => t.loadMask)) {
        const maps = await head.heatMaps(testRows);
        const masks = await Promise.all(
          data.test.map(
            async (t, i) =>
              (await t.loadMask?.()) ?? {
                width: maps[i].width,
                height: maps[i].height,
                data: new Uint8Array(maps[i].width * maps[i].height),
              },
          ),
        );
        metrics.auPro = auPro(maps, masks);
      }
      return {
        id,
        config,
        status: 'done',
        metrics,
        thresholdSource: choice.source,
        perClass,
        ...(synthItems.length ? { synthetic } : {}),
        scores: opts.keepScores === false ? undefined : Array.from(testScores),
        warnings,
        ms: Date.now() - t0,
        finishedAt: Date.now(),
      };
    } finally {
      head.dispose?.();
    }
  } catch (e) {
    if (e instanceof CancelledError) throw e;
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

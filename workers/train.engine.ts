/**
 * The train engine: everything the features engine does, plus training a head on a stored dataset, evaluating
 * it, saving it to the store and exporting it. "Train" runs ONE cell of the experiment runner
 * (`src/core/experiments/runner.ts`): this dataset, this head, its accepted synthetic defects (generator
 * `accepted`), this stream and this threshold policy, through the same code as a grid, the CLI and the server.
 * What only the Train tab needs (saving the head, heat maps for the viewer, stop during features, the baselines of
 * the same cell) goes through the runner's options, not beside it. One worker holds both the backbone (ORT) and
 * the head (tfjs), so the CSE head can make synthetic defects on the fly and extract their features.
 */
import { DefectLabError, InvalidArgumentError } from '../src/core/errors.ts';
import {
  ExperimentContext,
  runCell,
  type BaselineResult,
  type CellConfig,
  type CellCounts,
  type CellMetrics,
  type CellResult,
  type HeadKind,
  type PixelEvaluation,
  type StreamMode,
  type ThresholdPolicy,
} from '../src/core/experiments/index.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { CancelSignal, Progress, ProgressFn } from '../src/core/progress.ts';
import type { HeadRecord } from '../src/runtime/db/types.ts';
import { type EpochReport, type HeadArtifacts, type SupervisedOptions } from '../src/runtime/heads/common.ts';
import { type ExportedFile, exportHeadFiles } from '../src/runtime/heads/export.ts';
import { type CseOptions } from '../src/runtime/heads/cse.ts';
import type { PatchCoreOptions } from '../src/runtime/heads/patchcore.ts';
import { type FeatureMap } from '../src/runtime/heads/spatial.ts';
import {
  type TfBackendPreference,
  initTf,
  initTfChoice,
  tfPlace,
  whileTfGpuAlive,
} from '../src/runtime/tf.ts';
import { coreGenerators, cseGeneratorsByName } from '../src/app/generators.ts';
import { isSavable, savedHeadTrainer } from '../src/app/heads.ts';
import { savedMaskedTrainer } from '../src/app/masked.ts';
import {
  type PatchCoreScoringBench,
  benchmarkPatchCoreScoring,
  savedPatchcoreTrainer,
} from '../src/app/patchcore.ts';
import { extractorIdOf, storeExperimentData, storeExperimentEnv } from '../src/app/store-experiment.ts';
import { type FeaturesApi, FeaturesEngine, type ImageMeta, imageMeta } from './features.engine.ts';

export type { HeadKind, StreamMode, ThresholdPolicy };

export interface TrainRequest {
  datasetId: string;
  head: HeadKind;
  /** tfjs backend for the head ('auto': the System panel's measured choice, the same as ORT's). */
  tfBackend?: TfBackendPreference;
  /** BCE/spatial options (hidden, learningRate, batchSize, epochs, classWeighting, seed, …). */
  supervised?: Partial<SupervisedOptions>;
  /** PatchCore options (coresetRatio, patchSize, sigma, neighbours, imageScore, taps, seed). */
  patchcore?: Partial<PatchCoreOptions>;
  /** CSE options (hidden, embedDim, lambda, epochs, k, …) and its on-the-fly generators. */
  cse?: Partial<CseOptions> & { generators?: string[] };
  /** Training stream: which pools join, and concat vs ISP-AD mixed supervision. */
  stream?: { mode: StreamMode; realProbability?: number; synthetic?: boolean; real?: boolean };
  /** Threshold policy. */
  threshold?: ThresholdPolicy;
  /** Share of training normals (and accepted synthetic defects) held out for validation without a val split. */
  valFraction?: number;
  /**
   * Make `nAug` synthetic defects on the fly with a core generator instead of using the accepted ones (the
   * experiment grid's cell of that generator, exactly).
   */
  generate?: { generator: 'memseg' | 'random-walk'; nAug: number };
  name?: string;
  /** Save the trained head to the store (default true). */
  save?: boolean;
}

/** A threshold policy of the runner, or (saved heads) the threshold stored with the head. */
export type EvaluateThreshold = ThresholdPolicy | { mode: 'stored' };

/** A defect-free baseline of the same cell (the runner's `BaselineResult`). */
export type BaselineEvaluation = BaselineResult;
export type { PixelEvaluation };

/**
 * What the Train tab shows of a cell's result: the runner's record with the test images' metadata next to it
 * (names, masks, sizes for the viewer) and the preprocessing the heat-map grid refers to.
 */
export interface Evaluation {
  split: 'test';
  headKind: HeadKind;
  images: ImageMeta[];
  labels: number[];
  scores: number[];
  /** Heat maps `[h·w]` per image on the feature grid (spatial: logits, CSE: cosine distances). */
  heatmaps?: number[][];
  heatmapSize?: [number, number];
  /** The backbone preprocessing the grid refers to (maps the grid back onto image pixels). */
  preprocess: PreprocessOptions;
  /** Validation scores the threshold came from, and whether its defects are synthetic only. */
  val?: { scores: number[]; labels: number[]; synthetic: boolean };
  threshold: number;
  thresholdSource: string;
  /** The cell's warnings (synthetic-only or test-tuned threshold, …), joined. */
  warning?: string;
  metrics: CellMetrics;
  /** PRO when the head has heat maps and test defects have masks. */
  pixel?: PixelEvaluation;
  /** Cosine distance to the mean normal and to the nearest normal (k-NN), same features and split. */
  baselines: BaselineEvaluation[];
  /** The cell that produced it (re-runs bit for bit from its config). */
  cell: Omit<CellResult, 'scores' | 'maps' | 'val' | 'baselines'>;
}

export interface TrainResponse {
  headId: string | null;
  kind: HeadKind;
  tfBackend: string;
  /** Why the head ran there when it differs from what was asked ('' otherwise). */
  tfBackendReason: string;
  history: EpochReport[];
  stopped: 'completed' | 'early' | 'cancelled';
  /** Images the head trained on (after the validation hold-out), validated on and was tested on. */
  counts: { normal: number; synthetic: number; real: number; test: number; val: number };
  /** The same counts by kind, from the cell. */
  cellCounts?: CellCounts;
  /** Feature extraction of this run: images, how many were not cached, seconds, and the backbone's device. */
  features: { images: number; extracted: number; seconds: number; device: string };
  evaluation: Evaluation | null;
}

/** Re-evaluation of a saved head on its dataset's current test split. */
export interface EvaluateResponse {
  headId: string;
  name: string;
  kind: HeadKind;
  features: TrainResponse['features'];
  evaluation: Evaluation | null;
}

export interface TrainApi extends FeaturesApi {
  train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse>;
  /**
   * Scores a saved head on the test split of its dataset with the loaded backbone (which must be the head's; its
   * preprocessing is set to the head's). Default threshold: the one stored with the head.
   */
  evaluateHead(
    headId: string,
    threshold?: EvaluateThreshold,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<EvaluateResponse>;
  listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]>;
  exportHead(headId: string): Promise<ExportedFile[]>;
  deleteHead(headId: string): Promise<void>;
}

export class NotEnoughDataError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('NotEnoughDataError', problem, fix);
  }
}

export class HeadBackboneMismatchError extends DefectLabError {
  constructor(head: string, want: string, got: string) {
    super(
      'HeadBackboneMismatchError',
      `head "${head}" was trained on backbone ${want}, but ${got} is loaded`,
      `load ${want} in the Backbone panel, then evaluate again`,
    );
  }
}

/** Default share of the training normals (and accepted synthetic defects) held out when there is no val split. */
export const TRAIN_VAL_FRACTION = 0.2;

/**
 * The Train tab's request as a runner cell: generator `accepted` (the dataset's accepted synthetic defects), the
 * real training defects as few-shot, the stream, the seed, epochs and head options of the request.
 */
export function trainCellConfig(
  req: TrainRequest,
  dataset: string,
  extractor: string,
  accepted: number,
): CellConfig {
  const stream = req.stream ?? { mode: 'concat' as const };
  const o: Record<string, unknown> =
    req.head === 'cse'
      ? { ...req.cse }
      : req.head === 'patchcore'
        ? { ...req.patchcore }
        : { ...req.supervised };
  const seed = (o.seed as number | undefined) ?? 0;
  const epochs = o.epochs as number | undefined;
  delete o.seed;
  delete o.epochs;
  delete o.generators;
  const useSynthetic = stream.synthetic !== false && (req.generate ? req.generate.nAug > 0 : accepted > 0);
  return {
    dataset,
    extractor,
    generator: useSynthetic ? (req.generate?.generator ?? 'accepted') : 'none',
    nAug: useSynthetic ? (req.generate?.nAug ?? accepted) : 0,
    head: req.head,
    fewShot: stream.real !== false,
    stream: stream.mode,
    realProbability: stream.realProbability ?? 1 / 32,
    seed,
    ...(epochs !== undefined ? { epochs } : {}),
    threshold: req.threshold ?? { mode: 'val-best-f1' },
    valFraction: req.valFraction ?? TRAIN_VAL_FRACTION,
    inOut: { in: 'diffusion', out: 'memseg' },
    ...(Object.keys(o).length ? { headOptions: o } : {}),
  };
}

export class TrainEngine extends FeaturesEngine implements TrainApi {
  async train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse> {
    const backbone = this.requireBackbone();
    const report = (p: Progress) => progress?.(p);
    const place = tfPlace(await initTfChoice(req.tfBackend ?? 'auto'));
    const tfBackend = place.tfBackend;
    const job = this.jobs.start(jobId);
    try {
      const { features } = await this.timedFeatures(req.datasetId, job.signal, report);
      const db = await this.store();
      const { data, test } = await storeExperimentData(db, req.datasetId, this.requireDecode());
      if (data.trainNormals.length === 0)
        throw new NotEnoughDataError(
          'the dataset has no normal images in the train split',
          'label some images normal and put them in the train split (Data tab)',
        );
      const config = trainCellConfig(
        req,
        data.name,
        extractorIdOf(backbone),
        data.acceptedSynthetic?.length ?? 0,
      );
      const cse = req.cse?.generators?.length ? cseGeneratorsByName(req.cse.generators) : undefined;
      const { env } = storeExperimentEnv(backbone, db, {
        generators: coreGenerators(),
        cseGenerators: cse,
      });
      if (config.head !== 'cse' && config.nAug === 0 && (!config.fewShot || !data.realDefects.length))
        throw new NotEnoughDataError(
          'the training stream has no defects',
          'accept synthetic defects into the train split (Paint & generate tab), add real ones, or train the CSE head (needs none)',
        );
      const history: EpochReport[] = [];
      let headId: string | null = null;
      let stopped: TrainResponse['stopped'] = 'completed';
      // On WebGPU, a lost device fails the run with GpuDeviceLostError (the next run trains on WASM); the
      // orphaned run may still end later, and must not save a head for a run reported failed.
      let gpuLost = false;
      const result = await whileTfGpuAlive(
        runCell(config, new ExperimentContext(data, env), {
          signal: job.signal,
          throwOnError: true,
          keepMaps: true,
          withBaselines: true,
          onProgress: (p) => {
            if (p.stage === 'train' && p.detail) history.push(p.detail as EpochReport);
            report(p);
          },
          onHead: async (head, r) => {
            if (isSavable(head)) stopped = head.training?.stopped ?? 'completed';
            if (gpuLost || req.save === false || !isSavable(head)) return;
            headId = crypto.randomUUID();
            const artifacts: HeadArtifacts = await head.artifacts();
            const rec: HeadRecord = {
              id: headId,
              datasetId: req.datasetId,
              name: req.name ?? `${req.head} on ${backbone.id}`,
              kind: req.head,
              backbone: backbone.id,
              preprocessing: backbone.preprocessingId,
              threshold: r.metrics?.threshold ?? NaN,
              thresholdSource: r.thresholdSource ?? 'none',
              artifacts,
              metadata: {
                request: { ...req, datasetId: undefined },
                cell: config,
                preprocess: backbone.preprocess,
                features: { pooled: backbone.info.pooledOutput, spatial: backbone.info.spatialOutput },
                history,
                counts: r.counts,
                tfBackend,
                metrics: r.metrics,
              },
              createdAt: Date.now(),
            };
            await db.putHead(rec);
          },
        }),
      ).catch((e: unknown) => {
        gpuLost = (e as Error).name === 'GpuDeviceLostError';
        throw e;
      });
      const c = result.counts!;
      return {
        headId,
        kind: req.head,
        tfBackend,
        tfBackendReason: place.tfBackendReason,
        history,
        stopped,
        counts: {
          normal: c.train.normal,
          synthetic: c.train.synthetic,
          real: c.train.real,
          test: c.test.normal + c.test.defect,
          val: c.val.normal + c.val.synthetic + c.val.real,
        },
        cellCounts: c,
        features,
        evaluation: test.length ? this.evaluationOf(result, test.map(imageMeta), req.head) : null,
      };
    } finally {
      job.done();
    }
  }

  /** A dataset's features, reported as the 'features' stage, with what the response says about them. */
  private async timedFeatures(datasetId: string, signal: CancelSignal, progress?: ProgressFn) {
    const t0 = performance.now();
    const feats = await this.datasetFeatures(datasetId, undefined, signal, (p) =>
      progress?.({ ...p, stage: 'features' }),
    );
    const features = {
      images: feats.images.length,
      extracted: feats.images.length - feats.cached,
      seconds: (performance.now() - t0) / 1000,
      device: this.requireBackbone().backend,
    };
    return { feats, features };
  }

  private requireDecode() {
    const decode = this.deps.decode;
    if (!decode)
      throw new DefectLabError('NoDecoderError', 'this engine cannot decode images', 'pass decodeImage');
    return decode;
  }

  /** The Train tab's view of a cell result: the runner's record plus the test images' metadata. */
  private evaluationOf(r: CellResult, images: ImageMeta[], kind: HeadKind): Evaluation {
    const { scores, maps, val, baselines, ...cell } = r;
    return {
      split: 'test',
      headKind: kind,
      images,
      labels: images.map((m) => (m.label === 'defect' ? 1 : 0)),
      scores: scores ?? [],
      ...(maps ? { heatmaps: maps.data, heatmapSize: [maps.h, maps.w] as [number, number] } : {}),
      preprocess: this.requireBackbone().preprocess,
      ...(val ? { val } : {}),
      threshold: r.metrics!.threshold,
      thresholdSource: r.thresholdSource ?? 'none',
      ...(r.warnings.length ? { warning: r.warnings.join('; ') } : {}),
      metrics: r.metrics!,
      ...(r.pixel ? { pixel: r.pixel } : {}),
      baselines: baselines ?? [],
      cell,
    };
  }

  async evaluateHead(
    headId: string,
    threshold: EvaluateThreshold = { mode: 'stored' },
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<EvaluateResponse> {
    const db = await this.store();
    const rec = await db.getHead(headId);
    if (!rec) throw new InvalidArgumentError('headId', 'the id of a saved head', headId);
    const backbone = this.requireBackbone();
    if (backbone.id !== rec.backbone)
      throw new HeadBackboneMismatchError(rec.name, rec.backbone, backbone.id);
    const pre = rec.metadata.preprocess as PreprocessOptions | undefined;
    if (pre) await this.setPreprocess(pre);
    await initTf((rec.metadata.tfBackend as TfBackendPreference | undefined) ?? 'auto').catch(() =>
      initTf('auto'),
    );
    const job = this.jobs.start(jobId);
    try {
      const { features } = await this.timedFeatures(rec.datasetId, job.signal, progress);
      const { data, test } = await storeExperimentData(db, rec.datasetId, this.requireDecode());
      const request = (rec.metadata.request ?? {}) as TrainRequest;
      // The cell the head came from (heads saved before cells were stored: rebuilt from their request).
      const stored =
        (rec.metadata.cell as CellConfig | undefined) ??
        trainCellConfig(
          { ...request, datasetId: rec.datasetId, head: rec.kind as HeadKind },
          data.name,
          extractorIdOf(backbone),
          data.acceptedSynthetic?.length ?? 0,
        );
      const config: CellConfig = {
        ...stored,
        // The dataset may have grown since: the cell uses what is accepted now.
        nAug: stored.generator === 'accepted' ? (data.acceptedSynthetic?.length ?? 0) : stored.nAug,
        threshold:
          threshold.mode === 'stored'
            ? {
                mode: 'given',
                threshold: rec.threshold,
                source: `${rec.thresholdSource} (stored with the head)`,
              }
            : threshold,
      };
      const { env, maps, taps } = storeExperimentEnv(backbone, db, { generators: coreGenerators() });
      const artifacts = rec.artifacts as HeadArtifacts;
      env.trainers[rec.kind as HeadKind] =
        artifacts.kind === 'patchcore'
          ? savedPatchcoreTrainer(artifacts, taps)
          : artifacts.kind === 'masked'
            ? savedMaskedTrainer(artifacts, taps)
            : savedHeadTrainer(artifacts, maps, taps);
      if (!test.length) return { headId, name: rec.name, kind: rec.kind, features, evaluation: null };
      // On WebGPU, a lost device fails the re-evaluation with GpuDeviceLostError (the next one runs on WASM).
      const result = await whileTfGpuAlive(
        runCell(config, new ExperimentContext(data, env), {
          signal: job.signal,
          throwOnError: true,
          keepMaps: true,
          withBaselines: true,
        }),
      );
      return {
        headId,
        name: rec.name,
        kind: rec.kind,
        features,
        evaluation: this.evaluationOf(result, test.map(imageMeta), rec.kind as HeadKind),
      };
    } finally {
      job.done();
    }
  }

  async listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]> {
    const heads = await (await this.store()).listHeads(datasetId);
    return heads.map(({ artifacts: _a, ...rest }) => rest);
  }

  async exportHead(headId: string): Promise<ExportedFile[]> {
    const h = await (await this.store()).getHead(headId);
    if (!h) throw new InvalidArgumentError('headId', 'the id of a saved head', headId);
    return exportHeadFiles(h.artifacts as HeadArtifacts, headMetadata(h));
  }

  async deleteHead(headId: string): Promise<void> {
    await (await this.store()).deleteHead(headId);
  }

  /** Bench only (`npm run bench patchcore`, issue 13): PatchCore scoring cost in this worker on tfjs WASM. */
  async benchmarkPatchCore(o: { bankRows?: number; runs?: number } = {}): Promise<PatchCoreScoringBench> {
    await initTf('wasm');
    return benchmarkPatchCoreScoring(o);
  }
}

/** The metadata JSON of an exported head: what a consumer needs to use it on new images. */
export function headMetadata(h: HeadRecord): Record<string, unknown> {
  return {
    name: h.name,
    kind: h.kind,
    backbone: h.backbone,
    preprocessing: h.preprocessing,
    preprocess: h.metadata.preprocess,
    /** Backbone outputs the head reads (pooled vector or spatial map). */
    backboneOutputs: h.metadata.features,
    threshold: h.threshold,
    thresholdSource: h.thresholdSource,
    metrics: h.metadata.metrics,
    createdAt: new Date(h.createdAt).toISOString(),
    producer: 'DefectLab',
  };
}

export { headFromArtifacts } from '../src/app/heads.ts';
export type { FeatureMap };

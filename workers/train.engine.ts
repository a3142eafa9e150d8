/**
 * The train engine: everything the features engine does, plus training a head on a stored dataset, evaluating
 * it, saving it to the store and exporting it. One worker holds both the backbone (ORT) and the head (tfjs), so
 * the CSE head can make synthetic defects on the fly and extract their features without crossing workers.
 *
 * Data from the dataset: split `train` → normals (label normal), synthetic defects (label defect with a
 * generator provenance) and real defects (label defect without one); split `val` → threshold choice;
 * split `test` → evaluation. The threshold is the best-F1 one on `val` when it has both classes (labelled
 * 'val:real' or 'val:synthetic' after its defects), else on the training rows ('train (optimistic)'), or on the
 * test split only when asked ('test (tuned on test)').
 */
import { DefectLabError, InvalidArgumentError } from '../src/core/errors.ts';
import { type RasterImage, toGray } from '../src/core/image.ts';
import { knnScores, meanDistanceScores } from '../src/core/experiments/baselines.ts';
import {
  type MaskLike,
  type MetricRow,
  type ScoreMap,
  auPro,
  bestF1Threshold,
  labelComponents,
  metricRow,
  thresholdAtFpr,
} from '../src/core/metrics/index.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { CancelSignal, Progress, ProgressFn } from '../src/core/progress.ts';
import { Rng } from '../src/core/rng.ts';
import { getGenerator } from '../src/core/synth/index.ts';
import type { HeadRecord } from '../src/runtime/db/types.ts';
import { BceHead, trainBceHead } from '../src/runtime/heads/bce.ts';
import { type EpochReport, type HeadArtifacts, type SupervisedOptions } from '../src/runtime/heads/common.ts';
import { type ExportedFile, exportHeadFiles } from '../src/runtime/heads/export.ts';
import { heatmapToImage } from '../src/runtime/heads/heatmap.ts';
import { type CseOptions, CseHead, trainCseHead } from '../src/runtime/heads/cse.ts';
import { type FeatureMap, SpatialHead, trainSpatialHead } from '../src/runtime/heads/spatial.ts';
import { type StreamMode, composeTrainingSet, makeCsePairSource } from '../src/runtime/heads/stream.ts';
import { type TfBackendPreference, initTf } from '../src/runtime/tf.ts';
import { type DatasetFeatures, type FeaturesApi, FeaturesEngine, type ImageMeta } from './features.engine.ts';

export type HeadKind = 'bce' | 'spatial' | 'cse';

export interface TrainRequest {
  datasetId: string;
  head: HeadKind;
  /** tfjs backend for the head ('auto': WebGPU → WASM → CPU). */
  tfBackend?: TfBackendPreference;
  /** BCE/spatial options (hidden, learningRate, batchSize, epochs, classWeighting, seed, …). */
  supervised?: Partial<SupervisedOptions>;
  /** CSE options (hidden, embedDim, lambda, epochs, k, …) and its on-the-fly generators. */
  cse?: Partial<CseOptions> & { generators?: string[] };
  /** Training stream: which pools join, and concat vs ISP-AD mixed supervision. */
  stream?: { mode: StreamMode; realProbability?: number; synthetic?: boolean; real?: boolean };
  /** Threshold policy. */
  threshold?: ThresholdPolicy;
  name?: string;
  /** Save the trained head to the store (default true). */
  save?: boolean;
}

/**
 * How the evaluation threshold is chosen: best F1 or a target FPR on the validation split, best F1 on the test
 * split (labelled as tuned on test), or (saved heads) the threshold stored with the head.
 */
export type ThresholdPolicy =
  | { mode: 'val-best-f1' }
  | { mode: 'val-fpr'; maxFpr: number }
  | { mode: 'test-best-f1' }
  | { mode: 'stored' };

/** A defect-free baseline scored on the same pooled features, normals and test split as the head. */
export interface BaselineEvaluation {
  kind: 'mean' | 'knn';
  label: string;
  scores: number[];
  threshold: number;
  thresholdSource: string;
  metrics: MetricRow;
}

/** Pixel-level PRO (MVTec AD definition, `src/core/metrics/pro.ts`). */
export interface PixelEvaluation {
  /** Normalized area under the PRO curve for FPR ∈ [0, fprLimit]. */
  auPro: number;
  fprLimit: number;
  /** Connected defect regions, and images scored (normal test images count with an empty mask). */
  regions: number;
  images: number;
  /** Where it was computed: each heat map bilinearly upsampled to its mask's own pixels. */
  resolution: string;
}

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
  /** Warning when the threshold came from synthetic defects or from test data. */
  warning?: string;
  metrics: MetricRow;
  /** PRO when the head has heat maps and test defects have masks. */
  pixel?: PixelEvaluation;
  /** Cosine distance to the mean normal and to the nearest normal (k-NN), same features and split. */
  baselines: BaselineEvaluation[];
}

export interface TrainResponse {
  headId: string | null;
  kind: HeadKind;
  tfBackend: string;
  history: EpochReport[];
  stopped: 'completed' | 'early' | 'cancelled';
  counts: { normal: number; synthetic: number; real: number; test: number; val: number };
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
    threshold?: ThresholdPolicy,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<EvaluateResponse>;
  listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]>;
  exportHead(headId: string): Promise<ExportedFile[]>;
  deleteHead(headId: string): Promise<void>;
}

type AnyHead = BceHead | SpatialHead | CseHead;

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

interface SplitSets {
  normal: number[];
  synthetic: number[];
  real: number[];
  val: number[];
  test: number[];
}

function splitSets(images: readonly ImageMeta[]): SplitSets {
  const idx = (pred: (m: ImageMeta) => boolean) => images.flatMap((m, i) => (pred(m) ? [i] : []));
  return {
    normal: idx((m) => m.split === 'train' && m.label === 'normal'),
    synthetic: idx((m) => m.split === 'train' && m.label === 'defect' && m.synthetic),
    real: idx((m) => m.split === 'train' && m.label === 'defect' && !m.synthetic),
    val: idx((m) => m.split === 'val' && m.label !== 'unlabeled'),
    test: idx((m) => m.split === 'test' && m.label !== 'unlabeled'),
  };
}

function pick<T>(arr: readonly T[], idx: readonly number[]): T[] {
  return idx.map((i) => arr[i]);
}

export class TrainEngine extends FeaturesEngine implements TrainApi {
  async train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse> {
    const backbone = this.requireBackbone();
    const report = (p: Progress) => progress?.(p);
    const tfBackend = await initTf(req.tfBackend ?? 'auto');
    const job = this.jobs.start(jobId);
    try {
      const { feats, features } = await this.timedFeatures(req.datasetId, job.signal, report);
      const sets = splitSets(feats.images);
      const { normal, synthetic, real, val, test } = sets;
      const counts = {
        normal: normal.length,
        synthetic: synthetic.length,
        real: real.length,
        test: test.length,
        val: val.length,
      };
      if (normal.length === 0)
        throw new NotEnoughDataError(
          'the dataset has no normal images in the train split',
          'label some images normal and put them in the train split (Data tab)',
        );
      const stream = req.stream ?? { mode: 'concat' as const };
      const rng = new Rng(`stream:${req.supervised?.seed ?? req.cse?.seed ?? 0}`);
      const onEpoch = (r: EpochReport) =>
        report({ stage: 'train', done: r.epoch, total: r.epochs, unit: 'epochs', detail: r });

      let head: AnyHead;
      let history: EpochReport[];
      let stopped: TrainResponse['stopped'];
      const hooks = { onEpoch, signal: job.signal };
      const trainRowsIdx = () => {
        const set = composeTrainingSet(
          {
            normal,
            synthetic: stream.synthetic === false ? [] : synthetic,
            real: stream.real === false ? [] : real,
          },
          { mode: stream.mode, realProbability: stream.realProbability },
          rng,
        );
        if (!set.labels.some((l) => l === 1))
          throw new NotEnoughDataError(
            'the training stream has no defects',
            'accept synthetic defects into the train split (Paint & generate tab), add real ones, or train the CSE head (needs none)',
          );
        return set;
      };
      if (req.head === 'bce') {
        const set = trainRowsIdx();
        const r = await trainBceHead(pick(feats.pooled, set.rows), set.labels, req.supervised, hooks);
        ({ head, history, stopped } = r);
      } else if (req.head === 'spatial') {
        const set = trainRowsIdx();
        const r = await trainSpatialHead(pick(feats.spatial, set.rows), set.labels, req.supervised, hooks);
        ({ head, history, stopped } = r);
      } else {
        const normals = await Promise.all(
          normal.map((i) => this.decodeById(req.datasetId, feats.images[i].id)),
        );
        const names = req.cse?.generators?.length ? req.cse.generators : ['memseg', 'blur'];
        const generators = names.map((n) => {
          const g = getGenerator(n).fn;
          return (image: RasterImage, seed: number) => g(image, {}, seed);
        });
        const pairs = makeCsePairSource({
          normals,
          normalMaps: pick(feats.spatial, normal),
          extract: async (imgs) => (await backbone.extract(imgs)).spatial,
          generators,
          preprocess: backbone.preprocess,
        });
        const r = await trainCseHead(pick(feats.spatial, normal), pairs, req.cse, hooks);
        ({ head, history, stopped } = r);
      }
      try {
        const evaluation =
          test.length > 0
            ? await this.evaluate(head, feats, req.threshold ?? { mode: 'val-best-f1' }, sets, null)
            : null;
        let headId: string | null = null;
        if (req.save !== false) {
          headId = crypto.randomUUID();
          const artifacts: HeadArtifacts = await head.toArtifacts();
          const rec: HeadRecord = {
            id: headId,
            datasetId: req.datasetId,
            name: req.name ?? `${req.head} on ${backbone.id}`,
            kind: req.head,
            backbone: backbone.id,
            preprocessing: this.preprocessingIdOf(),
            threshold: evaluation?.threshold ?? NaN,
            thresholdSource: evaluation?.thresholdSource ?? 'none (no test split)',
            artifacts,
            metadata: {
              request: { ...req, datasetId: undefined },
              preprocess: backbone.preprocess,
              features: { pooled: backbone.info.pooledOutput, spatial: backbone.info.spatialOutput },
              history,
              counts,
              tfBackend,
              metrics: evaluation?.metrics,
            },
            createdAt: Date.now(),
          };
          await (await this.store()).putHead(rec);
        }
        return { headId, kind: req.head, tfBackend, history, stopped, counts, features, evaluation };
      } finally {
        head.dispose();
      }
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

  private preprocessingIdOf(): string {
    return this.requireBackbone().preprocessingId;
  }

  private async decodeById(datasetId: string, id: string): Promise<RasterImage> {
    const rec = await (await this.store()).getImage(id);
    if (!rec) throw new InvalidArgumentError('image id', `an image of dataset ${datasetId}`, id);
    return this.decodeRecord(rec);
  }

  private async scoreRows(head: AnyHead, feats: DatasetFeatures, rows: number[]) {
    if (head instanceof BceHead) return { scores: await head.predict(pick(feats.pooled, rows)) };
    return head.predict(pick(feats.spatial, rows));
  }

  /**
   * Threshold for `policy` from scores of validation rows (or, without a usable validation split, of the
   * training rows, labelled optimistic). `score(rows)` scores dataset rows; `stored` is a saved head's threshold.
   */
  private async pickThreshold(
    score: (rows: number[]) => Promise<ArrayLike<number>>,
    test: { scores: ArrayLike<number>; labels: number[] },
    feats: DatasetFeatures,
    sets: SplitSets,
    policy: ThresholdPolicy,
    trainLabel: string,
    stored: { threshold: number; source: string } | null,
  ): Promise<Pick<Evaluation, 'threshold' | 'thresholdSource' | 'warning' | 'val'>> {
    const labelOf = (i: number) => (feats.images[i].label === 'defect' ? 1 : 0);
    if (policy.mode === 'test-best-f1')
      return {
        threshold: bestF1Threshold(test.scores, test.labels).threshold,
        thresholdSource: 'test (tuned on test)',
        warning: 'The threshold was tuned on the test split: the metrics are optimistic.',
      };
    const valLabels = sets.val.map(labelOf);
    const valUsable = valLabels.includes(0) && valLabels.includes(1);
    let rows = sets.val;
    let labels = valLabels;
    let source: string;
    let warning: string | undefined;
    if (valUsable) {
      const synthOnly = sets.val.every(
        (i) => feats.images[i].label !== 'defect' || feats.images[i].synthetic,
      );
      source = synthOnly ? 'val:synthetic' : 'val:real';
      if (synthOnly)
        warning =
          'The validation defects are synthetic only: thresholds chosen on them tend to be optimistic.';
    } else {
      // No usable validation split: fall back to the training normals and defects (labelled so).
      rows = feats.images.flatMap((m, i) => (m.split === 'train' && m.label !== 'unlabeled' ? [i] : []));
      labels = rows.map(labelOf);
      source = trainLabel;
      warning = 'No validation split with both classes: the threshold comes from the training images.';
    }
    const v = await score(rows);
    const val = {
      scores: Array.from(v),
      labels,
      synthetic: rows.every((i) => feats.images[i].label !== 'defect' || feats.images[i].synthetic),
    };
    if (policy.mode === 'stored' && stored && Number.isFinite(stored.threshold))
      return {
        threshold: stored.threshold,
        thresholdSource: `${stored.source} (stored with the head)`,
        warning: stored.source.includes('synthetic')
          ? 'The stored threshold was chosen on synthetic defects only: it tends to be optimistic.'
          : undefined,
        val,
      };
    if (policy.mode === 'val-fpr')
      return {
        threshold: thresholdAtFpr(v, labels, policy.maxFpr),
        thresholdSource: `${source}@fpr≤${policy.maxFpr}`,
        warning,
        val,
      };
    const best = bestF1Threshold(v, labels);
    return {
      threshold: Number.isFinite(best.threshold) ? best.threshold : 0.5,
      thresholdSource: source,
      warning,
      val,
    };
  }

  private async evaluate(
    head: AnyHead,
    feats: DatasetFeatures,
    policy: ThresholdPolicy,
    sets: SplitSets,
    stored: { threshold: number; source: string } | null,
  ): Promise<Evaluation> {
    const labelOf = (i: number) => (feats.images[i].label === 'defect' ? 1 : 0);
    const t = await this.scoreRows(head, feats, sets.test);
    const testLabels = sets.test.map(labelOf);
    const test = { scores: t.scores, labels: testLabels };
    const chosen = await this.pickThreshold(
      async (rows) => (await this.scoreRows(head, feats, rows)).scores,
      test,
      feats,
      sets,
      policy,
      'train (optimistic)',
      stored,
    );
    const pre = this.requireBackbone().preprocess;
    const [h, w] = feats.spatial[0]?.dims.slice(1) ?? [0, 0];
    const heatmaps = 'heatmaps' in t && t.heatmaps ? t.heatmaps : undefined;
    const images = pick(feats.images, sets.test);
    return {
      split: 'test',
      headKind: head.kind,
      images,
      labels: testLabels,
      scores: Array.from(t.scores),
      ...(heatmaps
        ? { heatmaps: heatmaps.map((m) => Array.from(m)), heatmapSize: [h, w] as [number, number] }
        : {}),
      preprocess: pre,
      ...chosen,
      metrics: metricRow(t.scores, testLabels, chosen.threshold),
      pixel: heatmaps ? await this.pixelPro(images, heatmaps, h, w, pre) : undefined,
      baselines: await this.baselines(
        feats,
        sets,
        test,
        policy.mode === 'stored' ? { mode: 'val-best-f1' } : policy,
      ),
    };
  }

  /**
   * The defect-free baselines on the pooled features: training normals are the reference set. On the training
   * rows (no usable validation split) each row is scored leave-one-out, else a normal would match itself.
   */
  private async baselines(
    feats: DatasetFeatures,
    sets: SplitSets,
    test: { labels: number[] },
    policy: ThresholdPolicy,
  ): Promise<BaselineEvaluation[]> {
    const kinds = [
      { kind: 'mean' as const, label: 'baseline: cosine distance to mean normal', fn: meanDistanceScores },
      { kind: 'knn' as const, label: 'baseline: k-NN cosine distance (k = 1)', fn: knnScores },
    ];
    const out: BaselineEvaluation[] = [];
    for (const b of kinds) {
      const score = async (rows: number[]) =>
        Float32Array.from(rows, (r) => {
          const ref = sets.normal.filter((i) => i !== r);
          return b.fn(pick(feats.pooled, ref.length ? ref : sets.normal), [feats.pooled[r]])[0];
        });
      const scores = b.fn(pick(feats.pooled, sets.normal), pick(feats.pooled, sets.test));
      const chosen = await this.pickThreshold(
        score,
        { scores, labels: test.labels },
        feats,
        sets,
        policy,
        'train, leave-one-out (optimistic)',
        null,
      );
      out.push({
        kind: b.kind,
        label: b.label,
        scores: Array.from(scores),
        threshold: chosen.threshold,
        thresholdSource: chosen.thresholdSource,
        metrics: metricRow(scores, test.labels, chosen.threshold),
      });
    }
    return out;
  }

  /**
   * AUPRO@0.3 at each image's own pixels: the grid heat map is sampled bilinearly through the preprocessing
   * geometry onto the mask (heatmap.ts). Normal test images count with an empty mask (their pixels are the
   * false positives); defect images without a mask are left out. Undefined (no result) without any region.
   */
  private async pixelPro(
    images: ImageMeta[],
    heatmaps: Float32Array[],
    gh: number,
    gw: number,
    pre: PreprocessOptions,
  ): Promise<PixelEvaluation | undefined> {
    const maps: ScoreMap[] = [];
    const masks: MaskLike[] = [];
    let regions = 0;
    for (let i = 0; i < images.length; i++) {
      const meta = images[i];
      const mask = meta.maskId ? await this.labelMask(meta) : null;
      if (!mask && meta.label === 'defect') continue;
      const width = mask?.width ?? meta.width;
      const height = mask?.height ?? meta.height;
      const data = mask?.data ?? new Uint8Array(width * height);
      if (mask) regions += labelComponents(mask).count;
      masks.push({ width, height, data });
      maps.push({ width, height, data: heatmapToImage(heatmaps[i], gh, gw, pre, width, height) });
    }
    if (regions === 0) return undefined;
    return {
      auPro: auPro(maps, masks, 0.3),
      fprLimit: 0.3,
      regions,
      images: maps.length,
      resolution: 'mask pixels (heat map upsampled bilinearly)',
    };
  }

  /** The image's label mask at its own size, binary (1 where the stored mask is > 127), or null. */
  private async labelMask(meta: ImageMeta): Promise<MaskLike | null> {
    if (!meta.maskId) return null;
    const rec = await (await this.store()).getMask(meta.maskId);
    if (!rec) return null;
    const mask = await this.deps.decode!(new Uint8Array(await rec.blob.arrayBuffer()), `${meta.name} mask`);
    const gray = mask.raster.channels === 1 ? mask.raster : toGray(mask.raster);
    return { width: gray.width, height: gray.height, data: gray.data.map((v) => (v > 127 ? 1 : 0)) };
  }

  async evaluateHead(
    headId: string,
    threshold: ThresholdPolicy = { mode: 'stored' },
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<EvaluateResponse> {
    const store = await this.store();
    const rec = await store.getHead(headId);
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
      const { feats, features } = await this.timedFeatures(rec.datasetId, job.signal, progress);
      const sets = splitSets(feats.images);
      const head = headFromArtifacts(rec.artifacts as HeadArtifacts);
      try {
        const evaluation =
          sets.test.length > 0
            ? await this.evaluate(head, feats, threshold, sets, {
                threshold: rec.threshold,
                source: rec.thresholdSource,
              })
            : null;
        return { headId, name: rec.name, kind: rec.kind, features, evaluation };
      } finally {
        head.dispose();
      }
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

/** Rebuilds a saved head (for scoring new images). */
export function headFromArtifacts(a: HeadArtifacts): AnyHead {
  if (a.kind === 'bce') return BceHead.fromArtifacts(a);
  if (a.kind === 'spatial') return SpatialHead.fromArtifacts(a);
  return CseHead.fromArtifacts(a);
}

export type { FeatureMap };

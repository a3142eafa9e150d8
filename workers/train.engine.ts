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
import { type MetricRow, bestF1Threshold, metricRow, thresholdAtFpr } from '../src/core/metrics/index.ts';
import type { Progress, ProgressFn } from '../src/core/progress.ts';
import { Rng } from '../src/core/rng.ts';
import { getGenerator } from '../src/core/synth/index.ts';
import type { HeadRecord } from '../src/runtime/db/types.ts';
import { BceHead, trainBceHead } from '../src/runtime/heads/bce.ts';
import {
  type EpochReport,
  type HeadArtifacts,
  type SupervisedOptions,
  exportHeadFiles,
} from '../src/runtime/heads/common.ts';
import { type CseOptions, CseHead, trainCseHead } from '../src/runtime/heads/cse.ts';
import { type FeatureMap, SpatialHead, trainSpatialHead } from '../src/runtime/heads/spatial.ts';
import {
  type StreamMode,
  composeTrainingSet,
  makeCsePairSource,
  maskToGrid,
} from '../src/runtime/heads/stream.ts';
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
  threshold?: { mode: 'val-best-f1' } | { mode: 'val-fpr'; maxFpr: number } | { mode: 'test-best-f1' };
  name?: string;
  /** Save the trained head to the store (default true). */
  save?: boolean;
}

export interface Evaluation {
  split: 'test';
  images: ImageMeta[];
  labels: number[];
  scores: number[];
  /** Heat maps `[h·w]` per image (spatial and CSE heads). */
  heatmaps?: number[][];
  heatmapSize?: [number, number];
  /** Ground-truth masks on the heat-map grid (`[h·w]`, 0/1; null for images without a mask), for PRO. */
  masks?: (number[] | null)[];
  /** Validation scores the threshold came from, and whether its defects are synthetic only. */
  val?: { scores: number[]; labels: number[]; synthetic: boolean };
  threshold: number;
  thresholdSource: string;
  /** Warning when the threshold came from synthetic defects or from test data. */
  warning?: string;
  metrics: MetricRow;
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

export interface TrainApi extends FeaturesApi {
  train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse>;
  listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]>;
  exportHead(headId: string): Promise<{ name: string; data: Uint8Array }[]>;
  deleteHead(headId: string): Promise<void>;
}

type AnyHead = BceHead | SpatialHead | CseHead;

export class NotEnoughDataError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('NotEnoughDataError', problem, fix);
  }
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
      const tf0 = performance.now();
      const feats = await this.extractDataset(req.datasetId, undefined, undefined, (p) =>
        report({ ...p, stage: 'features' }),
      );
      const features = {
        images: feats.images.length,
        extracted: feats.images.length - feats.cached,
        seconds: (performance.now() - tf0) / 1000,
        device: backbone.backend,
      };
      const idx = (pred: (m: ImageMeta) => boolean) => feats.images.flatMap((m, i) => (pred(m) ? [i] : []));
      const normal = idx((m) => m.split === 'train' && m.label === 'normal');
      const synthetic = idx((m) => m.split === 'train' && m.label === 'defect' && m.synthetic);
      const real = idx((m) => m.split === 'train' && m.label === 'defect' && !m.synthetic);
      const val = idx((m) => m.split === 'val' && m.label !== 'unlabeled');
      const test = idx((m) => m.split === 'test' && m.label !== 'unlabeled');
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
          test.length > 0 ? await this.evaluate(head, feats, req, { val, test, normal }) : null;
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

  private async evaluate(
    head: AnyHead,
    feats: DatasetFeatures,
    req: TrainRequest,
    sets: { val: number[]; test: number[]; normal: number[] },
  ): Promise<Evaluation> {
    const labelOf = (i: number) => (feats.images[i].label === 'defect' ? 1 : 0);
    const t = await this.scoreRows(head, feats, sets.test);
    const testLabels = sets.test.map(labelOf);
    const policy = req.threshold ?? { mode: 'val-best-f1' as const };
    let threshold: number;
    let source: string;
    let warning: string | undefined;
    let valOut: Evaluation['val'];
    const valLabels = sets.val.map(labelOf);
    const valUsable = valLabels.includes(0) && valLabels.includes(1);
    if (policy.mode === 'test-best-f1') {
      threshold = bestF1Threshold(t.scores, testLabels).threshold;
      source = 'test (tuned on test)';
      warning = 'The threshold was tuned on the test split: the metrics are optimistic.';
    } else {
      let rows = sets.val;
      let labels = valLabels;
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
        source = 'train (optimistic)';
        warning = 'No validation split with both classes: the threshold comes from the training images.';
      }
      const v = await this.scoreRows(head, feats, rows);
      valOut = {
        scores: Array.from(v.scores),
        labels,
        synthetic: rows.every((i) => feats.images[i].label !== 'defect' || feats.images[i].synthetic),
      };
      if (policy.mode === 'val-fpr') {
        threshold = thresholdAtFpr(v.scores, labels, policy.maxFpr);
        source += `@fpr≤${policy.maxFpr}`;
      } else {
        const best = bestF1Threshold(v.scores, labels);
        threshold = Number.isFinite(best.threshold) ? best.threshold : 0.5;
      }
    }
    const [h, w] = feats.spatial[0]?.dims.slice(1) ?? [0, 0];
    const masks =
      'heatmaps' in t && t.heatmaps
        ? await Promise.all(sets.test.map((i) => this.gridMask(feats.images[i], h, w)))
        : undefined;
    return {
      masks,
      val: valOut,
      split: 'test',
      images: pick(feats.images, sets.test),
      labels: testLabels,
      scores: Array.from(t.scores),
      ...('heatmaps' in t && t.heatmaps
        ? { heatmaps: t.heatmaps.map((m) => Array.from(m)), heatmapSize: [h, w] as [number, number] }
        : {}),
      threshold,
      thresholdSource: source,
      warning,
      metrics: metricRow(t.scores, testLabels, threshold),
    };
  }

  /** The image's label mask on the feature grid (a cell is defective when ≥ half of it is), or null. */
  private async gridMask(meta: ImageMeta, h: number, w: number): Promise<number[] | null> {
    if (!meta.maskId) return null;
    const rec = await (await this.store()).getMask(meta.maskId);
    if (!rec) return null;
    const mask = await this.deps.decode!(new Uint8Array(await rec.blob.arrayBuffer()), `${meta.name} mask`);
    const gray = mask.raster.channels === 1 ? mask.raster : toGray(mask.raster);
    return Array.from(maskToGrid(gray, this.requireBackbone().preprocess, h, w), (f) => (f >= 0.5 ? 1 : 0));
  }

  async listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]> {
    const heads = await (await this.store()).listHeads(datasetId);
    return heads.map(({ artifacts: _a, ...rest }) => rest);
  }

  async exportHead(headId: string): Promise<{ name: string; data: Uint8Array }[]> {
    const h = await (await this.store()).getHead(headId);
    if (!h) throw new InvalidArgumentError('headId', 'the id of a saved head', headId);
    const base = h.name.replace(/[^\w.-]+/g, '_').slice(0, 60) || 'head';
    return exportHeadFiles(h.artifacts as HeadArtifacts, headMetadata(h), base);
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

/**
 * The runner's `HeadTrainer`s over the features engineer's tfjs heads (`src/runtime/heads/`), for Node and the
 * experiments worker alike (nothing here touches Node APIs):
 * - `bce`: `trainBceHead` on pooled features (Adam lr 1e-4, batch 32, class weighting, early stopping);
 * - `spatial`: `trainSpatialHead` on the backbone's spatial maps of the same rows (normals + synthetic + real);
 *   its logit map, upsampled to the image, is the heat map (AUPRO when the test set has masks);
 * - `cse`: `trainCseHead` on spatial maps of the normals with pairs (normal, normal-or-synthetic p = 0.5) from
 *   `makeCsePairSource`: every synthetic defect is made on the fly by the given generators (MemSeg
 *   Perlin/structure/texture and blur by default) and its mask is mapped to the feature grid with the backbone's
 *   preprocessing geometry (`maskToGrid` of `src/runtime/heads/stream.ts`).
 */
import type {
  CellResult,
  HeadSample,
  HeadTrainer,
  HeadKind,
  HeatMapHead,
  TrainedHead,
} from '../core/experiments/index.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import type { RasterImage } from '../core/image.ts';
import type { PreprocessOptions } from '../core/preprocess.ts';
import type { CancelSignal, ProgressFn } from '../core/progress.ts';
import { BceHead, trainBceHead } from '../runtime/heads/bce.ts';
import type { EpochReport, HeadArtifacts } from '../runtime/heads/common.ts';
import { heatmapToImage } from '../runtime/heads/heatmap.ts';
import { CseHead, trainCseHead } from '../runtime/heads/cse.ts';
import { SpatialHead, trainSpatialHead, type FeatureMap } from '../runtime/heads/spatial.ts';
import { makeCsePairSource, type CseSourceOptions } from '../runtime/heads/stream.ts';
import { ensureTf } from '../runtime/tf.ts';

/** A trained head that can be saved (the Train tab stores its artifacts with the head record). */
export interface SavableHead extends TrainedHead {
  artifacts(): Promise<HeadArtifacts>;
  /** The epochs it trained and how training ended (absent for a saved head). */
  training?: { history: EpochReport[]; stopped: 'completed' | 'early' | 'cancelled' };
}

/** Whether a runner head can be saved. */
export function isSavable(h: TrainedHead): h is SavableHead {
  return typeof (h as Partial<SavableHead>).artifacts === 'function';
}

function epochProgress(onProgress: ProgressFn | undefined): (e: EpochReport) => void {
  return (e) =>
    onProgress?.({
      stage: 'train',
      done: e.epoch,
      total: e.epochs,
      unit: 'epochs',
      detail: e,
    });
}

/** The cell's head options without the runner's bookkeeping keys. */
function headExtra(defaults: Record<string, unknown>, extra: Record<string, unknown> | undefined) {
  const o = { ...defaults, ...extra };
  delete o.generator;
  return o;
}

export function bceTrainer(defaults: Record<string, unknown> = {}): HeadTrainer {
  return {
    kind: 'bce',
    async train(rows, o): Promise<TrainedHead> {
      await ensureTf();
      const { head, history, stopped } = await trainBceHead(
        rows.map((r) => r.features),
        rows.map((r) => r.label),
        { ...headExtra(defaults, o.extra), seed: o.seed, ...(o.epochs ? { epochs: o.epochs } : {}) },
        { signal: o.signal, onEpoch: epochProgress(o.onProgress) },
      );
      const trained: SavableHead = { ...pooledHeadResult(head), training: { history, stopped } };
      return trained;
    },
  };
}

/** What the spatial and CSE trainers need from the backbone. */
export interface SpatialSource {
  /** The backbone's preprocessing: where a mask pixel lands on the feature grid. */
  preprocess: PreprocessOptions;
  /** Spatial maps `[C, h, w]` of images, in order (no caching: on-the-fly defects). */
  spatial(images: RasterImage[], signal?: CancelSignal): Promise<FeatureMap[]>;
  /**
   * Spatial maps of runner rows by their stable id (the feature-cache key): the worker answers from IndexedDB
   * so a resumed grid does not extract again. Default: `spatial` over the decoded rows.
   */
  keyed?(
    rows: { id: string; load: () => Promise<RasterImage> }[],
    signal?: CancelSignal,
  ): Promise<FeatureMap[]>;
}

/**
 * Spatial maps of runner rows: dataset images (`img:` ids, reused by every cell) are kept in memory, synthetic
 * rows are not (they differ per cell and seed; the persistent cache, when there is one, keeps them).
 */
export class SpatialMaps {
  private readonly mem = new Map<string, FeatureMap>();
  constructor(readonly source: SpatialSource) {}
  async of(rows: HeadSample[], signal?: CancelSignal): Promise<FeatureMap[]> {
    const todo = rows.filter((r, i) => !this.mem.has(r.id) && rows.findIndex((x) => x.id === r.id) === i);
    const got = new Map<string, FeatureMap>();
    for (let i = 0; i < todo.length; i += 16) {
      const chunk = todo.slice(i, i + 16).map((r) => ({ id: r.id, load: loader(r) }));
      const m = this.source.keyed
        ? await this.source.keyed(chunk, signal)
        : await this.source.spatial(await Promise.all(chunk.map((c) => c.load())), signal);
      chunk.forEach((c, k) => {
        got.set(c.id, m[k]);
        if (c.id.startsWith('img:')) this.mem.set(c.id, m[k]);
      });
    }
    return rows.map((r) => (this.mem.get(r.id) ?? got.get(r.id)) as FeatureMap);
  }
}

function loader(r: HeadSample): () => Promise<RasterImage> {
  if (!r.load) throw new Error(`row ${r.id} has no image loader (spatial heads need pixels)`);
  return r.load;
}

/** Supervised spatial head on the rows' spatial maps (labels from the rows). */
export function spatialTrainer(maps: SpatialMaps, defaults: Record<string, unknown> = {}): HeadTrainer {
  return {
    kind: 'spatial',
    async train(rows, o): Promise<TrainedHead> {
      await ensureTf();
      const train = await maps.of(rows, o.signal);
      const { head, history, stopped } = await trainSpatialHead(
        train,
        rows.map((r) => r.label),
        { ...headExtra(defaults, o.extra), seed: o.seed, ...(o.epochs ? { epochs: o.epochs } : {}) },
        { signal: o.signal, onEpoch: epochProgress(o.onProgress) },
      );
      const trained: SavableHead = { ...mapHeadResult(head, maps, o.signal), training: { history, stopped } };
      return trained;
    },
  };
}

/**
 * A trained head over spatial maps (spatial or CSE) as the runner's `HeatMapHead`: scores, the grid maps, and
 * each map brought onto an image's pixels through the backbone's preprocessing geometry (the same mapping the
 * viewer's overlays use, so PRO and the picture agree). `artifacts` is what the Train tab saves.
 */
function mapHeadResult(
  head: {
    predict(maps: readonly FeatureMap[]): Promise<{ scores: Float32Array; heatmaps: Float32Array[] }>;
    toArtifacts(): Promise<HeadArtifacts>;
    dispose(): void;
  },
  maps: SpatialMaps,
  signal?: CancelSignal,
): HeatMapHead & SavableHead {
  const pre = maps.source.preprocess;
  return {
    score: async (q: HeadSample[]) => (await head.predict(await maps.of(q, signal))).scores,
    gridMaps: async (q: HeadSample[]) => {
      const m = await maps.of(q, signal);
      const [, h, w] = m[0]?.dims ?? [0, 0, 0];
      return { h, w, maps: (await head.predict(m)).heatmaps };
    },
    toImage: (map, gh, gw, width, height) => heatmapToImage(map, gh, gw, pre, width, height),
    artifacts: () => head.toArtifacts(),
    dispose: () => head.dispose(),
  };
}

/** One line per finished or resumed cell for the CLI's log. */
export function cellLogLine(c: CellResult, resumed: boolean): string {
  const what =
    c.status === 'done'
      ? `AP ${c.metrics?.ap.toFixed(3)}  threshold from ${c.thresholdSource}`
      : `FAILED ${c.error}`;
  return `${resumed ? 'resumed' : 'done   '} ${c.id}  ${what}  (${(c.ms / 1000).toFixed(1)} s)`;
}

export interface CseTrainerOptions {
  /** Generators of the on-the-fly defects, one drawn per synthetic pair (synchronous: core synth). */
  generators: CseSourceOptions['generators'];
  /** Options passed to `trainCseHead` (epochs, stepsPerEpoch, pairsPerStep, …). */
  cse?: Record<string, unknown>;
  /** Pair-source options (`pDefect`, `cellThreshold`). */
  pairs?: Pick<CseSourceOptions, 'pDefect' | 'cellThreshold'>;
}

export function cseTrainer(maps: SpatialMaps, opts: CseTrainerOptions): HeadTrainer {
  return {
    kind: 'cse',
    unsupervised: true,
    async train(rows, o): Promise<TrainedHead> {
      await ensureTf();
      const normals = rows.filter((r) => r.label === 0);
      const normalMaps = await maps.of(normals, o.signal);
      const { head, history, stopped } = await trainCseHead(
        normalMaps,
        makeCsePairSource({
          normals: await Promise.all(normals.map((r) => loader(r)())),
          normalMaps,
          extract: (images) => maps.source.spatial(images, o.signal),
          generators: opts.generators,
          preprocess: maps.source.preprocess,
          ...opts.pairs,
        }),
        { ...headExtra(opts.cse ?? {}, o.extra), seed: o.seed, ...(o.epochs ? { epochs: o.epochs } : {}) },
        { signal: o.signal, onEpoch: epochProgress(o.onProgress) },
      );
      const trained: SavableHead = { ...mapHeadResult(head, maps, o.signal), training: { history, stopped } };
      return trained;
    },
  };
}

/** Rebuilds a saved head from its stored artifacts (for scoring new images). */
export function headFromArtifacts(a: HeadArtifacts): BceHead | SpatialHead | CseHead {
  if (a.kind === 'bce') return BceHead.fromArtifacts(a);
  if (a.kind === 'spatial') return SpatialHead.fromArtifacts(a);
  if (a.kind === 'cse') return CseHead.fromArtifacts(a);
  // PatchCore and the masked head read feature taps: their own saved-head trainers rebuild them.
  throw new InvalidArgumentError(
    'head artifacts kind',
    'bce | spatial | cse here (PatchCore and masked heads: savedPatchcoreTrainer / savedMaskedTrainer)',
    a.kind,
  );
}

/**
 * A "trainer" that returns a saved head, so re-evaluating it runs the same cell code as training did (same split,
 * same baselines, same threshold chooser). Marked unsupervised: it reads no training row.
 */
export function savedHeadTrainer(a: HeadArtifacts, maps: SpatialMaps): HeadTrainer {
  return {
    kind: a.kind as HeadKind,
    unsupervised: true,
    async train(_rows, o): Promise<TrainedHead> {
      await ensureTf();
      const head = headFromArtifacts(a);
      if (head instanceof BceHead) return pooledHeadResult(head);
      return mapHeadResult(head, maps, o.signal);
    },
  };
}

function pooledHeadResult(head: BceHead): SavableHead {
  return {
    score: (q) => head.predict(q.map((r) => r.features)),
    artifacts: () => head.toArtifacts(),
    dispose: () => head.dispose(),
  };
}

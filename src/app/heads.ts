/**
 * The runner's `HeadTrainer`s over the features engineer's tfjs heads (`src/runtime/heads/`), for Node and the
 * experiments worker alike (nothing here touches Node APIs):
 * - `bce`: `trainBceHead` on pooled features (Adam lr 1e-4, batch 32, class weighting, early stopping);
 * - `spatial`: `trainSpatialHead` on the backbone's spatial maps of the same rows (normals + synthetic + real);
 *   its logit map, upsampled to the image, is the heat map (AUPRO when the test set has masks);
 * - `cse`: `trainCseHead` on spatial maps of the normals with pairs (normal, normal-or-synthetic p = 0.5) from
 *   `makeCsePairSource`: every synthetic defect is made on the fly by the given generators (MemSeg
 *   Perlin/structure/texture and blur by default) and its mask is mapped to the feature grid with the backbone's
 *   preprocessing geometry (`maskToGrid` of `src/runtime/heads/stream.ts`). With `fusion` (the paper's default)
 *   and a backbone exposing taps `s16` + `s32`, the maps are the two fused (`fuseMaps`); with `bestCheckpoint`,
 *   `validationFraction` of the normals are held out and pairs made on them choose the epoch kept.
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
import { CseHead, cseOptions, fuseMaps, trainCseHead } from '../runtime/heads/cse.ts';
import { Rng } from '../core/rng.ts';
import type { TapMaps } from './patchcore.ts';
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
      const trained: SavableHead = {
        ...mapHeadResult(head, (q) => maps.of(q, o.signal), maps.source.preprocess),
        training: { history, stopped },
      };
      return trained;
    },
  };
}

/** Feature maps of runner rows, in order (one map per row). */
type RowMaps = (rows: HeadSample[]) => Promise<FeatureMap[]>;

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
    /** The score grid when it is not the input grid (CSE's average pool). */
    readonly grid?: readonly [number, number];
  },
  mapsOf: RowMaps,
  pre: PreprocessOptions,
): HeatMapHead & SavableHead {
  return {
    score: async (q: HeadSample[]) => (await head.predict(await mapsOf(q))).scores,
    gridMaps: async (q: HeadSample[]) => {
      const m = await mapsOf(q);
      const [, mh, mw] = m[0]?.dims ?? [0, 0, 0];
      const [h, w] = head.grid ?? [mh, mw];
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
  /**
   * The backbone's feature taps, for the paper's two-map fusion (`fusion`, on by default): given only when the
   * backbone has both `CSE_FUSION_TAPS` (see `cseFusionTaps`); without them the head trains on the one spatial
   * map and records `fusion: false`.
   */
  taps?: TapMaps;
}

/** The paper's two maps: stride 16 and stride 32 (MobileNetV2: 96×14×14 and 160×7×7, `s16` and `s32`). */
export const CSE_FUSION_TAPS = ['s16', 's32'] as const;

/** `taps` when a backbone exposing these tap names can feed the CSE fusion, else undefined. */
export function cseFusionTaps(tapNames: readonly string[], taps: TapMaps): TapMaps | undefined {
  return CSE_FUSION_TAPS.every((t) => tapNames.includes(t)) ? taps : undefined;
}

/** How a CSE head's maps are made: the fused taps, or the one spatial map. */
function cseMaps(maps: SpatialMaps, taps: TapMaps | undefined, signal?: CancelSignal) {
  if (!taps)
    return {
      rows: (q: HeadSample[]) => maps.of(q, signal),
      images: (images: RasterImage[]) => maps.source.spatial(images, signal),
    };
  const fuse = (m: Record<string, FeatureMap>) => fuseMaps(m[CSE_FUSION_TAPS[0]], m[CSE_FUSION_TAPS[1]]);
  return {
    rows: async (q: HeadSample[]) =>
      (await taps.of(q, CSE_FUSION_TAPS, signal)).map(([a, b]) => fuseMaps(a, b)),
    images: async (images: RasterImage[]) =>
      (await taps.source.taps(images, CSE_FUSION_TAPS, signal)).map(fuse),
  };
}

export function cseTrainer(maps: SpatialMaps, opts: CseTrainerOptions): HeadTrainer {
  return {
    kind: 'cse',
    unsupervised: true,
    async train(rows, o): Promise<TrainedHead> {
      await ensureTf();
      const extra = {
        ...headExtra(opts.cse ?? {}, o.extra),
        seed: o.seed,
        ...(o.epochs ? { epochs: o.epochs } : {}),
      };
      const co = cseOptions(extra);
      const taps = co.fusion ? opts.taps : undefined;
      const source = cseMaps(maps, taps, o.signal);
      // The paper holds out 20 % of the normals; their pairs (synthetic defects made on them) pick the epoch.
      const normals = rows.filter((r) => r.label === 0);
      const nVal = co.bestCheckpoint ? Math.floor(normals.length * co.validationFraction) : 0;
      const order = normals.map((_, i) => i);
      new Rng(`cse-validation:${o.seed}`).shuffle(order);
      const held =
        nVal >= 1 && normals.length - nVal >= 1 ? new Set(order.slice(0, nVal)) : new Set<number>();
      const trainRows = normals.filter((_, i) => !held.has(i));
      const valRows = normals.filter((_, i) => held.has(i));
      const pairSource = async (part: HeadSample[]) => {
        const partMaps = await source.rows(part);
        return {
          partMaps,
          pairs: makeCsePairSource({
            normals: await Promise.all(part.map((r) => loader(r)())),
            normalMaps: partMaps,
            extract: source.images,
            generators: opts.generators,
            preprocess: maps.source.preprocess,
            ...opts.pairs,
          }),
        };
      };
      const train = await pairSource(trainRows);
      const validation = valRows.length ? (await pairSource(valRows)).pairs : undefined;
      const { head, history, stopped } = await trainCseHead(
        train.partMaps,
        train.pairs,
        { ...extra, fusion: taps !== undefined },
        { signal: o.signal, onEpoch: epochProgress(o.onProgress) },
        { validation },
      );
      const trained: SavableHead = {
        ...mapHeadResult(head, source.rows, maps.source.preprocess),
        training: { history, stopped },
      };
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
export function savedHeadTrainer(a: HeadArtifacts, maps: SpatialMaps, taps?: TapMaps): HeadTrainer {
  return {
    kind: a.kind as HeadKind,
    unsupervised: true,
    async train(_rows, o): Promise<TrainedHead> {
      await ensureTf();
      const head = headFromArtifacts(a);
      if (head instanceof BceHead) return pooledHeadResult(head);
      if (head instanceof CseHead && head.options.fusion) {
        if (!taps) {
          head.dispose();
          throw new InvalidArgumentError(
            'saved CSE head',
            `a backbone with the taps ${CSE_FUSION_TAPS.join(' + ')} (it was trained on the two fused maps) — fix: load the backbone it was trained with`,
            'no taps',
          );
        }
        return mapHeadResult(head, cseMaps(maps, taps, o.signal).rows, maps.source.preprocess);
      }
      return mapHeadResult(head, (q) => maps.of(q, o.signal), maps.source.preprocess);
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

/**
 * PatchCore as the runner's `HeadTrainer` (unsupervised: the memory bank is built from the normal rows only;
 * defect rows given to `train` are ignored), over the backbone's named feature taps. The trained head scores
 * rows, draws heat maps like the spatial and CSE heads (the σ = 4 smoothed distance map over the backbone
 * frame, brought onto image pixels through the preprocessing geometry, so PRO and the viewer agree) and saves
 * its memory bank as head artifacts (`kind: 'patchcore'`).
 *
 * Imports `src/core` and `src/runtime` only, touches no Node API: runs in a worker as in the CLI.
 */
import type { HeadSample, HeadTrainer, TrainedHead } from '../core/experiments/types.ts';
import type { RasterImage } from '../core/image.ts';
import type { PreprocessOptions } from '../core/preprocess.ts';
import type { CancelSignal } from '../core/progress.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { patchFeatures } from '../core/patchcore/features.ts';
import { Rng } from '../core/rng.ts';
import type { Backbone } from '../runtime/backbone.ts';
import type { HeadArtifacts } from '../runtime/heads/common.ts';
import { heatmapToImage } from '../runtime/heads/heatmap.ts';
import {
  PATCHCORE_DEFAULTS,
  PatchCoreHead,
  type PatchCoreOptions,
  type PatchCoreRuntime,
  patchCoreOptions,
  trainPatchCore,
} from '../runtime/heads/patchcore.ts';
import type { FeatureMap } from '../runtime/heads/spatial.ts';
import { ensureTf, tf } from '../runtime/tf.ts';

/** What the PatchCore trainer needs from a backbone. */
export interface TapSource {
  /** The backbone's preprocessing: the frame the maps and heat maps cover. */
  preprocess: PreprocessOptions;
  /** Tap maps `[C, h, w]` of images, by tap name, in order. */
  taps(
    images: RasterImage[],
    taps: readonly string[],
    signal?: CancelSignal,
  ): Promise<Record<string, FeatureMap>[]>;
  /**
   * Tap maps of runner rows by their stable id (e.g. through `CachedTaps` of `src/runtime/backbone.ts` and the
   * store, so a resumed grid does not extract again). Default: `taps` over the decoded rows.
   */
  keyed?(
    rows: { id: string; load: () => Promise<RasterImage> }[],
    taps: readonly string[],
    signal?: CancelSignal,
  ): Promise<Record<string, FeatureMap>[]>;
}

/**
 * A loaded backbone as a `TapSource`: its manifest taps or, when its manifest names none, its spatial map as the
 * one tap `spatial` (so PatchCore and the masked head run on any backbone). `keyed` answers rows from a cache.
 */
export function tapSourceOf(backbone: Backbone, keyed?: TapSource['keyed']): TapSource {
  const spatialOnly = (taps: readonly string[]) =>
    backbone.taps.length === 0 && taps.length === 1 && taps[0] === 'spatial';
  return {
    preprocess: backbone.preprocess,
    taps: async (images, taps, signal) =>
      spatialOnly(taps)
        ? (await backbone.extract(images, { signal })).spatial.map((m) => ({ spatial: m }))
        : (await backbone.extractTaps(images, { taps, signal })).map((f) => f.maps),
    ...(keyed ? { keyed } : {}),
  };
}

/** Trainer defaults for a backbone: its spatial map as the tap when its manifest names none. */
export const tapDefaultsFor = (backbone: Backbone): { taps?: string[] } =>
  backbone.taps.length ? {} : { taps: ['spatial'] };

/** A loaded backbone (with its manifest taps) as a `TapSource`, at its fixed preprocessing. */
export function backboneTapSource(backbone: Backbone): TapSource {
  return {
    preprocess: backbone.preprocess,
    taps: async (images, taps, signal) =>
      (await backbone.extractTaps(images, { taps, signal })).map((f) => f.maps),
  };
}

/**
 * Tap maps of runner rows: dataset images (`img:` ids, shared by every cell) are kept in memory per tap set,
 * synthetic rows are not (they differ per cell and seed).
 */
export class TapMaps {
  private readonly mem = new Map<string, Record<string, FeatureMap>>();
  constructor(readonly source: TapSource) {}

  async of(rows: HeadSample[], taps: readonly string[], signal?: CancelSignal): Promise<FeatureMap[][]> {
    const key = (id: string) => `${taps.join('+')}|${id}`;
    const todo = rows.filter(
      (r, i) => !this.mem.has(key(r.id)) && rows.findIndex((x) => x.id === r.id) === i,
    );
    const got = new Map<string, Record<string, FeatureMap>>();
    for (let i = 0; i < todo.length; i += 16) {
      const chunk = todo.slice(i, i + 16);
      const keyed = chunk.map((r) => {
        const load = r.load;
        if (!load)
          throw new InvalidArgumentError(
            `row ${r.id}`,
            'a row with an image loader (PatchCore needs pixels)',
            'none',
          );
        return { id: r.id, load };
      });
      const m = this.source.keyed
        ? await this.source.keyed(keyed, taps, signal)
        : await this.source.taps(await Promise.all(keyed.map((c) => c.load())), taps, signal);
      chunk.forEach((r, k) => {
        got.set(r.id, m[k]);
        if (r.id.startsWith('img:')) this.mem.set(key(r.id), m[k]);
      });
    }
    return rows.map((r) => {
      const maps = (this.mem.get(key(r.id)) ?? got.get(r.id))!;
      return taps.map((t) => maps[t]);
    });
  }
}

/** A heat map on image pixels. */
export interface ImageHeatMap {
  width: number;
  height: number;
  data: Float32Array;
}

/** The trained PatchCore head as the runner sees it: scores, heat maps (grid and image pixels), artifacts. */
export interface PatchCoreTrained extends TrainedHead {
  /** Heat maps on each row's image pixels (the runner's AUPRO, the viewer). */
  heatMaps(rows: HeadSample[]): Promise<ImageHeatMap[]>;
  /** The smoothed maps on the backbone frame `[h·w]` (h × w = the frame). */
  gridMaps(rows: HeadSample[]): Promise<{ h: number; w: number; maps: Float32Array[] }>;
  /** A frame map onto an image's pixels through the preprocessing geometry. */
  toImage(map: Float32Array, gh: number, gw: number, width: number, height: number): Float32Array;
  artifacts(): Promise<HeadArtifacts>;
  readonly head: PatchCoreHead;
  dispose(): void;
}

/**
 * The runner's scoring half of a head whose maps cover the backbone frame (PatchCore, the masked head): scores,
 * the frame maps, and each map on an image's pixels through the preprocessing geometry.
 */
export function frameMapHead(
  predict: (rows: HeadSample[]) => Promise<{ scores: Float32Array; heatmaps: Float32Array[] }>,
  pre: PreprocessOptions,
): Pick<PatchCoreTrained, 'score' | 'gridMaps' | 'heatMaps' | 'toImage'> {
  const toImage = (map: Float32Array, gh: number, gw: number, width: number, height: number) =>
    heatmapToImage(map, gh, gw, pre, width, height);
  return {
    score: async (rows) => (await predict(rows)).scores,
    gridMaps: async (rows) => ({ h: pre.height, w: pre.width, maps: (await predict(rows)).heatmaps }),
    heatMaps: async (rows) => {
      const p = await predict(rows);
      return Promise.all(
        rows.map(async (r, i) => {
          const img = await r.load!();
          return {
            width: img.width,
            height: img.height,
            data: toImage(p.heatmaps[i], pre.height, pre.width, img.width, img.height),
          };
        }),
      );
    },
    toImage,
  };
}

/** Wraps a PatchCore head (trained or loaded from artifacts) for the runner. */
export function patchcoreResult(head: PatchCoreHead, maps: TapMaps, signal?: CancelSignal): PatchCoreTrained {
  const pre = maps.source.preprocess;
  const taps = head.options.taps;
  const predict = async (rows: HeadSample[]) =>
    head.predict(
      (await maps.of(rows, taps, signal)).map((m) => ({ maps: m, frame: pre })),
      signal,
    );
  return {
    head,
    ...frameMapHead(predict, pre),
    artifacts: () => head.toArtifacts(),
    dispose: () => head.dispose(),
  };
}

/** The cell's PatchCore options: trainer defaults, then the grid's head options, then the cell seed. */
function cellOptions(
  defaults: Partial<PatchCoreOptions>,
  extra: Record<string, unknown> | undefined,
  seed: number,
) {
  const o: Record<string, unknown> = { ...PATCHCORE_DEFAULTS, ...defaults, ...extra, seed };
  delete o.generator;
  return o as Partial<PatchCoreOptions>;
}

/**
 * PatchCore for the runner: `unsupervised`, so the runner hands it normal rows; any defect row is left out of
 * the bank all the same. Progress is the coreset selection (`stage: 'train'`, unit 'steps'). `runtime`: the
 * Node entry points pass `nodePatchCoreRuntime()` (onnxruntime search, threaded coreset); the browser passes
 * nothing and gets tfjs and the core's scan.
 */
export function patchcoreTrainer(
  maps: TapMaps,
  defaults: Partial<PatchCoreOptions> = {},
  runtime: PatchCoreRuntime = {},
): HeadTrainer {
  return {
    kind: 'patchcore',
    unsupervised: true,
    async train(rows, o): Promise<TrainedHead> {
      await ensureTf();
      const normals = rows.filter((r) => r.label === 0);
      if (normals.length === 0)
        throw new InvalidArgumentError('PatchCore training rows', 'at least one normal image', 0);
      const opts = cellOptions(defaults, o.extra, o.seed);
      const taps = opts.taps ?? PATCHCORE_DEFAULTS.taps;
      const pre = maps.source.preprocess;
      const inputs = (await maps.of(normals, taps, o.signal)).map((m) => ({ maps: m, frame: pre }));
      const { head } = await trainPatchCore(inputs, opts, {
        runtime,
        signal: o.signal,
        onProgress: (done, total) =>
          o.onProgress?.({ stage: 'train', done, total, unit: 'steps', message: 'coreset selection' }),
      });
      return patchcoreResult(head, maps, o.signal);
    },
  };
}

/** A saved PatchCore head as a "trainer" (re-evaluation runs the same cell code; it reads no training row). */
export function savedPatchcoreTrainer(
  a: HeadArtifacts,
  maps: TapMaps,
  runtime: PatchCoreRuntime = {},
): HeadTrainer {
  return {
    kind: 'patchcore',
    unsupervised: true,
    async train(_rows, o): Promise<TrainedHead> {
      await ensureTf();
      return patchcoreResult(PatchCoreHead.fromArtifacts(a, runtime), maps, o.signal);
    },
  };
}

/** What `benchmarkPatchCoreScoring` measured (milliseconds, medians). */
export interface PatchCoreScoringBench {
  tfBackend: string;
  /** Where the search ran (`BankSearch.label`: 'tfjs wasm', 'onnxruntime-node cpu, 2 threads'). */
  search: string;
  /** Whole `predict` of one image: patch features, nearest neighbours, the frame's σ-smoothed map, reweighting. */
  predictMs: number;
  /** The nearest-neighbour search alone (fused `matMul` + arg-min, distances recomputed). */
  nearestMs: number;
  bankRows: number;
  dim: number;
  patches: number;
  runs: number;
}

/**
 * The cost of scoring one 224² image (MobileNetV2's s16 + s32 maps: 96×14×14 + 160×7×7 → 196 patches × 256)
 * against a `bankRows` × 256 bank of seeded normal numbers, on the tfjs backend already chosen: median of
 * `runs` after a warm-up. The same function runs in Node (`bench/patchcore.ts`) and in the train worker
 * (`TrainEngine.benchmarkPatchCore`), so the two figures are one code path on two runtimes; the data comes from
 * the seed, so nothing large crosses to the worker.
 */
export async function benchmarkPatchCoreScoring(
  o: { bankRows?: number; runs?: number; seed?: string; runtime?: PatchCoreRuntime } = {},
): Promise<PatchCoreScoringBench> {
  const bankRows = o.bankRows ?? 10_000;
  const runs = o.runs ?? 7;
  const rng = new Rng(o.seed ?? 'bench-patchcore');
  const D = 256;
  const bank = rng.normalArray(bankRows * D);
  const maps = [
    { data: rng.normalArray(96 * 196), dims: [96, 14, 14] as const },
    { data: rng.normalArray(160 * 49), dims: [160, 7, 7] as const },
  ];
  const head = PatchCoreHead.fromBank(
    bank,
    D,
    patchCoreOptions({ taps: ['s16', 's32'] }),
    [224, 224],
    o.runtime,
  );
  try {
    const f = patchFeatures(maps);
    await head.predict([{ maps }]);
    await head.nearest(f.data, f.rows);
    const whole: number[] = [];
    const nn: number[] = [];
    for (let i = 0; i < runs; i++) {
      let t = performance.now();
      await head.predict([{ maps }]);
      whole.push(performance.now() - t);
      t = performance.now();
      await head.nearest(f.data, f.rows);
      nn.push(performance.now() - t);
    }
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    return {
      tfBackend: tf.getBackend(),
      search: (await head.search()).label,
      predictMs: median(whole),
      nearestMs: median(nn),
      bankRows,
      dim: D,
      patches: f.rows,
      runs,
    };
  } finally {
    head.dispose();
  }
}

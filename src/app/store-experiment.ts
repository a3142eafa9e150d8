/**
 * A stored dataset as the runner's `ExperimentData`, and the runner's environment over a loaded backbone and the
 * store's feature cache: what the Train tab's engine and the experiments engine share, so "train one head" and
 * "run a grid" see the same images, the same cached features and the same trainers.
 *
 * Pools from the store: split `train` → normals, accepted synthetic defects (records with a generator provenance)
 * and real defects; split `val` → validation when it has both classes (synthetic defects there are labelled so);
 * split `test` → scored, real images only. Unlabelled images are left out.
 */
import type { ImageRecord } from '../core/dataset.ts';
import {
  byText,
  type ExperimentData,
  type ExperimentEnv,
  type ExperimentImage,
  type FeatureCacheLike,
  type GeneratorFn,
  type HeadTrainer,
  type HeadKind,
} from '../core/experiments/index.ts';
import { toGray, type RasterImage } from '../core/image.ts';
import { CachedFeatures, CachedTaps, type Backbone } from '../runtime/backbone.ts';
import type { FeatureMap } from '../runtime/heads/spatial.ts';
import { maskedTrainer } from './masked.ts';
import { patchcoreTrainer, tapDefaultsFor, TapMaps, tapSourceOf } from './patchcore.ts';
import type { DefectLabStore } from '../runtime/db/types.ts';
import { bceTrainer, cseFusionTaps, cseTrainer, spatialTrainer, SpatialMaps } from './heads.ts';
import { cseGenerators } from './generators.ts';

export type Decode = (bytes: Uint8Array, name: string) => Promise<{ raster: RasterImage }>;

/**
 * The store's feature cache under the runner's keys (`<extractor id>|img:<sha256>` or `|syn:<…>`): dataset images
 * share entries with the Train tab (same backbone, sha256 and preprocessing); synthetic images are keyed by
 * their generator, settings, canvas and seed.
 */
export function cacheKeyOf(runnerKey: string, extractorId: string): string {
  const k = runnerKey.startsWith(`${extractorId}|`) ? runnerKey.slice(extractorId.length + 1) : runnerKey;
  return k.startsWith('img:') ? k.slice(4) : k;
}

/** The runner's image id of a stored record (the feature cache's key). */
export const imageIdOf = (r: Pick<ImageRecord, 'sha256' | 'id'>): string => r.sha256 || r.id;

/** A stored dataset's pools (see the file comment); `records` come back too, in the same order as the pools. */
export async function storeExperimentData(
  store: DefectLabStore,
  datasetId: string,
  decode: Decode,
): Promise<{ data: ExperimentData; test: ImageRecord[] }> {
  // The store lists by random record id; the runner's splits and canvas draws walk the pools by index, so the
  // pools are put in one canonical order (name, then content hash): a dataset folder and its import into the
  // app give the same cells (`server/dataset-folder.ts` sorts the same way).
  const records = (await store.listImages(datasetId)).sort(
    (a, b) => byText(a.name, b.name) || byText(a.sha256, b.sha256),
  );
  const load = (r: ImageRecord) => async (): Promise<RasterImage> =>
    (await decode(new Uint8Array(await r.blob.arrayBuffer()), r.name)).raster;
  const decodeMask = async (blob: Blob, name: string) =>
    toGray((await decode(new Uint8Array(await blob.arrayBuffer()), name)).raster);
  const toItem = (r: ImageRecord): ExperimentImage => ({
    id: imageIdOf(r),
    label: r.label === 'defect' ? 1 : 0,
    defectClass: r.defectClass,
    ...(r.provenance ? { generator: r.provenance.generator } : {}),
    size: { width: r.width, height: r.height },
    load: load(r),
    loadMask: async () => {
      if (!r.maskId) return null;
      const m = await store.getMask(r.maskId);
      return m ? decodeMask(m.blob, `${r.name} mask`) : null;
    },
  });
  const labelled = records.filter((r) => r.label !== 'unlabeled');
  const real = labelled.filter((r) => !r.provenance);
  const trainDefects = real.filter((r) => r.split === 'train' && r.label === 'defect');
  const val = labelled.filter((r) => r.split === 'val');
  // Scored on real images only: a generated image in the test split would grade the generator, not the head.
  const test = real.filter((r) => r.split === 'test');
  const ds = await store.getDataset(datasetId);
  const data: ExperimentData = {
    name: ds?.name ?? datasetId,
    trainNormals: real.filter((r) => r.split === 'train' && r.label === 'normal').map(toItem),
    realDefects: trainDefects.map(toItem),
    acceptedSynthetic: labelled
      .filter((r) => r.split === 'train' && r.label === 'defect' && r.provenance)
      .map(toItem),
    validation:
      val.some((v) => v.label === 'defect') && val.some((v) => v.label === 'normal')
        ? val.map(toItem)
        : undefined,
    test: test.map(toItem),
    // Where diffusion may inpaint: painted region / library masks and the training defects' label masks.
    regionMasks: async () => {
      const out: RasterImage[] = [];
      for (const kind of ['region', 'library'] as const)
        for (const m of await store.listMasks(datasetId, kind))
          out.push(await decodeMask(m.blob, m.name ?? `${kind} mask ${m.id}`));
      for (const r of trainDefects)
        if (r.maskId) {
          const m = await store.getMask(r.maskId);
          if (m) out.push(await decodeMask(m.blob, `${r.name} mask`));
        }
      return out;
    },
  };
  return { data, test };
}

function storeFeatureCache(
  store: Pick<DefectLabStore, 'getFeatures' | 'putFeatures'>,
  backbone: Backbone,
  extractorId: string,
): FeatureCacheLike {
  const key = (k: string) => ({
    backbone: backbone.id,
    sha256: cacheKeyOf(k, extractorId),
    preprocessing: backbone.preprocessingId,
  });
  return {
    get: async (k) => (await store.getFeatures(key(k)))?.pooled,
    put: async (k, pooled) => {
      const prev = await store.getFeatures(key(k));
      await store.putFeatures(key(k), { ...prev, pooled });
    },
  };
}

/** The extractor id of a backbone with its preprocessing (part of every cell config and cache key). */
export const extractorIdOf = (backbone: Backbone): string => `${backbone.id}|${backbone.preprocessingId}`;

export interface StoreEnvOptions {
  generators: Record<string, GeneratorFn>;
  /** On-the-fly generators of the CSE head (default: MemSeg and blur). */
  cseGenerators?: ReturnType<typeof cseGenerators>;
  /** Trainers to use instead of the defaults (a saved head's re-evaluation). */
  trainers?: Partial<Record<HeadKind, HeadTrainer>>;
}

/**
 * The runner's environment over a loaded backbone: pooled features, spatial maps and feature taps through the
 * store's feature cache (keyed by backbone, sha256 and preprocessing), the BCE, spatial, CSE, PatchCore and
 * mask-supervised trainers, and `generators`.
 */
export function storeExperimentEnv(
  backbone: Backbone,
  db: DefectLabStore,
  o: StoreEnvOptions,
): { env: ExperimentEnv; maps: SpatialMaps; taps: TapMaps } {
  const extractorId = extractorIdOf(backbone);
  const cached = new CachedFeatures(backbone, db);
  const cachedTaps = new CachedTaps(backbone, db);
  // PatchCore reads named taps; a backbone whose manifest names none offers its spatial map as the tap "spatial".
  const spatialOnly = (t: readonly string[]) =>
    backbone.taps.length === 0 && t.length === 1 && t[0] === 'spatial';
  const tapSource = tapSourceOf(backbone, async (rows, t, signal) => {
    const items = rows.map((r) => ({ sha256: cacheKeyOf(r.id, extractorId), load: r.load }));
    return spatialOnly(t)
      ? (await cached.extract(items, { signal })).map((f) => ({
          spatial: { data: f.spatial!.data, dims: f.spatial!.dims } as FeatureMap,
        }))
      : (await cachedTaps.extract(items, { taps: t, signal })).map((f) => f.maps);
  });
  const taps = new TapMaps(tapSource);
  const maps = new SpatialMaps({
    preprocess: backbone.preprocess,
    spatial: async (images, signal) => (await backbone.extract(images, { signal })).spatial,
    keyed: async (rows, signal) =>
      (
        await cached.extract(
          rows.map((r) => ({ sha256: cacheKeyOf(r.id, extractorId), load: r.load })),
          { signal },
        )
      ).map((f) => ({ data: f.spatial!.data, dims: f.spatial!.dims })),
  });
  const env: ExperimentEnv = {
    extractor: {
      id: extractorId,
      extract: async (images, signal) =>
        (await backbone.extract(images, { pooledOnly: true, signal })).pooled,
    },
    featureCache: storeFeatureCache(db, backbone, extractorId),
    generators: o.generators,
    trainers: {
      bce: bceTrainer(),
      spatial: spatialTrainer(maps),
      cse: cseTrainer(maps, {
        generators: o.cseGenerators ?? cseGenerators(),
        taps: cseFusionTaps(backbone.taps, taps),
      }),
      patchcore: patchcoreTrainer(taps, tapDefaultsFor(backbone)),
      masked: maskedTrainer(taps, tapDefaultsFor(backbone)),
      ...o.trainers,
    },
  };
  return { env, maps, taps };
}

/**
 * The experiments engine: runs a grid (`src/core/experiments`) over a stored dataset with the loaded backbone
 * (it is a `FeaturesEngine`, so `loadBackbone` works here too), tfjs heads (BCE, spatial, CSE), the core
 * generators and, when a diffusion model is available (`deps.diffusion`), the diffusion generator. Finished cells
 * are `RunRecord`s in the store, keyed by experiment id, so running the same experiment again after a reload
 * skips them (resume); features (pooled and spatial) go through the store's feature cache (`CachedFeatures`'
 * keys: backbone, image sha256, preprocessing), so the cells left after a reload do not extract again.
 * Usable in-thread (tests) or in `experiments.worker.ts`.
 */
import {
  RunRecordCellStore,
  runExperiment,
  usesDiffusion,
  type CellResult,
  type ExperimentData,
  type ExperimentImage,
  type FeatureCacheLike,
  type GridSpec,
  type TableRow,
} from '../src/core/experiments/index.ts';
import { DefectLabError } from '../src/core/errors.ts';
import { toGray, type RasterImage } from '../src/core/image.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { ImageRecord } from '../src/core/dataset.ts';
import { CachedFeatures, type Backbone } from '../src/runtime/backbone.ts';
import type { DefectLabStore } from '../src/runtime/db/types.ts';
import { initTf, type TfBackendPreference } from '../src/runtime/tf.ts';
import {
  coreGenerators,
  cseGenerators,
  prepareDiffusionGrid,
  type DiffusionModelSource,
} from '../src/app/generators.ts';
import { bceTrainer, cseTrainer, spatialTrainer, SpatialMaps } from '../src/app/heads.ts';
import { FeaturesEngine, type FeaturesApi, type FeaturesEngineDeps } from './features.engine.ts';

export interface ExperimentRequest {
  datasetId: string;
  /** Same id = same experiment: its stored cells are skipped (resume). */
  experimentId: string;
  spec: GridSpec;
  tfBackend?: TfBackendPreference;
}

export interface ExperimentSummary {
  experimentId: string;
  /** Cells without per-image scores (kept in the store). */
  cells: Omit<CellResult, 'scores'>[];
  table: TableRow[];
  warnings: string[];
  resumed: number;
  tfBackend: string;
}

/** A diffusion model the grid can use, or why there is none. */
export interface DiffusionAvailability {
  models: { id: string; name: string }[];
  /** Why diffusion and In&Out cannot run here (empty when `models` is not). */
  reason: string;
}

export interface ExperimentsApi extends FeaturesApi {
  runExperiment(req: ExperimentRequest, jobId?: string, progress?: ProgressFn): Promise<ExperimentSummary>;
  /** Diffusion models usable by the grid (the Models tab's cache in the browser). */
  diffusionModels(): Promise<DiffusionAvailability>;
  /** Cells stored for an experiment (to show what a resume will skip). */
  storedCells(datasetId: string, experimentId: string): Promise<Omit<CellResult, 'scores'>[]>;
}

export class NoTrainingDataError extends DefectLabError {
  constructor(problem: string) {
    super(
      'NoTrainingDataError',
      problem,
      'label some train-split images normal (and test images both ways) in the data tab',
    );
  }
}

const slim = ({ scores: _s, ...rest }: CellResult): Omit<CellResult, 'scores'> => rest;

export interface ExperimentsEngineDeps extends FeaturesEngineDeps {
  /** Diffusion models and engine for the diffusion generator; without it diffusion cells are refused. */
  diffusion?: DiffusionModelSource;
}

const NO_DIFFUSION_FIX = 'download a diffusion model in the Models tab';

/**
 * The store's feature cache under the runner's keys (`<extractor id>|img:<sha256>` or `|syn:<…>`): dataset images
 * share entries with the train tab (same backbone, sha256 and preprocessing); synthetic images are keyed by
 * their generator, settings, canvas and seed.
 */
export function cacheKeyOf(runnerKey: string, extractorId: string): string {
  const k = runnerKey.startsWith(`${extractorId}|`) ? runnerKey.slice(extractorId.length + 1) : runnerKey;
  return k.startsWith('img:') ? k.slice(4) : k;
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

export class ExperimentsEngine extends FeaturesEngine implements ExperimentsApi {
  constructor(protected override readonly deps: ExperimentsEngineDeps) {
    super(deps);
  }

  async diffusionModels(): Promise<DiffusionAvailability> {
    if (!this.deps.diffusion) return { models: [], reason: 'no diffusion engine here' };
    try {
      const models = await this.deps.diffusion.list();
      return {
        models,
        reason: models.length ? '' : `no diffusion model is cached — ${this.deps.diffusion.fix}`,
      };
    } catch (e) {
      return { models: [], reason: `cannot list diffusion models (${(e as Error).message})` };
    }
  }

  private async datasetOf(datasetId: string): Promise<ExperimentData> {
    const store = await this.store();
    const decode = this.deps.decode;
    if (!decode)
      throw new DefectLabError('NoDecoderError', 'this engine cannot decode images', 'pass deps.decode');
    const records = await store.listImages(datasetId);
    const load = (r: ImageRecord) => async (): Promise<RasterImage> =>
      (await decode(new Uint8Array(await r.blob.arrayBuffer()), r.name)).raster;
    const toItem = (r: ImageRecord): ExperimentImage => ({
      id: r.sha256 || r.id,
      label: r.label === 'defect' ? 1 : 0,
      defectClass: r.defectClass,
      load: load(r),
      loadMask: async () => {
        if (!r.maskId) return null;
        const m = await store.getMask(r.maskId);
        return m
          ? toGray((await decode(new Uint8Array(await m.blob.arrayBuffer()), `${r.name} mask`)).raster)
          : null;
      },
    });
    const real = records.filter((r) => !r.provenance && r.label !== 'unlabeled');
    const trainNormals = real.filter((r) => r.split === 'train' && r.label === 'normal').map(toItem);
    const test = real.filter((r) => r.split === 'test').map(toItem);
    const val = real.filter((r) => r.split === 'val').map(toItem);
    if (trainNormals.length < 2)
      throw new NoTrainingDataError(
        `dataset has ${trainNormals.length} train-split normal images (need ≥ 2)`,
      );
    if (!test.some((t) => t.label === 1) || !test.some((t) => t.label === 0))
      throw new NoTrainingDataError('the test split needs both normal and defect images');
    const ds = await store.getDataset(datasetId);
    const trainDefects = real.filter((r) => r.split === 'train' && r.label === 'defect');
    const decodeMask = async (blob: Blob, name: string) =>
      toGray((await decode(new Uint8Array(await blob.arrayBuffer()), name)).raster);
    return {
      name: ds?.name ?? datasetId,
      trainNormals,
      realDefects: trainDefects.map(toItem),
      validation: val.some((v) => v.label === 1) && val.some((v) => v.label === 0) ? val : undefined,
      test,
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
  }

  async runExperiment(
    req: ExperimentRequest,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<ExperimentSummary> {
    const backbone = this.requireBackbone();
    const spec = await prepareDiffusionGrid(req.spec, this.deps.diffusion, NO_DIFFUSION_FIX);
    const tfBackend = await initTf(req.tfBackend ?? 'auto');
    const data = await this.datasetOf(req.datasetId);
    const db = await this.store();
    const store = new RunRecordCellStore(db, req.datasetId, req.experimentId);
    const generators = coreGenerators(
      {},
      spec.generators.some((g) => usesDiffusion(g, spec.inOut)) ? { diffusion: this.deps.diffusion } : {},
    );
    const extractorId = `${backbone.id}|${backbone.preprocessingId}`;
    const cached = new CachedFeatures(backbone, db);
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
    const job = this.jobs.start(jobId);
    try {
      const r = await runExperiment(
        spec,
        data,
        {
          extractor: {
            id: extractorId,
            extract: async (images, signal) =>
              (await backbone.extract(images, { pooledOnly: true, signal })).pooled,
          },
          featureCache: storeFeatureCache(db, backbone, extractorId),
          generators,
          trainers: {
            bce: bceTrainer(),
            spatial: spatialTrainer(maps),
            cse: cseTrainer(maps, { generators: cseGenerators() }),
          },
        },
        { store, signal: job.signal, onProgress: progress },
      );
      return {
        experimentId: req.experimentId,
        cells: r.cells.map(slim),
        table: r.table,
        warnings: r.warnings,
        resumed: r.resumed,
        tfBackend,
      };
    } finally {
      job.done();
    }
  }

  async storedCells(datasetId: string, experimentId: string): Promise<Omit<CellResult, 'scores'>[]> {
    const store = new RunRecordCellStore(await this.store(), datasetId, experimentId);
    return (await store.list()).map(slim);
  }
}

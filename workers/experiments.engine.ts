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
  type CellStore,
  runExperiment,
  usesDiffusion,
  type CellResult,
  type ExperimentData,
  type GridSpec,
  type TableRow,
} from '../src/core/experiments/index.ts';
import { DefectLabError } from '../src/core/errors.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import { initTfChoice, tfPlace, whileTfGpuAlive, type TfBackendPreference } from '../src/runtime/tf.ts';
import { coreGenerators, prepareDiffusionGrid, type DiffusionModelSource } from '../src/app/generators.ts';
import { storeExperimentData, storeExperimentEnv } from '../src/app/store-experiment.ts';
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
  /** Why the heads ran there when it differs from what was asked ('' otherwise). */
  tfBackendReason: string;
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
    const decode = this.deps.decode;
    if (!decode)
      throw new DefectLabError('NoDecoderError', 'this engine cannot decode images', 'pass deps.decode');
    const { data } = await storeExperimentData(await this.store(), datasetId, decode);
    if (data.trainNormals.length < 2)
      throw new NoTrainingDataError(
        `dataset has ${data.trainNormals.length} train-split normal images (need ≥ 2)`,
      );
    if (!data.test.some((t) => t.label === 1) || !data.test.some((t) => t.label === 0))
      throw new NoTrainingDataError('the test split needs both normal and defect images');
    return data;
  }

  async runExperiment(
    req: ExperimentRequest,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<ExperimentSummary> {
    const backbone = this.requireBackbone();
    const spec = await prepareDiffusionGrid(req.spec, this.deps.diffusion, NO_DIFFUSION_FIX);
    const place = tfPlace(await initTfChoice(req.tfBackend ?? 'auto'));
    const data = await this.datasetOf(req.datasetId);
    const db = await this.store();
    // Once a WebGPU device loss has failed the grid, its orphaned run (it may go on, or never settle) stores no
    // more cells: a cell finished on a dying device is not one a resume may skip.
    let gpuLost = false;
    const cells = new RunRecordCellStore(db, req.datasetId, req.experimentId);
    const store: CellStore = {
      get: (id) => cells.get(id),
      list: () => cells.list(),
      put: async (r) => {
        if (!gpuLost) await cells.put(r);
      },
    };
    const generators = coreGenerators(
      {},
      spec.generators.some((g) => usesDiffusion(g, spec.inOut)) ? { diffusion: this.deps.diffusion } : {},
    );
    const { env } = storeExperimentEnv(backbone, db, { generators });
    const id = jobId ?? `experiment-${crypto.randomUUID()}`;
    const job = this.jobs.start(id);
    try {
      // On WebGPU, a lost device fails the grid with GpuDeviceLostError (the cells done before it stay stored;
      // 'auto' runs the next grid on WASM and says why); the orphaned run is cancelled at its next step.
      const r = await whileTfGpuAlive(
        runExperiment(spec, data, env, { store, signal: job.signal, onProgress: progress }),
      ).catch((e: unknown) => {
        if ((e as Error).name === 'GpuDeviceLostError') {
          gpuLost = true;
          this.jobs.cancel(id);
        }
        throw e;
      });
      return {
        experimentId: req.experimentId,
        cells: r.cells.map(slim),
        table: r.table,
        warnings: r.warnings,
        resumed: r.resumed,
        tfBackend: place.tfBackend,
        tfBackendReason: place.tfBackendReason,
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

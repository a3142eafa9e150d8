/**
 * The experiments engine: runs a grid (`src/core/experiments`) over a stored dataset with the loaded backbone
 * (it is a `FeaturesEngine`, so `loadBackbone` works here too), tfjs heads and the core generators. Finished cells
 * are `RunRecord`s in the store, keyed by experiment id, so running the same experiment again after a reload
 * skips them (resume). Usable in-thread (tests) or in `experiments.worker.ts`.
 */
import {
  RunRecordCellStore,
  runExperiment,
  type CellResult,
  type ExperimentData,
  type ExperimentImage,
  type GridSpec,
  type TableRow,
} from '../src/core/experiments/index.ts';
import { DefectLabError } from '../src/core/errors.ts';
import { toGray, type RasterImage } from '../src/core/image.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { ImageRecord } from '../src/core/dataset.ts';
import { initTf, type TfBackendPreference } from '../src/runtime/tf.ts';
import { coreGenerators } from '../server/generators.ts';
import { bceTrainer, cseTrainer } from '../server/heads.ts';
import { FeaturesEngine, type FeaturesApi } from './features.engine.ts';

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

export interface ExperimentsApi extends FeaturesApi {
  runExperiment(req: ExperimentRequest, jobId?: string, progress?: ProgressFn): Promise<ExperimentSummary>;
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

export class ExperimentsEngine extends FeaturesEngine implements ExperimentsApi {
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
    return {
      name: ds?.name ?? datasetId,
      trainNormals,
      realDefects: real.filter((r) => r.split === 'train' && r.label === 'defect').map(toItem),
      validation: val.some((v) => v.label === 1) && val.some((v) => v.label === 0) ? val : undefined,
      test,
    };
  }

  async runExperiment(
    req: ExperimentRequest,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<ExperimentSummary> {
    const backbone = this.requireBackbone();
    const tfBackend = await initTf(req.tfBackend ?? 'auto');
    const data = await this.datasetOf(req.datasetId);
    const store = new RunRecordCellStore(await this.store(), req.datasetId, req.experimentId);
    const generators = coreGenerators();
    const job = this.jobs.start(jobId);
    try {
      const r = await runExperiment(
        req.spec,
        data,
        {
          extractor: {
            id: `${backbone.id}|${backbone.preprocessingId}`,
            extract: async (images, signal) =>
              (await backbone.extract(images, { pooledOnly: true, signal })).pooled,
          },
          generators,
          trainers: {
            bce: bceTrainer(),
            cse: cseTrainer(
              { spatial: async (images, signal) => (await backbone.extract(images, { signal })).spatial },
              { generators: [generators.memseg, generators.blur] },
            ),
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

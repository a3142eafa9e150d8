/**
 * Main-thread client of the experiments worker: the same `ExperimentsApi` as `ExperimentsEngine`, through
 * comlink. Progress arrives per cell (`stage: 'cells'`) and per epoch (`stage: 'train'`); `cancel(jobId)` stops
 * between steps and the finished cells stay in the store for a resume.
 */
import type { ProgressFn } from '../src/core/progress.ts';

import type { CellResult } from '../src/core/experiments/index.ts';
import { FeaturesClientBase } from './features.client.ts';
import { proxied } from './host.ts';
import type {
  DiffusionAvailability,
  ExperimentRequest,
  ExperimentSummary,
  ExperimentsApi,
} from './experiments.engine.ts';

export class ExperimentsClient extends FeaturesClientBase<ExperimentsApi> implements ExperimentsApi {
  constructor() {
    super(
      'experiments',
      () =>
        new Worker(new URL('./experiments.worker.ts', import.meta.url), {
          type: 'module',
          name: 'experiments',
        }),
    );
  }
  runExperiment(req: ExperimentRequest, jobId?: string, progress?: ProgressFn): Promise<ExperimentSummary> {
    return this.withBackbone((api) => api.runExperiment(req, jobId, proxied(progress)));
  }
  diffusionModels(): Promise<DiffusionAvailability> {
    return this.conn.guard(this.api.diffusionModels());
  }
  storedCells(datasetId: string, experimentId: string): Promise<Omit<CellResult, 'scores'>[]> {
    return this.conn.guard(this.api.storedCells(datasetId, experimentId));
  }
}

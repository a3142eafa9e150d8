/**
 * Main-thread client of the experiments worker: the same `ExperimentsApi` as `ExperimentsEngine`, through
 * comlink. Progress arrives per cell (`stage: 'cells'`) and per epoch (`stage: 'train'`); `cancel(jobId)` stops
 * between steps and the finished cells stay in the store for a resume.
 */
import type { RasterImage } from '../src/core/image.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { BackboneManifestEntry, Features } from '../src/runtime/backbone.ts';
import type { ImageFilter } from '../src/runtime/db/types.ts';
import type { CellResult } from '../src/core/experiments/index.ts';
import type { BackboneInfo, DatasetFeatures, LoadBackboneRequest } from './features.engine.ts';
import { GuardedConnection, proxied } from './features.client.ts';
import type { ExperimentRequest, ExperimentSummary, ExperimentsApi } from './experiments.engine.ts';

export class ExperimentsClient implements ExperimentsApi {
  private readonly g = new GuardedConnection<ExperimentsApi>(
    'experiments',
    () =>
      new Worker(new URL('./experiments.worker.ts', import.meta.url), {
        type: 'module',
        name: 'experiments',
      }),
  );
  private get api() {
    return this.g.conn.api;
  }
  backbones(): Promise<BackboneManifestEntry[]> {
    return this.g.guard(this.api.backbones());
  }
  loadBackbone(req: LoadBackboneRequest, progress?: ProgressFn): Promise<BackboneInfo> {
    return this.g.guard(this.api.loadBackbone(req, proxied(progress)));
  }
  backboneInfo(): Promise<BackboneInfo | null> {
    return this.g.guard(this.api.backboneInfo());
  }
  setPreprocess(p: PreprocessOptions): Promise<BackboneInfo> {
    return this.g.guard(this.api.setPreprocess(p));
  }
  extractImages(
    images: RasterImage[],
    pooledOnly?: boolean,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<Features> {
    return this.g.guard(this.api.extractImages(images, pooledOnly, jobId, proxied(progress)));
  }
  extractDataset(
    datasetId: string,
    filter?: ImageFilter,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<DatasetFeatures> {
    return this.g.guard(this.api.extractDataset(datasetId, filter, jobId, proxied(progress)));
  }
  releaseBackbone(): Promise<void> {
    return this.g.guard(this.api.releaseBackbone());
  }
  runExperiment(req: ExperimentRequest, jobId?: string, progress?: ProgressFn): Promise<ExperimentSummary> {
    return this.g.guard(this.api.runExperiment(req, jobId, proxied(progress)));
  }
  storedCells(datasetId: string, experimentId: string): Promise<Omit<CellResult, 'scores'>[]> {
    return this.g.guard(this.api.storedCells(datasetId, experimentId));
  }
  async cancel(jobId: string): Promise<void> {
    await this.api.cancel(jobId);
  }
  terminate(): void {
    this.g.conn.terminate();
  }
}

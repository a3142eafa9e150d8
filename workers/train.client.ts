/**
 * Main-thread client of the train worker: the same `TrainApi` as `TrainEngine`, through comlink. Epoch reports
 * arrive as progress (`stage: 'train'`, `detail`: the EpochReport) for live curves; `cancel(jobId)` stops
 * training after the current step and the head trained so far is still evaluated and saved.
 */
import type { RasterImage } from '../src/core/image.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { BackboneManifestEntry, Features } from '../src/runtime/backbone.ts';
import type { HeadRecord, ImageFilter } from '../src/runtime/db/types.ts';
import type { BackboneInfo, DatasetFeatures, LoadBackboneRequest } from './features.engine.ts';
import { GuardedConnection, proxied } from './features.client.ts';
import type { TrainApi, TrainRequest, TrainResponse } from './train.engine.ts';

export class TrainClient implements TrainApi {
  private readonly g = new GuardedConnection<TrainApi>(
    'train',
    () => new Worker(new URL('./train.worker.ts', import.meta.url), { type: 'module', name: 'train' }),
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
  train(req: TrainRequest, jobId?: string, progress?: ProgressFn): Promise<TrainResponse> {
    return this.g.guard(this.api.train(req, jobId, proxied(progress)));
  }
  listHeads(datasetId?: string): Promise<Omit<HeadRecord, 'artifacts'>[]> {
    return this.g.guard(this.api.listHeads(datasetId));
  }
  exportHead(headId: string): Promise<{ name: string; data: Uint8Array }[]> {
    return this.g.guard(this.api.exportHead(headId));
  }
  deleteHead(headId: string): Promise<void> {
    return this.g.guard(this.api.deleteHead(headId));
  }
  async cancel(jobId: string): Promise<void> {
    await this.api.cancel(jobId);
  }
  terminate(): void {
    this.g.conn.terminate();
  }
}

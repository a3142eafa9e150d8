/**
 * Main-thread client of the features worker: the same `FeaturesApi` as `FeaturesEngine`, through comlink.
 * Progress callbacks are proxied (top-level arguments); a crashed worker rejects pending calls with
 * `WorkerCrashedError` and is restarted by the next call (the backbone must then be loaded again).
 * The train and experiments clients extend it, since their engines extend the features engine.
 */
import type { RasterImage } from '../src/core/image.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { BackboneManifestEntry, Features } from '../src/runtime/backbone.ts';
import type { ImageFilter } from '../src/runtime/db/types.ts';
import type { BackboneInfo, DatasetFeatures, FeaturesApi, LoadBackboneRequest } from './features.engine.ts';
import { proxied, WorkerConnection } from './host.ts';

export class FeaturesClientBase<T extends FeaturesApi> implements FeaturesApi {
  protected readonly conn: WorkerConnection<T>;

  constructor(name: string, create: () => Worker) {
    this.conn = new WorkerConnection<T>(
      create,
      name,
      'load the backbone again (often out of memory); use a smaller batch, a smaller model or the WASM backend',
    );
  }
  protected get api() {
    return this.conn.api;
  }
  backbones(): Promise<BackboneManifestEntry[]> {
    return this.conn.guard(this.api.backbones());
  }
  loadBackbone(req: LoadBackboneRequest, progress?: ProgressFn): Promise<BackboneInfo> {
    return this.conn.guard(this.api.loadBackbone(req, proxied(progress)));
  }
  backboneInfo(): Promise<BackboneInfo | null> {
    return this.conn.guard(this.api.backboneInfo());
  }
  setPreprocess(p: PreprocessOptions): Promise<BackboneInfo> {
    return this.conn.guard(this.api.setPreprocess(p));
  }
  extractImages(
    images: RasterImage[],
    pooledOnly?: boolean,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<Features> {
    return this.conn.guard(this.api.extractImages(images, pooledOnly, jobId, proxied(progress)));
  }
  extractDataset(
    datasetId: string,
    filter?: ImageFilter,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<DatasetFeatures> {
    return this.conn.guard(this.api.extractDataset(datasetId, filter, jobId, proxied(progress)));
  }
  releaseBackbone(): Promise<void> {
    return this.conn.guard(this.api.releaseBackbone());
  }
  async cancel(jobId: string): Promise<void> {
    await this.api.cancel(jobId);
  }
  terminate(): void {
    this.conn.terminate();
  }
}

export class FeaturesClient extends FeaturesClientBase<FeaturesApi> {
  constructor() {
    super(
      'features',
      () =>
        new Worker(new URL('./features.worker.ts', import.meta.url), { type: 'module', name: 'features' }),
    );
  }
}

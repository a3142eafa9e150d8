/**
 * Main-thread client of the features worker: the same `FeaturesApi` as `FeaturesEngine`, through comlink.
 * Progress callbacks are proxied (top-level arguments); a crashed worker rejects pending calls with
 * `FeaturesWorkerCrashedError` and is restarted by the next call (the backbone must then be loaded again).
 */
import * as Comlink from 'comlink';
import { DefectLabError } from '../src/core/errors.ts';
import type { RasterImage } from '../src/core/image.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { BackboneManifestEntry, Features } from '../src/runtime/backbone.ts';
import type { ImageFilter } from '../src/runtime/db/types.ts';
import type { BackboneInfo, DatasetFeatures, FeaturesApi, LoadBackboneRequest } from './features.engine.ts';
import { WorkerConnection } from './host.ts';

export class WorkerCrashedError extends DefectLabError {
  constructor(worker: string, reason: string) {
    super(
      'WorkerCrashedError',
      `the ${worker} worker stopped (${reason}); often out of memory`,
      'load the backbone again; use a smaller batch, a smaller model or the WASM backend',
    );
  }
}

/** Shared crash handling of the features and train clients. */
export class GuardedConnection<T extends object> {
  readonly conn: WorkerConnection<T>;
  private crash: ((e: Error) => void)[] = [];
  constructor(name: string, create: () => Worker) {
    this.conn = new WorkerConnection<T>(create);
    this.conn.onDeath((reason) => {
      const fns = this.crash;
      this.crash = [];
      for (const fn of fns) fn(new WorkerCrashedError(name, reason));
    });
  }
  guard<R>(p: Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const onCrash = (e: Error) => reject(e);
      this.crash.push(onCrash);
      p.then(resolve, reject).finally(() => (this.crash = this.crash.filter((f) => f !== onCrash)));
    });
  }
}

export const proxied = (fn?: ProgressFn) => (fn ? Comlink.proxy(fn) : undefined);

export class FeaturesClient implements FeaturesApi {
  private readonly g = new GuardedConnection<FeaturesApi>(
    'features',
    () => new Worker(new URL('./features.worker.ts', import.meta.url), { type: 'module', name: 'features' }),
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
  async cancel(jobId: string): Promise<void> {
    await this.api.cancel(jobId);
  }
  terminate(): void {
    this.g.conn.terminate();
  }
}

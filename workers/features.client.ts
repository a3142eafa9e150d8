/**
 * Main-thread client of the features worker: the same `FeaturesApi` as `FeaturesEngine`, through comlink.
 * Progress callbacks are proxied (top-level arguments); a crashed worker rejects pending calls with
 * `WorkerCrashedError` and is restarted by the next call, which first loads the last backbone (and its
 * preprocessing) again in the fresh worker, so a crash costs the job that was running, not the setup.
 * The train and experiments clients extend it, since their engines extend the features engine.
 */
import type { Remote } from 'comlink';
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
      'run it again (the backbone is loaded again by itself); if it keeps happening (often out of memory), use a smaller batch, a smaller model or the WASM backend',
    );
  }
  protected get api() {
    return this.conn.api;
  }

  /** The last backbone loaded (and preprocessing set), to load again into a restarted worker. */
  #restore: { req: LoadBackboneRequest; preprocess?: PreprocessOptions } | null = null;
  /** The connection generation (worker) that holds `#restore` now. */
  #loadedIn = -1;
  #restoring: Promise<void> | null = null;

  /** Loads the last backbone again when the worker that had it is gone (crashed, terminated). */
  protected async ready(): Promise<void> {
    void this.api;
    if (!this.#restore || this.conn.generation === this.#loadedIn) return;
    this.#restoring ??= (async () => {
      const { req, preprocess } = this.#restore!;
      const api = this.api;
      const gen = this.conn.generation;
      await this.conn.guard(api.loadBackbone(req));
      if (preprocess) await this.conn.guard(api.setPreprocess(preprocess));
      this.#loadedIn = gen;
    })().finally(() => (this.#restoring = null));
    await this.#restoring;
  }

  /** A call that needs the backbone: restores it first if the worker was restarted. */
  protected async withBackbone<R>(call: (api: Remote<T>) => Promise<R>): Promise<R> {
    await this.ready();
    return this.conn.guard(call(this.api));
  }
  backbones(): Promise<BackboneManifestEntry[]> {
    return this.conn.guard(this.api.backbones());
  }
  async loadBackbone(req: LoadBackboneRequest, progress?: ProgressFn): Promise<BackboneInfo> {
    const api = this.api;
    const gen = this.conn.generation;
    const info = await this.conn.guard(api.loadBackbone(req, proxied(progress)));
    this.#restore = { req };
    this.#loadedIn = gen;
    return info;
  }
  backboneInfo(): Promise<BackboneInfo | null> {
    return this.withBackbone((api) => api.backboneInfo());
  }
  async setPreprocess(p: PreprocessOptions): Promise<BackboneInfo> {
    const info = await this.withBackbone((api) => api.setPreprocess(p));
    if (this.#restore) this.#restore.preprocess = p;
    return info;
  }
  extractImages(
    images: RasterImage[],
    pooledOnly?: boolean,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<Features> {
    return this.withBackbone((api) => api.extractImages(images, pooledOnly, jobId, proxied(progress)));
  }
  extractDataset(
    datasetId: string,
    filter?: ImageFilter,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<DatasetFeatures> {
    return this.withBackbone((api) => api.extractDataset(datasetId, filter, jobId, proxied(progress)));
  }
  releaseBackbone(): Promise<void> {
    this.#restore = null;
    return this.conn.guard(this.api.releaseBackbone());
  }
  async cancel(jobId: string): Promise<void> {
    await this.api.cancel(jobId);
  }
  ortSessions(): Promise<number | null> {
    return this.conn.guard(this.api.ortSessions());
  }
  /** Ends the worker for good (a view left): later calls reject with `WorkerClosedError`, none starts a worker. */
  close(): void {
    this.conn.close();
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

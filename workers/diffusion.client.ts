/**
 * Main-thread client of the diffusion worker: the same `DiffusionEngineApi` as the engine, through comlink.
 * Progress callbacks are proxied; a crashed worker (e.g. the GPU process died) rejects with a named error and is
 * restarted by the next call, which then needs `load` again.
 */
import { DefectLabError } from '../src/core/errors.ts';
import type { GenerateRequest } from '../src/core/diffusion/index.ts';
import * as Comlink from 'comlink';
import { WorkerConnection, type JobOptions } from './host.ts';
import type { DiffusionWire } from './diffusion.worker.ts';
import type { DiffusionEngineApi, EngineResult, LoadRequest, LoadedInfo } from './diffusion.engine.ts';

export class WorkerCrashedError extends DefectLabError {
  constructor(reason: string) {
    super(
      'WorkerCrashedError',
      `the diffusion worker stopped (${reason})`,
      'load the model again; if it keeps happening pick a smaller tier or the WASM backend',
    );
  }
}

export class DiffusionClient implements DiffusionEngineApi {
  private readonly conn = new WorkerConnection<DiffusionWire>(
    () =>
      new Worker(new URL('./diffusion.worker.ts', import.meta.url), { type: 'module', name: 'diffusion' }),
  );
  private crash: ((e: Error) => void)[] = [];

  constructor() {
    this.conn.onDeath((reason) => {
      const fns = this.crash;
      this.crash = [];
      for (const fn of fns) fn(new WorkerCrashedError(reason));
    });
  }

  /** Races a call against the worker dying, so a crash rejects instead of hanging. */
  private guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onCrash = (e: Error) => reject(e);
      this.crash.push(onCrash);
      p.then(resolve, reject).finally(() => (this.crash = this.crash.filter((f) => f !== onCrash)));
    });
  }

  load(req: LoadRequest, opts?: JobOptions): Promise<LoadedInfo> {
    return this.guard(this.conn.api.load(req, opts?.jobId, progressOf(opts)));
  }

  generate(req: GenerateRequest, opts?: JobOptions): Promise<EngineResult> {
    return this.guard(this.conn.api.generate(req, opts?.jobId, progressOf(opts))) as Promise<EngineResult>;
  }

  async unload(): Promise<void> {
    await this.conn.api.unload();
  }

  async loaded(): Promise<LoadedInfo | null> {
    return this.conn.api.loaded();
  }

  cancel(jobId: string): void {
    void this.conn.api.cancel(jobId);
  }

  terminate(): void {
    this.conn.terminate();
  }
}

/** Comlink proxies only top-level arguments: the callback travels on its own. */
function progressOf(opts: JobOptions | undefined) {
  return opts?.onProgress ? Comlink.proxy(opts.onProgress) : undefined;
}

let shared: DiffusionClient | null = null;
/** The app's one diffusion worker (models are large: one copy per tab). */
export function diffusionClient(): DiffusionClient {
  shared ??= new DiffusionClient();
  return shared;
}

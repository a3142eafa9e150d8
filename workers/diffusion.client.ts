/**
 * Main-thread client of the diffusion worker: the same `DiffusionEngineApi` as the engine, through comlink.
 * Progress callbacks are proxied; a crashed worker (e.g. the GPU process died) rejects with a named error and is
 * restarted by the next call, which then needs `load` again.
 */
import type { GenerateRequest } from '../src/core/diffusion/index.ts';
import { proxied, WorkerConnection, type JobOptions } from './host.ts';
import type { DiffusionWire } from './diffusion.worker.ts';
import type { DiffusionEngineApi, EngineResult, LoadRequest, LoadedInfo } from './diffusion.engine.ts';

export class DiffusionClient implements DiffusionEngineApi {
  private readonly conn = new WorkerConnection<DiffusionWire>(
    () =>
      new Worker(new URL('./diffusion.worker.ts', import.meta.url), { type: 'module', name: 'diffusion' }),
    'diffusion',
    'load the model again; if it keeps happening pick a smaller tier or the WASM backend',
  );

  load(req: LoadRequest, opts?: JobOptions): Promise<LoadedInfo> {
    return this.conn.guard(this.conn.api.load(req, opts?.jobId, proxied(opts?.onProgress)));
  }

  generate(req: GenerateRequest, opts?: JobOptions): Promise<EngineResult> {
    return this.conn.guard(
      this.conn.api.generate(req, opts?.jobId, proxied(opts?.onProgress)),
    ) as Promise<EngineResult>;
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

let shared: DiffusionClient | null = null;
/** The app's one diffusion worker (models are large: one copy per tab). */
export function diffusionClient(): DiffusionClient {
  shared ??= new DiffusionClient();
  return shared;
}

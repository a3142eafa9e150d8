/**
 * Main-thread client of the diffusion worker: the same `DiffusionEngineApi` as the engine, through comlink.
 * Progress callbacks are proxied; a crashed worker (e.g. the GPU process died) rejects with a named error and is
 * restarted by the next call. The last model loaded is loaded again into the restarted worker before a
 * `generate` (like the features client's backbone), so a crash costs the sample that was running, not the
 * setup: the Models tab still says the model is loaded, and it is.
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
    'generate again (the model is loaded again by itself); if it keeps happening pick a smaller tier or the WASM backend',
  );
  /** The last successful load, to load again into a restarted worker. */
  #restore: LoadRequest | null = null;
  /** The connection generation (worker) that holds `#restore`. */
  #loadedIn = -1;
  #restoring: Promise<void> | null = null;

  async load(req: LoadRequest, opts?: JobOptions): Promise<LoadedInfo> {
    const api = this.conn.api;
    const gen = this.conn.generation;
    const info = await this.conn.guard(api.load(req, opts?.jobId, proxied(opts?.onProgress)));
    this.#restore = req;
    this.#loadedIn = gen;
    return info;
  }

  /** Loads the last model again when the worker that had it is gone (crashed, terminated). */
  private async ready(): Promise<void> {
    void this.conn.api;
    if (!this.#restore || this.conn.generation === this.#loadedIn) return;
    this.#restoring ??= (async () => {
      const req = this.#restore!;
      const api = this.conn.api;
      const gen = this.conn.generation;
      await this.conn.guard(api.load(req));
      this.#loadedIn = gen;
    })().finally(() => (this.#restoring = null));
    await this.#restoring;
  }

  async generate(req: GenerateRequest, opts?: JobOptions): Promise<EngineResult> {
    await this.ready();
    try {
      return (await this.conn.guard(
        this.conn.api.generate(req, opts?.jobId, proxied(opts?.onProgress)),
      )) as EngineResult;
    } catch (e) {
      if ((e as Error | undefined)?.name === 'GpuDeviceLostError') this.afterDeviceLoss();
      throw e;
    }
  }

  /**
   * The worker's WebGPU device is lost (`GpuDeviceLostError`, `src/runtime/device-lost.ts`): its sessions are
   * dead and onnxruntime cannot make another device there. The worker is dropped (freeing what the lost device
   * held) and the next `generate` loads the model again in a fresh one, on WASM, as the error's fix says.
   */
  private afterDeviceLoss(): void {
    if (this.#restore) this.#restore = { ...this.#restore, backend: 'wasm' };
    this.conn.terminate();
  }

  async unload(): Promise<void> {
    this.#restore = null;
    await this.conn.api.unload();
  }

  async loaded(): Promise<LoadedInfo | null> {
    await this.ready();
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

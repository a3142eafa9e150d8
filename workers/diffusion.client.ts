/**
 * Main-thread client of the diffusion worker: the same `DiffusionEngineApi` as the engine, through comlink.
 * Progress callbacks are proxied; a crashed worker (e.g. the GPU process died) rejects with a named error and is
 * restarted by the next call. The last model loaded is loaded again into the restarted worker before a
 * `generate` (like the features client's backbone), so a crash costs the sample that was running, not the
 * setup: the Models tab still says the model is loaded, and it is. After a WebGPU device loss the model moves to
 * WASM in a fresh worker at once, and `onRelocate` tells the Models tab where it is now and why.
 */
import type { GenerateRequest } from '../src/core/diffusion/index.ts';
import { lossDetail } from '../src/runtime/device-lost.ts';
import { proxied, WorkerConnection, type JobOptions } from './host.ts';
import type { DiffusionWire } from './diffusion.worker.ts';
import type { DiffusionEngineApi, EngineResult, LoadRequest, LoadedInfo } from './diffusion.engine.ts';

/** The loaded model moving to WASM after a WebGPU device loss: first `reloading`, then `reloaded` or `failed`. */
export type Relocation =
  | { phase: 'reloading'; modelId: string; reason: string }
  | { phase: 'reloaded'; modelId: string; reason: string; info: LoadedInfo }
  | { phase: 'failed'; modelId: string; reason: string };

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
  #restoring: Promise<LoadedInfo> | null = null;
  readonly #relocations = new Set<(r: Relocation) => void>();

  /** Calls `fn` as the loaded model moves after a device loss; returns the unsubscribe function. */
  onRelocate(fn: (r: Relocation) => void): () => void {
    this.#relocations.add(fn);
    return () => this.#relocations.delete(fn);
  }

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
    await this.restore();
  }

  /** Loads `#restore` into the current worker (one load at a time); answers what the worker says it loaded. */
  private restore(): Promise<LoadedInfo> {
    this.#restoring ??= (async () => {
      const req = this.#restore!;
      const api = this.conn.api;
      const gen = this.conn.generation;
      const info = await this.conn.guard(api.load(req));
      this.#loadedIn = gen;
      return info;
    })().finally(() => (this.#restoring = null));
    return this.#restoring;
  }

  async generate(req: GenerateRequest, opts?: JobOptions): Promise<EngineResult> {
    await this.ready();
    try {
      return (await this.conn.guard(
        this.conn.api.generate(req, opts?.jobId, proxied(opts?.onProgress)),
      )) as EngineResult;
    } catch (e) {
      if ((e as Error | undefined)?.name === 'GpuDeviceLostError') this.afterDeviceLoss(e as Error);
      throw e;
    }
  }

  /**
   * The worker's WebGPU device is lost (`GpuDeviceLostError`, `src/runtime/device-lost.ts`): its sessions are
   * dead and onnxruntime cannot make another device there. The worker is dropped (freeing what the lost device
   * held) and the model is loaded again at once in a fresh one, on WASM, as the error's fix says (the next
   * `generate` waits for that load), so what the Models tab shows is where the model is, with the reason.
   */
  private afterDeviceLoss(e: Error): void {
    this.conn.terminate();
    if (!this.#restore) return;
    this.#restore = { ...this.#restore, backend: 'wasm' };
    const modelId = this.#restore.manifest.id;
    const lost = `the WebGPU device was lost (${lossDetail(e.message)})`;
    this.#relocate({ phase: 'reloading', modelId, reason: `${lost}; loading it again on WASM` });
    void this.restore().then(
      (info) => this.#relocate({ phase: 'reloaded', modelId, reason: `${lost}; loaded again on WASM`, info }),
      (err: unknown) => {
        // The next Generate loads it from the Models tab's choice instead of repeating a load that failed.
        this.#restore = null;
        const why = err instanceof Error ? err.message : String(err);
        this.#relocate({
          phase: 'failed',
          modelId,
          reason: `${lost}; loading it again on WASM failed: ${why}`,
        });
      },
    );
  }

  #relocate(r: Relocation): void {
    for (const fn of this.#relocations) fn(r);
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

  ortSessions(): Promise<number | null> {
    return this.conn.guard(this.conn.api.ortSessions());
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

import * as Comlink from 'comlink';
import type { CancelSignal, ProgressFn } from '../src/core/progress.ts';

/**
 * The worker boundary. Each worker exposes one typed API object (an "engine") with `Comlink.expose`; the main
 * thread holds a client implementing the same TypeScript interface, so tests call the engine directly and the
 * app calls it through the worker. Long calls take `JobOptions`: a job id (so `cancel(jobId)` can stop them
 * between steps) and a progress callback (proxied across the boundary by the client).
 */
export interface JobOptions {
  jobId?: string;
  onProgress?: ProgressFn;
}

/** Every engine supports cancelling a running job by id. */
export interface Cancellable {
  cancel(jobId: string): Promise<void> | void;
}

/** Tracks the AbortControllers of running jobs inside an engine. */
export class JobRegistry {
  private readonly running = new Map<string, AbortController>();

  start(jobId: string | undefined): { signal: AbortSignal & CancelSignal; done: () => void } {
    const id = jobId ?? `job-${Math.random().toString(36).slice(2)}`;
    const ctl = new AbortController();
    this.running.set(id, ctl);
    return { signal: ctl.signal, done: () => this.running.delete(id) };
  }

  cancel(jobId: string): void {
    this.running.get(jobId)?.abort();
  }

  cancelAll(): void {
    for (const c of this.running.values()) c.abort();
  }

  get size(): number {
    return this.running.size;
  }
}

/** Exposes an engine object from inside a worker. */
export function exposeEngine(engine: object): void {
  Comlink.expose(engine);
}

/**
 * Wraps a worker on the main thread. Callbacks in `JobOptions` are proxied so progress crosses the boundary;
 * a worker that dies (uncaught error, out of memory) rejects the pending calls with a named error and is
 * restarted on the next call.
 */
export class WorkerConnection<T extends object> {
  private worker: Worker | null = null;
  private remote: Comlink.Remote<T> | null = null;
  private deathListeners: ((reason: string) => void)[] = [];

  constructor(private readonly create: () => Worker) {}

  get api(): Comlink.Remote<T> {
    if (!this.remote) {
      const w = this.create();
      w.addEventListener('error', (ev) => this.handleDeath(ev.message || 'the worker crashed'));
      this.worker = w;
      this.remote = Comlink.wrap<T>(w);
    }
    return this.remote;
  }

  /**
   * Splits `JobOptions` for crossing the boundary: comlink only proxies functions passed as top-level
   * arguments (a callback nested in an object fails with DataCloneError), so engines take the progress
   * callback as a separate, last argument: `method(request, { jobId }, onProgress)`.
   */
  static split(opts: JobOptions | undefined): [{ jobId?: string }, ProgressFn | undefined] {
    return [{ jobId: opts?.jobId }, opts?.onProgress ? Comlink.proxy(opts.onProgress) : undefined];
  }

  onDeath(fn: (reason: string) => void): void {
    this.deathListeners.push(fn);
  }

  terminate(): void {
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
  }

  private handleDeath(reason: string): void {
    this.terminate();
    for (const fn of this.deathListeners) fn(reason);
  }
}

/** Transfers typed-array buffers instead of copying them (images, tensors). */
export function transfer<V>(value: V, buffers: ArrayBufferLike[]): V {
  return Comlink.transfer(value, buffers as Transferable[]);
}

import * as Comlink from 'comlink';
import { DefectLabError } from '../src/core/errors.ts';
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

/** What an engine that opens onnxruntime sessions says about them (System panel, the long-session test). */
export interface OrtDiagnostics {
  /**
   * onnxruntime sessions its context holds now: created through the door and not released (`liveSessions` of
   * `OrtBackend`), or null where the door does not count them.
   */
  ortSessions(): Promise<number | null>;
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

/**
 * The method every exposed engine gets for the liveness lock (see `WorkerConnection`); not part of any engine's
 * typed API, so it is added here and called by name.
 */
const HOLD_LIFE_LOCK = '__defectlabHoldLifeLock';

/**
 * Takes the Web Lock `name` and never releases it: the browser releases it when this worker's context ends
 * (crash, out of memory, `terminate()` from anywhere), which is how the main thread learns the worker is gone.
 * Resolves true once the lock is held, false where Web Locks do not exist (Node).
 */
function holdLifeLock(name: string): Promise<boolean> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    void locks.request(name, () => {
      resolve(true);
      return new Promise<never>(() => undefined);
    });
  });
}

/** Exposes an engine object from inside a worker. */
export function exposeEngine(engine: object): void {
  Object.defineProperty(engine, HOLD_LIFE_LOCK, { value: holdLifeLock, enumerable: false });
  Comlink.expose(engine);
}

/** A worker stopped (uncaught error, out of memory, GPU process lost) while calls were pending. */
export class WorkerCrashedError extends DefectLabError {
  constructor(worker: string, reason: string, fix: string) {
    super('WorkerCrashedError', `the ${worker} worker stopped (${reason})`, fix);
  }
}

/** A call reached a connection its owner closed for good (the view that held it is gone). */
export class WorkerClosedError extends DefectLabError {
  constructor(worker: string) {
    super(
      'WorkerClosedError',
      `the ${worker} worker was closed (the view that used it was left)`,
      'open that view again; its work starts afresh there',
    );
  }
}

/**
 * Stands in for the remote after `close()`: every method rejects with `WorkerClosedError`. The rejection is
 * marked handled, so a fire-and-forget `void api.cancel(id)` after close is no unhandled rejection, while an
 * awaiting caller still gets the error.
 */
function closedRemote<T extends object>(worker: string): Comlink.Remote<T> {
  const call = () => {
    const p = Promise.reject(new WorkerClosedError(worker));
    p.catch(() => undefined);
    return p;
  };
  return new Proxy({}, { get: (_t, key) => (key === 'then' ? undefined : call) }) as Comlink.Remote<T>;
}

/**
 * Wraps a worker on the main thread. A worker that dies rejects every pending `guard`ed call with a
 * `WorkerCrashedError` (instead of hanging forever) and is restarted by the next call.
 *
 * A worker killed without an `error` event (terminated from outside, killed for memory) is noticed through a
 * Web Lock: the worker holds a lock of its own for its whole life, and the connection queues for the same lock,
 * which the browser grants only once the worker's context is gone. Unlike a heartbeat this never mistakes a
 * worker busy in a long synchronous step (a SwiftShader convolution) for a dead one, and costs no timer.
 */
export class WorkerConnection<T extends object> {
  private worker: Worker | null = null;
  private remote: Comlink.Remote<T> | null = null;
  private pending: ((e: Error) => void)[] = [];
  private started = 0;
  private closed = false;

  /**
   * @param name shown in the crash message ("the import worker stopped …")
   * @param fix what the user can do after a crash (what was kept, how to retry)
   */
  constructor(
    private readonly create: () => Worker,
    private readonly name = 'background',
    private readonly fix = 'try again; if it keeps happening, use smaller inputs or the WASM backend',
  ) {}

  get api(): Comlink.Remote<T> {
    // Without this, a call that was awaiting (a restore, a store read) when the owner closed the connection would
    // start a fresh worker nobody terminates: a leak of one worker (and its backbone) per view left mid-call.
    if (this.closed) return closedRemote<T>(this.name);
    if (!this.remote) {
      const w = this.create();
      this.started++;
      w.addEventListener('error', (ev) => this.handleDeath(ev.message || 'it crashed'));
      this.worker = w;
      this.remote = Comlink.wrap<T>(w);
      this.watch(w, this.remote);
    }
    return this.remote;
  }

  /** How many workers this connection has started: a change means the worker's state (a backbone) is gone. */
  get generation(): number {
    return this.started;
  }

  /** Number of calls waiting on the worker now (diagnostics and tests). */
  get pendingCalls(): number {
    return this.pending.length;
  }

  /** Queues for the worker's life lock (see the class comment); the grant means the worker is gone. */
  private watch(w: Worker, remote: Comlink.Remote<T>): void {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    const hold = (remote as unknown as Record<string, (name: string) => Promise<boolean>>)[HOLD_LIFE_LOCK];
    if (!locks || typeof crypto?.randomUUID !== 'function') return;
    const name = `defectlab-worker-${this.name}-${crypto.randomUUID()}`;
    hold(name).then(
      (held) => {
        if (!held || this.worker !== w) return;
        void locks.request(name, () => {
          // Our own terminate() cleared `worker` first: nothing was pending on purpose, nothing to report.
          if (this.worker === w) this.handleDeath('it was terminated: closed from outside or out of memory');
        });
      },
      () => undefined,
    );
  }

  /** Races a call against the worker dying, so a crash rejects instead of hanging. */
  guard<R>(call: Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push(reject);
      call.then(resolve, reject).finally(() => (this.pending = this.pending.filter((f) => f !== reject)));
    });
  }

  /**
   * Splits `JobOptions` for crossing the boundary: comlink only proxies functions passed as top-level
   * arguments (a callback nested in an object fails with DataCloneError), so engines take the progress
   * callback as a separate, last argument: `method(request, { jobId, …plain options }, onProgress)`.
   */
  static split<O extends JobOptions>(opts: O | undefined): [Omit<O, 'onProgress'>, ProgressFn | undefined] {
    const { onProgress, ...plain } = opts ?? ({} as O);
    return [plain, proxied(onProgress)];
  }

  /**
   * Ends the worker for good: unlike `terminate()` (after which the next call starts a fresh worker), every later
   * call rejects with `WorkerClosedError` and no worker is started again. Calls still pending reject with it too
   * (their worker is gone), so nothing waits on them forever.
   */
  close(): void {
    this.closed = true;
    this.terminate();
    const rejects = this.pending;
    this.pending = [];
    const err = new WorkerClosedError(this.name);
    for (const reject of rejects) reject(err);
  }

  terminate(): void {
    this.worker?.terminate();
    this.worker = null;
    this.remote = null;
  }

  private handleDeath(reason: string): void {
    this.terminate();
    const rejects = this.pending;
    this.pending = [];
    const err = new WorkerCrashedError(this.name, reason, this.fix);
    for (const reject of rejects) reject(err);
  }
}

/**
 * A callback (progress, streamed results) ready to cross the boundary as a top-level argument. Its return value
 * is dropped: comlink posts it back to the worker, and a callback like `(p) => (progress = p)` on a Svelte
 * `$state` returns a Proxy, which cannot be cloned and surfaced as "TypeError: Unserializable return value".
 */
export function proxied<A extends unknown[]>(
  fn: ((...args: A) => unknown) | undefined,
): ((...args: A) => void) | undefined {
  return fn
    ? Comlink.proxy((...args: A) => {
        fn(...args);
      })
    : undefined;
}

/** Transfers typed-array buffers instead of copying them (images, tensors). */
export function transfer<V>(value: V, buffers: ArrayBufferLike[]): V {
  return Comlink.transfer(value, buffers as Transferable[]);
}

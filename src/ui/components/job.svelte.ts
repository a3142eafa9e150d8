/**
 * One long job of a view (a generation batch, a diffusion batch, a training run): running / cancelling /
 * progress / error state, worker job ids, stale-progress filtering and cancel, in one implementation that the
 * Paint tab, the diffusion panel and the Train tab share.
 *
 * Progress crosses a worker boundary, so a message can arrive after its job's result, or after the next sample
 * of a batch started: `ctx.progress(p, id)` keeps only messages of the job that is current now. A cancelled job
 * ends as `cancelled` (never as an error) whether the worker threw a `CancelledError` or the work stopped early.
 */
import { CancelledError, errorInfo, type ErrorInfo } from '../../core/errors.ts';

export type JobOutcome<T> =
  | { status: 'done'; value: T; cancelled: boolean }
  | { status: 'cancelled'; error: ErrorInfo }
  | { status: 'failed'; error: ErrorInfo }
  /** Another run of this job was still going: nothing was started. */
  | { status: 'busy' };

export interface JobContext<P> {
  /** The current worker job id (a batch takes a new one per `step()`). */
  readonly id: string;
  /** True once Cancel was pressed: batch loops stop before their next step. */
  readonly cancelled: boolean;
  /** Starts the next worker job of a batch and returns its id; earlier jobs' late progress is dropped. */
  step(): string;
  /** Progress of worker job `id` (default: the current one); dropped when that job is no longer current. */
  progress(p: P, id?: string): void;
}

/** Whether `e` is a cancellation, also after comlink turned the `CancelledError` into a plain error. */
export function isCancellation(e: unknown): boolean {
  return e instanceof CancelledError || errorInfo(e).code === 'CancelledError';
}

export interface JobOptions {
  /** Asks the worker to stop job `id` (its client's `cancel`). */
  cancel: (id: string) => unknown;
  /** Prefix of the job ids, for worker logs. */
  prefix?: string;
  /** Id factory (tests give a counter). */
  newId?: () => string;
}

export class Job<P> {
  running = $state(false);
  cancelling = $state(false);
  progress = $state.raw<P | null>(null);
  /** The last run's failure (not set by a cancel); cleared when the next run starts. */
  error = $state.raw<ErrorInfo | null>(null);
  #id: string | null = null;
  #cancelled = false;
  readonly #opts: JobOptions;

  constructor(opts: JobOptions) {
    this.#opts = opts;
  }

  /** The current worker job id while running. */
  get id(): string | null {
    return this.#id;
  }

  #newId(): string {
    return this.#opts.newId?.() ?? `${this.#opts.prefix ?? 'job'}-${crypto.randomUUID()}`;
  }

  /** Runs `work` unless a run is going; `initial` is the progress shown before the first message. */
  async run<T>(work: (ctx: JobContext<P>) => Promise<T>, initial: P | null = null): Promise<JobOutcome<T>> {
    if (this.running) return { status: 'busy' };
    this.running = true;
    this.cancelling = false;
    this.error = null;
    this.progress = initial;
    this.#cancelled = false;
    this.#id = this.#newId();
    // Arrow functions keep `this`; the getters read the live fields.
    const ctx: JobContext<P> = {
      id: '',
      cancelled: false,
      step: () => (this.#id = this.#newId()),
      progress: (p, id) => {
        if (this.running && this.#id !== null && (id ?? this.#id) === this.#id) this.progress = p;
      },
    };
    Object.defineProperties(ctx, {
      id: { get: () => this.#id ?? '' },
      cancelled: { get: () => this.#cancelled },
    });
    try {
      const value = await work(ctx);
      return { status: 'done', value, cancelled: this.#cancelled };
    } catch (e) {
      const error = errorInfo(e);
      if (isCancellation(e)) return { status: 'cancelled', error };
      this.error = error;
      return { status: 'failed', error };
    } finally {
      this.running = false;
      this.cancelling = false;
      this.progress = null;
      this.#id = null;
    }
  }

  /** Asks the current worker job to stop; the run ends as `cancelled` (or `done` with `cancelled: true`). */
  cancel(): void {
    if (!this.running) return;
    this.#cancelled = true;
    this.cancelling = true;
    if (this.#id) void Promise.resolve(this.#opts.cancel(this.#id)).catch(() => undefined);
  }
}

import { CancelledError } from './errors.ts';

/** One progress report. `done`/`total` count items (or bytes when `unit` says so). */
export interface Progress {
  stage: string;
  done: number;
  total: number;
  unit?: 'items' | 'bytes' | 'steps' | 'epochs';
  /** Bytes handled so far when the unit is not bytes (import shows both). */
  bytes?: number;
  /** Estimated seconds left, when the reporter can tell. */
  etaSeconds?: number;
  message?: string;
  /** Anything stage-specific a UI may draw (a preview image, a loss value). */
  detail?: unknown;
}

export type ProgressFn = (p: Progress) => void;

/**
 * The part of AbortSignal that core code needs, so core runs in Node, workers and tests alike.
 * A real AbortSignal satisfies it.
 */
export interface CancelSignal {
  readonly aborted: boolean;
}

export function throwIfCancelled(signal: CancelSignal | undefined, what?: string, done?: string): void {
  if (signal?.aborted) throw new CancelledError(what, done);
}

/** Yields to the event loop so a cancel message posted to a worker can be handled between steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Estimates time left from a start time and a fraction done. */
export function etaSeconds(startMs: number, nowMs: number, done: number, total: number): number | undefined {
  if (done <= 0 || total <= 0 || done >= total) return done >= total ? 0 : undefined;
  const elapsed = (nowMs - startMs) / 1000;
  return (elapsed / done) * (total - done);
}

/**
 * WASM threads for both runtimes (onnxruntime-web and tfjs-backend-wasm), decided in one place, and what each
 * worker actually runs with, so the System panel can show it.
 *
 * Policy (no oversubscription): a runtime in a cross-origin-isolated context uses `min(hardwareConcurrency, 8)`
 * threads (`planWasmThreads`), one otherwise, with the reason. Two workers computing at once do not each get a
 * full pool side by side: every heavy call (an onnxruntime `run`, a head-training epoch) holds the exclusive Web
 * Lock `defectlab.cores` (`withCores`), so they alternate per batch or epoch and the cores never carry more than
 * one pool's threads. onnxruntime's pool is told not to spin between runs (`intra_op.allow_spinning = 0`), so an
 * idle pool does not burn the cores the other worker now holds. Waiting for a lock costs a batch, never a
 * deadlock: no code holds it across an await of another worker.
 *
 * A worker announces its runtimes on the `defectlab.threads` BroadcastChannel; the page's System panel listens
 * (`watchThreads`) and asks the workers already running to announce again.
 */
import { env } from './env.ts';

export const MAX_WASM_THREADS = 8;

export interface ThreadPlan {
  threads: number;
  /** Why one thread (no cross-origin isolation, a fixed `env.wasm.numThreads`); '' when the full plan applies. */
  reason: string;
}

/** The parts of the global scope the plan reads. */
export interface ThreadEnv {
  crossOriginIsolated?: boolean;
  SharedArrayBuffer?: unknown;
  navigator?: { hardwareConcurrency?: number };
}

/**
 * Threads a WASM runtime should use here: `min(hardwareConcurrency, 8)` when cross-origin isolated (threads need
 * SharedArrayBuffer), else 1 with the reason. An explicit `env.wasm.numThreads` (a number) wins, said so.
 */
export function planWasmThreads(
  g: ThreadEnv = globalThis as ThreadEnv,
  fixed: number | 'auto' = env.wasm.numThreads,
): ThreadPlan {
  const cores = Math.max(1, Math.floor(g.navigator?.hardwareConcurrency ?? 1));
  const isolated = Boolean(g.crossOriginIsolated) && typeof g.SharedArrayBuffer === 'function';
  if (fixed !== 'auto') {
    const n = Math.max(1, Math.floor(fixed));
    if (n > 1 && !isolated)
      return { threads: 1, reason: `env.wasm.numThreads = ${n}, but the page is not cross-origin isolated` };
    return { threads: n, reason: `fixed by env.wasm.numThreads = ${n}` };
  }
  if (!isolated)
    return {
      threads: 1,
      reason: g.crossOriginIsolated
        ? 'SharedArrayBuffer is missing, so WASM runs single-threaded'
        : 'the page is not cross-origin isolated (no COOP/COEP headers), so WASM runs single-threaded',
    };
  return { threads: Math.min(cores, MAX_WASM_THREADS), reason: '' };
}

export type ThreadRuntime = 'onnxruntime' | 'tfjs';

/** What one worker runs one runtime with. */
export interface ThreadReport {
  /** The worker's name ('features', 'train', …; 'page' on the main thread, 'node' in Node). */
  worker: string;
  runtime: ThreadRuntime;
  threads: number;
  reason: string;
  /**
   * Sessions this runtime holds in that worker now (onnxruntime: created and not released, `ort-sessions.ts`);
   * absent where the runtime does not count them.
   */
  sessions?: number;
}

const CHANNEL = 'defectlab.threads';
type Message = { kind: 'report'; report: ThreadReport } | { kind: 'ask' };

/** This context's name: the worker's `name` option, else its script name, else 'page' / 'node'. */
export function contextName(g: { name?: unknown; location?: { href?: string } } = globalThis): string {
  if (typeof g.name === 'string' && g.name) return g.name;
  const m = /([\w-]+)\.worker[-.]/.exec(g.location?.href ?? '');
  if (m) return m[1];
  return typeof (globalThis as { document?: unknown }).document === 'object' ? 'page' : 'node';
}

const own = new Map<ThreadRuntime, ThreadReport>();
let channel: BroadcastChannel | null = null;

function openChannel(): BroadcastChannel | null {
  if (channel || typeof BroadcastChannel !== 'function') return channel;
  channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (e: MessageEvent<Message>) => {
    if (e.data?.kind === 'ask')
      for (const r of own.values()) channel?.postMessage({ kind: 'report', report: r });
  };
  return channel;
}

/** Records (and broadcasts) the threads a runtime of this context runs with. */
export function announceThreads(runtime: ThreadRuntime, threads: number, reason: string): ThreadReport {
  const sessions = own.get(runtime)?.sessions;
  const report: ThreadReport = {
    worker: contextName(),
    runtime,
    threads,
    reason,
    ...(sessions === undefined ? {} : { sessions }),
  };
  return publish(report);
}

/**
 * Records (and broadcasts) how many sessions a runtime of this context holds now, next to its threads (the
 * System panel shows both). A runtime announces its threads before its first session; a count that comes
 * first is published with 0 threads ('not started yet') and joined by the threads report when it comes.
 */
export function announceSessions(runtime: ThreadRuntime, sessions: number): void {
  const r = own.get(runtime) ?? { worker: contextName(), runtime, threads: 0, reason: 'not started yet' };
  publish({ ...r, sessions });
}

function publish(report: ThreadReport): ThreadReport {
  own.set(report.runtime, report);
  openChannel()?.postMessage({ kind: 'report', report } satisfies Message);
  return report;
}

/** The threads this context's runtimes run with (what it announced). */
export function ownThreads(): ThreadReport[] {
  return [...own.values()];
}

const seen = new Map<string, ThreadReport>();
const watchers = new Set<(r: ThreadReport) => void>();
let collector: BroadcastChannel | null = null;

/**
 * Starts collecting announcements in this context. The page starts at load: workers come and go with their tabs
 * (the train worker ends when its tab closes), so the System panel must know what a worker ran with even if it
 * was not open while that worker lived.
 */
function collect(): void {
  if (collector || typeof BroadcastChannel !== 'function') return;
  collector = new BroadcastChannel(CHANNEL);
  collector.onmessage = (e: MessageEvent<Message>) => {
    if (e.data?.kind !== 'report') return;
    const r = e.data.report;
    seen.set(`${r.worker}/${r.runtime}`, r);
    for (const w of watchers) w(r);
  };
  collector.postMessage({ kind: 'ask' } satisfies Message);
}
if (typeof (globalThis as { document?: unknown }).document === 'object') collect();

/**
 * Calls `onReport` for every worker announcement (the last one each worker made, also by workers that have ended, then new ones as they come);
 * returns the unsubscribe function. Without BroadcastChannel only this context's own reports arrive.
 */
export function watchThreads(onReport: (r: ThreadReport) => void): () => void {
  collect();
  for (const r of own.values()) onReport(r);
  for (const r of seen.values()) onReport(r);
  watchers.add(onReport);
  return () => watchers.delete(onReport);
}

interface LockManagerLike {
  request<T>(name: string, cb: () => Promise<T>): Promise<T>;
}

/**
 * Runs `fn` holding the exclusive `defectlab.cores` lock (Web Locks, shared by the page and all its workers), so
 * two multi-threaded runtimes never compute at once. Where there is no lock manager (Node) or only one thread is
 * used, `fn` runs directly.
 */
export function withCores<T>(threads: number, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (threads <= 1 || !locks) return fn();
  return locks.request('defectlab.cores', fn);
}

/**
 * Server jobs: one `JobQueue` interface with two implementations — the embedded in-process queue here (the
 * default: nothing to install) and BullMQ over Redis (`queue-redis.ts`, scale-out). Both run a job through
 * `executeJob`, so a job's zip is the same whichever process made it.
 */
import { randomUUID } from 'node:crypto';
import { zipSync } from 'fflate';
import { CancelledError, DefectLabError, errorInfo, type ErrorInfo } from '../src/core/errors.ts';
import type { Progress } from '../src/core/progress.ts';
import { json, runJobKind, type JobContext, type JobSpec } from './job-kinds.ts';
import type { DevicePref } from './options.ts';
import { SERVER_VERSION } from './version.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobStatus {
  id: string;
  kind: string;
  state: JobState;
  /** The last progress report, in the workers' shape (`src/core/progress.ts`). */
  progress: Progress | null;
  error?: ErrorInfo;
  summary?: Record<string, unknown>;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Runs started (more than 1 when a worker died mid-job and another took it over). */
  attempts: number;
}

export type JobEvent = { type: 'progress'; progress: Progress } | { type: 'state'; status: JobStatus };

export interface JobQueue {
  readonly mode: 'memory' | 'redis';
  add(spec: JobSpec): Promise<JobStatus>;
  get(id: string): Promise<JobStatus | null>;
  /** Cancels a queued or running job (a running one stops at its next cancel check); null when unknown. */
  cancel(id: string): Promise<JobStatus | null>;
  /** The finished job's zip, null until it is done. */
  results(id: string): Promise<Uint8Array | null>;
  /** Progress and state changes of one job; returns the unsubscribe function. */
  subscribe(id: string, fn: (e: JobEvent) => void): () => void;
  depth(): Promise<{ waiting: number; running: number }>;
  close(): Promise<void>;
}

export class QueueFullError extends DefectLabError {
  readonly retryAfter: number;
  constructor(max: number, retryAfter: number) {
    super(
      'QueueFullError',
      `the job queue is full (${max} jobs waiting)`,
      `retry after ${retryAfter} s, or start the server with a larger --max-queue (or more workers)`,
    );
    this.retryAfter = retryAfter;
  }
}

export const TERMINAL: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

export interface ExecuteOptions {
  datasets: string;
  models: string;
  device: DevicePref;
  /** Who ran it, for the provenance ('server' or 'worker <host>:<pid>'). */
  runner: string;
}

/** Strips uploaded bytes from a spec for the provenance: the manifest records what was asked, not the data. */
function specForManifest(spec: JobSpec): Record<string, unknown> {
  const { images, masks, ...rest } = spec;
  return {
    ...rest,
    ...(images ? { images: `${images.length} uploaded` } : {}),
    ...(masks ? { masks: `${masks.length} uploaded` } : {}),
  };
}

/** Runs a job and zips its files with `manifest.json` (provenance: request, runner, device, version, times). */
export async function executeJob(
  id: string,
  spec: JobSpec,
  o: ExecuteOptions,
  signal: AbortSignal,
  onProgress: (p: Progress) => void,
): Promise<{ zip: Uint8Array; summary: Record<string, unknown> }> {
  const startedAt = new Date().toISOString();
  const ctx: JobContext = {
    id,
    datasets: o.datasets,
    models: o.models,
    device: o.device,
    signal,
    onProgress,
  };
  const out = await runJobKind(spec, ctx);
  const manifest = {
    job: id,
    kind: spec.kind,
    backend: 'server',
    runner: o.runner,
    device: o.device,
    version: SERVER_VERSION,
    startedAt,
    finishedAt: new Date().toISOString(),
    request: specForManifest(spec),
    summary: out.summary,
    ...out.manifest,
  };
  const entries: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  // PNGs are already deflated: store them; compress the JSON and CSV.
  for (const [k, v] of Object.entries(out.files)) entries[k] = [v, { level: k.endsWith('.png') ? 0 : 6 }];
  entries['manifest.json'] = [json(manifest), { level: 6 }];
  return { zip: zipSync(entries), summary: out.summary };
}

/** Whether an error means "stopped on request" rather than "went wrong". */
export function isCancel(e: unknown, signal?: AbortSignal): boolean {
  return e instanceof CancelledError || errorInfo(e).code === 'CancelledError' || Boolean(signal?.aborted);
}

interface MemoryJob {
  status: JobStatus;
  spec: JobSpec;
  ctl: AbortController;
  zip?: Uint8Array;
  listeners: Set<(e: JobEvent) => void>;
}

/**
 * The embedded queue: FIFO, `concurrency` jobs at once in this process, at most `maxQueue` waiting. Finished jobs
 * (and their zips) are kept for the last `keep` jobs, so memory stays bounded on a long-running server.
 */
export class MemoryQueue implements JobQueue {
  readonly mode = 'memory' as const;
  private jobs = new Map<string, MemoryJob>();
  private waiting: string[] = [];
  private running = 0;

  constructor(
    private o: ExecuteOptions & { concurrency: number; maxQueue: number; keep?: number },
    /** Runs a job (default `executeJob`; tests inject a controllable one). */
    private exec: typeof executeJob = executeJob,
  ) {}

  async add(spec: JobSpec): Promise<JobStatus> {
    if (this.waiting.length >= this.o.maxQueue) throw new QueueFullError(this.o.maxQueue, 5);
    const id = randomUUID();
    const status: JobStatus = {
      id,
      kind: spec.kind,
      state: 'queued',
      progress: null,
      createdAt: Date.now(),
      attempts: 0,
    };
    this.jobs.set(id, { status, spec, ctl: new AbortController(), listeners: new Set() });
    this.waiting.push(id);
    this.evict();
    queueMicrotask(() => this.pump());
    return { ...status };
  }

  async get(id: string): Promise<JobStatus | null> {
    const j = this.jobs.get(id);
    return j ? { ...j.status } : null;
  }

  async cancel(id: string): Promise<JobStatus | null> {
    const j = this.jobs.get(id);
    if (!j) return null;
    if (j.status.state === 'queued') {
      this.waiting = this.waiting.filter((w) => w !== id);
      this.finish(j, {
        state: 'cancelled',
        error: errorInfo(new CancelledError('the job', 'it had not started')),
      });
    } else if (j.status.state === 'running') j.ctl.abort();
    return { ...j.status };
  }

  async results(id: string): Promise<Uint8Array | null> {
    return this.jobs.get(id)?.zip ?? null;
  }

  subscribe(id: string, fn: (e: JobEvent) => void): () => void {
    const j = this.jobs.get(id);
    if (!j) return () => {};
    j.listeners.add(fn);
    return () => j.listeners.delete(fn);
  }

  async depth() {
    return { waiting: this.waiting.length, running: this.running };
  }

  async close(): Promise<void> {
    for (const j of this.jobs.values()) if (j.status.state === 'running') j.ctl.abort();
    this.waiting = [];
  }

  private emit(j: MemoryJob, e: JobEvent) {
    for (const fn of j.listeners) fn(e);
  }

  private finish(j: MemoryJob, patch: Partial<JobStatus>) {
    Object.assign(j.status, patch, { finishedAt: Date.now() });
    this.emit(j, { type: 'state', status: { ...j.status } });
    j.listeners.clear();
  }

  private evict() {
    const keep = this.o.keep ?? 500;
    if (this.jobs.size <= keep) return;
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= keep) break;
      if (TERMINAL.has(j.status.state)) this.jobs.delete(id);
    }
  }

  private pump() {
    while (this.running < this.o.concurrency && this.waiting.length) {
      const id = this.waiting.shift()!;
      const j = this.jobs.get(id);
      if (j) void this.start(j);
    }
  }

  private async start(j: MemoryJob) {
    this.running++;
    Object.assign(j.status, { state: 'running', startedAt: Date.now(), attempts: j.status.attempts + 1 });
    this.emit(j, { type: 'state', status: { ...j.status } });
    try {
      const r = await this.exec(j.status.id, j.spec, this.o, j.ctl.signal, (p) => {
        j.status.progress = p;
        this.emit(j, { type: 'progress', progress: p });
      });
      j.zip = r.zip;
      this.finish(j, { state: 'done', summary: r.summary });
    } catch (e) {
      this.finish(j, { state: isCancel(e, j.ctl.signal) ? 'cancelled' : 'failed', error: errorInfo(e) });
    } finally {
      this.running--;
      this.pump();
    }
  }
}

/**
 * Scale-out: jobs through BullMQ on Redis. The server (`RedisQueue`) only enqueues and reads; `npm run worker`
 * processes (`startRedisWorker`, one per GPU, on any machine that reaches the Redis) run them with `executeJob`.
 *
 * - Progress: the worker's `job.updateProgress(Progress)` (throttled), relayed by BullMQ's QueueEvents stream.
 * - Results: the zip goes to `dl:result:<id>` with SET NX, so a job retried after a worker died mid-run (BullMQ's
 *   stalled-job check hands it to another worker) has its results exactly once; `dl:results` lists each id once,
 *   in the order results appeared.
 * - Cancel: `dl:cancel:<id>` plus a pub/sub message; the worker running it aborts the job's signal
 *   (`Worker.cancelJob`), a worker taking it later sees the key and stops before starting.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { CancelledError, errorInfo, type ErrorInfo } from '../src/core/errors.ts';
import type { Progress } from '../src/core/progress.ts';
import type { JobSpec } from './job-kinds.ts';
import {
  QueueFullError,
  executeJob,
  isCancel,
  type ExecuteOptions,
  type JobEvent,
  type JobQueue,
  type JobState,
  type JobStatus,
} from './jobs.ts';

export const QUEUE_NAME = 'defectlab-jobs';
const PREFIX = 'dl';
const RESULT = (id: string) => `${PREFIX}:result:${id}`;
const CANCEL = (id: string) => `${PREFIX}:cancel:${id}`;
const RESULTS_LOG = `${PREFIX}:results`;
const CANCEL_CHANNEL = `${PREFIX}:cancel`;
/** Results and cancel marks expire after a week: Redis is a transit store, not an archive. */
const TTL_S = 7 * 24 * 3600;

export function redisConnection(url: string): Redis {
  // BullMQ's blocking commands need maxRetriesPerRequest: null.
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
}

interface WorkerReturn {
  summary: Record<string, unknown>;
  bytes: number;
  runner: string;
}

function stateOf(s: string, failedReason: string | undefined): JobState {
  if (s === 'active') return 'running';
  if (s === 'completed') return 'done';
  if (s === 'failed') return parseReason(failedReason).code === 'CancelledError' ? 'cancelled' : 'failed';
  return 'queued';
}

/** Workers fail a job with the JSON of its ErrorInfo, so `{ code, message, fix }` survives Redis. */
function parseReason(r: string | undefined): ErrorInfo {
  try {
    const v = JSON.parse(r ?? '') as ErrorInfo;
    if (typeof v.code === 'string') return v;
  } catch {
    // not ours (a stalled-job failure from BullMQ itself)
  }
  return {
    code: 'JobFailedError',
    message: `JobFailedError: ${r ?? 'unknown'}`,
    fix: 'submit the job again',
  };
}

async function statusOf(job: Job): Promise<JobStatus> {
  const state = stateOf(await job.getState(), job.failedReason);
  const progress =
    typeof job.progress === 'object' && job.progress ? (job.progress as unknown as Progress) : null;
  const rv = job.returnvalue as WorkerReturn | null;
  return {
    id: job.id!,
    kind: (job.data as JobSpec).kind,
    state,
    progress,
    ...(state === 'failed' || state === 'cancelled' ? { error: parseReason(job.failedReason) } : {}),
    ...(rv?.summary ? { summary: rv.summary } : {}),
    createdAt: job.timestamp,
    ...(job.processedOn ? { startedAt: job.processedOn } : {}),
    ...(job.finishedOn ? { finishedAt: job.finishedOn } : {}),
    attempts: job.attemptsStarted ?? job.attemptsMade,
  };
}

export class RedisQueue implements JobQueue {
  readonly mode = 'redis' as const;
  private queue: Queue;
  private events: QueueEvents;
  private redis: Redis;
  private listeners = new Map<string, Set<(e: JobEvent) => void>>();

  constructor(
    url: string,
    private o: { maxQueue: number },
  ) {
    this.redis = redisConnection(url);
    this.queue = new Queue(QUEUE_NAME, { connection: redisConnection(url), prefix: PREFIX });
    this.events = new QueueEvents(QUEUE_NAME, { connection: redisConnection(url), prefix: PREFIX });
    const relay = async (jobId: string, progress?: unknown) => {
      const fns = this.listeners.get(jobId);
      if (!fns?.size) return;
      if (progress !== undefined) {
        if (typeof progress === 'object' && progress)
          for (const fn of fns) fn({ type: 'progress', progress: progress as Progress });
        return;
      }
      const s = await this.get(jobId);
      if (s) for (const fn of fns) fn({ type: 'state', status: s });
    };
    this.events.on('progress', ({ jobId, data }) => void relay(jobId, data));
    for (const ev of ['active', 'completed', 'failed', 'removed'] as const)
      this.events.on(ev, ({ jobId }: { jobId: string }) => void relay(jobId));
  }

  /** Resolves when the queue's connections are up (tests wait for it; the server answers 5xx-free meanwhile). */
  async ready(): Promise<void> {
    await Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]);
  }

  async add(spec: JobSpec): Promise<JobStatus> {
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed');
    const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
    if (waiting >= this.o.maxQueue) throw new QueueFullError(this.o.maxQueue, 5);
    const job = await this.queue.add(spec.kind, spec, {
      jobId: randomUUID(),
      // A job that throws is bad input or a bug: retrying it elsewhere gives the same error. A worker that
      // dies is BullMQ's stalled check (maxStalledCount), which does retry.
      attempts: 1,
      removeOnComplete: { age: TTL_S, count: 10_000 },
      removeOnFail: { age: TTL_S, count: 10_000 },
    });
    return statusOf(job);
  }

  async get(id: string): Promise<JobStatus | null> {
    const job = await Job.fromId(this.queue, id);
    if (job) return statusOf(job);
    // A queued job cancelled before any worker saw it was removed; its mark remains.
    if (await this.redis.exists(CANCEL(id)))
      return {
        id,
        kind: 'unknown',
        state: 'cancelled',
        progress: null,
        error: errorInfo(new CancelledError('the job', 'it had not started')),
        createdAt: 0,
        attempts: 0,
      };
    return null;
  }

  async cancel(id: string): Promise<JobStatus | null> {
    const job = await Job.fromId(this.queue, id);
    if (!job) return this.get(id);
    await this.redis.set(CANCEL(id), '1', 'EX', TTL_S);
    const state = await job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
      try {
        await job.remove();
        return this.get(id);
      } catch {
        // a worker took it meanwhile: the message below reaches it
      }
    }
    await this.redis.publish(CANCEL_CHANNEL, id);
    return statusOf(job);
  }

  async results(id: string): Promise<Uint8Array | null> {
    const b = await this.redis.getBuffer(RESULT(id));
    return b ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : null;
  }

  subscribe(id: string, fn: (e: JobEvent) => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size) this.listeners.delete(id);
    };
  }

  async depth() {
    const c = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
      running: c.active ?? 0,
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.redis.disconnect();
  }
}

export interface RedisWorkerOptions extends Omit<ExecuteOptions, 'runner'> {
  url: string;
  concurrency: number;
  /** How long a job's lock lives without renewal; a dead worker's job is retried after about this long. */
  lockMs?: number;
  /** How often workers look for stalled jobs. */
  stalledMs?: number;
  log?: (line: string) => void;
}

/** A BullMQ worker running server jobs; `close()` finishes the running jobs first. */
export async function startRedisWorker(
  o: RedisWorkerOptions,
): Promise<{ close(): Promise<void>; runner: string }> {
  const runner = `worker ${hostname()}:${process.pid}`;
  const redis = redisConnection(o.url);
  const sub = redisConnection(o.url);
  const worker = new Worker<JobSpec, WorkerReturn>(
    QUEUE_NAME,
    async (job, _token, signal) => {
      const id = job.id!;
      if (await redis.exists(CANCEL(id)))
        throw new CancelledError('the job', 'it was cancelled before it started');
      // A retried job whose first run already stored its results is done: do not make them twice.
      const have = await redis.strlen(RESULT(id));
      if (have > 0) return { summary: { resumed: true }, bytes: have, runner };
      const ctl = new AbortController();
      signal?.addEventListener('abort', () => ctl.abort(), { once: true });
      let last = 0;
      let pending: Progress | null = null;
      const flush = () => {
        if (pending) void job.updateProgress(pending as unknown as object).catch(() => {});
        pending = null;
      };
      const onProgress = (p: Progress) => {
        pending = p;
        const now = Date.now();
        // At most ~10 updates a second per job: each one is a Redis round trip and a stream entry.
        if (now - last >= 100 || p.done >= p.total) {
          last = now;
          flush();
        }
      };
      o.log?.(`${runner}: job ${id} (${job.data.kind}) started`);
      try {
        const r = await executeJob(id, job.data, { ...o, runner }, ctl.signal, onProgress);
        flush();
        const stored = await redis.set(RESULT(id), Buffer.from(r.zip), 'EX', TTL_S, 'NX');
        if (stored === 'OK') await redis.rpush(RESULTS_LOG, id);
        o.log?.(`${runner}: job ${id} done`);
        return { summary: r.summary, bytes: r.zip.byteLength, runner };
      } catch (e) {
        const info = isCancel(e, ctl.signal)
          ? errorInfo(e instanceof CancelledError ? e : new CancelledError('the job'))
          : errorInfo(e);
        o.log?.(`${runner}: job ${id} ${info.code}`);
        throw new Error(JSON.stringify(info));
      }
    },
    {
      connection: redisConnection(o.url),
      prefix: PREFIX,
      concurrency: Math.max(1, o.concurrency),
      lockDuration: o.lockMs ?? 30_000,
      stalledInterval: o.stalledMs ?? 30_000,
      maxStalledCount: 2,
    },
  );
  await sub.subscribe(CANCEL_CHANNEL);
  sub.on('message', (_ch, id: string) => worker.cancelJob(id, 'cancelled'));
  await worker.waitUntilReady();
  return {
    runner,
    async close() {
      await worker.close();
      sub.disconnect();
      redis.disconnect();
    },
  };
}

/** Ids in `dl:results`, in the order their results were stored (tests check each appears once). */
export async function storedResultIds(url: string): Promise<string[]> {
  const r = redisConnection(url);
  try {
    return await r.lrange(RESULTS_LOG, 0, -1);
  } finally {
    r.disconnect();
  }
}

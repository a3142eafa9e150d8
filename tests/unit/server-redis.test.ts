/**
 * Scale-out on BullMQ: Debian's redis-server on a free loopback port, the server in `--queue redis://` mode and two
 * `npm run worker` processes. 40 jobs; one worker is killed (SIGKILL) in the middle of a job; BullMQ's stalled
 * check hands that job to the other worker. Every job ends done, with its results stored exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import type { JobStatus } from '../../server/jobs.ts';
import { RedisQueue, storedResultIds } from '../../server/queue-redis.ts';
import { TINY_MODELS, b64, listen, readEvents, startRedis, tile } from './server-fixtures.ts';

const ROOT = join(import.meta.dirname, '../..');

interface WorkerProc {
  p: ChildProcess;
  runner: string;
  active: Set<string>;
  done: string[];
  log: string;
  /** Called on the line that says a job started (the kill below happens right there, not a poll later). */
  onStart?: (id: string) => void;
}

function startWorker(url: string): Promise<WorkerProc> {
  const p = spawn(
    process.execPath,
    ['--import', 'tsx', 'server/worker.ts', '--queue', url, '--models', TINY_MODELS, '--device', 'cpu'],
    {
      cwd: ROOT,
      // A short lock so a dead worker's job is retried within seconds (production: 30 s).
      env: { ...process.env, DL_LOCK_MS: '2000', DL_STALLED_MS: '1000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const w: WorkerProc = { p, runner: '', active: new Set(), done: [], log: '' };
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`worker did not start:\n${w.log}`)), 60_000);
    const onLine = (line: string) => {
      const ready = /^DefectLab (worker \S+) ready/.exec(line);
      if (ready) {
        w.runner = ready[1];
        clearTimeout(t);
        resolve(w);
      }
      const m = /: job (\S+)(?: \(\w+\))? (started|done)/.exec(line);
      if (m && m[2] === 'started') {
        w.active.add(m[1]);
        w.onStart?.(m[1]);
      }
      if (m && m[2] === 'done') {
        w.active.delete(m[1]);
        w.done.push(m[1]);
      }
    };
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      w.log += d.toString();
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      lines.forEach(onLine);
    });
    p.stderr!.on('data', (d: Buffer) => (w.log += d.toString()));
    p.on('exit', (code) => {
      clearTimeout(t);
      if (!w.runner) reject(new Error(`worker exited ${code}:\n${w.log}`));
    });
  });
}

const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 90_000) => {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe.runIf(existsSync('/usr/bin/redis-server'))('BullMQ scale-out', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let queue: RedisQueue;
  let app: ReturnType<typeof buildServer>;
  let base = '';
  const workers: WorkerProc[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    queue = new RedisQueue(redis.url, { maxQueue: 1000 });
    await queue.ready();
    app = buildServer({
      queue,
      options: { models: TINY_MODELS, device: 'cpu', queue: redis.url, rateLimit: 100_000 },
    });
    base = await listen(app);
    workers.push(...(await Promise.all([startWorker(redis.url), startWorker(redis.url)])));
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) if (w.p.exitCode === null) w.p.kill('SIGTERM');
    await app?.close();
    await queue?.close();
    await redis?.stop();
  });

  it(
    'two workers, 40 jobs, one worker killed mid-job: 40 results, each exactly once',
    { timeout: 180_000 },
    async () => {
      const image = b64(tile('bull', 128, 128));
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await fetch(`${base}/api/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ kind: 'generate', generator: 'memseg', images: [image], n: 12, seed: i }),
        });
        expect(r.status).toBe(202);
        ids.push(((await r.json()) as JobStatus).id);
      }
      const health = (await (await fetch(`${base}/api/health`)).json()) as { queue: { mode: string } };
      expect(health.queue.mode).toBe('redis');

      // Kill the first worker while it holds a job, after it has finished a few: at the moment it reports a
      // start (a poll could see a job it finished meanwhile, which the survivor then never takes over).
      const [victim, survivor] = workers;
      const exited = new Promise((r) => victim.p.once('close', r));
      let orphaned: string[] = [];
      const killed = new Promise<void>((r) => {
        victim.onStart = () => {
          if (victim.done.length < 3 || orphaned.length) return;
          orphaned = [...victim.active];
          victim.p.kill('SIGKILL');
          r();
        };
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        killed,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('the first worker never started a fourth job')), 90_000);
        }),
      ]).finally(() => clearTimeout(timer));
      await exited;

      const states = async () =>
        Promise.all(
          ids.map(async (id) => (await (await fetch(`${base}/api/jobs/${id}`)).json()) as JobStatus),
        );
      // (Polling all 40 is the test's doing, hence the raised rate limit above.)
      await until('every job to finish', async () =>
        (await states()).every((s) => s.state === 'done' || s.state === 'failed'),
      );
      const final = await states();
      expect(final.map((s) => s.state)).toEqual(new Array(40).fill('done'));

      // Exactly once: the results log names each job once, and every job's zip is its own.
      const stored = await storedResultIds(redis.url);
      expect(stored.length).toBe(40);
      expect(new Set(stored)).toEqual(new Set(ids));
      for (const id of ids) {
        const files = unzipSync(
          new Uint8Array(await (await fetch(`${base}/api/jobs/${id}/results`)).arrayBuffer()),
        );
        const m = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as {
          job: string;
          runner: string;
          samples: unknown[];
        };
        expect(m.job).toBe(id);
        expect(m.samples.length).toBe(12);
        if (orphaned.includes(id)) expect(m.runner).toBe(survivor.runner);
      }
      // The orphaned job really was taken over: started twice, finished by the survivor.
      for (const id of orphaned) {
        expect(final.find((s) => s.id === id)!.attempts).toBeGreaterThanOrEqual(2);
        expect(survivor.done).toContain(id);
      }
      expect(victim.done.length + survivor.done.length).toBe(40);
    },
  );

  it(
    'progress flows back through Redis as server-sent events; cancel reaches the worker running the job',
    { timeout: 60_000 },
    async () => {
      const r = await fetch(`${base}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          kind: 'generate',
          generator: 'memseg',
          images: [b64(tile('long', 160, 160))],
          n: 5000,
          seed: 3,
        }),
      });
      const id = ((await r.json()) as JobStatus).id;
      let cancelled = false;
      const events = await readEvents(`${base}/api/jobs/${id}/events`, {}, async (e) => {
        const d = e.data as { done?: number };
        if (e.event === 'progress' && !cancelled && (d.done ?? 0) > 0) {
          cancelled = true;
          expect((await fetch(`${base}/api/jobs/${id}`, { method: 'DELETE' })).status).toBe(200);
        }
      });
      const progress = events
        .filter((e) => e.event === 'progress')
        .map((e) => e.data as { stage: string; done: number; total: number });
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.every((p) => p.total === 5000 && typeof p.stage === 'string')).toBe(true);
      expect(progress.at(-1)!.done).toBeLessThan(5000);
      const last = events.at(-1)!.data as JobStatus;
      expect(last.state).toBe('cancelled');
      expect(last.error?.code).toBe('CancelledError');
      expect((await fetch(`${base}/api/jobs/${id}/results`)).status).toBe(409);
    },
  );
});

/**
 * The shared job runner (`src/ui/components/job.svelte.ts`) the Paint tab, the diffusion panel and the Train tab
 * use: one run at a time, stale progress dropped, cancel reaches the current worker job, a cancellation is never
 * reported as a failure (also when comlink turned the `CancelledError` into a plain Error).
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, InvalidArgumentError } from '../../src/core/errors.ts';
import { Job, isCancellation } from '../../src/ui/components/job.svelte.ts';

function counterJob() {
  let n = 0;
  const cancelled: string[] = [];
  const job = new Job<{ done: number }>({ cancel: (id) => cancelled.push(id), newId: () => `j${++n}` });
  return { job, cancelled };
}

/** A promise and its resolve, to hold a run open. */
function gate<T = void>() {
  let open!: (v: T) => void;
  const p = new Promise<T>((r) => (open = r));
  return { p, open };
}

describe('Job', () => {
  it('runs, shows only the current worker job’s progress, and resets when done', async () => {
    const { job } = counterJob();
    const g = gate();
    const seen: (number | null)[] = [];
    const run = job.run(async (ctx) => {
      const first = ctx.id;
      ctx.progress({ done: 1 });
      seen.push(job.progress?.done ?? null);
      const second = ctx.step();
      expect(second).not.toBe(first);
      ctx.progress({ done: 99 }, first); // a late message of the previous sample
      seen.push(job.progress?.done ?? null);
      ctx.progress({ done: 2 }, second);
      seen.push(job.progress?.done ?? null);
      await g.p;
      return 'made';
    });
    expect(job.running).toBe(true);
    expect(await job.run(async () => 'second run')).toEqual({ status: 'busy' });
    g.open();
    expect(await run).toEqual({ status: 'done', value: 'made', cancelled: false });
    expect(seen).toEqual([1, 1, 2]);
    expect([job.running, job.progress, job.id]).toEqual([false, null, null]);
  });

  it('cancel reaches the current worker job; a thrown CancelledError ends as cancelled, not failed', async () => {
    const { job, cancelled } = counterJob();
    const g = gate();
    const run = job.run(async (ctx) => {
      ctx.step();
      await g.p;
      if (ctx.cancelled) throw new CancelledError('generation', '3 of 8 samples were made');
      return 0;
    });
    job.cancel();
    expect(job.cancelling).toBe(true);
    expect(cancelled).toEqual(['j2']);
    g.open();
    const out = await run;
    expect(out.status).toBe('cancelled');
    expect(out.status === 'cancelled' && out.error.message).toMatch(/3 of 8 samples/);
    expect(job.error).toBeNull();
    expect(job.cancelling).toBe(false);
    // Cancel after the end does nothing.
    job.cancel();
    expect(cancelled).toEqual(['j2']);
  });

  it('work that stops early on cancel is done with cancelled: true; failures keep their named message', async () => {
    const { job } = counterJob();
    const g = gate();
    const run = job.run(async (ctx) => {
      let made = 0;
      for (let i = 0; i < 5; i++) {
        if (ctx.cancelled) break;
        made++;
        if (i === 1) await g.p;
      }
      return made;
    });
    job.cancel();
    g.open();
    expect(await run).toEqual({ status: 'done', value: 2, cancelled: true });
    const failed = await job.run(async () => {
      throw new InvalidArgumentError('steps', 'an integer in [1, 1000]', 0);
    });
    expect(failed.status).toBe('failed');
    expect(job.error?.message).toBe(
      'InvalidArgumentError: steps must be an integer in [1, 1000], got 0 — fix: pass steps as an integer in [1, 1000]',
    );
    // Progress after the end is dropped.
    let late: ((p: { done: number }) => void) | null = null;
    await job.run(async (ctx) => {
      late = (p) => ctx.progress(p);
    });
    late!({ done: 5 });
    expect(job.progress).toBeNull();
  });

  it('recognises a cancellation that crossed comlink as a plain Error', () => {
    const plain = Object.assign(new Error('CancelledError: the job was cancelled'), {
      name: 'CancelledError',
    });
    expect(isCancellation(plain)).toBe(true);
    expect(isCancellation(new Error('boom'))).toBe(false);
  });
});

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import type { Progress } from '../../src/core/progress.ts';
import { WorkerConnection, WorkerCrashedError, proxied } from '../../workers/host.ts';

/**
 * The worker boundary over a real MessageChannel (Node's ports speak the same structured-clone protocol as a
 * browser Worker), so comlink serialisation errors show up here as they do in the app.
 */
interface Engine {
  report(onProgress: (p: Progress) => unknown): Promise<string>;
  never(): Promise<void>;
}

const engine: Engine = {
  async report(onProgress) {
    // Awaiting the callback makes its posted-back return value matter, as an unawaited call's rejection would
    // surface as an unhandled error in the worker.
    await onProgress({ stage: 'decode', done: 1, total: 2 });
    return 'ok';
  },
  never: () => new Promise<void>(() => {}),
};

const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
});

function channel(): MessagePort {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  Comlink.expose(engine, port1 as unknown as Comlink.Endpoint);
  return port2;
}

describe('progress callbacks across the boundary', () => {
  // A Svelte `(p) => (state = p)` returns the state's Proxy; a Proxy cannot be structured-cloned.
  const returnsProxy = (p: Progress) => new Proxy({ ...p }, {});

  it('a raw comlink proxy whose callback returns a Proxy fails with "Unserializable return value"', async () => {
    const remote = Comlink.wrap<Engine>(channel() as unknown as Comlink.Endpoint);
    await expect(remote.report(Comlink.proxy(returnsProxy))).rejects.toThrow(/Unserializable return value/);
  });

  it('proxied() drops the return value, so the same callback works and still receives the progress', async () => {
    const remote = Comlink.wrap<Engine>(channel() as unknown as Comlink.Endpoint);
    const seen: Progress[] = [];
    const fn = proxied((p: Progress) => {
      seen.push(p);
      return returnsProxy(p);
    });
    await expect(remote.report(fn!)).resolves.toBe('ok');
    expect(seen).toEqual([{ stage: 'decode', done: 1, total: 2 }]);
  });

  it('proxied(undefined) stays undefined, so engines can tell "no progress wanted"', () => {
    expect(proxied(undefined)).toBeUndefined();
  });
});

describe('WorkerConnection', () => {
  /** A stand-in Worker: the port plus the `terminate` a Worker has. */
  function fakeWorker(): MessagePort & { terminated: boolean; terminate(): void } {
    const port = channel() as MessagePort & { terminated: boolean; terminate(): void };
    port.terminated = false;
    port.terminate = () => {
      port.terminated = true;
      port.close();
    };
    return port;
  }

  it('rejects a pending call with a named WorkerCrashedError when the worker dies, then restarts', async () => {
    const workers: ReturnType<typeof fakeWorker>[] = [];
    const conn = new WorkerConnection<Engine>(
      () => {
        const w = fakeWorker();
        workers.push(w);
        return w as unknown as Worker;
      },
      'test',
      'retry with a smaller batch',
    );
    const pending = conn.guard(conn.api.never());
    const err = Object.assign(new Event('error'), { message: 'out of memory' });
    workers[0].dispatchEvent(err);
    const e = await pending.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WorkerCrashedError);
    expect(String((e as Error).message)).toMatch(/the test worker stopped \(out of memory\)/);
    expect(String((e as Error).message)).toMatch(/retry with a smaller batch/);
    expect(workers[0].terminated).toBe(true);

    // The next call starts a fresh worker and works.
    await expect(conn.guard(conn.api.report(proxied(() => {})!))).resolves.toBe('ok');
    expect(workers).toHaveLength(2);
  });

  it('a call that settles normally is not affected by a later crash', async () => {
    const workers: ReturnType<typeof fakeWorker>[] = [];
    const conn = new WorkerConnection<Engine>(() => {
      const w = fakeWorker();
      workers.push(w);
      return w as unknown as Worker;
    });
    await expect(conn.guard(conn.api.report(proxied(() => {})!))).resolves.toBe('ok');
    workers[0].dispatchEvent(new Event('error'));
    expect(workers[0].terminated).toBe(true);
  });
});

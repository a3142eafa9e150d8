import { MessageChannel, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import type { Progress } from '../../src/core/progress.ts';
import { FeaturesClientBase } from '../../workers/features.client.ts';
import type { FeaturesApi } from '../../workers/features.engine.ts';
import { WorkerClosedError, WorkerConnection, WorkerCrashedError, proxied } from '../../workers/host.ts';

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

  /** A connection over fake workers, and the workers it started. */
  function counted() {
    const workers: ReturnType<typeof fakeWorker>[] = [];
    const conn = new WorkerConnection<Engine>(() => {
      const w = fakeWorker();
      workers.push(w);
      return w as unknown as Worker;
    }, 'train');
    return { conn, workers };
  }
  /** A call that awaits something (a restore, a store read) before it reaches the worker, as clients' calls do. */
  async function lateCall(conn: WorkerConnection<Engine>): Promise<string> {
    await Promise.resolve();
    return conn.guard(conn.api.report(proxied(() => {})!));
  }

  it('terminate() alone lets a call that was awaiting start a second worker (why close() exists)', async () => {
    const { conn, workers } = counted();
    void conn.api;
    const late = lateCall(conn);
    conn.terminate();
    await expect(late).resolves.toBe('ok');
    expect(workers).toHaveLength(2);
    conn.terminate();
  });

  it('close() ends the worker for good: pending and later calls reject with WorkerClosedError, none restarts', async () => {
    const { conn, workers } = counted();
    const pending = conn.guard(conn.api.never());
    const late = lateCall(conn);
    conn.close();
    expect(workers).toHaveLength(1);
    expect(workers[0].terminated).toBe(true);
    const e = await pending.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WorkerClosedError);
    expect((e as Error).message).toMatch(/the train worker was closed .* fix: open that view again/);
    await expect(late).rejects.toBeInstanceOf(WorkerClosedError);
    await expect(conn.api.report(proxied(() => {})!)).rejects.toBeInstanceOf(WorkerClosedError);
    // A fire-and-forget call (`void api.cancel(id)`) after close is no unhandled rejection.
    let unhandled = 0;
    const onUnhandled = () => unhandled++;
    process.on('unhandledRejection', onUnhandled);
    void conn.api.never();
    await new Promise((r) => setTimeout(r, 20));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toBe(0);
    expect(workers).toHaveLength(1);
  });

  it('a features client closed while a call waits for its backbone restore starts no worker', async () => {
    const started: string[] = [];
    const loads: string[] = [];
    const fakeEngine = {
      loadBackbone: async (req: { name?: string }) => {
        loads.push(req.name ?? '');
        return { name: req.name };
      },
      backboneInfo: async () => ({ name: 'tiny' }),
    };
    class Client extends FeaturesClientBase<FeaturesApi> {
      constructor() {
        super('train', () => {
          const { port1, port2 } = new MessageChannel();
          ports.push(port1, port2);
          Comlink.expose(fakeEngine, port1 as unknown as Comlink.Endpoint);
          const w = port2 as unknown as MessagePort & { terminate(): void };
          w.terminate = () => port2.close();
          started.push('worker');
          return w as unknown as Worker;
        });
      }
    }
    const client = new Client();
    await client.loadBackbone({ name: 'tiny' } as Parameters<FeaturesApi['loadBackbone']>[0]);
    expect(await client.backboneInfo()).toEqual({ name: 'tiny' });
    // A crash-like restart: the next call restores the backbone into a fresh worker first.
    client.terminate();
    const late = client.backboneInfo();
    client.close();
    await expect(late).rejects.toBeInstanceOf(WorkerClosedError);
    await expect(client.backboneInfo()).rejects.toBeInstanceOf(WorkerClosedError);
    // The restart's worker was started before close(); none after it.
    expect(started).toHaveLength(2);
    expect(loads[0]).toBe('tiny');
  });
});

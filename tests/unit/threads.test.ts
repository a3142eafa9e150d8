import { describe, expect, it } from 'vitest';
import { MAX_WASM_THREADS, contextName, planWasmThreads, withCores } from '../../src/runtime/threads.ts';

const isolated = (cores: number) => ({
  crossOriginIsolated: true,
  SharedArrayBuffer,
  navigator: { hardwareConcurrency: cores },
});

describe('planWasmThreads', () => {
  it('uses min(hardwareConcurrency, 8) when cross-origin isolated', () => {
    expect(planWasmThreads(isolated(2), 'auto')).toEqual({ threads: 2, reason: '' });
    expect(planWasmThreads(isolated(32), 'auto').threads).toBe(MAX_WASM_THREADS);
    expect(MAX_WASM_THREADS).toBe(8);
  });
  it('falls back to one thread with the reason when not isolated', () => {
    const p = planWasmThreads({ crossOriginIsolated: false, navigator: { hardwareConcurrency: 16 } }, 'auto');
    expect(p.threads).toBe(1);
    expect(p.reason).toMatch(/not cross-origin isolated/);
    const noSab = planWasmThreads(
      { crossOriginIsolated: true, navigator: { hardwareConcurrency: 16 } },
      'auto',
    );
    expect(noSab).toEqual({ threads: 1, reason: expect.stringMatching(/SharedArrayBuffer/) });
  });
  it('honours a fixed env.wasm.numThreads, but never threads without isolation', () => {
    expect(planWasmThreads(isolated(16), 3)).toEqual({
      threads: 3,
      reason: 'fixed by env.wasm.numThreads = 3',
    });
    expect(planWasmThreads({ navigator: { hardwareConcurrency: 16 } }, 4).threads).toBe(1);
  });
});

describe('contextName', () => {
  it("names a worker by its name option, else by its built script's name", () => {
    expect(contextName({ name: 'train' })).toBe('train');
    expect(contextName({ location: { href: 'http://x/assets/features.worker-Drz8u5YT.js' } })).toBe(
      'features',
    );
    expect(contextName({ location: { href: 'http://x/workers/import.worker.ts?worker_file' } })).toBe(
      'import',
    );
  });
});

describe('withCores', () => {
  it('serialises multi-threaded work through the lock manager and runs single-threaded work directly', async () => {
    const taken: string[] = [];
    const g = globalThis as { navigator?: unknown };
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    let tail = Promise.resolve();
    Object.defineProperty(globalThis, 'navigator', {
      configurable: true,
      value: {
        locks: {
          request<T>(name: string, cb: () => Promise<T>): Promise<T> {
            taken.push(name);
            const run = tail.then(cb);
            tail = run.then(() => undefined);
            return run;
          },
        },
      },
    });
    try {
      const order: number[] = [];
      const job = (k: number, ms: number) => () =>
        new Promise<number>((r) => setTimeout(() => (order.push(k), r(k)), ms));
      const both = await Promise.all([withCores(2, job(1, 30)), withCores(2, job(2, 1))]);
      expect(both).toEqual([1, 2]);
      // Under the lock the slow first job finishes before the quick second one starts.
      expect(order).toEqual([1, 2]);
      expect(taken).toEqual(['defectlab.cores', 'defectlab.cores']);
      expect(await withCores(1, async () => 7)).toBe(7);
      expect(taken).toHaveLength(2);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete g.navigator;
    }
  });
});

/**
 * Where the import engine's items get prepared (decoded, hashed, thumbnailed): in the calling thread, or in a
 * small pool of decode workers (`import-decode.worker.ts`, `min(hardwareConcurrency, 4)` of them) that the
 * import worker starts. The engine keeps `size × 2` items in flight, takes the results back in plan order and
 * writes them itself (one writer, so batches and duplicate checks are exactly those of a serial import).
 *
 * A decode worker that fails to start or crashes does not lose its items: they are prepared in-thread instead,
 * and the pool stops using that worker.
 */
import * as Comlink from 'comlink';
import { prepareItem, type PrepareResult, type PrepareTask } from './import.prepare.ts';

export interface PreparePool {
  /** How many items the pool works on at once (the engine keeps twice that in flight). */
  readonly size: number;
  prepare(task: PrepareTask): Promise<PrepareResult>;
  close(): void;
}

/** The API a decode worker exposes. */
export interface DecodeWireApi {
  prepare(task: PrepareTask): Promise<PrepareResult>;
}

/**
 * `prepareItem`, one item at a time: a call waits for the previous one to finish. Items otherwise interleave at
 * every await (the native inflate, the digest), so several decoded images would be held at once and each
 * stage's time would include the others' work.
 */
export function oneAtATime(): (task: PrepareTask) => Promise<PrepareResult> {
  let last: Promise<unknown> = Promise.resolve();
  return (task) => {
    const r = last.then(() => prepareItem(task));
    last = r.catch(() => undefined);
    return r;
  };
}

/** Prepares in the calling thread (Node, tests, browsers without nested workers). */
export function inThreadPool(): PreparePool {
  return { size: 1, prepare: oneAtATime(), close: () => undefined };
}

/** Decode workers a browser gets: `min(hardwareConcurrency, 4)`; decoding is CPU-bound, more would only queue. */
export function decodeWorkerCount(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return Math.max(1, Math.min(n ?? 1, 4));
}

interface Slot {
  worker: Worker;
  api: Comlink.Remote<DecodeWireApi>;
  busy: number;
  dead: boolean;
  /** Rejects the slot's pending calls when the worker dies (comlink would wait forever). */
  fail: Set<(e: Error) => void>;
}

/**
 * A pool of `size` decode workers made by `create` (the import worker passes a `new Worker(new URL(…))`, so
 * Vite bundles the decode worker). Each task goes to the least busy live worker.
 */
export function workerPool(size: number, create: () => Worker): PreparePool {
  const slots: Slot[] = [];
  const spawn = (): Slot | null => {
    try {
      const worker = create();
      const slot: Slot = {
        worker,
        api: Comlink.wrap<DecodeWireApi>(worker),
        busy: 0,
        dead: false,
        fail: new Set(),
      };
      worker.addEventListener('error', (ev) => {
        slot.dead = true;
        const err = new Error(`decode worker stopped (${ev.message || 'it crashed'})`);
        for (const f of slot.fail) f(err);
        slot.fail.clear();
        worker.terminate();
      });
      return slot;
    } catch {
      return null;
    }
  };
  for (let i = 0; i < size; i++) {
    const s = spawn();
    if (s) slots.push(s);
  }
  return {
    size: Math.max(1, slots.length),
    async prepare(task) {
      const live = slots.filter((s) => !s.dead);
      if (live.length === 0) return prepareItem(task);
      const slot = live.reduce((a, b) => (b.busy < a.busy ? b : a));
      slot.busy++;
      let onFail: ((e: Error) => void) | undefined;
      try {
        const died = new Promise<never>((_, reject) => {
          onFail = reject;
          slot.fail.add(reject);
        });
        return await Promise.race([slot.api.prepare(transferable(task)), died]);
      } catch {
        // The worker died (or could not take the task): the item is still prepared, here.
        return prepareItem(task);
      } finally {
        slot.busy--;
        if (onFail) slot.fail.delete(onFail);
      }
    },
    close() {
      for (const s of slots) s.worker.terminate();
      slots.length = 0;
    },
  };
}

/**
 * Bytes in a view of a larger buffer (a zip entry) would clone the whole buffer: send a copy of just the view,
 * transferred, so it crosses without a second copy. Blobs cross as references; whole-buffer arrays are cloned
 * (transferring them would leave the caller's fallback, which prepares the same task in-thread, nothing to read).
 */
function transferable(task: PrepareTask): PrepareTask {
  const moved: ArrayBuffer[] = [];
  const own = (d: Uint8Array | Blob) => {
    if (!(d instanceof Uint8Array) || (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength)) return d;
    const copy = d.slice();
    moved.push(copy.buffer);
    return copy;
  };
  const out: PrepareTask = { ...task, image: own(task.image) };
  if (task.mask) out.mask = own(task.mask);
  return moved.length ? Comlink.transfer(out, moved) : out;
}

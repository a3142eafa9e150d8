/**
 * The import engine's pool (`workers/import.pool.ts`): items prepared by several decode workers, out of order,
 * must give exactly the records a serial import gives, and a bad file or a crashed decode worker in the middle
 * must not cost the other files their records.
 *
 * The decode workers here are the real `workerPool` over `MessageChannel` ports (structured cloning of tasks and
 * results, Blobs included, as between real workers), each answering after a seeded random delay so results
 * come back out of plan order.
 */
import 'fake-indexeddb/auto';
import * as Comlink from 'comlink';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import type { DefectLabStore } from '../../src/runtime/db/types.ts';
import { encodePng } from '../../src/runtime/decode.ts';
import { ImportEngine, type ImportReport, type ImportSource } from '../../workers/import.engine.ts';
import { workerPool, type DecodeWireApi, type PreparePool } from '../../workers/import.pool.ts';
import { prepareItem, type PrepareTask } from '../../workers/import.prepare.ts';

let counter = 0;
const opened: { store: DefectLabStore; name: string }[] = [];
const pools: PreparePool[] = [];
async function newStore(): Promise<DefectLabStore> {
  const name = `import-parallel-${process.pid}-${counter++}`;
  const store = await openStore(name);
  opened.push({ store, name });
  return store;
}
afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await deleteStore(name);
  }
});

function png(seed: number, w = 40, h = 24, c: 1 | 3 = 3): Uint8Array {
  const r = createRaster(w, h, c);
  const rng = new Rng(seed);
  for (let i = 0; i < r.data.length; i++) r.data[i] = rng.int(0, 256);
  return encodePng(r);
}

function maskPng(w = 40, h = 24, soft = false): Uint8Array {
  const m = createRaster(w, h, 1);
  for (let y = 3; y < 9; y++) for (let x = 5; x < 15; x++) m.data[y * w + x] = soft ? 200 : 255;
  return encodePng(m);
}

/**
 * A manifest import of `n` images: every 5th has a mask (some soft, so they are re-encoded), two are byte
 * duplicates of earlier ones, one is a truncated PNG and one is not an image — both in the middle.
 */
const DUPLICATES: Record<number, number> = { 17: 7, 31: 11 };
function entries(n: number): ImportSource[] {
  const out: ImportSource[] = [];
  const items: { file: string; label: number; split: string; mask: string | null }[] = [];
  for (let i = 0; i < n; i++) {
    const file = `images/${String(i).padStart(3, '0')}.png`;
    let data: Uint8Array = png(1000 + i, 40, 24, i % 3 === 0 ? 1 : 3);
    const dupOf = DUPLICATES[i];
    if (dupOf !== undefined) data = png(1000 + dupOf, 40, 24, dupOf % 3 === 0 ? 1 : 3);
    if (i === 20) data = data.subarray(0, 60);
    if (i === 21) data = new TextEncoder().encode('not an image');
    // Blobs for half the files (as picked files are), bytes for the rest (as zip entries are).
    out.push({ path: file, data: i % 2 ? new Blob([data as Uint8Array<ArrayBuffer>]) : data });
    let mask: string | null = null;
    if (i % 5 === 0) {
      mask = `masks/${String(i).padStart(3, '0')}_mask.png`;
      out.push({ path: mask, data: maskPng(40, 24, i % 10 === 0) });
    }
    items.push({ file, label: mask ? 1 : 0, split: i % 4 ? 'train' : 'test', mask });
  }
  out.push({ path: 'manifest.json', data: new TextEncoder().encode(JSON.stringify({ items })) });
  return out;
}

/**
 * `size` decode "workers": the real `workerPool` over MessageChannel ports, each answering after a seeded
 * random 0–15 ms so results arrive out of order. `crashOn(file)` makes the worker handling that file die
 * (an 'error' event, as a real worker that runs out of memory) instead of answering.
 */
function channelPool(
  size: number,
  seed: string,
  crashOn?: (file: string) => boolean,
): PreparePool & { completed: string[]; crashes: () => number } {
  const rng = new Rng(seed);
  const completed: string[] = [];
  let crashes = 0;
  const pool = workerPool(size, () => {
    const { port1, port2 } = new MessageChannel();
    const listeners: ((ev: { message: string }) => void)[] = [];
    const api: DecodeWireApi = {
      async prepare(task: PrepareTask) {
        await new Promise((r) => setTimeout(r, rng.int(0, 16)));
        if (crashOn?.(task.item.file)) {
          crashes++;
          for (const l of listeners) l({ message: 'out of memory (simulated)' });
          return new Promise<never>(() => undefined);
        }
        const r = await prepareItem(task);
        completed.push(task.item.file);
        return r;
      },
    };
    Comlink.expose(api, port2 as unknown as Comlink.Endpoint);
    const worker = port1 as unknown as Worker & { addEventListener: (t: string, f: unknown) => void };
    const add = port1.addEventListener.bind(port1) as (t: string, f: unknown) => void;
    worker.addEventListener = (type: string, f: unknown) => {
      if (type === 'error') listeners.push(f as (ev: { message: string }) => void);
      else add(type, f);
    };
    (worker as unknown as { terminate: () => void }).terminate = () => {
      port1.close();
      port2.close();
    };
    return worker;
  });
  pools.push(pool);
  return Object.assign(pool, { completed, crashes: () => crashes });
}

/** What a dataset holds, without what is random per import (ids, timestamps): in insertion order. */
async function records(store: DefectLabStore, report: ImportReport) {
  const byId = new Map((await store.listImages(report.datasetId)).map((r) => [r.id, r]));
  expect(byId.size).toBe(report.addedIds.length);
  return Promise.all(
    report.addedIds.map(async (id) => {
      const r = byId.get(id)!;
      const mask = r.maskId ? await store.getMask(r.maskId) : undefined;
      return {
        name: r.name,
        label: r.label,
        split: r.split,
        mime: r.mime,
        size: [r.width, r.height, r.channels],
        sha256: r.sha256,
        bytes: Buffer.from(await r.blob.arrayBuffer()).toString('base64'),
        thumbnail: Buffer.from(await r.thumbnail.arrayBuffer()).toString('base64'),
        mask: mask ? Buffer.from(await mask.blob.arrayBuffer()).toString('base64') : null,
      };
    }),
  );
}

async function importWith(pool: PreparePool | null, input: ImportSource[], batchSize = 8) {
  const store = await newStore();
  const engine = pool ? new ImportEngine(store, () => pool) : new ImportEngine(store);
  const ds = await store.createDataset({ name: 'D', source: 'files' });
  const progress: number[] = [];
  const report = await engine.importFiles(
    ds.id,
    { entries: input },
    { batchSize, serial: pool === null, onProgress: (p) => progress.push(p.done) },
  );
  return { store, report, progress };
}

describe('parallel import (decode pool) = serial import', () => {
  it('4 decode workers answering out of order store the same records, in the same order, with the same pixels', async () => {
    const input = entries(48);
    const serial = await importWith(null, input);
    const pool = channelPool(4, 'order');
    const parallel = await importWith(pool, input);
    // The pool really ran items concurrently and finished them out of plan order.
    expect(pool.size).toBe(4);
    expect(pool.completed).toHaveLength(48);
    expect(pool.completed).not.toEqual([...pool.completed].sort());
    for (const { report } of [serial, parallel]) {
      expect(report.planned).toBe(48);
      expect(report.added).toBe(44); // 48 − 2 duplicates − 2 rejected
      expect(report.stopped).toBeUndefined();
    }
    expect(await records(parallel.store, parallel.report)).toEqual(
      await records(serial.store, serial.report),
    );
    // Same names in the grid's order too (createdAt, then name).
    const grid = async (s: typeof serial) =>
      (await s.store.listImages(s.report.datasetId)).map((r) => r.name);
    expect(await grid(parallel)).toEqual(await grid(serial));
    expect(parallel.report.duplicates).toEqual(
      serial.report.duplicates.map((d) => ({
        ...d,
        // The id of the kept copy is the parallel import's own record of that name.
        existingId: parallel.report.addedIds[serial.report.addedIds.indexOf(d.existingId)],
      })),
    );
    expect(parallel.report.duplicates.map((d) => [d.name, d.existingName])).toEqual([
      ['images/017.png', 'images/007.png'],
      ['images/031.png', 'images/011.png'],
    ]);
    expect(parallel.report.rejected.map((r) => [r.file, r.kind])).toEqual([
      ['images/020.png', 'truncated'],
      ['images/021.png', 'not-image'],
    ]);
    expect(parallel.report.rejected).toEqual(serial.report.rejected);
    expect(parallel.report.bytes).toBe(serial.report.bytes);
    // Progress counts every item once, in order, ending at the plan's size.
    for (const p of [serial.progress, parallel.progress]) {
      expect(p[0]).toBe(0);
      expect(p.at(-1)).toBe(48);
      expect(p.every((d, i) => i === 0 || d >= p[i - 1])).toBe(true);
    }
  });

  it('a bad file and a crashed decode worker in the middle cost no other file its record', async () => {
    const input = entries(40);
    const serial = await importWith(null, input, 6);
    // The worker that gets image 24 dies: its items are prepared in-thread, the other workers carry on.
    const pool = channelPool(3, 'crash', (f) => f === 'images/024.png');
    const parallel = await importWith(pool, input, 6);
    expect(pool.crashes()).toBe(1);
    expect(parallel.report.stopped).toBeUndefined();
    expect(parallel.report.added).toBe(36); // 40 − 2 duplicates − 2 rejected
    expect(parallel.report.rejected.map((r) => r.file)).toEqual(['images/020.png', 'images/021.png']);
    const names = (await parallel.store.listImages(parallel.report.datasetId)).map((r) => r.name);
    expect(names).toContain('images/024.png');
    expect(names).toContain('images/019.png');
    expect(names).toContain('images/022.png');
    expect(await records(parallel.store, parallel.report)).toEqual(
      await records(serial.store, serial.report),
    );
  });
});

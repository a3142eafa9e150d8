/**
 * Schema v3: durable generation batches (`batches`, `batchSamples`), what a reload mid-batch resumes from. The
 * upgrade from a real v2 database keeps every record; samples of a batch land per group in one transaction (a
 * quota error stores none of that group and keeps the earlier ones); deleting a batch removes its samples only.
 * Another tab opening a newer version closes this connection at once (not blocking it) and is told to reload.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { MIGRATIONS, SCHEMA_VERSION, deleteStore, openStore } from '../../src/runtime/db/store.ts';
import { StorageQuotaError, StoreVersionChangedError } from '../../src/runtime/db/errors.ts';
import type { BatchRecord, BatchSampleRecord, DefectLabStore } from '../../src/runtime/db/types.ts';

let n = 0;
const opened: { store: DefectLabStore; name: string }[] = [];
afterEach(async () => {
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await deleteStore(name);
  }
});

async function fresh(): Promise<DefectLabStore> {
  const name = `db-batches-${process.pid}-${n++}`;
  const store = await openStore(name);
  opened.push({ store, name });
  return store;
}

function batch(id: string, createdAt = 1): BatchRecord {
  return {
    id,
    datasetId: 'd1',
    n: 8,
    request: {
      generator: 'memseg',
      n: 8,
      seed: 3,
      images: [{ width: 2, height: 1, data: new Uint8Array([1, 2]) }],
    },
    context: { batchSeed: 3 },
    createdAt,
  };
}

function sample(batchId: string, index: number): BatchSampleRecord {
  return { batchId, index, sample: { image: { width: 1, height: 1, data: new Uint8Array([index]) } } };
}

describe('store v3: durable batches', () => {
  it('upgrades a real v2 database to v3 without losing a record, and the new stores work', async () => {
    expect(SCHEMA_VERSION).toBe(3);
    const name = `db-v2-upgrade-${process.pid}`;
    const v2 = await openDB(name, 2, {
      upgrade(db, oldVersion, _new, tx) {
        for (let v = oldVersion; v < 2; v++) MIGRATIONS[v](db, tx as never);
      },
    });
    await v2.put('datasets', { id: 'd1', name: 'old', source: 'files', createdAt: 1 });
    await v2.put('settings', 'wasm', 'backend');
    expect(Array.from(v2.objectStoreNames)).not.toContain('batches');
    v2.close();

    const store = await openStore(name);
    opened.push({ store, name });
    expect((await store.listDatasets()).map((d) => d.id)).toEqual(['d1']);
    expect(await store.getSetting('backend')).toBe('wasm');
    await store.putBatch(batch('b1'));
    await store.addBatchSamples([sample('b1', 0), sample('b1', 1)]);
    expect((await store.listBatches()).map((b) => b.id)).toEqual(['b1']);
    expect((await store.batchSamples('b1')).map((s) => s.index)).toEqual([0, 1]);
  });

  it('keeps the request cloneable as given and lists samples by index; deleting drops only that batch', async () => {
    const store = await fresh();
    await store.putBatch(batch('b2', 2));
    await store.putBatch(batch('b1', 1));
    await store.addBatchSamples([sample('b1', 3), sample('b1', 1)]);
    await store.addBatchSamples([sample('b2', 0)]);
    // Writing the same index again replaces it (a resumed batch never duplicates an index).
    await store.addBatchSamples([sample('b1', 1)]);
    const listed = await store.listBatches();
    expect(listed.map((b) => b.id)).toEqual(['b1', 'b2']);
    const req = listed[0].request as { images: { data: Uint8Array }[] };
    expect(Array.from(req.images[0].data)).toEqual([1, 2]);
    expect((await store.batchSamples('b1')).map((s) => s.index)).toEqual([1, 3]);
    await store.deleteBatch('b1');
    expect((await store.listBatches()).map((b) => b.id)).toEqual(['b2']);
    expect(await store.batchSamples('b1')).toEqual([]);
    expect((await store.batchSamples('b2')).map((s) => s.index)).toEqual([0]);
  });

  it('a quota error mid-group stores none of that group, names the error and keeps the earlier samples', async () => {
    const store = await fresh();
    await store.putBatch(batch('b1'));
    await store.addBatchSamples([sample('b1', 0), sample('b1', 1)]);
    const proto = IDBObjectStore.prototype;
    const realPut = proto.put;
    let calls = 0;
    proto.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      if (this.name === 'batchSamples' && ++calls === 2)
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return realPut.apply(this, args);
    };
    let err: unknown;
    try {
      await store.addBatchSamples([sample('b1', 2), sample('b1', 3), sample('b1', 4)]);
    } catch (e) {
      err = e;
    } finally {
      proto.put = realPut;
    }
    expect(err).toBeInstanceOf(StorageQuotaError);
    expect((err as Error).message).toMatch(/saving 3 generated samples.*fix: free space/);
    expect((await store.batchSamples('b1')).map((s) => s.index)).toEqual([0, 1]);
  });
});

describe('store: another tab changes the version', () => {
  it('closes this connection without blocking the newer tab; later calls and reopening name the problem', async () => {
    const name = `db-versionchange-${process.pid}`;
    let told = 0;
    const store = await openStore(name, { onVersionChange: () => told++ });
    opened.push({ store, name });
    await store.createDataset({ name: 'kept', source: 'files' });
    // A newer app in another tab: its open must succeed (this tab closes instead of blocking it).
    const newer = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(name, SCHEMA_VERSION + 1);
      req.onupgradeneeded = () => req.result.createObjectStore('fromTheFuture');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('blocked by the older tab'));
    });
    expect(told).toBe(1);
    await expect(store.listDatasets()).rejects.toBeInstanceOf(StoreVersionChangedError);
    await expect(store.createDataset({ name: 'x', source: 'files' })).rejects.toThrow(/fix: reload this tab/);
    await expect(openStore(name)).rejects.toBeInstanceOf(StoreVersionChangedError);
    // Nothing stored was lost.
    const tx = newer.transaction('datasets').objectStore('datasets').getAll();
    const names = await new Promise<string[]>(
      (res) => (tx.onsuccess = () => res(tx.result.map((d: { name: string }) => d.name))),
    );
    expect(names).toEqual(['kept']);
    newer.close();
  });
});

import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openDB } from 'idb';
import { MIGRATIONS, SCHEMA_VERSION, deleteStore, openStore } from '../../src/runtime/db/store.ts';
import {
  StorageError,
  StorageQuotaError,
  RecordNotFoundError,
  storageError,
} from '../../src/runtime/db/errors.ts';
import type { DefectLabStore, HeadRecord, NewImage } from '../../src/runtime/db/types.ts';
import type { ImageRecord, RunRecord } from '../../src/core/dataset.ts';
import { sha256Hex } from '../../src/core/hash.ts';
import { halfRecords } from './db-integrity.ts';

let dbCounter = 0;
const opened: { store: DefectLabStore; name: string }[] = [];

async function freshStore(): Promise<{ store: DefectLabStore; name: string }> {
  const name = `db-test-${process.pid}-${dbCounter++}`;
  const store = await openStore(name);
  opened.push({ store, name });
  return { store, name };
}

afterEach(async () => {
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await deleteStore(name);
  }
});

async function newImage(i: number, extra: Partial<NewImage> = {}): Promise<NewImage> {
  const bytes = new Uint8Array([137, 80, 78, 71, i & 255, (i >> 8) & 255, 7]);
  return {
    name: `img-${i}.png`,
    blob: new Blob([bytes], { type: 'image/png' }),
    mime: 'image/png',
    width: 4,
    height: 3,
    channels: 1,
    sha256: await sha256Hex(bytes),
    thumbnail: new Blob([bytes], { type: 'image/png' }),
    label: 'normal',
    split: 'train',
    ...extra,
  };
}

const maskOf = (w = 4, h = 3) => ({ blob: new Blob([new Uint8Array([1, 2])]), width: w, height: h });

async function blobBytes(b: Blob): Promise<number[]> {
  return Array.from(new Uint8Array(await b.arrayBuffer()));
}

describe('store: datasets', () => {
  it('datasets and masks made within one millisecond list in the order they were made', async () => {
    const { store } = await freshStore();
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
    try {
      const names = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth'];
      for (const name of names) await store.createDataset({ name, source: 'files' });
      // Random ids would put a tie in any order: 6 in a row by chance is 1 in 720.
      expect((await store.listDatasets()).map((d) => d.name)).toEqual(names);
      const [ds] = await store.listDatasets();
      for (const name of names)
        await store.putMask({
          datasetId: ds.id,
          name,
          blob: maskOf().blob,
          width: 4,
          height: 3,
          kind: 'library',
        });
      expect((await store.listMasks(ds.id, 'library')).map((m) => m.name)).toEqual(names);
    } finally {
      now.mockRestore();
    }
  });

  it('creates, lists, gets, renames and deletes datasets with everything in them', async () => {
    const { store } = await freshStore();
    const a = await store.createDataset({ name: 'A', source: 'files' });
    const b = await store.createDataset({ name: 'B', source: 'sample', description: 'procedural' });
    expect((await store.listDatasets()).map((d) => d.name)).toEqual(['A', 'B']);
    expect((await store.getDataset(b.id))?.description).toBe('procedural');
    await store.renameDataset(a.id, 'A2');
    expect((await store.getDataset(a.id))?.name).toBe('A2');
    await expect(store.renameDataset('nope', 'x')).rejects.toThrow(RecordNotFoundError);

    const added = await store.addImages(a.id, [await newImage(1, { mask: maskOf() }), await newImage(2)]);
    await store.addImages(b.id, [await newImage(3)]);
    const run: RunRecord = {
      id: 'r1',
      datasetId: a.id,
      kind: 'train',
      config: {},
      status: 'done',
      createdAt: 1,
    };
    await store.putRun(run);
    await store.putHead(head('h1', a.id));
    await store.putMask({ datasetId: a.id, blob: maskOf().blob, width: 4, height: 3, kind: 'library' });

    await store.deleteDataset(a.id);
    expect(await store.getDataset(a.id)).toBeUndefined();
    expect(await store.getImage(added.added[0].id)).toBeUndefined();
    expect(await store.listImages(a.id)).toEqual([]);
    expect(await store.listMasks(a.id)).toEqual([]);
    expect(await store.listRuns(a.id)).toEqual([]);
    expect(await store.listHeads(a.id)).toEqual([]);
    // The other dataset is untouched.
    expect((await store.listImages(b.id)).length).toBe(1);
  });
});

function head(id: string, datasetId: string, createdAt = 1): HeadRecord {
  return {
    id,
    datasetId,
    name: `head ${id}`,
    kind: 'bce',
    backbone: 'mobilenetv2',
    preprocessing: 'stretch-224',
    threshold: 0.5,
    thresholdSource: 'val:real',
    artifacts: { weights: new Float32Array([1, 2, 3]) },
    metadata: { epochs: 3 },
    createdAt,
  };
}

describe('store: images', () => {
  it('adds images with masks, keeps bytes, and reports duplicates by sha256 (in the store and in the batch)', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const first = await store.addImages(d.id, [await newImage(1, { mask: maskOf() }), await newImage(2)]);
    expect(first.added.length).toBe(2);
    expect(first.duplicates).toEqual([]);
    const rec = (await store.getImage(first.added[0].id)) as ImageRecord;
    expect(rec.datasetId).toBe(d.id);
    expect(await blobBytes(rec.blob)).toEqual([137, 80, 78, 71, 1, 0, 7]);
    expect(rec.maskId).toBeDefined();
    const mask = await store.getMask(rec.maskId as string);
    expect(mask?.imageId).toBe(rec.id);
    expect(mask?.kind).toBe('label');

    const dupA = await newImage(1, { name: 'copy-of-1.png' });
    const second = await store.addImages(d.id, [
      dupA,
      await newImage(5),
      await newImage(5, { name: 'again.png' }),
    ]);
    expect(second.added.map((r) => r.name)).toEqual(['img-5.png']);
    expect(second.duplicates).toEqual([
      { name: 'copy-of-1.png', existingId: first.added[0].id, existingName: 'img-1.png' },
      { name: 'again.png', existingId: second.added[0].id, existingName: 'img-5.png' },
    ]);
    expect((await store.listImages(d.id)).length).toBe(3);

    // The same bytes in another dataset are not a duplicate there.
    const e = await store.createDataset({ name: 'E', source: 'files' });
    expect((await store.addImages(e.id, [await newImage(1)])).added.length).toBe(1);
  });

  it('rejects a batch for a missing dataset without storing anything', async () => {
    const { store } = await freshStore();
    await expect(store.addImages('missing', [await newImage(1)])).rejects.toThrow(
      /no dataset with id "missing"/,
    );
  });

  it('lists with label / split / generator filters and counts per label, split, mask and generator', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    await store.addImages(d.id, [
      await newImage(1),
      await newImage(2, { split: 'test' }),
      await newImage(3, { label: 'defect', split: 'test', defectClass: 'scratch', mask: maskOf() }),
      await newImage(4, { label: 'unlabeled', split: 'val' }),
    ]);
    const gen = await store.acceptSamples(d.id, [
      {
        png: new Blob([new Uint8Array([9])]),
        width: 4,
        height: 3,
        channels: 3,
        thumbnail: new Blob([new Uint8Array([9])]),
        sha256: await sha256Hex(new Uint8Array([9])),
        mask: maskOf(),
        provenance: { generator: 'cutpaste', parameters: { scale: 0.1 }, seed: 7, createdAt: 5 },
      },
    ]);
    expect(gen.length).toBe(1);
    expect(gen[0].provenance?.generator).toBe('cutpaste');
    expect(gen[0].label).toBe('defect');
    expect(gen[0].maskId).toBeDefined();

    const names = (f: Parameters<DefectLabStore['listImages']>[1]) =>
      store.listImages(d.id, f).then((r) => r.map((x) => x.name).sort());
    expect(await names({ label: 'normal' })).toEqual(['img-1.png', 'img-2.png']);
    expect(await names({ split: 'test' })).toEqual(['img-2.png', 'img-3.png']);
    expect(await names({ label: 'defect', split: 'test' })).toEqual(['img-3.png']);
    expect(await names({ generator: 'cutpaste' })).toEqual([gen[0].name]);
    expect((await names({ generator: 'none' })).length).toBe(4);

    const c = await store.countImages(d.id);
    expect(c.total).toBe(5);
    expect(c.byLabel).toEqual({ normal: 2, defect: 2, unlabeled: 1 });
    expect(c.bySplit).toEqual({ train: 2, val: 1, test: 2 });
    expect(c.byLabelSplit['defect/test']).toBe(1);
    expect(c.byLabelSplit['defect/train']).toBe(1);
    expect(c.byLabelSplit['normal/val']).toBe(0);
    expect(c.masks).toBe(2);
    expect(c.generated).toEqual({ cutpaste: 1 });

    // browseImages answers both questions from one read: the filtered list and the whole dataset's counts.
    for (const f of [
      undefined,
      { split: 'test' as const },
      { generator: 'cutpaste' },
      { label: 'defect' as const },
    ]) {
      const b = await store.browseImages(d.id, f);
      expect(b.images.map((r) => r.id)).toEqual((await store.listImages(d.id, f)).map((r) => r.id));
      expect(b.counts).toEqual(c);
    }
  });

  it('updates label/split/defectClass transactionally (an unknown id changes nothing)', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const { added } = await store.addImages(d.id, [await newImage(1), await newImage(2)]);
    await store.updateImages([added[0].id], { label: 'defect', split: 'test', defectClass: 'crack' });
    const r = await store.getImage(added[0].id);
    expect([r?.label, r?.split, r?.defectClass]).toEqual(['defect', 'test', 'crack']);
    await expect(store.updateImages([added[1].id, 'ghost'], { split: 'val' })).rejects.toThrow(
      RecordNotFoundError,
    );
    expect((await store.getImage(added[1].id))?.split).toBe('train');
  });

  it('deletes images with their masks and restores them (undo)', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const { added } = await store.addImages(d.id, [await newImage(1, { mask: maskOf() }), await newImage(2)]);
    const deleted = await store.deleteImages([added[0].id, 'ghost']);
    expect(deleted.images.map((i) => i.id)).toEqual([added[0].id]);
    expect(deleted.masks.length).toBe(1);
    expect(await store.getImage(added[0].id)).toBeUndefined();
    expect(await store.listMasks(d.id)).toEqual([]);
    await store.restoreImages(deleted);
    const back = await store.getImage(added[0].id);
    expect(back?.maskId).toBe(deleted.masks[0].id);
    expect(await blobBytes(back!.blob)).toEqual([137, 80, 78, 71, 1, 0, 7]);
    expect((await store.listMasks(d.id)).length).toBe(1);
  });
});

describe('store: masks', () => {
  it('puts, gets, lists by kind, deletes masks and sets / clears an image mask', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const { added } = await store.addImages(d.id, [await newImage(1)]);
    const lib = await store.putMask({
      datasetId: d.id,
      blob: maskOf().blob,
      width: 4,
      height: 3,
      kind: 'library',
      name: 'blob',
    });
    const region = await store.putMask({
      id: 'fixed',
      datasetId: d.id,
      blob: maskOf().blob,
      width: 4,
      height: 3,
      kind: 'region',
    });
    expect(region.id).toBe('fixed');
    expect((await store.getMask(lib.id))?.name).toBe('blob');
    expect((await store.listMasks(d.id, 'library')).map((m) => m.id)).toEqual([lib.id]);
    expect((await store.listMasks(d.id)).length).toBe(2);

    await store.setImageMask(added[0].id, maskOf());
    const withMask = await store.getImage(added[0].id);
    const m1 = withMask?.maskId as string;
    expect((await store.getMask(m1))?.imageId).toBe(added[0].id);
    // Replacing drops the old mask record.
    await store.setImageMask(added[0].id, maskOf());
    const m2 = (await store.getImage(added[0].id))?.maskId as string;
    expect(m2).not.toBe(m1);
    expect(await store.getMask(m1)).toBeUndefined();
    // Deleting the mask clears the image's pointer.
    await store.deleteMask(m2);
    expect((await store.getImage(added[0].id))?.maskId).toBeUndefined();
    await store.setImageMask(added[0].id, maskOf());
    await store.setImageMask(added[0].id, null);
    expect((await store.getImage(added[0].id))?.maskId).toBeUndefined();
    expect((await store.listMasks(d.id, 'label')).length).toBe(0);
    await expect(store.setImageMask('ghost', null)).rejects.toThrow(RecordNotFoundError);
  });
});

describe('store: runs, heads, features, settings, storage', () => {
  it('stores runs and heads', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const run: RunRecord = {
      id: 'r1',
      datasetId: d.id,
      kind: 'evaluate',
      config: { lr: 0.01 },
      status: 'running',
      createdAt: 2,
    };
    await store.putRun(run);
    await store.putRun({ ...run, status: 'done', metrics: { AUROC: 0.9 }, finishedAt: 3 });
    await store.putRun({ ...run, id: 'r0', createdAt: 1 });
    expect((await store.getRun('r1'))?.metrics).toEqual({ AUROC: 0.9 });
    expect((await store.listRuns(d.id)).map((r) => r.id)).toEqual(['r0', 'r1']);

    await store.putHead(head('h2', d.id, 2));
    await store.putHead(head('h1', d.id, 1));
    await store.putHead(head('hx', 'other', 3));
    const h = await store.getHead('h1');
    expect(Array.from((h?.artifacts as { weights: Float32Array }).weights)).toEqual([1, 2, 3]);
    expect((await store.listHeads(d.id)).map((x) => x.id)).toEqual(['h1', 'h2']);
    expect((await store.listHeads()).length).toBe(3);
    await store.deleteHead('h1');
    expect(await store.getHead('h1')).toBeUndefined();
  });

  it('caches features per backbone + preprocessing + sha256 and clears per backbone', async () => {
    const { store } = await freshStore();
    const k1 = { backbone: 'mnv2', preprocessing: 'p', sha256: 'aa' };
    const k2 = { backbone: 'resnet', preprocessing: 'p', sha256: 'aa' };
    await store.putFeatures(k1, { pooled: new Float32Array([1, 2]) });
    await store.putFeatures(k2, {
      pooled: new Float32Array([3]),
      spatial: { data: new Float32Array(8), dims: [2, 2, 2] },
    });
    expect(Array.from((await store.getFeatures(k1))!.pooled)).toEqual([1, 2]);
    expect((await store.getFeatures(k2))?.spatial?.dims).toEqual([2, 2, 2]);
    expect(await store.getFeatures({ ...k1, preprocessing: 'q' })).toBeUndefined();
    await store.clearFeatures('mnv2');
    expect(await store.getFeatures(k1)).toBeUndefined();
    expect(await store.getFeatures(k2)).toBeDefined();
    await store.clearFeatures();
    expect(await store.getFeatures(k2)).toBeUndefined();
  });

  it('keeps settings', async () => {
    const { store } = await freshStore();
    expect(await store.getSetting('backend')).toBeUndefined();
    await store.setSetting('backend', { auto: 'wasm', ms: 12 });
    expect(await store.getSetting('backend')).toEqual({ auto: 'wasm', ms: 12 });
  });

  it('reports usage/quota/persistence from the StorageManager and passes on its persist() answer', async () => {
    const { store } = await freshStore();
    // Node has no StorageManager: the store answers "nothing known, not persistent" rather than throwing.
    vi.stubGlobal('navigator', undefined);
    expect(await store.storageInfo()).toEqual({ usage: 0, quota: 0, persisted: false });
    expect(await store.requestPersistence()).toBe(false);
    let calls = 0;
    let answer: boolean | 'throws' = true;
    vi.stubGlobal('navigator', {
      storage: {
        estimate: async () => ({ usage: 5_000, quota: 80_000 }),
        persisted: async () => answer === true,
        persist: async () => {
          calls++;
          if (answer === 'throws') throw new DOMException('private mode', 'InvalidStateError');
          return answer;
        },
      },
    });
    try {
      expect(await store.requestPersistence()).toBe(true);
      expect(await store.storageInfo()).toEqual({ usage: 5_000, quota: 80_000, persisted: true });
      answer = false;
      expect(await store.requestPersistence()).toBe(false);
      answer = 'throws';
      expect(await store.requestPersistence()).toBe(false);
      expect(calls).toBe(3);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

/** An object store as the schema sees it: key path, key generator and indexes. */
interface StoreSchema {
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: Record<string, { keyPath: string | string[]; unique: boolean; multiEntry: boolean }>;
}
type Schema = Record<string, StoreSchema>;

/**
 * The v1 schema as shipped, written out by hand and frozen: databases in users' browsers were created from it, so
 * it must never change. The test builds its v1 database from this copy (not from `MIGRATIONS[0]`) and checks that
 * `MIGRATIONS[0]` still produces exactly it, so an edit of the v1 step fails here instead of silently changing
 * what "v1" means.
 */
const V1_SCHEMA: Schema = Object.freeze({
  datasets: { keyPath: 'id', autoIncrement: false, indexes: {} },
  images: {
    keyPath: 'id',
    autoIncrement: false,
    indexes: { datasetId: { keyPath: 'datasetId', unique: false, multiEntry: false } },
  },
  masks: {
    keyPath: 'id',
    autoIncrement: false,
    indexes: { datasetId: { keyPath: 'datasetId', unique: false, multiEntry: false } },
  },
  runs: {
    keyPath: 'id',
    autoIncrement: false,
    indexes: { datasetId: { keyPath: 'datasetId', unique: false, multiEntry: false } },
  },
  settings: { keyPath: null, autoIncrement: false, indexes: {} },
});

function createFromSchema(db: IDBDatabase, schema: Schema): void {
  for (const [name, s] of Object.entries(schema)) {
    const store = db.createObjectStore(name, {
      ...(s.keyPath === null ? {} : { keyPath: s.keyPath }),
      autoIncrement: s.autoIncrement,
    });
    for (const [iname, i] of Object.entries(s.indexes))
      store.createIndex(iname, i.keyPath, { unique: i.unique, multiEntry: i.multiEntry });
  }
}

/** Reads the schema of an open database (every store, key path, index) through one readonly transaction. */
function readSchema(db: IDBDatabase): Schema {
  const names = Array.from(db.objectStoreNames).sort();
  const out: Schema = {};
  if (names.length === 0) return out;
  const tx = db.transaction(names, 'readonly');
  for (const name of names) {
    const store = tx.objectStore(name);
    const indexes: StoreSchema['indexes'] = {};
    for (const iname of Array.from(store.indexNames).sort()) {
      const i = store.index(iname);
      indexes[iname] = {
        keyPath: Array.isArray(i.keyPath) ? [...i.keyPath] : i.keyPath,
        unique: i.unique,
        multiEntry: i.multiEntry,
      };
    }
    out[name] = {
      keyPath: Array.isArray(store.keyPath) ? [...store.keyPath] : store.keyPath,
      autoIncrement: store.autoIncrement,
      indexes,
    };
  }
  return out;
}

function openRaw(name: string, version: number, upgrade: (db: IDBDatabase, tx: IDBTransaction) => void) {
  return new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(name, version);
    req.onupgradeneeded = () => upgrade(req.result, req.transaction!);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

describe('store: schema migration', () => {
  it('MIGRATIONS[0] still builds exactly the frozen v1 schema', async () => {
    const name = `db-v1-schema-${process.pid}`;
    const v1 = await openDB(name, 1, {
      upgrade(db, _old, _new, tx) {
        MIGRATIONS[0](db, tx as never);
      },
    });
    try {
      expect(readSchema(v1 as unknown as IDBDatabase)).toEqual(V1_SCHEMA);
    } finally {
      v1.close();
      await deleteStore(name);
    }
  });

  it('upgrading v1 reaches the same schema as a fresh database', async () => {
    const oldName = `db-v1-upgrade-schema-${process.pid}`;
    const freshName = `db-fresh-schema-${process.pid}`;
    (await openRaw(oldName, 1, (db) => createFromSchema(db, V1_SCHEMA))).close();
    (await openStore(oldName)).close();
    (await openStore(freshName)).close();
    const upgraded = await openRaw(oldName, SCHEMA_VERSION, () => undefined);
    const fresh = await openRaw(freshName, SCHEMA_VERSION, () => undefined);
    try {
      expect(readSchema(upgraded)).toEqual(readSchema(fresh));
      // The upgrade added to v1 and removed nothing from it.
      for (const [store, s] of Object.entries(V1_SCHEMA)) {
        expect(readSchema(upgraded)[store]).toMatchObject(s);
      }
    } finally {
      upgraded.close();
      fresh.close();
      await deleteStore(oldName);
      await deleteStore(freshName);
    }
  });

  it('upgrades a v1 database written with the v1 schema to the current version without losing a record', async () => {
    const name = `db-migrate-${process.pid}`;
    const raw = await openRaw(name, 1, (db) => createFromSchema(db, V1_SCHEMA));
    raw.close();
    // Plain idb access at version 1 (no upgrade runs: the database already is v1).
    const v1 = await openDB(name, 1);
    expect(Array.from(v1.objectStoreNames).sort()).toEqual([
      'datasets',
      'images',
      'masks',
      'runs',
      'settings',
    ]);
    await v1.put('datasets', { id: 'd1', name: 'old', source: 'files', createdAt: 1 });
    // v1 image records: one without split/label/createdAt (allowed in v1), one complete.
    await v1.put('images', {
      id: 'i1',
      datasetId: 'd1',
      name: 'a.png',
      blob: new Blob([new Uint8Array([1, 2, 3])]),
      mime: 'image/png',
      width: 2,
      height: 2,
      channels: 1,
      sha256: 'aa',
      thumbnail: new Blob([new Uint8Array([1])]),
    });
    await v1.put('images', {
      id: 'i2',
      datasetId: 'd1',
      name: 'b.png',
      blob: new Blob([new Uint8Array([4])]),
      mime: 'image/png',
      width: 2,
      height: 2,
      channels: 1,
      sha256: 'bb',
      thumbnail: new Blob([new Uint8Array([4])]),
      label: 'defect',
      split: 'test',
      maskId: 'm1',
      createdAt: 2,
    });
    await v1.put('masks', {
      id: 'm1',
      datasetId: 'd1',
      imageId: 'i2',
      blob: new Blob([new Uint8Array([0, 255])]),
      width: 2,
      height: 2,
      kind: 'label',
      createdAt: 2,
    });
    await v1.put('runs', {
      id: 'r1',
      datasetId: 'd1',
      kind: 'train',
      config: {},
      status: 'done',
      createdAt: 3,
    });
    await v1.put('settings', 'wasm', 'backend');
    v1.close();

    const store = await openStore(name);
    opened.push({ store, name });
    expect(SCHEMA_VERSION).toBe(3);
    expect((await store.listDatasets()).map((d) => d.id)).toEqual(['d1']);
    const images = await store.listImages('d1');
    expect(images.map((i) => i.id).sort()).toEqual(['i1', 'i2']);
    const i1 = images.find((i) => i.id === 'i1')!;
    expect([i1.label, i1.split, typeof i1.createdAt]).toEqual(['unlabeled', 'train', 'number']);
    expect(await blobBytes(i1.blob)).toEqual([1, 2, 3]);
    // New v2 indexes see the migrated records.
    expect((await store.listImages('d1', { label: 'unlabeled' })).map((i) => i.id)).toEqual(['i1']);
    expect((await store.countImages('d1')).byLabelSplit['defect/test']).toBe(1);
    expect((await store.getMask('m1'))?.imageId).toBe('i2');
    expect((await store.getRun('r1'))?.status).toBe('done');
    expect(await store.getSetting('backend')).toBe('wasm');
    // Duplicate detection works on migrated images through the new [datasetId, sha256] index.
    const dup = await store.addImages('d1', [{ ...(await newImage(1)), sha256: 'bb', name: 'b-again.png' }]);
    expect(dup.duplicates[0]).toMatchObject({ existingId: 'i2', existingName: 'b.png' });
    // v2 stores exist and work.
    await store.putHead(head('h1', 'd1'));
    expect((await store.listHeads('d1')).length).toBe(1);
  });
});

describe('store: quota and transactions', () => {
  it('a QuotaExceededError mid-batch rolls the whole batch back, names the error and keeps earlier data', async () => {
    const { store } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const before = await store.addImages(d.id, [await newImage(1, { mask: maskOf() }), await newImage(2)]);

    const proto = IDBObjectStore.prototype;
    const realAdd = proto.add;
    let calls = 0;
    proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
      // Let the first records of the batch through so there is something to roll back.
      if (this.name === 'images' && ++calls === 3)
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return realAdd.apply(this, args);
    };
    let err: unknown;
    try {
      await store.addImages(d.id, [
        await newImage(10, { mask: maskOf() }),
        await newImage(11),
        await newImage(12),
        await newImage(13),
      ]);
    } catch (e) {
      err = e;
    } finally {
      proto.add = realAdd;
    }
    expect(err).toBeInstanceOf(StorageQuotaError);
    expect((err as Error).message).toMatch(
      /^StorageQuotaError: storage quota exceeded while storing 4 image\(s\)/,
    );
    expect((err as Error).message).toMatch(/— fix: free space/);

    const after = await store.listImages(d.id);
    expect(after.map((i) => i.name).sort()).toEqual(['img-1.png', 'img-2.png']);
    expect((await store.listMasks(d.id)).length).toBe(1);
    expect(after.map((i) => i.id).sort()).toEqual(before.added.map((i) => i.id).sort());
    // The store still works after the failure.
    expect((await store.addImages(d.id, [await newImage(10)])).added.length).toBe(1);
  });
});

describe('store: a transaction aborted mid-batch (the tab closed)', () => {
  it('leaves no half records: no mask without its image, no image without bytes, earlier data intact', async () => {
    const { store, name } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    const before = await store.addImages(d.id, [await newImage(1, { mask: maskOf() }), await newImage(2)]);
    expect(await halfRecords(name)).toEqual([]);

    // When a page goes away the browser aborts its open transactions, whatever request was next. Abort right
    // after the third image's mask was written and before its image record: the most torn moment of the batch.
    const proto = IDBObjectStore.prototype;
    const realAdd = proto.add;
    let maskAdds = 0;
    let aborted = false;
    proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
      const req = realAdd.apply(this, args);
      if (this.name === 'masks' && ++maskAdds === 3) {
        this.transaction.abort();
        aborted = true;
      }
      return req;
    };
    let err: unknown;
    try {
      await store.addImages(d.id, [
        await newImage(10, { mask: maskOf() }),
        await newImage(11, { mask: maskOf() }),
        await newImage(12),
        await newImage(13, { mask: maskOf() }),
        await newImage(14, { mask: maskOf() }),
      ]);
    } catch (e) {
      err = e;
    } finally {
      proto.add = realAdd;
    }
    expect(aborted).toBe(true);
    expect(err).toBeInstanceOf(StorageError);
    // Nothing of the aborted batch landed: exactly the earlier records, whole.
    expect(await halfRecords(name)).toEqual([]);
    const after = await store.listImages(d.id);
    expect(after.map((i) => i.id).sort()).toEqual(before.added.map((i) => i.id).sort());
    expect((await store.listMasks(d.id)).map((m) => m.imageId)).toEqual([before.added[0].id]);
    // The same batch goes in whole afterwards (no leftovers count as duplicates).
    const again = await store.addImages(d.id, [
      await newImage(10, { mask: maskOf() }),
      await newImage(11, { mask: maskOf() }),
    ]);
    expect(again.duplicates).toEqual([]);
    expect(await halfRecords(name)).toEqual([]);
  });

  it('the integrity check itself finds half records', async () => {
    const { store, name } = await freshStore();
    const d = await store.createDataset({ name: 'D', source: 'files' });
    await store.addImages(d.id, [await newImage(1, { mask: maskOf() })]);
    const db = await openDB(name);
    await db.put('masks', {
      id: 'orphan',
      datasetId: d.id,
      imageId: 'gone',
      kind: 'label',
      blob: maskOf().blob,
    });
    await db.put('images', { id: 'torn', datasetId: d.id, name: 'torn.png', maskId: 'nowhere' });
    db.close();
    const problems = await halfRecords(name);
    expect(problems).toContain('label mask orphan: image gone missing');
    expect(problems).toContain('image torn.png: no bytes');
    expect(problems).toContain('image torn.png: no thumbnail');
    expect(problems).toContain('image torn.png: mask nowhere missing');
  });
});

describe('store: error mapping', () => {
  it('names quota errors however the browser reports them (request error, aborted transaction, event)', () => {
    const quota = new DOMException('full', 'QuotaExceededError');
    expect(storageError(quota, 'x')).toBeInstanceOf(StorageQuotaError);
    // idb rejects `tx.done` with the transaction's error; an abort carries the cause on `.error`.
    expect(storageError({ name: 'AbortError', error: quota }, 'x')).toBeInstanceOf(StorageQuotaError);
    expect(storageError({ type: 'abort', target: { error: quota } }, 'x')).toBeInstanceOf(StorageQuotaError);
    const other = storageError(new DOMException('gone', 'InvalidStateError'), 'saving y');
    expect(other).toBeInstanceOf(StorageError);
    expect(other.message).toMatch(
      /^StorageError: IndexedDB failed while saving y \(InvalidStateError: gone\)/,
    );
  });
});

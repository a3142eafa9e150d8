/**
 * The DefectLab store over IndexedDB (idb). Implements `DefectLabStore` (types.ts).
 *
 * Schema history (each step is a function in `MIGRATIONS`, run in order inside the upgrade transaction, so a
 * database at any older version reaches the current one without losing a record):
 * - v1: datasets, images (index datasetId), masks (index datasetId), runs (index datasetId), settings.
 *   v1 image records could lack `split` (unsplit) and `label` (unlabelled) and `createdAt`.
 * - v2: image indexes label, split, sha256, [datasetId+sha256], generator; mask indexes imageId, kind;
 *   stores heads and features; v1 images get explicit `split: 'train'`, `label: 'unlabeled'`, `createdAt`.
 * - v3: stores batches (generation batches in flight) and batchSamples (key [batchId, index], index batchId),
 *   so a reload mid-batch resumes it; nothing older changes.
 *
 * Every write runs in one readwrite transaction: on any error (QuotaExceededError included) the transaction is
 * aborted, so a batch lands completely or not at all, and the error comes back named (`StorageQuotaError`).
 */
import { openDB, deleteDB, type IDBPDatabase, type IDBPTransaction } from 'idb';
import type { DatasetRecord, ImageRecord, Label, MaskRecord, RunRecord, Split } from '../../core/dataset.ts';
import { LABELS, SPLITS } from '../../core/dataset.ts';
import type {
  AcceptedSample,
  AddImagesResult,
  BatchRecord,
  BatchSampleRecord,
  Counts,
  DefectLabStore,
  FeatureKey,
  HeadRecord,
  ImageFilter,
  NewImage,
  StorageInfo,
  StoredFeatures,
} from './types.ts';
import { RecordNotFoundError, StoreVersionChangedError, storageError } from './errors.ts';

export const SCHEMA_VERSION = 3;
export const DEFAULT_DB_NAME = 'defectlab';

type AnyDB = IDBPDatabase<unknown>;
type UpgradeTx = IDBPTransaction<unknown, string[], 'versionchange'>;
type WriteTx = IDBPTransaction<unknown, string[], 'readwrite'>;

/** A cached feature vector as stored (one record per backbone + preprocessing + image bytes). */
interface FeatureRow extends StoredFeatures {
  key: string;
  backbone: string;
  sha256: string;
  preprocessing: string;
}

/**
 * Schema steps: `MIGRATIONS[v - 1]` takes a database from version v - 1 to v. Exported so the migration test
 * can build a real v1 database with exactly the v1 step.
 */
export const MIGRATIONS: ((db: AnyDB, tx: UpgradeTx) => void)[] = [
  // v0 → v1
  (db) => {
    db.createObjectStore('datasets', { keyPath: 'id' });
    db.createObjectStore('images', { keyPath: 'id' }).createIndex('datasetId', 'datasetId');
    db.createObjectStore('masks', { keyPath: 'id' }).createIndex('datasetId', 'datasetId');
    db.createObjectStore('runs', { keyPath: 'id' }).createIndex('datasetId', 'datasetId');
    db.createObjectStore('settings');
  },
  // v1 → v2
  (db, tx) => {
    const images = tx.objectStore('images');
    images.createIndex('label', 'label');
    images.createIndex('split', 'split');
    images.createIndex('sha256', 'sha256');
    images.createIndex('datasetId_sha256', ['datasetId', 'sha256']);
    images.createIndex('generator', 'provenance.generator');
    const masks = tx.objectStore('masks');
    masks.createIndex('imageId', 'imageId');
    masks.createIndex('kind', 'kind');
    db.createObjectStore('heads', { keyPath: 'id' }).createIndex('datasetId', 'datasetId');
    db.createObjectStore('features', { keyPath: 'key' }).createIndex('backbone', 'backbone');
    // Fill what v1 left implicit, so every index (label, split) sees every image. The cursor walk is chained
    // off the upgrade transaction, which stays open until it finishes.
    const now = Date.now();
    void (async () => {
      let cursor = await images.openCursor();
      while (cursor) {
        const r = cursor.value as Partial<ImageRecord>;
        if (!r.split || !r.label || !r.createdAt) {
          await cursor.update({
            ...r,
            split: r.split ?? 'train',
            label: r.label ?? 'unlabeled',
            createdAt: r.createdAt ?? now,
          });
        }
        cursor = await cursor.continue();
      }
    })();
  },
  // v2 → v3
  (db) => {
    db.createObjectStore('batches', { keyPath: 'id' });
    db.createObjectStore('batchSamples', { keyPath: ['batchId', 'index'] }).createIndex('batchId', 'batchId');
  },
];

/** Runs the schema steps from `oldVersion` up to `newVersion` inside an upgrade transaction. */
export function migrate(db: AnyDB, oldVersion: number, newVersion: number, tx: UpgradeTx): void {
  for (let v = oldVersion; v < newVersion; v++) MIGRATIONS[v](db, tx);
}

/** What a tab wants to hear about other tabs' schema changes (see `openStore`). */
export interface OpenStoreOptions {
  /**
   * Another tab opened the database at a newer version (or deletes it): this connection has been closed so that
   * tab is not blocked, and every later call of this store throws `StoreVersionChangedError`.
   */
  onVersionChange?: () => void;
  /** This tab's upgrade waits for another tab, which holds an older version open and does not close it. */
  onBlocked?: () => void;
}

/**
 * Opens (creating or upgrading) the store. Pass another name for tests or a second profile.
 * Another tab holding an older version open is asked to close (`blocking` closes this connection).
 */
export async function openStore(
  name = DEFAULT_DB_NAME,
  opts: OpenStoreOptions = {},
): Promise<DefectLabStore> {
  let store: IdbStore | null = null;
  const db = await openDB(name, SCHEMA_VERSION, {
    upgrade(database, oldVersion, newVersion, transaction) {
      migrate(database, oldVersion, newVersion ?? SCHEMA_VERSION, transaction as unknown as UpgradeTx);
    },
    blocking() {
      db.close();
      store?.markClosed();
      opts.onVersionChange?.();
    },
    blocked() {
      opts.onBlocked?.();
    },
  }).catch((e: unknown) => {
    // An older tab (this code) opening a database a newer app already upgraded.
    if ((e as { name?: string } | null)?.name === 'VersionError')
      throw new StoreVersionChangedError(
        `the database is at a newer version than this tab's code (${SCHEMA_VERSION})`,
      );
    throw e;
  });
  store = new IdbStore(db);
  return store;
}

/** Deletes the whole database (tests, "reset everything" in the System panel). */
export async function deleteStore(name = DEFAULT_DB_NAME): Promise<void> {
  await deleteDB(name);
}

function newId(): string {
  return crypto.randomUUID();
}

let lastStamp = 0;
/**
 * `Date.now()`, but later than the last stamp this page gave: records listed by `createdAt` (masks saved in a
 * loop, a share link's four) keep the order they were made in, where random ids would order a tie by chance.
 */
function stamp(): number {
  lastStamp = Math.max(Date.now(), lastStamp + 1);
  return lastStamp;
}

function emptyCounts(): Counts {
  const byLabel = Object.fromEntries(LABELS.map((l) => [l, 0])) as Record<Label, number>;
  const bySplit = Object.fromEntries(SPLITS.map((s) => [s, 0])) as Record<Split, number>;
  const byLabelSplit = {} as Record<`${Label}/${Split}`, number>;
  for (const l of LABELS) for (const s of SPLITS) byLabelSplit[`${l}/${s}`] = 0;
  return { total: 0, byLabel, bySplit, byLabelSplit, masks: 0, generated: {} };
}

/** The images matching `filter`, in import order (createdAt, then name) so the grid is stable across reloads. */
function filterImages(all: ImageRecord[], filter?: ImageFilter): ImageRecord[] {
  const gen = filter?.generator;
  const out = all.filter(
    (r) =>
      (!filter?.label || r.label === filter.label) &&
      (!filter?.split || r.split === filter.split) &&
      (gen === undefined || (gen === 'none' ? !r.provenance : r.provenance?.generator === gen)),
  );
  return out.sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function countRecords(all: ImageRecord[]): Counts {
  const c = emptyCounts();
  for (const r of all) {
    c.total++;
    c.byLabel[r.label]++;
    c.bySplit[r.split]++;
    c.byLabelSplit[`${r.label}/${r.split}`]++;
    if (r.maskId) c.masks++;
    if (r.provenance) c.generated[r.provenance.generator] = (c.generated[r.provenance.generator] ?? 0) + 1;
  }
  return c;
}

function featureKey(k: FeatureKey): string {
  return `${k.backbone}\u0000${k.preprocessing}\u0000${k.sha256}`;
}

class IdbStore implements DefectLabStore {
  #closed = false;
  constructor(private readonly conn: AnyDB) {}

  /** The connection, unless another tab's version change closed it (then a named error, not InvalidStateError). */
  private get db(): AnyDB {
    if (this.#closed) throw new StoreVersionChangedError();
    return this.conn;
  }

  markClosed(): void {
    this.#closed = true;
  }

  /**
   * Runs `body` in one readwrite transaction and waits for the commit. Any throw (a failed put, a quota error,
   * a missing record) aborts the transaction, so nothing of it is kept. `body` must only await IndexedDB
   * requests of `tx`, or the transaction auto-commits early.
   */
  private async write<T>(stores: string[], what: string, body: (tx: WriteTx) => Promise<T>): Promise<T> {
    let tx: WriteTx;
    try {
      tx = this.db.transaction(stores, 'readwrite') as unknown as WriteTx;
    } catch (e) {
      throw storageError(e, what);
    }
    // Rejections of `done` are handled below; keep them from surfacing as unhandled.
    tx.done.catch(() => undefined);
    try {
      const result = await body(tx);
      await tx.done;
      return result;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // Already aborted by the failed request, or finished.
      }
      throw storageError(e, what);
    }
  }

  // ---- datasets

  async createDataset(d: Omit<DatasetRecord, 'id' | 'createdAt'>): Promise<DatasetRecord> {
    const rec: DatasetRecord = { ...d, id: newId(), createdAt: stamp() };
    await this.write(['datasets'], `creating dataset "${d.name}"`, async (tx) => {
      const store = tx.objectStore('datasets');
      // Later than every dataset already stored, also one another tab made in the same millisecond.
      for (const other of (await store.getAll()) as DatasetRecord[])
        rec.createdAt = Math.max(rec.createdAt, other.createdAt + 1);
      await store.add(rec);
    });
    return rec;
  }

  async listDatasets(): Promise<DatasetRecord[]> {
    const all = (await this.db.getAll('datasets')) as DatasetRecord[];
    return all.sort((a, b) => a.createdAt - b.createdAt);
  }

  async getDataset(id: string): Promise<DatasetRecord | undefined> {
    return (await this.db.get('datasets', id)) as DatasetRecord | undefined;
  }

  async renameDataset(id: string, name: string): Promise<void> {
    await this.write(['datasets'], `renaming dataset ${id}`, async (tx) => {
      const store = tx.objectStore('datasets');
      const rec = (await store.get(id)) as DatasetRecord | undefined;
      if (!rec) throw new RecordNotFoundError('dataset', id);
      await store.put({ ...rec, name });
    });
  }

  async deleteDataset(id: string): Promise<void> {
    const stores = ['datasets', 'images', 'masks', 'runs', 'heads'];
    await this.write(stores, `deleting dataset ${id}`, async (tx) => {
      await tx.objectStore('datasets').delete(id);
      for (const s of ['images', 'masks', 'runs', 'heads']) {
        const index = tx.objectStore(s).index('datasetId');
        let cursor = await index.openCursor(id);
        while (cursor) {
          await cursor.delete();
          cursor = await cursor.continue();
        }
      }
    });
  }

  // ---- images

  async addImages(datasetId: string, images: NewImage[]): Promise<AddImagesResult> {
    const what = `storing ${images.length} image(s) in dataset ${datasetId}`;
    return this.write(['datasets', 'images', 'masks'], what, async (tx) => {
      if (!(await tx.objectStore('datasets').get(datasetId)))
        throw new RecordNotFoundError('dataset', datasetId);
      const imageStore = tx.objectStore('images');
      const maskStore = tx.objectStore('masks');
      const bySha = imageStore.index('datasetId_sha256');
      // Every request of the batch is issued at once and awaited together: a transaction runs its requests in
      // order anyway, and awaiting each one would cost a round trip per record (the import's bottleneck in
      // Chromium). Any failed request still rejects the whole batch, and `write` aborts it.
      const existing = await Promise.all(
        images.map((img) => bySha.get([datasetId, img.sha256]) as Promise<ImageRecord | undefined>),
      );
      const inBatch = new Map<string, ImageRecord>();
      const result: AddImagesResult = { added: [], duplicates: [] };
      const requests: Promise<unknown>[] = [];
      const now = Date.now();
      const issue = (img: NewImage, i: number) => {
        const dup = inBatch.get(img.sha256) ?? existing[i];
        if (dup) {
          result.duplicates.push({ name: img.name, existingId: dup.id, existingName: dup.name });
          return;
        }
        const { mask, ...fields } = img;
        const rec: ImageRecord = { ...fields, id: newId(), datasetId, createdAt: now };
        if (mask) {
          const m: MaskRecord = {
            id: newId(),
            datasetId,
            imageId: rec.id,
            blob: mask.blob,
            width: mask.width,
            height: mask.height,
            kind: 'label',
            createdAt: now,
          };
          rec.maskId = m.id;
          requests.push(maskStore.add(m));
        }
        requests.push(imageStore.add(rec));
        inBatch.set(rec.sha256, rec);
        result.added.push(rec);
      };
      try {
        images.forEach(issue);
      } catch (e) {
        // A request refused on the spot (quota, an aborted transaction): the ones already issued fail with the
        // abort; they are answered by this error, not left as unhandled rejections.
        for (const r of requests) r.catch(() => undefined);
        throw e;
      }
      await Promise.all(requests);
      return result;
    });
  }

  async getImage(id: string): Promise<ImageRecord | undefined> {
    return (await this.db.get('images', id)) as ImageRecord | undefined;
  }

  // One getAll per question, not a cursor: a cursor pays a round trip per record (seconds at 10,000 images),
  // and the records carry Blob handles, not the bytes, so reading them all at once is cheap.
  private allImages(datasetId: string): Promise<ImageRecord[]> {
    return this.db.getAllFromIndex('images', 'datasetId', datasetId) as Promise<ImageRecord[]>;
  }

  async listImages(datasetId: string, filter?: ImageFilter): Promise<ImageRecord[]> {
    return filterImages(await this.allImages(datasetId), filter);
  }

  async countImages(datasetId: string): Promise<Counts> {
    return countRecords(await this.allImages(datasetId));
  }

  async browseImages(
    datasetId: string,
    filter?: ImageFilter,
  ): Promise<{ images: ImageRecord[]; counts: Counts }> {
    const all = await this.allImages(datasetId);
    return { images: filterImages(all, filter), counts: countRecords(all) };
  }

  async updateImages(
    ids: string[],
    patch: Partial<Pick<ImageRecord, 'label' | 'split' | 'defectClass'>>,
  ): Promise<void> {
    await this.write(['images'], `updating ${ids.length} image(s)`, async (tx) => {
      const store = tx.objectStore('images');
      for (const id of ids) {
        const rec = (await store.get(id)) as ImageRecord | undefined;
        if (!rec) throw new RecordNotFoundError('image', id);
        await store.put({ ...rec, ...patch });
      }
    });
  }

  async deleteImages(ids: string[]): Promise<{ images: ImageRecord[]; masks: MaskRecord[] }> {
    return this.write(['images', 'masks'], `deleting ${ids.length} image(s)`, async (tx) => {
      const imageStore = tx.objectStore('images');
      const maskStore = tx.objectStore('masks');
      const images: ImageRecord[] = [];
      const masks: MaskRecord[] = [];
      for (const id of ids) {
        const rec = (await imageStore.get(id)) as ImageRecord | undefined;
        if (!rec) continue;
        images.push(rec);
        const owned = (await maskStore.index('imageId').getAll(id)) as MaskRecord[];
        for (const m of owned) {
          masks.push(m);
          await maskStore.delete(m.id);
        }
        await imageStore.delete(id);
      }
      return { images, masks };
    });
  }

  async restoreImages(deleted: { images: ImageRecord[]; masks: MaskRecord[] }): Promise<void> {
    const n = deleted.images.length;
    await this.write(['images', 'masks'], `restoring ${n} deleted image(s)`, async (tx) => {
      for (const m of deleted.masks) await tx.objectStore('masks').put(m);
      for (const r of deleted.images) await tx.objectStore('images').put(r);
    });
  }

  // ---- masks

  async putMask(mask: Omit<MaskRecord, 'id' | 'createdAt'> & { id?: string }): Promise<MaskRecord> {
    const rec: MaskRecord = { ...mask, id: mask.id ?? newId(), createdAt: stamp() };
    await this.write(['masks'], `saving mask ${rec.name ?? rec.id}`, async (tx) => {
      await tx.objectStore('masks').put(rec);
    });
    return rec;
  }

  async getMask(id: string): Promise<MaskRecord | undefined> {
    return (await this.db.get('masks', id)) as MaskRecord | undefined;
  }

  async listMasks(datasetId: string, kind?: MaskRecord['kind']): Promise<MaskRecord[]> {
    const all = (await this.db.getAllFromIndex('masks', 'datasetId', datasetId)) as MaskRecord[];
    return (kind ? all.filter((m) => m.kind === kind) : all).sort((a, b) => a.createdAt - b.createdAt);
  }

  async deleteMask(id: string): Promise<void> {
    await this.write(['masks', 'images'], `deleting mask ${id}`, async (tx) => {
      const m = (await tx.objectStore('masks').get(id)) as MaskRecord | undefined;
      if (!m) return;
      await tx.objectStore('masks').delete(id);
      // An image must not point at a mask that is gone.
      if (m.imageId) {
        const img = (await tx.objectStore('images').get(m.imageId)) as ImageRecord | undefined;
        if (img?.maskId === id) {
          const { maskId: _gone, ...rest } = img;
          await tx.objectStore('images').put(rest);
        }
      }
    });
  }

  async setImageMask(
    imageId: string,
    mask: { blob: Blob; width: number; height: number } | null,
  ): Promise<void> {
    await this.write(['images', 'masks'], `setting the mask of image ${imageId}`, async (tx) => {
      const images = tx.objectStore('images');
      const masks = tx.objectStore('masks');
      const img = (await images.get(imageId)) as ImageRecord | undefined;
      if (!img) throw new RecordNotFoundError('image', imageId);
      if (img.maskId) await masks.delete(img.maskId);
      const { maskId: _old, ...rest } = img;
      const next: ImageRecord = rest;
      if (mask) {
        const m: MaskRecord = {
          id: newId(),
          datasetId: img.datasetId,
          imageId,
          blob: mask.blob,
          width: mask.width,
          height: mask.height,
          kind: 'label',
          createdAt: Date.now(),
        };
        await masks.add(m);
        next.maskId = m.id;
      }
      await images.put(next);
    });
  }

  // ---- generated samples

  async acceptSamples(datasetId: string, samples: AcceptedSample[]): Promise<ImageRecord[]> {
    const news: NewImage[] = samples.map((s) => {
      const p = s.provenance;
      return {
        name: `${p.generator}-${String(p.seed)}-${s.sha256.slice(0, 8)}.png`,
        blob: s.png,
        mime: 'image/png',
        width: s.width,
        height: s.height,
        channels: s.channels,
        sha256: s.sha256,
        thumbnail: s.thumbnail,
        label: 'defect',
        split: s.split ?? 'train',
        provenance: p,
        mask: s.mask,
      };
    });
    const r = await this.addImages(datasetId, news);
    return r.added;
  }

  // ---- runs and heads

  async putBatch(batch: BatchRecord): Promise<void> {
    await this.write(['batches'], `saving batch ${batch.id}`, async (tx) => {
      await tx.objectStore('batches').put(batch);
    });
  }

  async listBatches(): Promise<BatchRecord[]> {
    const all = (await this.db.getAll('batches')) as BatchRecord[];
    return all.sort((a, b) => a.createdAt - b.createdAt);
  }

  async addBatchSamples(samples: BatchSampleRecord[]): Promise<void> {
    if (samples.length === 0) return;
    await this.write(['batchSamples'], `saving ${samples.length} generated samples`, async (tx) => {
      const st = tx.objectStore('batchSamples');
      // One put after another: a put that throws leaves no earlier request's rejection unhandled.
      for (const r of samples) await st.put(r);
    });
  }

  async batchSamples(batchId: string): Promise<BatchSampleRecord[]> {
    const all = (await this.db.getAllFromIndex('batchSamples', 'batchId', batchId)) as BatchSampleRecord[];
    return all.sort((a, b) => a.index - b.index);
  }

  async deleteBatch(batchId: string): Promise<void> {
    await this.write(['batches', 'batchSamples'], `deleting batch ${batchId}`, async (tx) => {
      await tx.objectStore('batches').delete(batchId);
      const st = tx.objectStore('batchSamples');
      await st.delete(IDBKeyRange.bound([batchId, -Infinity], [batchId, Infinity]));
    });
  }

  async putRun(run: RunRecord): Promise<void> {
    await this.write(['runs'], `saving run ${run.id}`, async (tx) => {
      await tx.objectStore('runs').put(run);
    });
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    return (await this.db.get('runs', id)) as RunRecord | undefined;
  }

  async listRuns(datasetId: string): Promise<RunRecord[]> {
    const all = (await this.db.getAllFromIndex('runs', 'datasetId', datasetId)) as RunRecord[];
    return all.sort((a, b) => a.createdAt - b.createdAt);
  }

  async putHead(head: HeadRecord): Promise<void> {
    await this.write(['heads'], `saving head ${head.name}`, async (tx) => {
      await tx.objectStore('heads').put(head);
    });
  }

  async getHead(id: string): Promise<HeadRecord | undefined> {
    return (await this.db.get('heads', id)) as HeadRecord | undefined;
  }

  async listHeads(datasetId?: string): Promise<HeadRecord[]> {
    const all = (
      datasetId === undefined
        ? await this.db.getAll('heads')
        : await this.db.getAllFromIndex('heads', 'datasetId', datasetId)
    ) as HeadRecord[];
    return all.sort((a, b) => a.createdAt - b.createdAt);
  }

  async deleteHead(id: string): Promise<void> {
    await this.write(['heads'], `deleting head ${id}`, async (tx) => {
      await tx.objectStore('heads').delete(id);
    });
  }

  // ---- feature cache

  async getFeatures(key: FeatureKey): Promise<StoredFeatures | undefined> {
    const row = (await this.db.get('features', featureKey(key))) as FeatureRow | undefined;
    if (!row) return undefined;
    return {
      pooled: row.pooled,
      ...(row.spatial ? { spatial: row.spatial } : {}),
      ...(row.backend ? { backend: row.backend } : {}),
    };
  }

  async putFeatures(key: FeatureKey, f: StoredFeatures): Promise<void> {
    const row: FeatureRow = { ...key, key: featureKey(key), pooled: f.pooled };
    if (f.spatial) row.spatial = f.spatial;
    if (f.backend) row.backend = f.backend;
    await this.write(['features'], `caching features of ${key.sha256.slice(0, 12)}`, async (tx) => {
      await tx.objectStore('features').put(row);
    });
  }

  async clearFeatures(backbone?: string): Promise<void> {
    await this.write(['features'], 'clearing the feature cache', async (tx) => {
      const store = tx.objectStore('features');
      if (backbone === undefined) {
        await store.clear();
        return;
      }
      let cursor = await store.index('backbone').openCursor(backbone);
      while (cursor) {
        await cursor.delete();
        cursor = await cursor.continue();
      }
    });
  }

  // ---- settings

  async getSetting<T>(key: string): Promise<T | undefined> {
    return (await this.db.get('settings', key)) as T | undefined;
  }

  async setSetting<T>(key: string, value: T): Promise<void> {
    await this.write(['settings'], `saving setting ${key}`, async (tx) => {
      await tx.objectStore('settings').put(value, key);
    });
  }

  // ---- storage

  async storageInfo(): Promise<StorageInfo> {
    const storage = (globalThis as { navigator?: Navigator }).navigator?.storage;
    if (!storage?.estimate) return { usage: 0, quota: 0, persisted: false };
    const est = await storage.estimate();
    const persisted = storage.persisted ? await storage.persisted() : false;
    return { usage: est.usage ?? 0, quota: est.quota ?? 0, persisted };
  }

  async requestPersistence(): Promise<boolean> {
    const storage = (globalThis as { navigator?: Navigator }).navigator?.storage;
    if (!storage?.persist) return false;
    try {
      return await storage.persist();
    } catch {
      // Some browsers throw instead of answering false (private mode); not being persisted is the answer.
      return false;
    }
  }

  close(): void {
    this.conn.close();
  }
}

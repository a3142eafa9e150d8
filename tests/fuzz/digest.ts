/**
 * A digest of everything stored: every record of every object store of an IndexedDB database (fake-indexeddb in
 * Node), read raw with idb so a store bug cannot hide what changed. Blobs are hashed by content. Taken before and
 * after an entry point's corpus; `compareDigests` names each record that changed, vanished or appeared.
 */
import { createHash } from 'node:crypto';
import { openDB } from 'idb';

/** object store → record key (as JSON) → sha256 of the record. */
export type StoreDigest = Map<string, Map<string, string>>;

/** Canonical bytes of a record: keys sorted, typed arrays and Blobs by content, so equal data hashes equal. */
async function canonical(v: unknown): Promise<unknown> {
  if (v instanceof Blob)
    return {
      blob: v.type,
      sha256: createHash('sha256')
        .update(new Uint8Array(await v.arrayBuffer()))
        .digest('hex'),
    };
  if (ArrayBuffer.isView(v))
    return {
      view: v.constructor.name,
      sha256: createHash('sha256')
        .update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
        .digest('hex'),
    };
  if (v instanceof ArrayBuffer)
    return { buffer: createHash('sha256').update(new Uint8Array(v)).digest('hex') };
  if (v instanceof Date) return { date: v.toISOString() };
  if (Array.isArray(v)) return Promise.all(v.map(canonical));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = await canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

export async function storeDigest(dbName: string): Promise<StoreDigest> {
  const db = await openDB(dbName);
  try {
    const out: StoreDigest = new Map();
    for (const name of [...db.objectStoreNames].sort()) {
      const tx = db.transaction(name, 'readonly');
      const [keys, values] = await Promise.all([tx.store.getAllKeys(), tx.store.getAll()]);
      await tx.done;
      const records = new Map<string, string>();
      for (let i = 0; i < keys.length; i++)
        records.set(
          JSON.stringify(keys[i]),
          createHash('sha256')
            .update(JSON.stringify(await canonical(values[i])))
            .digest('hex'),
        );
      out.set(name, records);
    }
    return out;
  } finally {
    db.close();
  }
}

/** One hash over the whole digest, for reports. */
export function digestHash(d: StoreDigest): string {
  const h = createHash('sha256');
  for (const [store, records] of [...d.entries()].sort())
    for (const [k, v] of [...records.entries()].sort()) h.update(`${store}\u0000${k}\u0000${v}\n`);
  return h.digest('hex');
}

/**
 * Differences between two digests: `changed` and `removed` records are always a loss; `added` ones are listed
 * for the caller to judge (an importer may add to the dataset it was pointed at, nowhere else).
 */
export function compareDigests(
  before: StoreDigest,
  after: StoreDigest,
): { changed: string[]; removed: string[]; added: { store: string; key: string }[] } {
  const changed: string[] = [];
  const removed: string[] = [];
  const added: { store: string; key: string }[] = [];
  for (const [store, records] of before) {
    const now = after.get(store) ?? new Map<string, string>();
    for (const [k, v] of records) {
      if (!now.has(k)) removed.push(`${store} ${k}`);
      else if (now.get(k) !== v) changed.push(`${store} ${k}`);
    }
  }
  for (const [store, records] of after) {
    const was = before.get(store) ?? new Map<string, string>();
    for (const k of records.keys()) if (!was.has(k)) added.push({ store, key: k });
  }
  return { changed, removed, added };
}

/**
 * Integrity check for tests that tear writes on purpose (aborted transactions, quota errors): reads the raw
 * database with idb, not through the store, so a store bug cannot hide what it left behind.
 */
import { openDB } from 'idb';
import type { ImageRecord } from '../../src/core/dataset.ts';

/**
 * Every record in the database, checked for the "half record" shapes a torn write would leave: an image without
 * its bytes, thumbnail or hash, an image pointing at a mask that is not there, a label mask whose image is gone
 * or does not point back. Returns the problems found (empty when the database is whole).
 */
export async function halfRecords(name: string): Promise<string[]> {
  const db = await openDB(name);
  try {
    const images = (await db.getAll('images')) as Partial<ImageRecord>[];
    const masks = (await db.getAll('masks')) as { id: string; imageId?: string; kind: string; blob?: Blob }[];
    const datasets = new Set(((await db.getAll('datasets')) as { id: string }[]).map((d) => d.id));
    const maskById = new Map(masks.map((m) => [m.id, m]));
    const imageById = new Map(images.map((i) => [i.id, i]));
    const problems: string[] = [];
    for (const i of images) {
      if (!(i.blob instanceof Blob) || i.blob.size === 0) problems.push(`image ${i.name}: no bytes`);
      if (!(i.thumbnail instanceof Blob) || i.thumbnail.size === 0)
        problems.push(`image ${i.name}: no thumbnail`);
      if (!i.sha256) problems.push(`image ${i.name}: no sha256`);
      if (!i.datasetId || !datasets.has(i.datasetId)) problems.push(`image ${i.name}: no dataset`);
      if (i.maskId && !maskById.has(i.maskId)) problems.push(`image ${i.name}: mask ${i.maskId} missing`);
    }
    for (const m of masks) {
      if (!(m.blob instanceof Blob) || m.blob.size === 0) problems.push(`mask ${m.id}: no bytes`);
      if (m.kind !== 'label') continue;
      const img = m.imageId ? imageById.get(m.imageId) : undefined;
      if (!img) problems.push(`label mask ${m.id}: image ${m.imageId} missing`);
      else if (img.maskId !== m.id)
        problems.push(`label mask ${m.id}: image ${img.name} does not point to it`);
    }
    return problems;
  } finally {
    db.close();
  }
}

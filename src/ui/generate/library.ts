/**
 * The mask library over the store: save masks for reuse, apply one to many images (each gets a region mask of
 * its own size), add random Perlin regions, and import the label masks of real labelled defects as regions (as
 * DIAG lets real defect shapes stand in for expert-drawn regions). No DOM: unit-tested on fake-indexeddb.
 *
 * Kinds (`MaskRecord.kind`): 'library' = saved for reuse (no image); 'region' = where generators may paint on
 * one image (`imageId` set, at most one per image); 'label' masks belong to the store's image records.
 */
import type { ImageRecord, MaskRecord } from '../../core/dataset.ts';
import type { RasterImage } from '../../core/image.ts';
import { binarize } from '../../core/image.ts';
import { checkMask, countOn, fitMask, randomRegionMask } from '../../core/mask/index.ts';
import { decodeImage, encodePng } from '../../runtime/decode.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { DefectLabStore } from '../../runtime/db/types.ts';

/** Mask → PNG Blob for the store. */
export function maskBlob(mask: RasterImage): Blob {
  checkMask(mask);
  const png = encodePng(mask);
  return new Blob([bytesOf(png)], { type: 'image/png' });
}

/** A stored mask's pixels (binary 0/255). */
/**
 * A stored mask's pixels as a binary 0/255 mask. Decoding goes through the app's one image door
 * (`runtime/decode.ts`), so a mask imported as JPEG or RGB PNG reads too (gray ≥ 128 is in).
 */
export async function readMask(rec: Pick<MaskRecord, 'blob' | 'id' | 'name'>): Promise<RasterImage> {
  const { raster } = await decodeImage(
    new Uint8Array(await rec.blob.arrayBuffer()),
    rec.name ?? `mask ${rec.id}`,
  );
  return binarize(raster, 128);
}

export async function listLibrary(store: DefectLabStore, datasetId: string): Promise<MaskRecord[]> {
  const all = await store.listMasks(datasetId, 'library');
  return all.sort((a, b) => a.createdAt - b.createdAt);
}

export async function saveLibraryMask(
  store: DefectLabStore,
  datasetId: string,
  mask: RasterImage,
  name: string,
): Promise<MaskRecord> {
  if (countOn(mask) === 0)
    throw new InvalidArgumentError(
      'mask',
      'a mask with at least one painted pixel (an empty region is useless)',
      'an empty mask',
    );
  return store.putMask({
    datasetId,
    blob: maskBlob(mask),
    width: mask.width,
    height: mask.height,
    kind: 'library',
    name,
  });
}

/** The region mask stored for an image, if any. */
export async function regionMaskOf(
  store: DefectLabStore,
  datasetId: string,
  imageId: string,
): Promise<MaskRecord | undefined> {
  const all = await store.listMasks(datasetId, 'region');
  return all.filter((m) => m.imageId === imageId).sort((a, b) => b.createdAt - a.createdAt)[0];
}

/** Stores `mask` as the image's region mask, replacing the previous one (same record id). */
export async function saveRegionMask(
  store: DefectLabStore,
  datasetId: string,
  image: Pick<ImageRecord, 'id' | 'name' | 'width' | 'height'>,
  mask: RasterImage,
): Promise<MaskRecord> {
  const fitted =
    mask.width === image.width && mask.height === image.height
      ? mask
      : fitMask(mask, image.width, image.height);
  const prev = await regionMaskOf(store, datasetId, image.id);
  return store.putMask({
    id: prev?.id,
    datasetId,
    imageId: image.id,
    blob: maskBlob(fitted),
    width: fitted.width,
    height: fitted.height,
    kind: 'region',
    name: `region of ${image.name}`,
  });
}

/** Applies one mask to many images: each gets it (resized nearest-neighbour to its size) as its region mask. */
export async function applyMaskToImages(
  store: DefectLabStore,
  datasetId: string,
  mask: RasterImage,
  images: Pick<ImageRecord, 'id' | 'name' | 'width' | 'height'>[],
): Promise<MaskRecord[]> {
  const out: MaskRecord[] = [];
  for (const img of images) out.push(await saveRegionMask(store, datasetId, img, mask));
  return out;
}

/** `count` random Perlin region masks of the given size saved to the library, seeded (`seed`, `seed:1`, …). */
export async function addRandomRegions(
  store: DefectLabStore,
  datasetId: string,
  width: number,
  height: number,
  count: number,
  seed: number | string,
): Promise<MaskRecord[]> {
  if (!Number.isInteger(count) || count < 1 || count > 100)
    throw new InvalidArgumentError('count', 'an integer in [1, 100]', count);
  const out: MaskRecord[] = [];
  for (let i = 0; i < count; i++) {
    const s = `${seed}:${i}`;
    const { mask, params } = randomRegionMask(width, height, s);
    out.push(
      await saveLibraryMask(
        store,
        datasetId,
        mask,
        `perlin ${params.scaleX}×${params.scaleY} (seed ${s}, ${(100 * params.coverage).toFixed(1)}%)`,
      ),
    );
  }
  return out;
}

const DEFECT_PREFIX = 'defect: ';

/**
 * Copies the label masks of the dataset's real (not generated) defect images into the library, once each: an
 * image already imported (same library name) is skipped.
 */
export async function importDefectMasks(
  store: DefectLabStore,
  datasetId: string,
): Promise<{ added: MaskRecord[]; skipped: number }> {
  const defects = (await store.listImages(datasetId, { label: 'defect' })).filter(
    (i) => i.maskId && !i.provenance,
  );
  const have = new Set((await listLibrary(store, datasetId)).map((m) => m.name));
  const added: MaskRecord[] = [];
  let skipped = 0;
  for (const img of defects) {
    const name = `${DEFECT_PREFIX}${img.name}`;
    const label = img.maskId ? await store.getMask(img.maskId) : undefined;
    if (have.has(name) || !label) {
      skipped++;
      continue;
    }
    added.push(
      await store.putMask({
        datasetId,
        blob: label.blob,
        width: label.width,
        height: label.height,
        kind: 'library',
        name,
      }),
    );
    have.add(name);
  }
  return { added, skipped };
}

/**
 * The exact bytes of a view, backed by a plain ArrayBuffer: encoders return views into larger pooled buffers,
 * so handing `.buffer` to a Blob would store trailing garbage.
 */
export function bytesOf(v: Uint8Array): Uint8Array<ArrayBuffer> {
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer
    ? (v as Uint8Array<ArrayBuffer>)
    : new Uint8Array(v);
}

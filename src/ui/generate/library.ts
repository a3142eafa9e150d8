/**
 * The mask library over the store: save masks for reuse, apply one to many images (each gets a region mask of
 * its own size), add random Perlin regions, and import the label masks of real labelled defects as regions (as
 * DIAG lets real defect shapes stand in for expert-drawn regions). No DOM: unit-tested on fake-indexeddb.
 *
 * Kinds (`MaskRecord.kind`): 'library' = saved for reuse (no image); 'region' = where generators may paint on
 * one image (`imageId` set, at most one per image); 'label' masks belong to the store's image records.
 *
 * Library and region masks also keep the painter's feather σ (`featherSigma`): the binary mask is what is stored
 * and what labels are checked against; the σ says how soft the generation mask made from it is (diffusion's
 * paste-back blur, the synthetic generators' blend edge). Label masks never carry one.
 */
import type { ImageRecord, MaskRecord } from '../../core/dataset.ts';
import type { RasterImage } from '../../core/image.ts';
import { binarize } from '../../core/image.ts';
import { checkMask, countOn, fitMask } from '../../core/mask/index.ts';
import { randomPerlinMask } from '../../core/synth/regionMask.ts';
import { decodeImage, encodePng } from '../../runtime/decode.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import type { DefectLabStore } from '../../runtime/db/types.ts';

/** Largest feather σ the painter offers (image pixels); stored values are clamped to it. */
export const MAX_FEATHER = 64;

/** The feather σ stored with a mask: 0 for masks saved without one (older records, label masks). */
export function featherOf(rec: MaskRecord | undefined | null): number {
  if (!rec || rec.kind === 'label') return 0;
  const v = rec.featherSigma;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.min(MAX_FEATHER, v) : 0;
}

function checkFeather(sigma: number): number {
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma < 0 || sigma > MAX_FEATHER)
    throw new InvalidArgumentError('featherSigma', `a number in [0, ${MAX_FEATHER}] (pixels)`, sigma);
  return sigma;
}

/** Mask → PNG Blob for the store. */
export function maskBlob(mask: RasterImage): Blob {
  checkMask(mask);
  const png = encodePng(mask);
  return new Blob([bytesOf(png)], { type: 'image/png' });
}

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
  featherSigma = 0,
): Promise<MaskRecord> {
  if (countOn(mask) === 0)
    throw new InvalidArgumentError(
      'mask',
      'a mask with at least one painted pixel (an empty region is useless)',
      'an empty mask',
    );
  const rec: Omit<MaskRecord, 'id' | 'createdAt'> = {
    datasetId,
    blob: maskBlob(mask),
    width: mask.width,
    height: mask.height,
    kind: 'library',
    name,
    ...(checkFeather(featherSigma) > 0 ? { featherSigma } : {}),
  };
  return store.putMask(rec);
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
  featherSigma = 0,
): Promise<MaskRecord> {
  checkFeather(featherSigma);
  const fitted =
    mask.width === image.width && mask.height === image.height
      ? mask
      : fitMask(mask, image.width, image.height);
  const prev = await regionMaskOf(store, datasetId, image.id);
  // A whole new record replaces the old one, so a σ set back to 0 does not linger.
  const rec: Omit<MaskRecord, 'id' | 'createdAt'> & { id?: string } = {
    id: prev?.id,
    datasetId,
    imageId: image.id,
    blob: maskBlob(fitted),
    width: fitted.width,
    height: fitted.height,
    kind: 'region',
    name: `region of ${image.name}`,
    ...(featherSigma > 0 ? { featherSigma } : {}),
  };
  return store.putMask(rec);
}

/**
 * Applies one mask to many images: each gets it (resized nearest-neighbour to its size) as its region mask, with
 * the same feather σ.
 */
export async function applyMaskToImages(
  store: DefectLabStore,
  datasetId: string,
  mask: RasterImage,
  images: Pick<ImageRecord, 'id' | 'name' | 'width' | 'height'>[],
  featherSigma = 0,
): Promise<MaskRecord[]> {
  const out: MaskRecord[] = [];
  for (const img of images) out.push(await saveRegionMask(store, datasetId, img, mask, featherSigma));
  return out;
}

/**
 * `count` random Perlin region masks (`randomPerlinMask`: lattice 2^k, rotation, threshold) of the given size
 * saved to the library, seeded `seed:0`, `seed:1`, ….
 */
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
    const { mask, params } = randomPerlinMask(width, height, {}, s);
    const [sx, sy] = params.perlin_scale;
    out.push(
      await saveLibraryMask(
        store,
        datasetId,
        mask,
        `perlin ${sx}×${sy} ${Math.round(params.angle)}° (seed ${s}, ${(100 * params.coverage).toFixed(1)}%)`,
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

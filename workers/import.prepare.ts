/**
 * One import item, from file bytes to a record ready to store: read, decode (`src/runtime/decode.ts`), check the
 * mask, thumbnail, SHA-256. Pure data in, plain data out (Blobs and strings), so the same function runs in the
 * import worker itself and in its decode workers (`import-decode.worker.ts`); the import engine only orders the
 * results and writes them.
 */
import { sha256Hex } from '../src/core/hash.ts';
import { binarize, type RasterImage } from '../src/core/image.ts';
import { ImportError, rejected, type Rejected } from '../src/core/import/errors.ts';
import type { PlannedItem } from '../src/core/import/plan.ts';
import { decodeImage, encodePng, makeThumbnail } from '../src/runtime/decode.ts';
import type { NewImage } from '../src/runtime/db/types.ts';

/** What a decoder needs for one item (structured-cloneable: Blobs cross workers as references). */
export interface PrepareTask {
  item: PlannedItem;
  image: Uint8Array | Blob;
  mask?: Uint8Array | Blob;
  /** Thumbnail longest side in px. */
  thumbSize: number;
}

/** The record to store, or why the item was refused; `bytes` counts what was read either way. */
export type PrepareResult =
  { ok: true; image: NewImage; bytes: number } | { ok: false; rejected: Rejected; bytes: number };

/** Reads, hashes, decodes, checks the mask and thumbnails one item. Never throws: a failure is a rejection. */
export async function prepareItem(task: PrepareTask): Promise<PrepareResult> {
  const { item } = task;
  let bytesRead = 0;
  try {
    const bytes = await bytesOf(task.image);
    bytesRead += bytes.length;
    const { raster, mime } = await decodeImage(bytes, item.file);
    let mask: NewImage['mask'];
    if (item.maskFile && task.mask) {
      const maskBytes = await bytesOf(task.mask);
      bytesRead += maskBytes.length;
      mask = await prepareMask(maskBytes, item.maskFile, raster, item.file);
    }
    const thumb = encodePng(makeThumbnail(raster, task.thumbSize), 1);
    const rec: NewImage = {
      name: item.name,
      blob: new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime }),
      mime,
      width: raster.width,
      height: raster.height,
      channels: raster.channels,
      sha256: await sha256Hex(bytes),
      thumbnail: new Blob([thumb], { type: 'image/png' }),
      label: item.label,
      split: item.split,
    };
    if (item.defectClass) rec.defectClass = item.defectClass;
    if (item.group) rec.group = item.group;
    if (item.provenance) rec.provenance = item.provenance;
    if (mask) rec.mask = mask;
    return { ok: true, image: rec, bytes: bytesRead };
  } catch (e) {
    return { ok: false, rejected: rejectionOf(item.file, e), bytes: bytesRead };
  }
}

/** An `ImportError` as it is; anything else (a decoder bug, a crashed decode worker) as a 'corrupt' rejection. */
export function rejectionOf(file: string, e: unknown): Rejected {
  if (e instanceof ImportError) return rejected(e);
  const msg = e instanceof Error ? e.message : String(e);
  return rejected(
    new ImportError(file, 'corrupt', `could not be read (${msg})`, 're-export the file and retry'),
  );
}

/** Decodes a mask, checks it matches its image, and returns it as a binary (0/255) single-channel PNG. */
async function prepareMask(
  bytes: Uint8Array,
  maskFile: string,
  image: RasterImage,
  imageFile: string,
): Promise<NonNullable<NewImage['mask']>> {
  const { raster, format } = await decodeImage(bytes, maskFile);
  if (raster.width !== image.width || raster.height !== image.height)
    throw new ImportError(
      maskFile,
      'mask-size',
      `mask is ${raster.width}×${raster.height} but its image ${imageFile} is ${image.width}×${image.height}`,
      'export the mask at the image size (same width and height)',
    );
  let binary = format === 'png' && raster.channels === 1;
  if (binary)
    for (let i = 0; i < raster.data.length && binary; i++)
      binary = raster.data[i] === 0 || raster.data[i] === 255;
  // Masks are stored binary; soft or colour masks are thresholded at 128 (the reference set's rule).
  const png = binary ? bytes : encodePng(binarize(raster, 128));
  return {
    blob: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
    width: raster.width,
    height: raster.height,
  };
}

/** The bytes of an entry. In a worker, `FileReaderSync` reads a File without a task hop per file. */
export async function bytesOf(data: Uint8Array | Blob): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  // FileReaderSync exists in workers only (the DOM lib this project compiles against does not declare it).
  const Sync = (globalThis as { FileReaderSync?: new () => { readAsArrayBuffer(b: Blob): ArrayBuffer } })
    .FileReaderSync;
  if (Sync) return new Uint8Array(new Sync().readAsArrayBuffer(data));
  return new Uint8Array(await data.arrayBuffer());
}

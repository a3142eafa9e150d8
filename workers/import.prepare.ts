/**
 * One import item, from file bytes to a record ready to store: read, decode (`import.png.ts`'s native-inflate
 * fast path for plain 8-bit PNGs, else `src/runtime/decode.ts`), check the mask, thumbnail, SHA-256. Pure data
 * in, plain data out (Blobs and strings), so the same function runs in the import worker itself and in its
 * decode workers (`import-decode.worker.ts`); the import engine only orders the results and writes them.
 */
import { sha256Hex } from '../src/core/hash.ts';
import { binarize, type RasterImage } from '../src/core/image.ts';
import { ImportError, rejected, type Rejected } from '../src/core/import/errors.ts';
import type { PlannedItem } from '../src/core/import/plan.ts';
import { MIME, decodeImage, encodePng, makeThumbnail } from '../src/runtime/decode.ts';
import type { NewImage } from '../src/runtime/db/types.ts';
import { decodePngFast } from './import.png.ts';

/** What a decoder needs for one item (structured-cloneable: Blobs cross workers as references). */
export interface PrepareTask {
  item: PlannedItem;
  image: Uint8Array | Blob;
  mask?: Uint8Array | Blob;
  /** Thumbnail longest side in px. */
  thumbSize: number;
}

/** Milliseconds of each stage of one item (the import's profile sums them). */
export interface PrepareTimings {
  readMs: number;
  decodeMs: number;
  maskMs: number;
  /** The thumbnail's box filter, then its PNG encoding. */
  thumbnailMs: number;
  thumbnailPngMs: number;
  hashMs: number;
  /** When the item started and finished, on the clock every thread shares (`epochMs`). */
  startedAt: number;
  finishedAt: number;
}

/** Milliseconds since the epoch at sub-ms resolution, comparable between the import worker and its decoders. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The record to store, or why the item was refused; `bytes` counts what was read either way. */
export type PrepareResult = (
  { ok: true; image: NewImage; bytes: number } | { ok: false; rejected: Rejected; bytes: number }
) & { timings: PrepareTimings };

/** Reads, hashes, decodes, checks the mask and thumbnails one item. Never throws: a failure is a rejection. */
export async function prepareItem(task: PrepareTask): Promise<PrepareResult> {
  const { item } = task;
  const timings: PrepareTimings = {
    readMs: 0,
    decodeMs: 0,
    maskMs: 0,
    thumbnailMs: 0,
    thumbnailPngMs: 0,
    hashMs: 0,
    startedAt: epochMs(),
    finishedAt: 0,
  };
  let bytesRead = 0;
  let t = performance.now();
  const lap = (stage: Exclude<keyof PrepareTimings, 'startedAt' | 'finishedAt'>) => {
    const now = performance.now();
    timings[stage] += now - t;
    t = now;
  };
  try {
    const bytes = await bytesOf(task.image);
    bytesRead += bytes.length;
    lap('readMs');
    // The digest runs natively off this thread while the pixels are decoded here. It is awaited below; the
    // empty handler only keeps a failure before then (a corrupt file) from being an unhandled rejection.
    const sha = sha256Hex(bytes);
    sha.catch(() => undefined);
    const fast = await decodePngFast(bytes);
    const { raster, mime } = fast ? { raster: fast, mime: MIME.png } : await decodeImage(bytes, item.file);
    lap('decodeMs');
    let mask: NewImage['mask'];
    if (item.maskFile && task.mask) {
      const maskBytes = await bytesOf(task.mask);
      bytesRead += maskBytes.length;
      mask = await prepareMask(maskBytes, item.maskFile, raster, item.file);
      lap('maskMs');
    }
    const small = makeThumbnail(raster, task.thumbSize);
    lap('thumbnailMs');
    const thumb = encodePng(small, 1);
    lap('thumbnailPngMs');
    const sha256 = await sha;
    lap('hashMs');
    const rec: NewImage = {
      name: item.name,
      blob: storedBlob(task.image, bytes, mime),
      mime,
      width: raster.width,
      height: raster.height,
      channels: raster.channels,
      sha256,
      thumbnail: new Blob([thumb], { type: 'image/png' }),
      label: item.label,
      split: item.split,
    };
    if (item.defectClass) rec.defectClass = item.defectClass;
    if (item.group) rec.group = item.group;
    if (item.provenance) rec.provenance = item.provenance;
    if (mask) rec.mask = mask;
    timings.finishedAt = epochMs();
    return { ok: true, image: rec, bytes: bytesRead, timings };
  } catch (e) {
    timings.finishedAt = epochMs();
    return { ok: false, rejected: rejectionOf(item.file, e), bytes: bytesRead, timings };
  }
}

/**
 * The original bytes as the Blob to store. A picked File already is one: a typed slice of it is a reference to
 * the same bytes, where `new Blob([bytes])` would copy every image once more (into the browser's blob store)
 * before IndexedDB copies it again.
 */
function storedBlob(source: Uint8Array | Blob, bytes: Uint8Array, mime: string): Blob {
  if (source instanceof Blob) return source.slice(0, source.size, mime);
  return new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mime });
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

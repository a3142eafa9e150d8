/**
 * The import's fast path for the PNGs it meets most — 8-bit gray, RGB or RGBA, not interlaced (cameras, MVTec,
 * KSDD2, every PNG this app writes): the zlib stream is inflated by the platform's native `DecompressionStream`
 * (C zlib in browsers and Node) instead of fflate in JavaScript, and unfiltered here. Anything else — palettes,
 * 16-bit or 1/2/4-bit samples, gray + alpha, interlacing, a stream that does not inflate to exactly the image,
 * an unknown filter byte, no `DecompressionStream` — gives null, and the caller decodes with `decodeImage`
 * (`src/runtime/decode.ts`), which also names every error. Where it answers, the raster equals `decodeImage`'s
 * (tests/unit/import-png.test.ts).
 */
import type { RasterImage } from '../src/core/image.ts';
import { MAX_PIXELS, MAX_SIDE } from '../src/runtime/decode.ts';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour type → channels, for the types the fast path takes. */
const CHANNELS: Record<number, 1 | 3 | 4> = { 0: 1, 2: 3, 6: 4 };

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function chunkType(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);
}

export async function decodePngFast(bytes: Uint8Array): Promise<RasterImage | null> {
  if (typeof DecompressionStream !== 'function' || bytes.length < 45) return null;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(8) !== 13 || chunkType(bytes, 12) !== 'IHDR') return null;
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const depth = bytes[24];
  const channels = CHANNELS[bytes[25]];
  if (depth !== 8 || !channels || bytes[26] !== 0 || bytes[27] !== 0 || bytes[28] !== 0) return null;
  if (!width || !height || width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) return null;
  const idat: Uint8Array[] = [];
  let ended = false;
  for (let at = 33; at + 12 <= bytes.length;) {
    const len = dv.getUint32(at);
    if (at + 12 + len > bytes.length) return null;
    const type = chunkType(bytes, at + 4);
    if (type === 'IDAT') idat.push(bytes.subarray(at + 8, at + 8 + len));
    else if (type === 'PLTE') return null;
    else if (type === 'IEND') {
      // decodeImage wants IEND within the last 64 bytes (trailing junk beyond that reads as a cut file).
      ended = at + 4 >= bytes.length - 64;
      break;
    }
    at += 12 + len;
  }
  if (!ended || idat.length === 0) return null;
  const stride = width * channels;
  const raw = await inflateExactly(idat.length === 1 ? idat[0] : concat(idat), height * (stride + 1));
  if (!raw) return null;
  const data = unfilter(raw, height, stride, channels);
  return data ? { width, height, channels, data: new Uint8ClampedArray(data.buffer) } : null;
}

/**
 * The zlib stream inflated into a buffer of exactly `size` bytes, or null when it is corrupt or inflates to
 * any other size — read chunk by chunk into the image's buffer, refused as soon as it runs past the image.
 * One write of the whole stream: encoders cut it into many 8 KB IDAT chunks, and each
 * stream write costs a few promise hops, more than copying the chunks together.
 */
async function inflateExactly(zlib: Uint8Array, size: number): Promise<Uint8Array | null> {
  const ds = new DecompressionStream('deflate');
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  // Not awaited before reading: the readable side has to be drained while the write is taken in.
  const written = Promise.all([writer.write(zlib as Uint8Array<ArrayBuffer>), writer.close()]);
  written.catch(() => undefined); // a corrupt stream rejects both sides; the read below answers it
  const out = new Uint8Array(size);
  let at = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > size) {
        void reader.cancel().catch(() => undefined);
        return null;
      }
      out.set(value, at);
      at += value.length;
    }
    await written;
  } catch {
    return null; // a corrupt stream: decodeImage says what is wrong with it
  }
  return at === size ? out : null;
}

/** Undoes the per-row filters (PNG spec §9) of `h` rows of `stride` bytes, `bpp` bytes per pixel. */
function unfilter(src: Uint8Array, h: number, stride: number, bpp: number): Uint8Array | null {
  const out = new Uint8Array(h * stride);
  for (let y = 0; y < h; y++) {
    const s = y * (stride + 1) + 1;
    const o = y * stride;
    const p = o - stride; // the row above, in `out`
    const filter = src[s - 1];
    if (filter === 0 || (filter === 2 && y === 0)) {
      out.set(src.subarray(s, s + stride), o);
    } else if (filter === 1) {
      for (let i = 0; i < bpp; i++) out[o + i] = src[s + i];
      for (let i = bpp; i < stride; i++) out[o + i] = src[s + i] + out[o + i - bpp];
    } else if (filter === 2) {
      for (let i = 0; i < stride; i++) out[o + i] = src[s + i] + out[p + i];
    } else if (filter === 3) {
      for (let i = 0; i < stride; i++) {
        const left = i >= bpp ? out[o + i - bpp] : 0;
        const up = y > 0 ? out[p + i] : 0;
        out[o + i] = src[s + i] + ((left + up) >> 1);
      }
    } else if (filter === 4) {
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? out[o + i - bpp] : 0;
        const b = y > 0 ? out[p + i] : 0;
        const c = i >= bpp && y > 0 ? out[p + i - bpp] : 0;
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        out[o + i] = src[s + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
    } else return null;
  }
  return out;
}

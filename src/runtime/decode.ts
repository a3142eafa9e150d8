/**
 * Image bytes → `RasterImage`, and back to PNG. Runs wherever it is called: the import worker calls it, so
 * decoding stays off the main thread.
 *
 * - PNG: fast-png; 16-bit is reduced to 8-bit, 1/2/4-bit gray and palettes are expanded (palette with tRNS →
 *   RGBA), gray + alpha → RGBA.
 * - JPEG: jpeg-js (strict decoding; grayscale JPEGs stay 1 channel).
 * - BMP: parsed here (uncompressed 8/24/32-bit, the formats cameras and Windows tools write; small enough that a
 *   dependency is not worth it).
 * - WebP: the browser's decoder (`createImageBitmap` + `OffscreenCanvas`); in Node it is refused with a clear
 *   message (no WebP decoder is bundled).
 * The size limits are checked on the header, before any pixel is decoded, so a 100k × 100k file cannot exhaust
 * memory. Every failure is an `ImportError` naming the file and the reason.
 */
import { decode as decodePngRaw, encode as encodePngRaw } from 'fast-png';
import { decode as decodeJpegRaw } from 'jpeg-js';
import { createRaster, type Channels, type RasterImage } from '../core/image.ts';
import { ImportError } from '../core/import/errors.ts';

/** Longest side accepted, in pixels. */
export const MAX_SIDE = 8192;
/** Most pixels accepted (64 MP). */
export const MAX_PIXELS = 64_000_000;

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'bmp';

export const MIME: Record<ImageFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  bmp: 'image/bmp',
};

export interface DecodedImage {
  raster: RasterImage;
  format: ImageFormat;
  mime: string;
}

/** Recognises the format from the signature bytes (never from the file name). */
export function sniffFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  return null;
}

function ascii(b: Uint8Array, at: number, n: number): string {
  return String.fromCharCode(...b.subarray(at, at + n));
}

const FIX_REEXPORT = 're-export or re-copy the file (it may be cut short or damaged) and import it again';
const FIX_FORMAT = 'convert it to PNG or JPEG and import it again';

/**
 * Decodes an image file. `name` is used only in error messages.
 * Output: interleaved 8-bit `RasterImage`, 1 (gray), 3 (RGB) or 4 (RGBA) channels.
 */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  if (bytes.length === 0)
    throw new ImportError(name, 'empty', 'empty file (0 bytes)', 'the copy failed; copy the file again');
  const format = sniffFormat(bytes);
  if (!format)
    throw new ImportError(
      name,
      'not-image',
      'not a PNG, JPEG, WebP or BMP image (unrecognised file signature)',
      'import image files only (PNG, JPEG, WebP, BMP)',
    );
  const size = readImageSize(bytes, format, name);
  checkLimits(name, size.width, size.height);
  let raster: RasterImage;
  if (format === 'png') raster = decodePng(bytes, name);
  else if (format === 'jpeg') raster = decodeJpeg(bytes, name, size.components ?? 3);
  else if (format === 'bmp') raster = decodeBmp(bytes, name);
  else raster = await decodeWithBrowser(bytes, name, format);
  return { raster, format, mime: MIME[format] };
}

/** Throws when an image is over `MAX_SIDE` on a side or over `MAX_PIXELS`. */
export function checkLimits(name: string, width: number, height: number): void {
  if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
    const mp = ((width * height) / 1e6).toFixed(1);
    throw new ImportError(
      name,
      'too-large',
      `image is ${width}×${height} (${mp} MP); the limit is ${MAX_SIDE} px on a side and ${MAX_PIXELS / 1e6} MP`,
      'downscale or tile the image before importing',
    );
  }
  if (width <= 0 || height <= 0)
    throw new ImportError(name, 'corrupt', `image header says ${width}×${height}`, FIX_REEXPORT);
}

/** Width and height from the header alone (plus JPEG component count). */
export function readImageSize(
  b: Uint8Array,
  format: ImageFormat,
  name: string,
): { width: number; height: number; components?: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const truncated = (what: string) =>
    new ImportError(name, 'truncated', `truncated ${what} (the header is cut short)`, FIX_REEXPORT);
  if (format === 'png') {
    if (b.length < 33 || ascii(b, 12, 4) !== 'IHDR') throw truncated('PNG');
    return { width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (format === 'bmp') {
    if (b.length < 26) throw truncated('BMP');
    // A negative height is a top-down BMP; a negative width is never valid and fails `checkLimits` as corrupt.
    return { width: dv.getInt32(18, true), height: Math.abs(dv.getInt32(22, true)) };
  }
  if (format === 'webp') return webpSize(b, dv, name);
  // JPEG: walk the marker segments to the first start-of-frame.
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff)
      throw new ImportError(name, 'corrupt', `corrupt JPEG (bad marker at byte ${p})`, FIX_REEXPORT);
    const marker = b[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    const len = dv.getUint16(p + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (p + 10 > b.length) throw truncated('JPEG');
      return { height: dv.getUint16(p + 5), width: dv.getUint16(p + 7), components: b[p + 9] };
    }
    p += 2 + len;
  }
  throw truncated('JPEG');
}

function webpSize(b: Uint8Array, dv: DataView, name: string): { width: number; height: number } {
  if (b.length < 30)
    throw new ImportError(name, 'truncated', 'truncated WebP (the header is cut short)', FIX_REEXPORT);
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8X') {
    const w = 1 + (b[24] | (b[25] << 8) | (b[26] << 16));
    const h = 1 + (b[27] | (b[28] << 8) | (b[29] << 16));
    return { width: w, height: h };
  }
  if (chunk === 'VP8L') {
    const bits = dv.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8 ')
    return { width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
  throw new ImportError(
    name,
    'corrupt',
    `corrupt WebP (unknown chunk ${JSON.stringify(chunk)})`,
    FIX_REEXPORT,
  );
}

// ---- PNG

function hasIend(b: Uint8Array): boolean {
  // IEND is the last chunk: length 0, type "IEND", CRC. Some writers add trailing bytes; look near the end.
  const from = Math.max(8, b.length - 64);
  for (let i = b.length - 8; i >= from; i--)
    if (b[i] === 0x49 && b[i + 1] === 0x45 && b[i + 2] === 0x4e && b[i + 3] === 0x44) return true;
  return false;
}

function decodePng(bytes: Uint8Array, name: string): RasterImage {
  if (!hasIend(bytes))
    throw new ImportError(name, 'truncated', 'truncated PNG (no IEND chunk at the end)', FIX_REEXPORT);
  let png: ReturnType<typeof decodePngRaw>;
  try {
    png = decodePngRaw(bytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImportError(name, 'corrupt', `corrupt PNG (${msg})`, FIX_REEXPORT, { cause: e });
  }
  const { width, height, depth } = png;
  const n = width * height;
  const src = png.channels;
  // Samples as 8-bit, one per channel per pixel (unpacked).
  let samples: Uint8Array;
  if (png.palette) {
    samples = unpackBits(png.data as Uint8Array, width, height, 1, depth, false);
  } else if (depth === 16) {
    const d = png.data as Uint16Array;
    samples = new Uint8Array(d.length);
    // Round to nearest: v / 257 maps 0..65535 onto 0..255 exactly at both ends.
    for (let i = 0; i < d.length; i++) samples[i] = (d[i] + 128) / 257;
  } else if (depth < 8) {
    samples = unpackBits(png.data as Uint8Array, width, height, src, depth, true);
  } else {
    samples = png.data instanceof Uint8Array ? png.data : new Uint8Array(png.data);
  }
  if (samples.length < n * src)
    throw new ImportError(name, 'truncated', 'truncated PNG (image data is short)', FIX_REEXPORT);

  if (png.palette) {
    const pal = png.palette;
    // fast-png appends the tRNS alpha to each palette colour ([r, g, b, a]).
    const hasAlpha = pal.some((c) => c.length > 3 && c[3] < 255);
    const gray = !hasAlpha && pal.every((c) => c[0] === c[1] && c[1] === c[2]);
    const ch: Channels = hasAlpha ? 4 : gray ? 1 : 3;
    const out = createRaster(width, height, ch);
    for (let p = 0; p < n; p++) {
      const idx = samples[p];
      const c = pal[idx];
      if (!c)
        throw new ImportError(
          name,
          'corrupt',
          `corrupt PNG (palette index ${idx} out of range)`,
          FIX_REEXPORT,
        );
      if (ch === 1) out.data[p] = c[0];
      else {
        out.data[p * ch] = c[0];
        out.data[p * ch + 1] = c[1];
        out.data[p * ch + 2] = c[2];
        if (ch === 4) out.data[p * 4 + 3] = c.length > 3 ? c[3] : 255;
      }
    }
    return out;
  }
  if (src === 2) {
    // Gray + alpha has no RasterImage layout of its own: expand to RGBA.
    const out = createRaster(width, height, 4);
    for (let p = 0; p < n; p++) {
      const g = samples[2 * p];
      out.data[4 * p] = out.data[4 * p + 1] = out.data[4 * p + 2] = g;
      out.data[4 * p + 3] = samples[2 * p + 1];
    }
    return out;
  }
  if (src !== 1 && src !== 3 && src !== 4)
    throw new ImportError(name, 'unsupported', `PNG with ${src} channels`, FIX_FORMAT);
  return {
    width,
    height,
    channels: src,
    data: new Uint8ClampedArray(samples.buffer, samples.byteOffset, n * src),
  };
}

/**
 * Unpacks 1/2/4-bit rows (each row starts on a byte boundary) into one byte per sample; `scale` stretches gray
 * levels to 0..255 (palette indices stay indices). 8-bit input is returned as is.
 */
function unpackBits(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  depth: number,
  scale: boolean,
): Uint8Array {
  const perRow = width * channels;
  if (depth === 8 || data.length === perRow * height) return data;
  const rowBytes = Math.ceil((perRow * depth) / 8);
  const out = new Uint8Array(perRow * height);
  const max = (1 << depth) - 1;
  const mul = scale ? 255 / max : 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < perRow; x++) {
      const bit = x * depth;
      const byte = data[y * rowBytes + (bit >> 3)];
      const v = (byte >> (8 - depth - (bit & 7))) & max;
      out[y * perRow + x] = Math.round(v * mul);
    }
  }
  return out;
}

// ---- JPEG

function hasEoi(b: Uint8Array): boolean {
  // EOI (FF D9) ends the stream; some cameras pad after it, so search the tail.
  const from = Math.max(2, b.length - 1024);
  for (let i = b.length - 2; i >= from; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

function decodeJpeg(bytes: Uint8Array, name: string, components: number): RasterImage {
  if (!hasEoi(bytes))
    throw new ImportError(name, 'truncated', 'truncated JPEG (no end-of-image marker)', FIX_REEXPORT);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = decodeJpegRaw(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: MAX_PIXELS / 1e6,
      maxMemoryUsageInMB: 1024,
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImportError(name, 'corrupt', `corrupt JPEG (${msg})`, FIX_REEXPORT, { cause: e });
  }
  const { width, height, data } = img;
  if (components === 1) {
    // jpeg-js replicates Y into R, G and B; keep the single channel the file has.
    const out = createRaster(width, height, 1);
    for (let p = 0; p < width * height; p++) out.data[p] = data[3 * p];
    return out;
  }
  return {
    width,
    height,
    channels: 3,
    data: new Uint8ClampedArray(data.buffer, data.byteOffset, width * height * 3),
  };
}

// ---- BMP

function decodeBmp(b: Uint8Array, name: string): RasterImage {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const truncated = () =>
    new ImportError(name, 'truncated', 'truncated BMP (pixel data is cut short)', FIX_REEXPORT);
  if (b.length < 54) throw truncated();
  const offset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  const w = dv.getInt32(18, true);
  const rawH = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  const topDown = rawH < 0;
  const h = Math.abs(rawH);
  // 0 = BI_RGB; 3 = BI_BITFIELDS, accepted for 32-bit with the usual BGRA masks.
  if (!(compression === 0 || (compression === 3 && bpp === 32)) || ![8, 24, 32].includes(bpp))
    throw new ImportError(
      name,
      'unsupported',
      `BMP with ${bpp} bits per pixel and compression ${compression} is not supported (8, 24 or 32-bit uncompressed only)`,
      FIX_FORMAT,
    );
  const stride = Math.ceil((w * bpp) / 32) * 4;
  if (offset + stride * h > b.length) throw truncated();
  let palette: Uint8Array | null = null;
  let gray = false;
  if (bpp === 8) {
    const used = dv.getUint32(46, true) || 256;
    const palStart = 14 + headerSize;
    if (palStart + used * 4 > offset) throw truncated();
    palette = b.subarray(palStart, palStart + used * 4);
    gray = true;
    for (let i = 0; i < used; i++)
      if (palette[4 * i] !== palette[4 * i + 1] || palette[4 * i + 1] !== palette[4 * i + 2]) gray = false;
  }
  const out = createRaster(w, h, gray ? 1 : 3);
  for (let y = 0; y < h; y++) {
    const row = offset + (topDown ? y : h - 1 - y) * stride;
    for (let x = 0; x < w; x++) {
      const o = y * w + x;
      if (palette) {
        const i = b[row + x];
        if (4 * i + 2 >= palette.length)
          throw new ImportError(
            name,
            'corrupt',
            `corrupt BMP (palette index ${i} out of range)`,
            FIX_REEXPORT,
          );
        if (gray) out.data[o] = palette[4 * i];
        else {
          out.data[3 * o] = palette[4 * i + 2];
          out.data[3 * o + 1] = palette[4 * i + 1];
          out.data[3 * o + 2] = palette[4 * i];
        }
      } else {
        const s = row + x * (bpp / 8);
        out.data[3 * o] = b[s + 2];
        out.data[3 * o + 1] = b[s + 1];
        out.data[3 * o + 2] = b[s];
      }
    }
  }
  return out;
}

// ---- WebP (and anything else) through the browser

async function decodeWithBrowser(bytes: Uint8Array, name: string, format: ImageFormat): Promise<RasterImage> {
  const g = globalThis as {
    createImageBitmap?: typeof createImageBitmap;
    OffscreenCanvas?: typeof OffscreenCanvas;
  };
  if (!g.createImageBitmap || !g.OffscreenCanvas)
    throw new ImportError(
      name,
      'unsupported',
      `${format.toUpperCase()} decoding needs the browser's image decoder (createImageBitmap), which this runtime lacks`,
      'import it in the browser app, or convert it to PNG first',
    );
  let bitmap: ImageBitmap;
  try {
    bitmap = await g.createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: MIME[format] }));
  } catch (e) {
    throw new ImportError(
      name,
      'corrupt',
      `the browser could not decode this ${format.toUpperCase()}`,
      FIX_REEXPORT,
      {
        cause: e,
      },
    );
  }
  const canvas = new g.OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new ImportError(name, 'unsupported', 'no 2D canvas to read pixels from', FIX_FORMAT);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const id = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let opaque = true;
  for (let i = 3; i < id.data.length; i += 4)
    if (id.data[i] !== 255) {
      opaque = false;
      break;
    }
  const rgba: RasterImage = { width: id.width, height: id.height, channels: 4, data: id.data };
  if (!opaque) return rgba;
  const out = createRaster(id.width, id.height, 3);
  for (let p = 0; p < id.width * id.height; p++) {
    out.data[3 * p] = id.data[4 * p];
    out.data[3 * p + 1] = id.data[4 * p + 1];
    out.data[3 * p + 2] = id.data[4 * p + 2];
  }
  return out;
}

// ---- encode and thumbnails

/**
 * Lossless 8-bit PNG of a raster (gray, RGB or RGBA as the raster has). `level` is the deflate level: 6 by
 * default; thumbnails use 1 (about twice as fast, a few hundred bytes larger at 128 px).
 */
export function encodePng(raster: RasterImage, level: 1 | 6 | 9 = 6): Uint8Array<ArrayBuffer> {
  // fast-png allocates a plain ArrayBuffer; saying so lets callers wrap the bytes in a Blob without a copy.
  return encodePngRaw(
    {
      width: raster.width,
      height: raster.height,
      channels: raster.channels,
      depth: 8,
      data: new Uint8Array(raster.data.buffer, raster.data.byteOffset, raster.data.length),
    },
    { zlib: { level } },
  ) as Uint8Array<ArrayBuffer>;
}

/**
 * Downscales so the longest side is at most `maxSide`, averaging every source pixel that falls in an output
 * pixel (box filter), so thin scratches still show in the grid instead of aliasing away.
 * [H, W, C] → [h, w, C] with max(h, w) ≤ maxSide; smaller images are returned as a copy.
 */
export function makeThumbnail(raster: RasterImage, maxSide = 128): RasterImage {
  const { width: W, height: H, channels: C } = raster;
  const s = Math.min(1, maxSide / Math.max(W, H));
  const w = Math.max(1, Math.round(W * s));
  const h = Math.max(1, Math.round(H * s));
  if (w === W && h === H) return { ...raster, data: new Uint8ClampedArray(raster.data) };
  const out = createRaster(w, h, C);
  // Source column span of each output column, computed once.
  const xs0 = new Int32Array(w);
  const xs1 = new Int32Array(w);
  for (let x = 0; x < w; x++) {
    xs0[x] = Math.floor((x * W) / w);
    xs1[x] = Math.max(xs0[x] + 1, Math.floor(((x + 1) * W) / w));
  }
  // The inner loop is unrolled per channel count with its sums in locals (exact: integers in doubles): the
  // thumbnail was about a quarter of an import's time per image.
  const acc = new Float64Array(w * C);
  const src = raster.data;
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * H) / h);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * H) / h));
    acc.fill(0);
    for (let sy = y0; sy < y1; sy++) {
      const rowStart = sy * W * C;
      if (C === 3)
        for (let x = 0; x < w; x++) {
          let r = 0;
          let g = 0;
          let b = 0;
          const end = rowStart + xs1[x] * 3;
          for (let i = rowStart + xs0[x] * 3; i < end; i += 3) {
            r += src[i];
            g += src[i + 1];
            b += src[i + 2];
          }
          acc[x * 3] += r;
          acc[x * 3 + 1] += g;
          acc[x * 3 + 2] += b;
        }
      else if (C === 1)
        for (let x = 0; x < w; x++) {
          let v = 0;
          const end = rowStart + xs1[x];
          for (let i = rowStart + xs0[x]; i < end; i++) v += src[i];
          acc[x] += v;
        }
      else
        for (let x = 0; x < w; x++) {
          const end = rowStart + xs1[x] * C;
          for (let i = rowStart + xs0[x] * C; i < end; i += C)
            for (let k = 0; k < C; k++) acc[x * C + k] += src[i + k];
        }
    }
    for (let x = 0; x < w; x++) {
      const n = (xs1[x] - xs0[x]) * (y1 - y0);
      for (let k = 0; k < C; k++) out.data[(y * w + x) * C + k] = Math.round(acc[x * C + k] / n);
    }
  }
  return out;
}

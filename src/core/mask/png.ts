/**
 * PNG bytes ↔ binary masks. Masks are stored as 8-bit grayscale PNG holding 0/255. fast-png is pure JS, so this
 * runs in Node, workers and the page alike (the store keeps masks as PNG Blobs).
 */
import { decode, encode } from 'fast-png';
import { DefectLabError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import { checkMask } from './morph.ts';

export class MaskDecodeError extends DefectLabError {
  constructor(name: string, reason: string) {
    super(
      'MaskDecodeError',
      `${name} is not a readable mask PNG (${reason})`,
      'save the mask as a PNG (gray or RGB)',
    );
  }
}

/** 8-bit grayscale PNG of a single-channel mask. */
export function encodeMaskPng(mask: RasterImage): Uint8Array {
  checkMask(mask);
  return encode({
    width: mask.width,
    height: mask.height,
    data: new Uint8Array(mask.data.buffer, mask.data.byteOffset, mask.data.length),
    channels: 1,
    depth: 8,
  });
}

/**
 * Any PNG (gray, gray+alpha, RGB, RGBA, palette, 8 or 16 bit) → binary [H, W] 0/255 mask: the first channel
 * (gray or red; palette entries' red) at or above half scale is in. `name` goes into error messages.
 */
export function decodeMaskPng(bytes: Uint8Array, name = 'mask'): RasterImage {
  let png;
  try {
    png = decode(bytes);
  } catch (e) {
    throw new MaskDecodeError(name, e instanceof Error ? e.message : String(e));
  }
  const { width, height } = png;
  const out: RasterImage = { width, height, channels: 1, data: new Uint8ClampedArray(width * height) };
  if (png.palette) {
    const pal = png.palette;
    const bits = png.depth;
    const perByte = 8 / bits;
    const rowBytes = Math.ceil(width / perByte);
    const raw = png.data as Uint8Array;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const byte = bits === 8 ? raw[y * width + x] : raw[y * rowBytes + Math.floor(x / perByte)];
        const idx = bits === 8 ? byte : (byte >> (8 - bits * ((x % perByte) + 1))) & ((1 << bits) - 1);
        out.data[y * width + x] = (pal[idx]?.[0] ?? 0) >= 128 ? 255 : 0;
      }
    }
    return out;
  }
  const c = png.channels;
  const half = png.depth === 16 ? 32768 : png.depth === 8 ? 128 : 2 ** (png.depth - 1);
  if (png.depth < 8) {
    // Sub-byte gray: rows are packed; unpack bit by bit.
    const raw = png.data as Uint8Array;
    const bits = png.depth;
    const rowBytes = Math.ceil((width * bits * c) / 8);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = x * bits * c;
        const byte = raw[y * rowBytes + (bit >> 3)];
        const v = (byte >> (8 - bits - (bit & 7))) & ((1 << bits) - 1);
        out.data[y * width + x] = v >= half ? 255 : 0;
      }
    }
    return out;
  }
  const d = png.data;
  if (d.length < width * height * c) throw new MaskDecodeError(name, 'truncated pixel data');
  for (let p = 0; p < width * height; p++) out.data[p] = d[p * c] >= half ? 255 : 0;
  return out;
}

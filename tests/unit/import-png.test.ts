/**
 * The import's PNG fast path (`workers/import.png.ts`: native inflate + unfilter) against `decodeImage`
 * (fast-png): where it answers, the same raster byte for byte; where it does not (palettes, 16-bit, gray +
 * alpha, interlacing, corrupt or trailing data), null, so `decodeImage` decodes or names the error. The files
 * come from libpng through sharp with adaptive filtering (every filter type, checked below), from our own
 * encoder, and the real magnetic tiles in ../shared.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp, { type PngOptions } from 'sharp';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { createRaster } from '../../src/core/image.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { decodePngFast } from '../../workers/import.png.ts';

const MT = path.resolve(import.meta.dirname, '../../../shared/data/magnetic-tile-compact/images');

/** Smooth plus noisy content, so libpng's adaptive filtering picks different filters on different rows. */
function pixels(w: number, h: number, c: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const px = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++)
        px[(y * w + x) * c + k] = y % 7 < 3 ? (x * (k + 1) + y * 3) & 255 : rng.int(0, 256);
  return px;
}

const libpng = async (w: number, h: number, c: 1 | 2 | 3 | 4, o: PngOptions = {}, seed = 1) => {
  let img = sharp(Buffer.from(pixels(w, h, c, seed)), { raw: { width: w, height: h, channels: c } });
  // Raw 1- and 2-channel input is written as RGB(A) unless it is told it is gray.
  if (c <= 2) img = img.toColourspace('b-w');
  const png = new Uint8Array(
    await img.png({ adaptiveFiltering: true, compressionLevel: 6, ...o }).toBuffer(),
  );
  // PNG colour type: 0 gray, 4 gray + alpha, 2 RGB, 6 RGBA (3 = palette, when asked for).
  expect(png[25]).toBe(o.palette ? 3 : { 1: 0, 2: 4, 3: 2, 4: 6 }[c]);
  return png;
};

/** The filter byte of every row (inflated with node:zlib, a third decoder). */
async function filtersOf(png: Uint8Array, w: number, c: number): Promise<Set<number>> {
  const { inflateSync } = await import('node:zlib');
  const dv = new DataView(png.buffer, png.byteOffset);
  const parts: Uint8Array[] = [];
  for (let at = 8; at < png.length;) {
    const len = dv.getUint32(at);
    if (String.fromCharCode(...png.subarray(at + 4, at + 8)) === 'IDAT')
      parts.push(png.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(parts));
  const seen = new Set<number>();
  for (let o = 0; o < raw.length; o += w * c + 1) seen.add(raw[o]);
  return seen;
}

async function same(png: Uint8Array) {
  const fast = await decodePngFast(png);
  expect(fast).not.toBeNull();
  const ref = (await decodeImage(png, 'x.png')).raster;
  expect([fast!.width, fast!.height, fast!.channels]).toEqual([ref.width, ref.height, ref.channels]);
  expect(Buffer.from(fast!.data).equals(Buffer.from(ref.data))).toBe(true);
}

describe('PNG fast path = decodeImage', () => {
  it('libpng gray, RGB and RGBA with all five filter types', async () => {
    const all = new Set<number>();
    for (const [c, w, h] of [
      [1, 61, 40],
      [3, 632, 30],
      [4, 33, 29],
    ] as const) {
      const png = await libpng(w, h, c);
      for (const f of await filtersOf(png, w, c)) all.add(f);
      await same(png);
    }
    expect([...all].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('our own encoder at every level, and a 1×1 image', async () => {
    for (const c of [1, 3, 4] as const) {
      const r = createRaster(45, 17, c);
      r.data.set(pixels(45, 17, c, 9));
      for (const level of [1, 6, 9] as const) await same(encodePng(r, level));
    }
    const one = createRaster(1, 1, 3);
    one.data.set([7, 8, 9]);
    await same(encodePng(one));
  });

  it('the real magnetic tiles (../shared)', async () => {
    const files = readdirSync(MT)
      .filter((f) => f.endsWith('.png'))
      .slice(0, 12);
    expect(files.length).toBe(12);
    for (const f of files) await same(new Uint8Array(readFileSync(path.join(MT, f))));
  });

  it('declines what it does not decode, and decodeImage still handles or names it', async () => {
    const declined = async (png: Uint8Array) => expect(await decodePngFast(png)).toBeNull();
    await declined(await libpng(20, 10, 2)); // gray + alpha
    await declined(await libpng(20, 10, 3, { palette: true, colours: 16 }));
    await declined(await libpng(20, 10, 3, { progressive: true })); // Adam7
    const sixteen = new Uint8Array(
      await sharp(Buffer.from(pixels(20, 10, 3, 2)), { raw: { width: 20, height: 10, channels: 3 } })
        .toColourspace('rgb16')
        .png()
        .toBuffer(),
    );
    expect(sixteen[24]).toBe(16);
    await declined(sixteen);
    const good = await libpng(40, 20, 3);
    await declined(good.subarray(0, good.length - 30)); // cut: no IEND
    const junk = new Uint8Array(good.length + 100);
    junk.set(good);
    await declined(junk); // IEND too far from the end
    await expect(decodeImage(junk, 'junk.png')).rejects.toThrow(/truncated PNG/);
    // A flipped byte inside the zlib stream: native zlib refuses it (bad stream or checksum).
    const bad = good.slice();
    const idat = Buffer.from(bad).indexOf('IDAT');
    bad[idat + 4 + 40] ^= 0xff;
    await declined(bad);
    await declined(new Uint8Array(200)); // not a PNG
  });
});

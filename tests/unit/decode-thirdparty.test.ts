import { decode as decodePngRaw } from 'fast-png';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, readImageSize, sniffFormat } from '../../src/runtime/decode.ts';
import { ImportError } from '../../src/core/import/errors.ts';

/**
 * Files written by encoders nobody here wrote (libvips through sharp: mozjpeg, libpng, libwebp), so the decoder
 * is checked against what cameras and tools really produce, not against our own encoder's habits.
 */
const W = 37;
const H = 23;

/** A smooth gray ramp with a bright square: easy on lossy codecs, and any row/column mix-up shows. */
function grayPixels(): Uint8Array {
  const px = new Uint8Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) px[y * W + x] = x >= 20 && x < 30 && y >= 5 && y < 15 ? 230 : 20 + 4 * x;
  return px;
}

function rgbPixels(): Uint8Array {
  const px = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++) px.set([(p * 7) % 256, 60 + (p % 40), 200 - (p % 50)], 3 * p);
  return px;
}

async function toBytes(s: Sharp): Promise<Uint8Array> {
  return new Uint8Array(await s.toBuffer());
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function meanDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

describe('decode: files from third-party encoders', () => {
  const gray = () => sharp(Buffer.from(grayPixels()), { raw: { width: W, height: H, channels: 1 } });
  const rgb = () => sharp(Buffer.from(rgbPixels()), { raw: { width: W, height: H, channels: 3 } });

  it('a single-component (grayscale) JPEG from mozjpeg stays 1 channel and close to its pixels', async () => {
    const jpg = await toBytes(gray().toColourspace('b-w').jpeg({ quality: 95 }));
    expect(readImageSize(jpg, 'jpeg', 'g.jpg')).toEqual({ width: W, height: H, components: 1 });
    const d = await decodeImage(jpg, 'g.jpg');
    expect([d.raster.width, d.raster.height, d.raster.channels]).toEqual([W, H, 1]);
    // Lossy at quality 95: mean error under 1.5 levels, worst pixel (at the square's edge) under 24.
    expect(meanDiff(d.raster.data, grayPixels())).toBeLessThan(1.5);
    expect(maxDiff(d.raster.data, grayPixels())).toBeLessThan(24);
  });

  it('a progressive colour JPEG from mozjpeg decodes to RGB close to its pixels', async () => {
    const jpg = await toBytes(rgb().jpeg({ quality: 95, progressive: true, chromaSubsampling: '4:4:4' }));
    const d = await decodeImage(jpg, 'c.jpg');
    expect([d.raster.width, d.raster.height, d.raster.channels]).toEqual([W, H, 3]);
    expect(meanDiff(d.raster.data, rgbPixels())).toBeLessThan(4);
  });

  it('16-bit gray and 16-bit RGB PNG from libpng reduce to 8-bit exactly', async () => {
    // libvips widens 8-bit samples to 16-bit as g·257; the decoder must give g back exactly (round(v / 257)).
    // Rounding of values between levels is covered with fast-png files in import-decode.test.ts.
    const png16 = await toBytes(gray().toColourspace('grey16').png());
    expect(png16[24]).toBe(16); // IHDR bit depth: the file really is 16-bit
    expect(png16[25]).toBe(0); // colour type 0: gray
    const d = await decodeImage(png16, 'g16.png');
    expect(d.raster.channels).toBe(1);
    expect(maxDiff(d.raster.data, grayPixels())).toBe(0);

    // libvips' rgb16 scales by 256, not 257, so these 16-bit samples fall between 8-bit levels: the expected
    // bytes are round(v / 257) of the file's samples (read with fast-png's PNG parser), within 1 of the source.
    const rgb16 = await toBytes(rgb().toColourspace('rgb16').png());
    expect([rgb16[24], rgb16[25]]).toEqual([16, 2]);
    const samples = decodePngRaw(rgb16).data as Uint16Array;
    expect(samples.some((v) => v % 257 !== 0)).toBe(true);
    expect(
      maxDiff(
        Array.from(samples, (v) => Math.round(v / 257)),
        rgbPixels(),
      ),
    ).toBeLessThanOrEqual(1);
    const dc = await decodeImage(rgb16, 'c16.png');
    expect(dc.raster.channels).toBe(3);
    expect(
      maxDiff(
        dc.raster.data,
        Array.from(samples, (v) => Math.round(v / 257)),
      ),
    ).toBe(0);
  });

  it('reads the size of lossy (VP8), lossless (VP8L) and extended (VP8X, alpha) WebP from libwebp', async () => {
    const lossy = await toBytes(rgb().webp({ quality: 80 }));
    const lossless = await toBytes(rgb().webp({ lossless: true }));
    const alpha = await toBytes(rgb().ensureAlpha(0.5).webp({ quality: 80 }));
    const chunks = [lossy, lossless, alpha].map((b) => String.fromCharCode(...b.subarray(12, 16)));
    expect(chunks).toEqual(['VP8 ', 'VP8L', 'VP8X']);
    for (const b of [lossy, lossless, alpha]) {
      expect(sniffFormat(b)).toBe('webp');
      expect(readImageSize(b, 'webp', 'x.webp')).toEqual({ width: W, height: H });
    }
    // Node has no WebP decoder: refused by name, with the way out (the browser path is tested end to end).
    await expect(decodeImage(lossless, 'x.webp')).rejects.toBeInstanceOf(ImportError);
    await expect(decodeImage(lossless, 'x.webp')).rejects.toThrow(/x\.webp.*— fix: /);
  });
});

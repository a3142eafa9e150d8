import { describe, expect, it } from 'vitest';
import { encode as encodePngRaw } from 'fast-png';
import { encode as encodeJpegRaw } from 'jpeg-js';
import {
  MAX_PIXELS,
  MAX_SIDE,
  decodeImage,
  encodePng,
  makeThumbnail,
  sniffFormat,
} from '../../src/runtime/decode.ts';
import { ImportError } from '../../src/core/import/errors.ts';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';

/** Expects `decodeImage` to refuse with an ImportError whose message names the file and matches the reason. */
async function expectReject(bytes: Uint8Array, name: string, kind: string, reason: RegExp): Promise<void> {
  let err: unknown;
  try {
    await decodeImage(bytes, name);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ImportError);
  const e = err as ImportError;
  expect(e.kind).toBe(kind);
  expect(e.message.startsWith(`ImportError: ${name}: `)).toBe(true);
  expect(e.reason).toMatch(reason);
  expect(e.message).toMatch(/ — fix: \S/);
}

function randomRaster(w: number, h: number, c: 1 | 3 | 4, seed = 1) {
  const r = createRaster(w, h, c);
  const rng = new Rng(seed);
  for (let i = 0; i < r.data.length; i++) r.data[i] = rng.int(0, 256);
  return r;
}

/** A minimal uncompressed BMP (BITMAPINFOHEADER), bottom-up rows padded to 4 bytes. */
function makeBmp(
  w: number,
  h: number,
  bpp: 8 | 24,
  pixel: (x: number, y: number) => number[],
  palette?: number[][],
) {
  const stride = Math.ceil((w * bpp) / 32) * 4;
  const palBytes = bpp === 8 ? 256 * 4 : 0;
  const offset = 14 + 40 + palBytes;
  const b = new Uint8Array(offset + stride * h);
  const dv = new DataView(b.buffer);
  b[0] = 0x42;
  b[1] = 0x4d;
  dv.setUint32(2, b.length, true);
  dv.setUint32(10, offset, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, w, true);
  dv.setInt32(22, h, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, bpp, true);
  dv.setUint32(30, 0, true);
  if (palette) palette.forEach((c, i) => b.set([c[2], c[1], c[0], 0], 54 + 4 * i));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const row = offset + (h - 1 - y) * stride;
      const px = pixel(x, y);
      if (bpp === 8) b[row + x] = px[0];
      else b.set([px[2], px[1], px[0]], row + 3 * x);
    }
  return b;
}

describe('decode: formats', () => {
  it('round-trips 8-bit gray, RGB and RGBA PNG exactly', async () => {
    for (const c of [1, 3, 4] as const) {
      const r = randomRaster(13, 7, c, c);
      const d = await decodeImage(encodePng(r), `x${c}.png`);
      expect(d.mime).toBe('image/png');
      expect(d.raster.channels).toBe(c);
      expect([d.raster.width, d.raster.height]).toEqual([13, 7]);
      expect(Array.from(d.raster.data)).toEqual(Array.from(r.data));
    }
  });

  it('reduces 16-bit PNG to 8-bit by rounding v / 257', async () => {
    const v = new Uint16Array([0, 65535, 257 * 100, 257 * 100 + 128, 257 * 100 + 129, 32896]);
    const png = encodePngRaw({ width: 6, height: 1, channels: 1, depth: 16, data: v });
    const d = await decodeImage(png, '16bit.png');
    // 25828/257 = 100.498 → 100; 25829/257 = 100.502 → 101; 32896/257 = 128.0.
    expect(Array.from(d.raster.data)).toEqual([0, 255, 100, 100, 101, 128]);
    const rgb16 = encodePngRaw({
      width: 1,
      height: 1,
      channels: 3,
      depth: 16,
      data: new Uint16Array([65535, 0, 257 * 7]),
    });
    expect(Array.from((await decodeImage(rgb16, 'rgb16.png')).raster.data)).toEqual([255, 0, 7]);
  });

  it('expands 1-bit and 4-bit gray PNG to 0..255', async () => {
    // 3×2, 1 bit: rows 101 / 010 (each row padded to a byte).
    const one = encodePngRaw({
      width: 3,
      height: 2,
      channels: 1,
      depth: 1,
      data: new Uint8Array([0b10100000, 0b01000000]),
    });
    expect(Array.from((await decodeImage(one, '1bit.png')).raster.data)).toEqual([255, 0, 255, 0, 255, 0]);
    const four = encodePngRaw({ width: 2, height: 1, channels: 1, depth: 4, data: new Uint8Array([0x0f]) });
    expect(Array.from((await decodeImage(four, '4bit.png')).raster.data)).toEqual([0, 255]);
  });

  it('expands palette PNG (gray palette → 1 channel, colour → RGB, tRNS → RGBA) and gray+alpha → RGBA', async () => {
    const pal = encodePngRaw({
      width: 2,
      height: 1,
      channels: 1,
      depth: 8,
      data: new Uint8Array([1, 0]),
      palette: [
        [255, 0, 0],
        [0, 0, 255],
      ],
    });
    const dp = await decodeImage(pal, 'pal.png');
    expect(dp.raster.channels).toBe(3);
    expect(Array.from(dp.raster.data)).toEqual([0, 0, 255, 255, 0, 0]);
    const grayPal = encodePngRaw({
      width: 2,
      height: 1,
      channels: 1,
      depth: 8,
      data: new Uint8Array([0, 1]),
      palette: [
        [10, 10, 10],
        [200, 200, 200],
      ],
    });
    const dg = await decodeImage(grayPal, 'graypal.png');
    expect([dg.raster.channels, ...dg.raster.data]).toEqual([1, 10, 200]);
    const trns = encodePngRaw({
      width: 2,
      height: 1,
      channels: 1,
      depth: 8,
      data: new Uint8Array([0, 1]),
      palette: [
        [1, 2, 3, 0],
        [4, 5, 6, 255],
      ],
    });
    const dt = await decodeImage(trns, 'trns.png');
    expect([dt.raster.channels, ...dt.raster.data]).toEqual([4, 1, 2, 3, 0, 4, 5, 6, 255]);
    const ga = encodePngRaw({ width: 1, height: 1, channels: 2, depth: 8, data: new Uint8Array([90, 30]) });
    const dga = await decodeImage(ga, 'ga.png');
    expect([dga.raster.channels, ...dga.raster.data]).toEqual([4, 90, 90, 90, 30]);
  });

  it('decodes JPEG (jpeg-js) close to the encoded pixels', async () => {
    const w = 16;
    const h = 16;
    const rgba = new Uint8Array(w * h * 4);
    for (let p = 0; p < w * h; p++) rgba.set([200, 100, 50, 255], 4 * p);
    const jpg = new Uint8Array(encodeJpegRaw({ width: w, height: h, data: rgba }, 95).data);
    expect(sniffFormat(jpg)).toBe('jpeg');
    const d = await decodeImage(jpg, 'flat.jpg');
    expect(d.mime).toBe('image/jpeg');
    expect([d.raster.width, d.raster.height, d.raster.channels]).toEqual([16, 16, 3]);
    // Lossy: a flat colour survives within ±3 levels.
    for (let p = 0; p < w * h; p++) {
      expect(Math.abs(d.raster.data[3 * p] - 200)).toBeLessThanOrEqual(3);
      expect(Math.abs(d.raster.data[3 * p + 1] - 100)).toBeLessThanOrEqual(3);
      expect(Math.abs(d.raster.data[3 * p + 2] - 50)).toBeLessThanOrEqual(3);
    }
  });

  it('decodes 24-bit and 8-bit (gray palette) BMP', async () => {
    const bmp24 = makeBmp(3, 2, 24, (x, y) => [x * 50, y * 100, 7]);
    const d = await decodeImage(bmp24, 'c.bmp');
    expect(d.mime).toBe('image/bmp');
    expect(Array.from(d.raster.data)).toEqual([
      0, 0, 7, 50, 0, 7, 100, 0, 7, 0, 100, 7, 50, 100, 7, 100, 100, 7,
    ]);
    const grayPal = Array.from({ length: 256 }, (_, i) => [i, i, i]);
    const bmp8 = makeBmp(3, 1, 8, (x) => [x * 100], grayPal);
    const d8 = await decodeImage(bmp8, 'g.bmp');
    expect([d8.raster.channels, ...d8.raster.data]).toEqual([1, 0, 100, 200]);
  });

  it('refuses WebP in Node with a message naming the file and the way out', async () => {
    // A VP8L header for a 4×3 image; Node has no createImageBitmap.
    const b = new Uint8Array(40);
    b.set(
      [...'RIFF'].map((c) => c.charCodeAt(0)),
      0,
    );
    b.set(
      [...'WEBPVP8L'].map((c) => c.charCodeAt(0)),
      8,
    );
    new DataView(b.buffer).setUint32(21, 3 | (2 << 14), true);
    await expectReject(b, 'photo.webp', 'unsupported', /WEBP decoding needs the browser's image decoder/);
  });
});

describe('decode: bad input', () => {
  it('zero-byte file', async () => {
    await expectReject(new Uint8Array(0), 'empty.png', 'empty', /empty file \(0 bytes\)/);
  });

  it('non-image', async () => {
    await expectReject(
      new TextEncoder().encode('hello, not a picture'),
      'notes.png',
      'not-image',
      /not a PNG, JPEG, WebP or BMP image/,
    );
  });

  it('truncated PNG', async () => {
    const png = encodePng(randomRaster(64, 64, 3));
    await expectReject(png.subarray(0, Math.floor(png.length / 2)), 'cut.png', 'truncated', /truncated PNG/);
    await expectReject(png.subarray(0, 20), 'head.png', 'truncated', /truncated PNG/);
  });

  it('truncated JPEG', async () => {
    const rgba = new Uint8Array(32 * 32 * 4).fill(128);
    const jpg = new Uint8Array(encodeJpegRaw({ width: 32, height: 32, data: rgba }, 90).data);
    await expectReject(
      jpg.subarray(0, Math.floor(jpg.length * 0.6)),
      'cut.jpg',
      'truncated',
      /truncated JPEG/,
    );
  });

  it(`images over ${MAX_SIDE} px on a side or over ${MAX_PIXELS / 1e6} MP, refused from the header`, async () => {
    // A real 9000×1 PNG (small file, side over the limit).
    const wide = encodePng(createRaster(MAX_SIDE + 808, 1, 1));
    await expectReject(wide, 'wide.png', 'too-large', /9000×1 .*limit is 8192 px on a side and 64 MP/);
    // 8100×8000 = 64.8 MP with both sides in range: patch a small PNG's IHDR (never decoded, so no CRC check).
    const big = new Uint8Array(encodePng(createRaster(4, 4, 1)));
    const dv = new DataView(big.buffer);
    dv.setUint32(16, 8100);
    dv.setUint32(20, 8000);
    await expectReject(big, 'huge.png', 'too-large', /8100×8000 \(64\.8 MP\)/);
    // Just inside both limits is accepted by the header check (8000×8000 = 64 MP exactly).
    const ok = new Uint8Array(encodePng(createRaster(4, 4, 1)));
    new DataView(ok.buffer).setUint32(16, 8000);
    new DataView(ok.buffer).setUint32(20, 8000);
    // It then fails decoding (the pixel data is for 4×4) — as corrupt, not too-large.
    await expect(decodeImage(ok, 'edge.png')).rejects.toMatchObject({ kind: 'corrupt' });
  });
});

describe('thumbnails and PNG encoding', () => {
  it('box-filters to the longest side, keeps aspect and channels, and averages exactly', () => {
    const r = createRaster(632, 224, 1);
    for (let y = 0; y < 224; y++) for (let x = 0; x < 632; x++) r.data[y * 632 + x] = x % 2 ? 200 : 100;
    const t = makeThumbnail(r, 128);
    expect([t.width, t.height, t.channels]).toEqual([128, 45, 1]);
    // A 1-px stripe pattern averages to its mean (150 ± 1 where a box holds an odd number of columns).
    for (const v of t.data) expect(Math.abs(v - 150)).toBeLessThanOrEqual(13);
    const small = makeThumbnail(createRaster(40, 30, 3, 9), 128);
    expect([small.width, small.height, small.data[0]]).toEqual([40, 30, 9]);
    const exact = createRaster(4, 4, 1);
    exact.data.set([0, 100, 10, 30, 200, 100, 50, 70, 0, 0, 0, 0, 0, 0, 0, 4]);
    expect(Array.from(makeThumbnail(exact, 2).data)).toEqual([100, 40, 0, 1]);
  });
});

describe('thumbnails against a plain box filter', () => {
  /** The box filter written the obvious way: every output pixel averages its source box, Math.round. */
  function reference(
    r: { width: number; height: number; channels: number; data: ArrayLike<number> },
    max: number,
  ) {
    const { width: W, height: H, channels: C } = r;
    const s = Math.min(1, max / Math.max(W, H));
    const w = Math.max(1, Math.round(W * s));
    const h = Math.max(1, Math.round(H * s));
    const out: number[] = [];
    for (let y = 0; y < h; y++) {
      const y0 = Math.floor((y * H) / h);
      const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * H) / h));
      for (let x = 0; x < w; x++) {
        const x0 = Math.floor((x * W) / w);
        const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * W) / w));
        for (let k = 0; k < C; k++) {
          let sum = 0;
          for (let yy = y0; yy < y1; yy++)
            for (let xx = x0; xx < x1; xx++) sum += r.data[(yy * W + xx) * C + k];
          out.push(Math.round(sum / ((x1 - x0) * (y1 - y0))));
        }
      }
    }
    return { w, h, out };
  }

  it('equals it for gray, RGB and RGBA at several sizes', () => {
    const rng = new Rng('thumb-ref');
    for (const [W, H, C, max] of [
      [632, 224, 3, 128],
      [200, 256, 1, 128],
      [97, 301, 4, 64],
      [1000, 7, 3, 5],
    ] as const) {
      const r = createRaster(W, H, C);
      for (let i = 0; i < r.data.length; i++) r.data[i] = rng.int(0, 256);
      const t = makeThumbnail(r, max);
      const ref = reference(r, max);
      expect([t.width, t.height, t.channels]).toEqual([ref.w, ref.h, C]);
      expect(Array.from(t.data)).toEqual(ref.out);
    }
  });
});

/**
 * Import of the formats a user brings, written by encoders nobody here wrote (libvips through sharp: libwebp,
 * mozjpeg, libpng), through the real file input of the built app. WebP is decoded by the browser inside the
 * import worker (Node has no WebP decoder), so this is the only place its pixels are checked. The stored
 * thumbnail (PNG, made from the decoded pixels) shows what the decoder produced.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { expect, test } from './fixtures.ts';

const W = 64;
const H = 48;
const LEFT = [10, 200, 30];
const RIGHT = [220, 40, 160];

/** Left half one colour, right half another: corners survive any box filter exactly, lossless codecs too. */
function halves(gray = false): Sharp {
  const px = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) px.set(x < W / 2 ? LEFT : RIGHT, 3 * (y * W + x));
  const s = sharp(Buffer.from(px), { raw: { width: W, height: H, channels: 3 } });
  return gray ? s.toColourspace('b-w') : s;
}

interface Expect {
  mime: string;
  channels: number;
  /** Corner colours of the thumbnail (top-left, bottom-right) and the tolerance in levels. */
  corners?: [number[], number[], number];
}

test('WebP (lossy, lossless, alpha), grayscale JPEG and 16-bit PNG from third-party encoders import and decode in the browser', async ({
  page,
}) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'defectlab-formats-e2e-'));
  const files: Record<string, [Buffer, Expect]> = {
    'lossless.webp': [
      await halves().webp({ lossless: true }).toBuffer(),
      { mime: 'image/webp', channels: 3, corners: [LEFT, RIGHT, 0] },
    ],
    'lossy.webp': [
      await halves().webp({ quality: 90 }).toBuffer(),
      { mime: 'image/webp', channels: 3, corners: [LEFT, RIGHT, 12] },
    ],
    'alpha.webp': [
      await halves().ensureAlpha(0.5).webp({ lossless: true }).toBuffer(),
      { mime: 'image/webp', channels: 4 },
    ],
    'gray.jpg': [await halves(true).jpeg({ quality: 95 }).toBuffer(), { mime: 'image/jpeg', channels: 1 }],
    'gray16.png': [
      await halves(true).toColourspace('grey16').png().toBuffer(),
      { mime: 'image/png', channels: 1 },
    ],
  };
  // libvips' own gray conversion decides the exact gray levels; read them back rather than guess its weights.
  const grayRaw = await halves(true).raw().toBuffer({ resolveWithObject: true });
  expect(grayRaw.info.channels).toBe(1);
  const grayCorners: [number[], number[]] = [[grayRaw.data[0]], [grayRaw.data[W * H - 1]]];
  expect(Math.abs(grayCorners[0][0] - grayCorners[1][0])).toBeGreaterThan(20);
  files['gray.jpg'][1].corners = [...grayCorners, 4];
  // grey16 is computed at 16-bit precision, so round(v / 257) may land one level from the 8-bit conversion.
  files['gray16.png'][1].corners = [...grayCorners, 1];
  // A cut-short WebP must be named in the report while the others import.
  const lossless = files['lossless.webp'][0];
  writeFileSync(path.join(dir, 'cut.webp'), lossless.subarray(0, lossless.length >> 1));
  for (const [name, [bytes]] of Object.entries(files)) writeFileSync(path.join(dir, name), bytes);

  await page.goto('/');
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
  await page.getByTestId('import-target').selectOption('new');
  await page
    .getByTestId('import-files')
    .setInputFiles([...Object.keys(files), 'cut.webp'].map((n) => path.join(dir, n)));
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText(String(Object.keys(files).length), {
    timeout: 120_000,
  });
  await expect(report.getByTestId('report-rejected')).toHaveText('1');
  await expect(report.getByTestId('report-rejected-list')).toContainText('cut.webp');
  await report.getByTestId('report-close').click();

  const stored = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const images = await new Promise<
      { name: string; mime: string; width: number; height: number; channels: number; thumbnail: Blob }[]
    >((res, rej) => {
      const r = db.transaction('images').objectStore('images').getAll();
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const out = [];
    for (const i of images) {
      if (!/\.(webp|jpg|png)$/.test(i.name) || !/^(lossless|lossy|alpha|gray|gray16)\./.test(i.name))
        continue;
      out.push({ ...i, thumbnail: [...new Uint8Array(await i.thumbnail.arrayBuffer())] });
    }
    return out;
  });
  expect(stored.map((s) => s.name).sort()).toEqual(Object.keys(files).sort());
  for (const s of stored) {
    const want = files[s.name][1];
    expect({ name: s.name, mime: s.mime, size: [s.width, s.height], channels: s.channels }).toEqual({
      name: s.name,
      mime: want.mime,
      size: [W, H],
      channels: want.channels,
    });
    if (!want.corners) continue;
    const thumb = await sharp(Buffer.from(s.thumbnail)).raw().toBuffer({ resolveWithObject: true });
    const { width, height, channels } = thumb.info;
    const at = (x: number, y: number) =>
      [...thumb.data.subarray((y * width + x) * channels, (y * width + x) * channels + channels)].slice(
        0,
        want.corners![0].length,
      );
    const [tl, br, tol] = want.corners;
    const diff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    expect(diff(at(0, 0), tl), `${s.name} top-left ${at(0, 0)} vs ${tl}`).toBeLessThanOrEqual(tol);
    expect(diff(at(width - 1, height - 1), br), `${s.name} bottom-right`).toBeLessThanOrEqual(tol);
  }
});

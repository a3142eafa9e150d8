/**
 * The Data tab while an import runs (issue 16: "the grid usable while it runs"): a folder of 300 KSDD2-size
 * PNGs (632×224 RGB) goes in through the folder input; before the import ends the new dataset is open, the
 * grid's count has grown past zero (batches show as they land, not only at the end), a click on a thumbnail
 * selects it and the grid scrolls — all while the progress bar is still up.
 *
 * The files: 6 encoded surfaces, each copy made unique by a tEXt chunk (its own SHA-256, full decoding cost),
 * written to the OS temp dir and picked by path (no bytes through the driver).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encode } from 'fast-png';
import { expect, test } from './fixtures.ts';

const N = 300;

/** What the page showed at one change. */
interface Live {
  dataset: string;
  /** The first cell's file name: the listing shown is the import's once it is a tile. */
  first: string;
  total: number;
  selected: number;
  running: boolean;
  scrolled: boolean;
}
const W = 632;
const H = 224;

const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with a tEXt chunk after IHDR: same pixels, different bytes. */
function withText(png: Uint8Array, text: string): Uint8Array {
  const data = new TextEncoder().encode(`id\u0000${text}`);
  const chunk = new Uint8Array(12 + data.length);
  const dv = new DataView(chunk.buffer);
  dv.setUint32(0, data.length);
  chunk.set([0x74, 0x45, 0x58, 0x74], 4);
  chunk.set(data, 8);
  dv.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  const at = 33; // signature + IHDR
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, at));
  out.set(chunk, at);
  out.set(png.subarray(at), at + chunk.length);
  return out;
}

function folder(): string {
  const root = path.join(mkdtempSync(path.join(tmpdir(), 'defectlab-import-live-')), 'live-tiles');
  mkdirSync(root);
  const bases = Array.from({ length: 6 }, (_, b) => {
    const px = new Uint8Array(W * H * 3);
    let s = 12345 + b;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        s = (s * 1103515245 + 12345) >>> 0;
        const v = 120 + 60 * Math.sin((x + 7 * b) / 23) * Math.cos(y / 17) + ((s >>> 24) & 3);
        for (let k = 0; k < 3; k++) px[(y * W + x) * 3 + k] = Math.max(0, Math.min(255, v + 10 * k));
      }
    return encode({ width: W, height: H, channels: 3, depth: 8, data: px });
  });
  for (let i = 0; i < N; i++)
    writeFileSync(
      path.join(root, `tile-${String(i).padStart(4, '0')}.png`),
      withText(bases[i % 6], String(i)),
    );
  return root;
}

test('while an import runs, the grid shows the batches stored so far and stays usable', async ({ page }) => {
  const dir = folder();
  await page.goto('/');
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
  await expect(page.getByTestId('count-total')).not.toHaveText('0 images');

  // Every change of the count or of the selection is recorded with whether the progress bar was up then, so
  // "mid-import" is what the page showed, not a guess from the test's timing.
  await page.evaluate(() => {
    const log: Live[] = [];
    (globalThis as unknown as { __live: Live[] }).__live = log;
    const read = () => {
      const num = (id: string) =>
        Number(/\d+/.exec(document.querySelector(`[data-testid="${id}"]`)?.textContent ?? '')?.[0] ?? NaN);
      const picker = document.querySelector<HTMLSelectElement>('[data-testid="dataset-select"]');
      const e: Live = {
        dataset: picker?.selectedOptions[0]?.textContent?.trim() ?? '',
        first: document.querySelector('[data-testid="image-cell"]')?.getAttribute('data-name') ?? '',
        total: num('count-total'),
        selected: num('selected-count'),
        running: document.querySelector('[data-testid="import-progress"]') !== null,
        scrolled: (document.querySelector('[data-testid="image-grid"]')?.scrollTop ?? 0) > 0,
      };
      const p = log.at(-1);
      if (!p || (Object.keys(e) as (keyof Live)[]).some((k) => p[k] !== e[k])) log.push(e);
    };
    new MutationObserver(read).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
    });
    document.addEventListener('scroll', read, { capture: true });
    read();
  });
  const live = async () =>
    (await page.evaluate(() => (globalThis as unknown as { __live: Live[] }).__live)).filter(
      // The picker switches a moment before the grid's listing does: only entries showing the import's images.
      (e) => e.dataset === 'live-tiles' && (e.total === 0 || e.first.startsWith('tile-')),
    );

  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-folder').setInputFiles(dir);
  const progress = page.getByTestId('import-progress');
  await expect(progress).toBeVisible();
  // The new dataset opens and its first batches show while the import still runs.
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText('live-tiles');
  await expect
    .poll(async () => (await live()).some((e) => e.running && e.total > 0 && e.total < N), {
      timeout: 60_000,
    })
    .toBe(true);
  // Usable meanwhile: a click selects a thumbnail, the grid scrolls.
  await page.getByTestId('image-cell').first().click();
  await expect(page.getByTestId('selected-count')).toHaveText('1 selected');
  await page.getByTestId('image-grid').hover();
  await page.mouse.wheel(0, 400);
  await expect.poll(async () => (await live()).some((e) => e.scrolled)).toBe(true);

  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText(String(N), { timeout: 120_000 });
  await report.getByTestId('report-close').click();
  await expect(page.getByTestId('count-total')).toHaveText(`${N} images`);

  const log = await live();
  const during = log.filter((e) => e.running && e.total < N);
  // The count grew in steps while the bar was up (batches of 32 landing), not all at once at the end.
  const counts = [...new Set(during.map((e) => e.total).filter((t) => t > 0))];
  expect(counts.length).toBeGreaterThanOrEqual(2);
  expect(counts).toEqual([...counts].sort((a, b) => a - b));
  // The click and the scroll happened before the import ended.
  expect(during.some((e) => e.selected === 1)).toBe(true);
  expect(during.some((e) => e.scrolled)).toBe(true);
  // The selection survived the re-reads that followed it.
  await expect(page.getByTestId('selected-count')).toHaveText('1 selected');
});

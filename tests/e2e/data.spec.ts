/**
 * The real-data round trip through the browser UI: the 210 magnetic-tile photos (../shared, read in place) are
 * imported through the real file inputs — once as a zip built here with fflate (manifest layout), once as the
 * folder itself (webkitdirectory) — survive a reload with their labels, splits and 60 masks, are exported as a
 * zip (download), and the export re-imported into a new dataset loses nothing (same bytes, labels, splits,
 * classes, groups, masks). No WebGPU work happens here.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test, type Page } from './fixtures.ts';
import { waitForApp } from './helpers.ts';
import { unzipSync, zipSync } from 'fflate';

// The package is ESM, so `import.meta.dirname` stands in for __dirname; ../shared sits next to the repo root.
const here = import.meta.dirname;
const SRC = path.resolve(here, '../../../shared/data/magnetic-tile-compact');
// Scratch files go to the OS temp dir: parallel Playwright runs wipe test-results/ when they start.
const WORK = mkdtempSync(path.join(tmpdir(), 'defectlab-data-e2e-'));

interface SourceItem {
  file: string;
  label_name: 'normal' | 'defect';
  split: string;
  mask: string | null;
  defect_class: string;
  group: string;
}
interface ExportedItem {
  file: string;
  name: string;
  label_name: string;
  split: string;
  mask: string | null;
  defect_class: string | null;
  group: string | null;
  sha256: string;
}

const manifest = JSON.parse(readFileSync(path.join(SRC, 'manifest.json'), 'utf8')) as { items: SourceItem[] };
const items = manifest.items;
// The importer keeps few-shot defects as training material (they must never be evaluated on).
const splitOf = (s: string) => (s === 'fewshot' ? 'train' : s);
const expected = {
  total: items.length,
  normal: items.filter((i) => i.label_name === 'normal').length,
  defect: items.filter((i) => i.label_name === 'defect').length,
  train: items.filter((i) => splitOf(i.split) === 'train').length,
  val: items.filter((i) => splitOf(i.split) === 'val').length,
  test: items.filter((i) => splitOf(i.split) === 'test').length,
  masks: items.filter((i) => i.mask).length,
};

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function zipFolder(): Uint8Array {
  const files: Record<string, Uint8Array> = {
    'manifest.json': readFileSync(path.join(SRC, 'manifest.json')),
  };
  for (const dir of ['images', 'masks']) {
    for (const f of readdirSync(path.join(SRC, dir)))
      files[`${dir}/${f}`] = readFileSync(path.join(SRC, dir, f));
  }
  // PNGs do not compress further; level 0 keeps the zip quick to build and read.
  return zipSync(files, { level: 0 });
}

async function importThrough(page: Page, input: 'import-files' | 'import-folder', files: string) {
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId(input).setInputFiles(files);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toBeVisible({ timeout: 180_000 });
  const added = Number(await report.getByTestId('report-added').textContent());
  const rejected = Number(await report.getByTestId('report-rejected').textContent());
  const layout = await report.getByTestId('report-layout').textContent();
  await report.getByTestId('report-close').click();
  return { added, rejected, layout };
}

async function openByName(page: Page, name: string) {
  await page.getByTestId('dataset-select').selectOption({ label: name });
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText(name);
}

async function expectCounts(page: Page) {
  await expect(page.getByTestId('count-total')).toHaveText(`${expected.total} images`);
  await expect(page.getByTestId('count-label-normal')).toHaveText(`normal ${expected.normal}`);
  await expect(page.getByTestId('count-label-defect')).toHaveText(`defect ${expected.defect}`);
  await expect(page.getByTestId('count-label-unlabeled')).toHaveText('unlabeled 0');
  await expect(page.getByTestId('count-split-train')).toHaveText(`train ${expected.train}`);
  await expect(page.getByTestId('count-split-val')).toHaveText(`val ${expected.val}`);
  await expect(page.getByTestId('count-split-test')).toHaveText(`test ${expected.test}`);
  await expect(page.getByTestId('count-masks')).toHaveText(`masks ${expected.masks}`);
}

async function exportZip(
  page: Page,
  file: string,
): Promise<{ manifest: { items: ExportedItem[] }; zip: Record<string, Uint8Array> }> {
  const download = page.waitForEvent('download', { timeout: 120_000 });
  await page.getByTestId('export-zip').click();
  const d = await download;
  await d.saveAs(file);
  const zip = unzipSync(new Uint8Array(readFileSync(file)));
  return { manifest: JSON.parse(new TextDecoder().decode(zip['manifest.json'])), zip };
}

test('magnetic tiles: zip and folder import, reload, export, re-import without loss', async ({ page }) => {
  expect(expected).toEqual({ total: 210, normal: 150, defect: 60, train: 110, val: 0, test: 100, masks: 60 });
  mkdirSync(WORK, { recursive: true });
  const zipPath = path.join(WORK, 'mt-zip.zip');
  writeFileSync(zipPath, zipFolder());

  await page.goto('/');
  await waitForApp(page);

  // 1. The zip through the file picker.
  const viaZip = await importThrough(page, 'import-files', zipPath);
  expect(viaZip).toEqual({ added: 210, rejected: 0, layout: 'manifest' });
  // 2. The folder through the folder picker (images/, masks/, manifest.json).
  const viaFolder = await importThrough(page, 'import-folder', SRC);
  expect(viaFolder).toEqual({ added: 210, rejected: 0, layout: 'manifest' });

  // 3. After a reload both datasets are still there with every label, split and mask.
  await page.reload();
  await waitForApp(page);
  for (const name of ['mt-zip', 'magnetic-tile-compact']) {
    await openByName(page, name);
    await expectCounts(page);
  }
  // The filters agree with the counts (the grid shows only the matching images).
  await page.getByTestId('filter-label').selectOption('defect');
  await expect(page.getByTestId('shown-count')).toHaveText(`${expected.defect} shown`);
  await page.getByTestId('filter-label').selectOption('');
  await expect(page.getByTestId('shown-count')).toHaveText(`${expected.total} shown`);

  // 4. Export the zip-imported dataset: every original byte, label, split and mask is in it.
  await openByName(page, 'mt-zip');
  const a = await exportZip(page, path.join(WORK, 'mt-export.zip'));
  expect(a.manifest.items).toHaveLength(210);
  const byName = new Map(a.manifest.items.map((i) => [i.name, i]));
  for (const src of items) {
    const out = byName.get(src.file);
    expect(out, src.file).toBeDefined();
    if (!out) continue;
    expect(out.label_name).toBe(src.label_name);
    expect(out.split).toBe(splitOf(src.split));
    expect(out.defect_class).toBe(src.defect_class);
    expect(out.group).toBe(src.group);
    expect(out.sha256).toBe(sha(readFileSync(path.join(SRC, src.file))));
    expect(sha(a.zip[out.file])).toBe(out.sha256);
    expect(out.mask !== null).toBe(src.mask !== null);
    if (out.mask) expect(a.zip[out.mask].length).toBeGreaterThan(0);
  }

  // 5. Re-import the export into a new dataset and export that: identical items, bytes and masks.
  const again = await importThrough(page, 'import-files', path.join(WORK, 'mt-export.zip'));
  expect(again.added).toBe(210);
  expect(again.rejected).toBe(0);
  await openByName(page, 'mt-export');
  await expectCounts(page);
  const b = await exportZip(page, path.join(WORK, 'mt-export-2.zip'));
  const key = (i: ExportedItem) => i.name;
  const pick = (i: ExportedItem) => ({
    name: i.name,
    label: i.label_name,
    split: i.split,
    cls: i.defect_class,
    group: i.group,
    sha: i.sha256,
    hasMask: i.mask !== null,
  });
  const sortBy = (xs: ExportedItem[]) => [...xs].sort((x, y) => (key(x) < key(y) ? -1 : 1));
  expect(sortBy(b.manifest.items).map(pick)).toEqual(sortBy(a.manifest.items).map(pick));
  const maskOf = (m: typeof a, i: ExportedItem) => (i.mask ? sha(m.zip[i.mask]) : null);
  const bByName = new Map(b.manifest.items.map((i) => [i.name, i]));
  for (const i of a.manifest.items) expect(maskOf(b, bByName.get(i.name)!)).toBe(maskOf(a, i));
});

/**
 * The dataset browser on the built-in sample dataset (no reference data needed): first start creates and opens
 * it; multi-select (click, shift-click, ctrl-click, select all), relabel, move split, delete + undo, filters, the
 * mask viewer, rename / delete dataset, the generator filter, and the import UI's report for bad files and its
 * cancel button.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encode } from 'fast-png';
import { expect, test, type Page } from './fixtures.ts';

const SHARED = path.resolve(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');
// Scratch files go to the OS temp dir: parallel Playwright runs wipe test-results/ when they start.
const WORK = mkdtempSync(path.join(tmpdir(), 'defectlab-data-browser-e2e-'));

async function total(page: Page): Promise<number> {
  const t = await page.getByTestId('count-total').textContent();
  return Number(/(\d+) images?/.exec(t ?? '')?.[1] ?? NaN);
}

async function count(page: Page, id: string): Promise<number> {
  const t = (await page.getByTestId(id).textContent()) ?? '';
  return Number(/(\d+)\s*$/.exec(t)?.[1] ?? NaN);
}

async function openApp(page: Page) {
  await page.goto('/');
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
  await expect(page.getByTestId('count-total')).not.toHaveText('0 images');
}

test('first start opens the sample dataset; select, relabel, move, delete with undo, filter, view a mask', async ({
  page,
}) => {
  await openApp(page);
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText(/sample/i);
  const n = await total(page);
  expect(n).toBeGreaterThan(20);
  const unlabeled0 = await count(page, 'count-label-unlabeled');
  const val0 = await count(page, 'count-split-val');
  // Only the visible rows are in the DOM.
  const rendered = Number(await page.getByTestId('image-grid').getAttribute('data-rendered'));
  expect(rendered).toBeLessThan(n);

  const cells = page.getByTestId('image-cell');
  await cells.nth(0).click();
  await cells.nth(3).click({ modifiers: ['Shift'] });
  await expect(page.getByTestId('selected-count')).toHaveText('4 selected');
  await cells.nth(1).click({ modifiers: ['Control'] });
  await expect(page.getByTestId('selected-count')).toHaveText('3 selected');
  const chosen = [
    await cells.nth(0).getAttribute('data-name'),
    await cells.nth(2).getAttribute('data-name'),
    await cells.nth(3).getAttribute('data-name'),
  ];

  await page.getByTestId('relabel').selectOption('unlabeled');
  await expect(page.getByTestId('count-label-unlabeled')).toHaveText(`unlabeled ${unlabeled0 + 3}`);
  await page.getByTestId('move-split').selectOption('val');
  await expect(page.getByTestId('count-split-val')).toHaveText(`val ${val0 + 3}`);
  for (const name of chosen) {
    const cell = page.locator(`[data-testid="image-cell"][data-name="${name}"]`);
    await expect(cell).toHaveAttribute('data-label', 'unlabeled');
    await expect(cell).toHaveAttribute('data-split', 'val');
  }

  // Filters show exactly the moved images.
  await page.getByTestId('filter-split').selectOption('val');
  await expect(page.getByTestId('shown-count')).toHaveText(`${val0 + 3} shown`);
  await page.getByTestId('filter-split').selectOption('');

  await page.getByTestId('delete-selected').click();
  await expect(page.getByTestId('count-total')).toHaveText(`${n - 3} images`);
  await page.getByTestId('toast-action').filter({ hasText: 'Undo' }).click();
  await expect(page.getByTestId('count-total')).toHaveText(`${n} images`);
  // Undo restores the records as they were when deleted (relabelled, moved).
  await expect(page.getByTestId('count-label-unlabeled')).toHaveText(`unlabeled ${unlabeled0 + 3}`);

  await page.getByTestId('select-all').click();
  await expect(page.getByTestId('selected-count')).toHaveText(`${n} selected`);

  // The viewer draws the mask of a defect image over it; the opacity slider controls it.
  await page.getByTestId('filter-label').selectOption('defect');
  await cells.first().dblclick();
  const viewer = page.getByTestId('image-viewer');
  await expect(viewer.getByTestId('viewer-image')).toBeVisible();
  await expect(viewer.getByTestId('viewer-mask')).toHaveAttribute('data-has-mask', 'true');
  await viewer.getByTestId('mask-opacity').fill('0.8');
  await expect(viewer.getByTestId('viewer-mask')).toHaveCSS('opacity', '0.8');
  // The overlay holds mask pixels: some red, some transparent.
  const px = await viewer.getByTestId('viewer-mask').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let on = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) on++;
    return { on, all: d.length / 4 };
  });
  expect(px.on).toBeGreaterThan(0);
  expect(px.on).toBeLessThan(px.all);
});

test('rename and delete a dataset; the import report lists bad files with reasons', async ({ page }) => {
  await openApp(page);
  mkdirSync(WORK, { recursive: true });
  const empty = path.join(WORK, 'empty.png');
  const text = path.join(WORK, 'notes.png');
  writeFileSync(empty, new Uint8Array());
  writeFileSync(text, 'this is not an image');

  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-files').setInputFiles([empty, text]);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-rejected')).toHaveText('2');
  await expect(report.getByTestId('report-added')).toHaveText('0');
  const list = report.getByTestId('report-rejected-list');
  await expect(list).toContainText('empty.png');
  await expect(list).toContainText('notes.png');
  await report.getByTestId('report-close').click();

  // Rename the (empty) imported dataset, reload, it keeps the name; then delete it with confirmation.
  await page.getByTestId('dataset-rename').click();
  await page.getByTestId('rename-input').fill('Bad files');
  await page.getByTestId('rename-confirm').click();
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText('Bad files');
  await page.reload();
  await expect(page.getByTestId('dataset-select').locator('option:checked')).toHaveText('Bad files');
  const before = await page.getByTestId('dataset-select').locator('option').count();
  await page.getByTestId('dataset-delete').click();
  await page.getByTestId('delete-confirm').click();
  await expect(page.getByTestId('dataset-select').locator('option')).toHaveCount(before - 1);
  await expect(page.getByTestId('dataset-select').locator('option', { hasText: 'Bad files' })).toHaveCount(0);
});

test('cancelling an import keeps what was stored and says so', async ({ page }) => {
  await openApp(page);
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-folder').setInputFiles(SHARED);
  const progress = page.getByTestId('import-progress');
  await expect(progress).toBeVisible();
  await expect(progress.getByTestId('import-progress-count')).toContainText('/ 210');
  await progress.getByTestId('import-progress-cancel').click();
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-summary')).toContainText('cancelled');
  const added = Number(await report.getByTestId('report-added').textContent());
  expect(added).toBeLessThan(210);
  await report.getByTestId('report-close').click();
  await expect(page.getByTestId('count-total')).toHaveText(`${added} image${added === 1 ? '' : 's'}`);
});

test('dropping files on the page imports them', async ({ page }) => {
  await openApp(page);
  const names = ['MT_Free__exp6_num_106244.png'];
  const files = names.map((n) => ({ name: n, bytes: [...readFileSync(path.join(SHARED, 'images', n))] }));
  await page.getByTestId('import-target').selectOption('new');
  await page.evaluate((fs) => {
    const dt = new DataTransfer();
    for (const f of fs) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: 'image/png' }));
    document.body.dispatchEvent(
      new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }),
    );
    document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText('1');
  await expect(report.getByTestId('report-layout')).toHaveText('plain');
  await report.getByTestId('report-close').click();
  await expect(page.getByTestId('count-total')).toHaveText('1 image');
  await expect(page.getByTestId('count-label-unlabeled')).toHaveText('unlabeled 1');
});

test('the generator filter shows exactly the samples of each generator, the non-generated ones, and combines with label', async ({
  page,
}) => {
  // A folder with a manifest whose items carry provenance, as DefectLab's own export writes it.
  const dir = mkdtempSync(path.join(tmpdir(), 'defectlab-generators-'));
  mkdirSync(path.join(dir, 'images'));
  const plan: { name: string; generator: string | null; label: string }[] = [
    { name: 'real-a.png', generator: null, label: 'normal' },
    { name: 'real-b.png', generator: null, label: 'normal' },
    { name: 'real-c.png', generator: null, label: 'defect' },
    { name: 'memseg-1.png', generator: 'memseg', label: 'defect' },
    { name: 'memseg-2.png', generator: 'memseg', label: 'defect' },
    { name: 'cutpaste-1.png', generator: 'cutpaste', label: 'defect' },
    { name: 'cutpaste-2.png', generator: 'cutpaste', label: 'normal' },
  ];
  const items = plan.map((p, i) => {
    const px = new Uint8Array(16 * 16).map((_, k) => (k * 7 + i * 31) & 255);
    writeFileSync(
      path.join(dir, 'images', p.name),
      encode({ width: 16, height: 16, channels: 1, depth: 8, data: px }),
    );
    return {
      file: `images/${p.name}`,
      label_name: p.label,
      split: 'train',
      mask: null,
      ...(p.generator
        ? {
            provenance: {
              generator: p.generator,
              parameters: { i },
              seed: i,
              createdAt: 1_700_000_000_000 + i,
            },
          }
        : {}),
    };
  });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ dataset: 'generators', items }));
  const names = (f: (p: (typeof plan)[number]) => boolean) =>
    plan
      .filter(f)
      .map((p) => `images/${p.name}`)
      .sort();

  await openApp(page);
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-folder').setInputFiles(dir);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText(String(plan.length));
  await report.getByTestId('report-close').click();
  await expect(page.getByTestId('count-total')).toHaveText(`${plan.length} images`);
  await expect(page.getByTestId('count-generated-memseg')).toHaveText('memseg 2');
  await expect(page.getByTestId('count-generated-cutpaste')).toHaveText('cutpaste 2');

  // The dropdown offers every generator in the dataset, plus "all" and "not generated".
  const filter = page.getByTestId('filter-generator');
  await expect(filter.locator('option')).toHaveText(['all', 'not generated', 'cutpaste', 'memseg']);

  const cells = page.getByTestId('image-cell');
  const shownNames = async () =>
    (await cells.evaluateAll((els) => els.map((e) => e.dataset.name ?? ''))).sort();
  const expectShown = async (want: string[]) => {
    await expect(page.getByTestId('shown-count')).toHaveText(`${want.length} shown`);
    await expect(cells).toHaveCount(want.length);
    expect(await shownNames()).toEqual(want);
  };

  await filter.selectOption('memseg');
  await expectShown(names((p) => p.generator === 'memseg'));
  for (const c of await cells.all())
    await expect(c.locator('.gen')).toHaveAttribute('title', 'generated by memseg');
  await filter.selectOption('cutpaste');
  await expectShown(names((p) => p.generator === 'cutpaste'));
  await filter.selectOption('none');
  await expectShown(names((p) => p.generator === null));
  await expect(cells.locator('.gen')).toHaveCount(0);

  // Combined with the label filter: cutpaste defects only, then a combination with no match.
  await filter.selectOption('cutpaste');
  await page.getByTestId('filter-label').selectOption('defect');
  await expectShown(names((p) => p.generator === 'cutpaste' && p.label === 'defect'));
  await filter.selectOption('memseg');
  await page.getByTestId('filter-label').selectOption('normal');
  await expectShown([]);

  // Back to all: everything, and the counts never depended on the filter.
  await filter.selectOption('');
  await page.getByTestId('filter-label').selectOption('');
  await expectShown(names(() => true));
  await expect(page.getByTestId('count-generated-memseg')).toHaveText('memseg 2');
});

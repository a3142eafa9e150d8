/**
 * Shared steps of the evaluation specs (evaluate.spec.ts, patchcore.spec.ts): the 14-photo magnetic-tile subset,
 * the metric-table check and opening a confusion cell with its heat maps.
 */
import { expect, type Page } from './fixtures.ts';
import { mtManifest, mtSubset } from './helpers.ts';

/** 5 train normals + 3 few-shot defects (train) + 3 test normals + 3 test defects of two classes. */
export function evalSubset(): string {
  const m = mtManifest();
  const take = (split: string, label: number, n: number, cls?: string) =>
    m.items
      .filter((i) => i.split === split && i.label === label && (!cls || i.defect_class === cls))
      .slice(0, n);
  const testDefects = m.items.filter((i) => i.split === 'test' && i.label === 1);
  const classes = [...new Set(testDefects.map((i) => i.defect_class))].slice(0, 2);
  return mtSubset('mt-eval', [
    ...take('train', 0, 5),
    ...take('fewshot', 1, 3),
    ...take('test', 0, 3),
    ...take('test', 1, 2, classes[0]),
    ...take('test', 1, 1, classes[1]),
  ]);
}

/** The metric table: head row with AUPRO in [0, 1] and the two baseline rows with finite AP. */
export async function checkTable(page: Page) {
  const table = page.getByTestId('train-metric-table');
  const pro = Number(await table.getByTestId('train-metric-pro').textContent());
  expect(pro).toBeGreaterThanOrEqual(0);
  expect(pro).toBeLessThanOrEqual(1);
  const rows = table.getByTestId('baseline-row');
  await expect(rows).toHaveCount(2);
  expect(await rows.evaluateAll((r) => r.map((e) => e.getAttribute('data-kind')))).toEqual(['mean', 'knn']);
  for (const ap of await table.getByTestId('baseline-ap').allTextContents()) {
    expect(Number(ap)).toBeGreaterThan(0);
    expect(Number(ap)).toBeLessThanOrEqual(1);
  }
  return pro;
}

/** Opens the non-empty actual-defect cell and waits for every image to carry its heat map. */
export async function openDefectCell(page: Page) {
  const panel = page.getByTestId('evaluation');
  await expect(panel.getByTestId('per-class-row')).toHaveCount(2);
  const tp = panel.getByTestId('confusion-tp');
  const cell = (await tp.isDisabled()) ? panel.getByTestId('confusion-fn') : tp;
  const n = parseInt((await cell.textContent()) ?? '0', 10);
  expect(n).toBeGreaterThan(0);
  await cell.click();
  const tiles = panel.getByTestId('confusion-gallery').getByTestId('heatmap-image');
  await expect(tiles).toHaveCount(n);
  for (let i = 0; i < n; i++) await expect(tiles.nth(i)).toHaveAttribute('data-overlay', 'heat');
  // The canvas holds the photo at its own size (longest side 256) with coloured heat over grey pixels.
  const stats = await tiles
    .first()
    .locator('canvas')
    .evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let colour = 0;
      for (let p = 0; p < d.length; p += 4) if (Math.abs(d[p] - d[p + 2]) > 30) colour++;
      return { w: c.width, h: c.height, colour: colour / (d.length / 4) };
    });
  expect(Math.max(stats.w, stats.h)).toBe(256);
  expect(stats.colour).toBeGreaterThan(0.5);
  await expect(tiles.first().getByTestId('heatmap-score')).toContainText('score');
}

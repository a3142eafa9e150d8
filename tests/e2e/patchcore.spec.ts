import { expect, test } from './fixtures.ts';
import { checkTable, evalSubset, openDefectCell } from './evaluation.ts';
import { MOBILENET_INT8, importIntoNewDataset, loadBackboneFileOnWasm, waitForApp } from './helpers.ts';

/**
 * PatchCore in the Train tab on real magnetic tiles (14 photos of ../shared, copied to a temp dir) and the real
 * MobileNetV2-int8 with its stride-16/32 taps: the memory bank is built from the train normals, the metric table
 * has its row with AUPRO next to the two baselines, and a confusion cell opens its images with PatchCore's heat
 * map over them; a re-evaluation of the saved bank gives the same AP.
 */
test('PatchCore on compact tiles: trains, evaluates with PRO and baselines, opens heat maps, re-evaluates', async ({
  page,
}) => {
  test.setTimeout(600_000);
  await page.goto('/');
  await waitForApp(page);
  await importIntoNewDataset(page, 'import-folder', evalSubset(), 14, 180_000);
  await loadBackboneFileOnWasm(page, MOBILENET_INT8, 180_000);
  await page.getByTestId('head-kind').selectOption('patchcore');
  await page.getByTestId('tf-backend').selectOption('wasm');
  await page.getByTestId('train-start').click();
  const done = page.getByTestId('evaluation');
  const failure = page.getByTestId('toast-error');
  await expect(done.or(failure).first()).toBeVisible({ timeout: 300_000 });
  if (await failure.count()) throw new Error(`training failed: ${await failure.first().textContent()}`);
  await expect(page.getByTestId('result-tf-backend')).toHaveText('wasm');
  await expect(page.getByTestId('head-row')).toContainText('patchcore');
  const ap = Number(await page.getByTestId('train-metric-ap').textContent());
  expect(ap).toBeGreaterThan(0);
  expect(ap).toBeLessThanOrEqual(1);
  await checkTable(page);
  await openDefectCell(page);

  const saved = page.getByTestId('head-item').filter({ hasText: 'patchcore' }).first();
  await saved.getByTestId('head-evaluate').click();
  await expect(page.getByTestId('evaluation-title')).toContainText('re-evaluated', { timeout: 300_000 });
  expect(Number(await page.getByTestId('train-metric-ap').textContent())).toBe(ap);
});

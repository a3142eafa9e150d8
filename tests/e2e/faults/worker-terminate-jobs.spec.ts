/**
 * #15 fault injection, continued from `worker-terminate.spec.ts`: the diffusion worker killed mid-generation and
 * the worker extracting a dataset's features (the Train tab's first stage) killed mid-extraction. As there: the
 * job fails with a message naming the worker and the fix, the buttons come back, nothing half-written, and the
 * next job runs on a fresh worker without any setup by hand (the model / backbone is loaded again by itself).
 */
import { expect, test, type Page } from '../fixtures.ts';
import { paintStroke, waitForApp } from '../helpers.ts';
import {
  halfRecords,
  recordWorkers,
  storeCounts,
  syntheticPngs,
  terminateWorker,
  trainTabWithTinyBackbone,
  workersMade,
} from './faults.ts';

const MODEL = 'tiny-sdxl-inpaint';

/** Downloads the tiny inpainting model into the cache and loads it on WASM (the fast backend here). */
async function loadTinyDiffusion(page: Page): Promise<void> {
  await page.locator('[data-tab="models"]').click();
  await page.getByTestId(`model-download-${MODEL}`).click();
  await expect(page.getByTestId('model-download-done')).toContainText('Downloaded 100%', {
    timeout: 120_000,
  });
  await page.getByTestId('models-backend').selectOption('wasm');
  await page.getByTestId(`model-load-${MODEL}`).click();
  await expect(page.getByTestId('models-loaded')).toContainText(MODEL, { timeout: 120_000 });
}

test('the diffusion worker terminated mid-generation: the batch fails with a fix, the next batch runs', async ({
  page,
}) => {
  await recordWorkers(page);
  await page.goto('/');
  await waitForApp(page);
  await loadTinyDiffusion(page);
  await page.locator('[data-tab="generate"]').click();
  await paintStroke(page);
  await page.getByTestId('gen-generator').selectOption('diffusion');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  const panel = page.getByTestId('diffusion-panel');
  await expect(panel.getByTestId('diffusion-model')).toContainText(MODEL);
  await panel.getByTestId('diffusion-steps').fill('50');
  await panel.getByTestId('diffusion-seed').fill('7');
  await panel.getByTestId('diffusion-count').fill('20');
  const before = await storeCounts(page);
  await panel.getByTestId('diffusion-generate').click();
  const progress = page.getByTestId('diffusion-progress');
  await expect(progress).toBeVisible({ timeout: 120_000 });
  await expect(panel.getByTestId('diffusion-generate')).toBeDisabled();
  const made = await workersMade(page, 'diffusion');
  expect(await terminateWorker(page, 'diffusion')).toBe(true);

  const error = panel.getByTestId('diffusion-error');
  await expect(error).toContainText('the diffusion worker stopped', { timeout: 20_000 });
  await expect(error).toContainText('fix: generate again (the model is loaded again by itself)');
  await expect(progress).toHaveCount(0);
  await expect(panel.getByTestId('diffusion-generate')).toBeEnabled();
  // Nothing reached the store (samples are stored only when accepted); no half record.
  const after = await storeCounts(page);
  expect([after.images, after.masks, after.datasets]).toEqual([before.images, before.masks, before.datasets]);
  expect(await halfRecords(page)).toEqual([]);

  // Generate again without loading by hand: a fresh worker gets the model back and stages the sample.
  await panel.getByTestId('diffusion-steps').fill('2');
  await panel.getByTestId('diffusion-count').fill('1');
  await panel.getByTestId('diffusion-generate').click();
  await expect(panel.getByTestId('diffusion-summary')).toHaveText('1 sample staged', { timeout: 180_000 });
  await expect(error).toHaveCount(0);
  expect(await workersMade(page, 'diffusion')).toBe(made + 1);
});

test('the worker extracting features terminated mid-extraction: the run fails with a fix, cached features are whole and reused', async ({
  page,
}) => {
  // Extra unlabelled images in the sample dataset make the features stage long enough to be caught.
  const files = syntheticPngs(300, 64, 21);
  await recordWorkers(page);
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="data"]').click();
  await page.getByTestId('import-target').selectOption('current');
  await page.getByTestId('import-files').setInputFiles(files);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText(String(files.length), { timeout: 120_000 });
  await report.getByTestId('report-close').click();

  await trainTabWithTinyBackbone(page, 'wasm', 2);
  const before = await storeCounts(page);
  expect(before.features).toBe(0);
  await page.getByTestId('train-start').click();
  const progress = page.getByTestId('train-progress');
  await expect(progress).toContainText(/^features ([1-9]\d*)\/\d+/, { timeout: 120_000 });
  expect(await terminateWorker(page, 'train')).toBe(true);

  const toast = page.getByTestId('toast-error').filter({ hasText: 'the train worker stopped' });
  await expect(toast).toBeVisible({ timeout: 20_000 });
  await expect(toast).toContainText('fix: run it again (the backbone is loaded again by itself)');
  await expect(progress).toHaveCount(0);
  await expect(page.getByTestId('train-start')).toBeEnabled();
  await expect(page.getByTestId('train-stop')).toBeDisabled();
  const after = await storeCounts(page);
  expect([after.heads, after.runs, after.images]).toEqual([before.heads, before.runs, before.images]);
  // The kill came mid-extraction: fewer cached feature records than images (the rest are reused below).
  expect(after.features).toBeLessThan(after.images);
  expect(await halfRecords(page)).toEqual([]);

  // Train again: a fresh worker gets the backbone back, extracts only what was not cached, saves a head.
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('head-item')).toHaveCount(before.heads + 1, { timeout: 240_000 });
  const result = page.getByTestId('train-result');
  await expect(result).toContainText(
    `Features: ${after.images} images, ${after.images - after.features} extracted`,
  );
  await expect(page.getByTestId('toast-error')).toHaveCount(1);
});

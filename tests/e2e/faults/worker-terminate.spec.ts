/**
 * #15 fault injection: a worker killed mid-job the way the browser kills one (out of memory, a crashed GPU
 * process): `terminate()` from outside, so no `error` event and no message reach the page. The client must still
 * notice (the worker's life lock, `workers/host.ts`), fail the job with a message naming the worker and the fix,
 * give the buttons back, leave no half record in IndexedDB, and run the next job on a fresh worker.
 */
import path from 'node:path';
import { expect, test } from '../fixtures.ts';
import { MT_DATA, importIntoNewDataset, mtManifest, waitForApp } from '../helpers.ts';
import {
  halfRecords,
  recordWorkers,
  storeCounts,
  syntheticPngs,
  terminateWorker,
  trainTabWithTinyBackbone,
  workersMade,
} from './faults.ts';

const free = mtManifest().items.filter((i) => i.defect_class === 'MT_Free');

test('the synth worker terminated mid-batch: the batch fails with a fix, the next batch runs', async ({
  page,
}) => {
  await recordWorkers(page);
  await page.goto('/');
  await waitForApp(page);
  await importIntoNewDataset(page, 'import-files', [path.join(MT_DATA, free[0].file)], 1);
  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('painter-canvas')).toBeVisible();
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('none');
  await page.getByTestId('gen-count').fill('20000');
  await page.getByTestId('gen-run').click();
  await expect
    .poll(() => page.getByTestId('staged-item').count(), { timeout: 60_000 })
    .toBeGreaterThanOrEqual(4);
  const before = await storeCounts(page);

  expect(await terminateWorker(page, 'synth')).toBe(true);
  const toast = page.getByTestId('toast-error').filter({ hasText: 'the synth worker stopped' });
  await expect(toast).toBeVisible({ timeout: 20_000 });
  await expect(toast).toContainText('fix: run the batch again');
  await expect(page.getByTestId('gen-progress')).toHaveCount(0);
  await expect(page.getByTestId('gen-run')).toBeEnabled();
  // What was staged before the kill stays; the dataset is unchanged by the dead worker.
  const kept = await page.getByTestId('staged-item').count();
  expect(kept).toBeGreaterThanOrEqual(4);
  const after = await storeCounts(page);
  expect([after.images, after.masks, after.datasets]).toEqual([before.images, before.masks, before.datasets]);
  // The failed batch's durable record is dropped (it does not resume on the next visit).
  expect([after.batches, after.batchSamples]).toEqual([0, 0]);
  expect(await halfRecords(page)).toEqual([]);

  // The next batch starts a fresh worker and completes.
  const made = await workersMade(page, 'synth');
  await page.getByTestId('gen-count').fill('3');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staged-item')).toHaveCount(kept + 3, { timeout: 60_000 });
  expect(await workersMade(page, 'synth')).toBe(made + 1);
});

test('the import worker terminated mid-import: the import fails with a fix, stored batches are whole', async ({
  page,
}) => {
  const files = syntheticPngs(600, 48, 15);
  await recordWorkers(page);
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="data"]').click();
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-files').setInputFiles(files);
  const progress = page.getByTestId('import-progress');
  await expect(progress).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('import-files-button')).toBeDisabled();
  expect(await terminateWorker(page, 'import')).toBe(true);

  const toast = page.getByTestId('toast-error').filter({ hasText: 'the import worker stopped' });
  await expect(toast).toBeVisible({ timeout: 20_000 });
  await expect(toast).toContainText('fix: import again');
  await expect(progress).toHaveCount(0);
  await expect(page.getByTestId('import-files-button')).toBeEnabled();
  expect(await halfRecords(page)).toEqual([]);
  const partial = (await storeCounts(page)).images;

  // The next import runs on a fresh worker and stores every file once.
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-files').setInputFiles(files);
  const report = page.getByTestId('import-report');
  await expect(report).toBeVisible({ timeout: 110_000 });
  const added = Number(await report.getByTestId('report-added').textContent());
  expect(added).toBe(files.length);
  await report.getByTestId('report-close').click();
  expect((await storeCounts(page)).images).toBe(partial + added);
  expect(await halfRecords(page)).toEqual([]);
});

test('the train worker terminated mid-training: the run fails with a fix, nothing half-saved, training works again', async ({
  page,
}) => {
  await recordWorkers(page);
  await page.goto('/');
  await waitForApp(page);
  // The sample dataset opened at first start; the tiny ResNet on WASM keeps each step short.
  await trainTabWithTinyBackbone(page, 'wasm', 400);
  const before = await storeCounts(page);
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('train-progress')).toContainText(/^train \d+\/400/, { timeout: 120_000 });
  expect(await terminateWorker(page, 'train')).toBe(true);

  const toast = page.getByTestId('toast-error').filter({ hasText: 'the train worker stopped' });
  await expect(toast).toBeVisible({ timeout: 20_000 });
  await expect(toast).toContainText('fix: run it again (the backbone is loaded again by itself)');
  await expect(page.getByTestId('train-progress')).toHaveCount(0);
  await expect(page.getByTestId('train-start')).toBeEnabled();
  await expect(page.getByTestId('train-stop')).toBeDisabled();
  // No head or run of the killed training was stored; the dataset is whole.
  const after = await storeCounts(page);
  expect([after.heads, after.runs, after.images]).toEqual([before.heads, before.runs, before.images]);
  expect(await halfRecords(page)).toEqual([]);

  // Training again, without loading anything by hand: the fresh worker gets the backbone back and saves a head.
  await page.getByTestId('hp-epochs').fill('2');
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('head-item')).toHaveCount(before.heads + 1, { timeout: 120_000 });
  // Only the crash was reported: the second run raised no error.
  await expect(page.getByTestId('toast-error')).toHaveCount(1);
  expect((await storeCounts(page)).heads).toBe(before.heads + 1);
});

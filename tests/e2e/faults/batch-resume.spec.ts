/**
 * #15 fault injection on the durable generation batch (`src/ui/generate/controller.svelte.ts`, schema v3):
 * - a reload mid-batch: the batch resumes where it stopped and ends with exactly N staged samples, each index
 *   (seed) once, and its durable record is gone afterwards;
 * - the storage quota reached mid-batch (a QuotaExceededError injected into `IDBObjectStore.put` of the batch's
 *   samples after K writes, as Chromium raises it): the batch stops with a message naming the error, the fix and
 *   what was kept; the samples before stay staged and can be accepted; nothing half-written is left.
 */
import { expect, test, type Page } from '../fixtures.ts';
import { waitForApp } from '../helpers.ts';
import { halfRecords, storeCounts, syntheticPngs } from './faults.ts';

/** A new dataset holding one synthetic 64×64 image, opened in the Paint & generate tab with MemSeg, no mask. */
async function oneImageDataset(page: Page) {
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="data"]').click();
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId('import-files').setInputFiles(syntheticPngs(1, 64, 7));
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText('1');
  await report.getByTestId('report-close').click();
  await openGenerate(page);
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('none');
}

async function openGenerate(page: Page) {
  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('painter-canvas')).toBeVisible({ timeout: 60_000 });
}

function stagedSeeds(page: Page): Promise<(string | null)[]> {
  return page.getByTestId('staged-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-seed')));
}

test('a reload mid-batch resumes the batch: exactly N samples, none twice', async ({ page }) => {
  const total = 300;
  await oneImageDataset(page);
  await page.getByTestId('gen-count').fill(String(total));
  await page.getByTestId('gen-seed').fill('21');
  await page.getByTestId('gen-run').click();
  await expect
    .poll(() => page.getByTestId('staged-item').count(), { timeout: 60_000 })
    .toBeGreaterThanOrEqual(8);
  const imagesBefore = (await storeCounts(page)).images;
  await page.reload();
  await waitForApp(page);
  const stored = await storeCounts(page);
  // The batch was on record when the page went away, with the samples made before the reload.
  expect(stored.batches).toBe(1);
  expect(stored.batchSamples).toBeGreaterThanOrEqual(8);
  expect(stored.batchSamples).toBeLessThan(total);

  await openGenerate(page);
  await expect(page.getByTestId('toast-info').filter({ hasText: 'Resuming the memseg batch' })).toContainText(
    `${stored.batchSamples} of ${total} samples were made before it`,
  );
  await expect(
    page.getByTestId('toast-info').filter({ hasText: `${total} samples are waiting` }),
  ).toBeVisible({
    timeout: 90_000,
  });
  await expect(page.getByTestId('gen-progress')).toHaveCount(0);
  await expect(page.getByTestId('staged-item')).toHaveCount(total);
  const seeds = await stagedSeeds(page);
  expect(new Set(seeds).size).toBe(total);
  // Finished: the durable record is dropped, and nothing reached the dataset before an accept.
  const after = await storeCounts(page);
  expect([after.batches, after.batchSamples]).toEqual([0, 0]);
  expect(after.images).toBe(imagesBefore);
  expect(await halfRecords(page)).toEqual([]);
});

test('quota reached mid-batch: the batch stops with a message, the samples before it are kept', async ({
  page,
}) => {
  const allowed = 10;
  // Chromium raises QuotaExceededError from put() when the origin is full; inject it after `allowed` samples.
  await page.addInitScript((after) => {
    const w = window as unknown as { __faultQuota: { after: number; puts: number } };
    w.__faultQuota = { after, puts: 0 };
    const realPut = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (
      this: IDBObjectStore,
      ...args: Parameters<IDBObjectStore['put']>
    ) {
      if (this.name === 'batchSamples' && ++w.__faultQuota.puts > w.__faultQuota.after)
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return realPut.apply(this, args);
    };
  }, allowed);
  await oneImageDataset(page);
  const before = await storeCounts(page);
  await page.getByTestId('gen-count').fill('200');
  await page.getByTestId('gen-run').click();

  const toast = page.getByTestId('toast-error').filter({ hasText: 'StorageQuotaError' });
  await expect(toast).toBeVisible({ timeout: 60_000 });
  await expect(toast).toContainText('fix: free space');
  const m = /the (\d+) samples? made before (?:is|are) in the staging strip/.exec(
    (await toast.textContent()) ?? '',
  );
  expect(m, `toast: ${await toast.textContent()}`).not.toBeNull();
  const kept = Number(m![1]);
  // Whole groups only: the group whose write failed was rolled back and never staged.
  expect(kept).toBeGreaterThan(0);
  expect(kept).toBeLessThanOrEqual(allowed);
  await expect(page.getByTestId('gen-progress')).toHaveCount(0);
  await expect(page.getByTestId('gen-run')).toBeEnabled();
  await expect(page.getByTestId('staged-item')).toHaveCount(kept);
  await page.waitForTimeout(500);
  await expect(page.getByTestId('staged-item')).toHaveCount(kept);
  expect(new Set(await stagedSeeds(page)).size).toBe(kept);
  const after = await storeCounts(page);
  expect(after.images).toBe(before.images);
  expect([after.batches, after.batchSamples]).toEqual([0, 0]);
  expect(await halfRecords(page)).toEqual([]);

  // Space freed: the kept samples are accepted into the dataset, whole.
  await page.evaluate(() => {
    (window as unknown as { __faultQuota: { after: number } }).__faultQuota.after = Infinity;
  });
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText(`${kept} accepted`);
  expect((await storeCounts(page)).images).toBe(before.images + kept);
  expect(await halfRecords(page)).toEqual([]);
});

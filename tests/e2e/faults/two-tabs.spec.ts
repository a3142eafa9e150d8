/**
 * #15 fault injection: two tabs of the app on one dataset (one browser profile, so one IndexedDB).
 * - A change in one tab reaches the other without a reload (BroadcastChannel `defectlab-store`): each tab sees
 *   the other's import, and both imports are stored (no lost update);
 * - a newer app version opening the database in another tab (versionchange): this tab closes its connection at
 *   once, so the newer tab is not blocked, and says to reload; nothing stored is lost.
 */
import { expect, test, type Page } from '../fixtures.ts';
import { waitForApp } from '../helpers.ts';
import { halfRecords, storeCounts, syntheticPngs } from './faults.ts';

async function importIntoCurrent(page: Page, files: string[]) {
  await page.locator('[data-tab="data"]').click();
  await page.getByTestId('import-target').selectOption('current');
  await page.getByTestId('import-files').setInputFiles(files);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText(String(files.length), { timeout: 60_000 });
  await report.getByTestId('report-close').click();
}

test('each tab sees the other tab’s changes without a reload, and both land', async ({ page, context }) => {
  await page.goto('/');
  await waitForApp(page);
  const other = await context.newPage();
  const otherErrors: string[] = [];
  other.on('pageerror', (e) => otherErrors.push(`${e.name}: ${e.message}`));
  await other.goto('/');
  await waitForApp(other);
  await other.locator('[data-tab="data"]').click();
  await page.locator('[data-tab="data"]').click();
  const total = async (p: Page) =>
    Number(/\d+/.exec((await p.getByTestId('count-total').textContent()) ?? '')?.[0]);
  await expect(page.getByTestId('count-total')).toHaveText(/\d+ images?/);
  await expect(other.getByTestId('count-total')).toHaveText(
    (await page.getByTestId('count-total').textContent()) ?? '',
  );
  const start = await total(page);

  await importIntoCurrent(page, syntheticPngs(3, 32, 101));
  await expect(page.getByTestId('count-total')).toHaveText(`${start + 3} images`);
  await expect(other.getByTestId('count-total')).toHaveText(`${start + 3} images`, { timeout: 10_000 });

  await importIntoCurrent(other, syntheticPngs(2, 32, 202));
  await expect(other.getByTestId('count-total')).toHaveText(`${start + 5} images`);
  await expect(page.getByTestId('count-total')).toHaveText(`${start + 5} images`, { timeout: 10_000 });
  expect(await halfRecords(page)).toEqual([]);
  expect(otherErrors).toEqual([]);
});

test('a newer version opened in another tab is not blocked; this tab says to reload and loses nothing', async ({
  page,
  context,
}) => {
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="data"]').click();
  await expect(page.getByTestId('count-total')).toHaveText(/\d+ images?/);
  const before = await storeCounts(page);

  // The "newer app": another tab opening the database one version up, failing fast if it is blocked.
  const other = await context.newPage();
  await other.goto('/favicon.ico').catch(() => undefined);
  const opened = await other.evaluate(
    () =>
      new Promise<string>((resolve) => {
        const probe = indexedDB.open('defectlab');
        probe.onsuccess = () => {
          const v = probe.result.version;
          probe.result.close();
          const req = indexedDB.open('defectlab', v + 1);
          req.onupgradeneeded = () => req.result.createObjectStore('fromTheFuture');
          req.onsuccess = () => {
            req.result.close();
            resolve('opened');
          };
          req.onblocked = () => setTimeout(() => resolve('blocked'), 5000);
          req.onerror = () => resolve(`error ${req.error?.name}`);
        };
      }),
  );
  expect(opened).toBe('opened');
  await expect(
    page.getByTestId('toast-warn').filter({ hasText: 'changed the database version' }),
  ).toContainText('reload this tab');
  // Acting in the old tab now names the problem and the fix (no InvalidStateError, no half write).
  await page.getByTestId('import-target').selectOption('current');
  await page.getByTestId('import-files').setInputFiles(syntheticPngs(1, 32, 303));
  await expect(
    page.getByTestId('toast-error').filter({ hasText: 'Import: StoreVersionChangedError' }),
  ).toContainText('fix: reload this tab', { timeout: 30_000 });
  const after = await storeCounts(other);
  expect(after.images).toBe(before.images);
  expect(after.fromTheFuture).toBe(0);
});

/**
 * Persistent storage is asked for by itself, once per profile, at first start (before the sample dataset is
 * stored), and the answer is shown: granted in the System panel; refused as a banner with the fix and a notice in
 * the System panel. `navigator.storage.persist` / `persisted` are replaced in the page before the app runs, so
 * the test decides the browser's answer and counts the calls (kept in localStorage across reloads).
 */
import { expect, test, type Page } from './fixtures.ts';

async function stubPersistence(page: Page, grant: boolean) {
  await page.addInitScript((answer: boolean) => {
    const key = 'test.persistCalls';
    const storage = navigator.storage;
    Object.defineProperty(storage, 'persist', {
      configurable: true,
      value: async () => {
        localStorage.setItem(key, String(Number(localStorage.getItem(key) ?? 0) + 1));
        if (answer) localStorage.setItem('test.persisted', '1');
        return answer;
      },
    });
    Object.defineProperty(storage, 'persisted', {
      configurable: true,
      value: async () => localStorage.getItem('test.persisted') === '1',
    });
  }, grant);
}

const calls = (page: Page) => page.evaluate(() => Number(localStorage.getItem('test.persistCalls') ?? 0));

async function openApp(page: Page) {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'DefectLab' })).toBeVisible();
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
}

test('a refusal is asked once, shown as a banner with the fix and in the System panel; never re-asked by itself', async ({
  page,
}) => {
  await stubPersistence(page, false);
  await openApp(page);
  const banner = page.getByTestId('persist-banner');
  await expect(banner).toContainText('did not grant persistent storage');
  await expect(banner).toContainText('fix: bookmark or install DefectLab');
  expect(await calls(page)).toBe(1);

  await banner.getByRole('button', { name: 'Details' }).click();
  await expect(page.getByTestId('system-view')).toBeVisible();
  await expect(page.getByTestId('system-persisted')).toHaveAttribute('data-persisted', 'no');
  await expect(page.getByTestId('system-persisted')).toContainText('the browser refused');
  await expect(page.getByTestId('system-persist-refused')).toContainText('fix:');

  // The next start remembers the answer: no second request, no banner, the panel still explains.
  await page.reload();
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('system-persist-refused')).toBeVisible();
  await expect(page.getByTestId('persist-banner')).toHaveCount(0);
  expect(await calls(page)).toBe(1);

  // Asking again is the user's call: the button asks once more.
  await page.getByTestId('persist-storage').click();
  await expect.poll(() => calls(page)).toBe(2);
  await expect(page.getByTestId('system-persist-refused')).toBeVisible();
});

test('a grant is asked once and shown as persistent in the System panel', async ({ page }) => {
  await stubPersistence(page, true);
  await openApp(page);
  await page.locator('[data-tab="system"]').click();
  const p = page.getByTestId('system-persisted');
  await expect(p).toHaveAttribute('data-persisted', 'yes');
  await expect(p).toContainText('Persistent: the browser will not evict your datasets');
  await expect(p).toContainText('granted when asked on');
  await expect(page.getByTestId('persist-banner')).toHaveCount(0);
  await expect(page.getByTestId('persist-storage')).toHaveCount(0);
  expect(await calls(page)).toBe(1);
  await page.reload();
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('system-persisted')).toHaveAttribute('data-persisted', 'yes');
  expect(await calls(page)).toBe(1);
});

/**
 * Offline after the first load: open the built app once, press "Prepare for offline", cut the network
 * (`context.setOffline(true)`), reload, and still get the app (cross-origin isolated, from the service worker's
 * precache), a MemSeg batch on the cached sample data, and a tiny-ResNet feature pass + BCE head trained on WASM
 * (the backbone file comes from the cache "Prepare for offline" filled).
 */
import { expect, test } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

test('load once, go offline, reload: MemSeg generation and head training still work on the cached sample data', async ({
  page,
  context,
}) => {
  await page.goto('/');
  await waitForApp(page);
  await page.getByTestId('offline-prepare').click();
  await expect(page.getByTestId('offline-ready')).toBeAttached({ timeout: 120_000 });
  await expect(page.getByTestId('offline-prepare')).toHaveText('Ready offline ✓');

  await context.setOffline(true);
  await page.reload();
  await waitForApp(page);
  const state = await page.evaluate(() => ({
    online: navigator.onLine,
    isolated: self.crossOriginIsolated,
    controlled: !!navigator.serviceWorker.controller,
  }));
  expect(state).toEqual({ online: false, isolated: true, controlled: true });

  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('painter-canvas')).toBeVisible({ timeout: 60_000 });
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('none');
  await page.getByTestId('gen-count').fill('3');
  await page.getByTestId('gen-seed').fill('7');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staging-pending')).toHaveText('3 pending', { timeout: 120_000 });
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('3 accepted');

  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-select').selectOption('tiny-resnet');
  await page.getByTestId('backbone-device').selectOption('wasm');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
  await page.getByTestId('pre-width').fill('64');
  await page.getByTestId('pre-height').fill('64');
  await page.getByTestId('tf-backend').selectOption('wasm');
  await page.getByTestId('hp-epochs').fill('3');
  await page.getByTestId('train-start').click();
  const table = page.getByTestId('train-metric-table');
  const failure = page.getByTestId('toast-error');
  await expect(table.or(failure).first()).toBeVisible({ timeout: 180_000 });
  if (await failure.count())
    throw new Error(`training failed offline: ${await failure.first().textContent()}`);
  const ap = Number(await page.getByTestId('train-metric-ap').textContent());
  expect(ap).toBeGreaterThanOrEqual(0);
  expect(ap).toBeLessThanOrEqual(1);
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
});

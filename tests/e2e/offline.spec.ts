/**
 * Offline after the first load: open the built app once, press "Prepare for offline", cut the network
 * (`context.setOffline(true)`), reload, and still get the app (cross-origin isolated, from the service worker's
 * precache), a MemSeg batch on the cached sample data, and a tiny-ResNet feature pass + BCE head trained on WASM
 * (the backbone file comes from the cache "Prepare for offline" filled). Then the workshop case for diffusion: a
 * share link names a tiny diffusion model nobody downloaded; "Prepare for offline" fetches all of its files (its
 * external-data parts too) with the one progress; offline, after a reload, the model loads from the cache and
 * generates.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { encodeSetup } from '../../src/core/share/codec.ts';
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

/** External data in parts: the model whose files are most easily missed. */
const DIFFUSION_ID = 'tiny-sd-inpaint-extdata';

test('a share link names a diffusion model; Prepare for offline fetches it; offline after a reload it loads and generates', async ({
  page,
  context,
}) => {
  const token = encodeSetup({
    title: 'offline diffusion',
    diffusion: {
      model: DIFFUSION_ID,
      prompts: ['a scratch on metal'],
      negativePrompt: '',
      steps: 2,
      guidanceScale: 5,
      strength: 0.9,
      seed: 11,
      seedLocked: true,
      mode: 'paired',
      count: 1,
    },
  });
  const modelRequests: string[] = [];
  context.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/models/tiny/tiny-sd')) modelRequests.push(r.url());
  });
  await page.goto(`/#setup=${token}`);
  await waitForApp(page);
  await expect(page.getByTestId('share-confirm-dialog')).toBeVisible();
  await page.getByTestId('share-confirm').click();
  await expect(page.getByTestId('share-confirm-dialog')).toBeHidden();
  await page.locator('[data-tab="models"]').click();
  await expect(page.getByTestId(`model-cached-${DIFFUSION_ID}`)).toHaveText('—');

  await page.getByTestId('offline-prepare').click();
  // One progress bar, counting bytes for the backbone and the model together.
  const bar = page.getByTestId('offline-progress').locator('progress');
  await expect(bar).toBeAttached();
  const max = Number(await bar.getAttribute('max'));
  expect(max).toBeGreaterThan(1000);
  await expect(page.getByTestId('offline-ready')).toContainText(DIFFUSION_ID, { timeout: 180_000 });
  await expect(page.getByTestId(`model-cached-${DIFFUSION_ID}`)).toContainText('✓');
  // Every file of the manifest was fetched (Range requests, so one or more per file).
  const manifest = JSON.parse(
    readFileSync(resolve(process.cwd(), 'models/manifests', `${DIFFUSION_ID}.json`), 'utf8'),
  ) as { files: { path: string }[] };
  const fetched = new Set(modelRequests.map((u) => decodeURIComponent(new URL(u).pathname)));
  for (const f of manifest.files) expect(fetched, f.path).toContain(`/models/tiny/${DIFFUSION_ID}/${f.path}`);

  await context.setOffline(true);
  await page.reload();
  await waitForApp(page);
  modelRequests.length = 0;
  await page.locator('[data-tab="models"]').click();
  await expect(page.getByTestId(`model-cached-${DIFFUSION_ID}`)).toContainText('✓');
  await page.getByTestId('models-backend').selectOption('wasm');
  await page.getByTestId(`model-load-${DIFFUSION_ID}`).click();
  await expect(page.getByTestId('models-loaded')).toContainText(DIFFUSION_ID, { timeout: 120_000 });

  // Paint a region on the sample image and generate one sample with the loaded model.
  await page.locator('[data-tab="generate"]').click();
  const canvas = page.getByTestId('painter-canvas');
  await expect(canvas).toBeVisible({ timeout: 60_000 });
  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.keyboard.press(']');
  await page.mouse.move(cx - box.height * 0.15, cy);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++)
    await page.mouse.move(cx - box.height * 0.15 + (i * box.height * 0.3) / 10, cy);
  await page.mouse.up();
  await page.getByTestId('gen-generator').selectOption('diffusion');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  const panel = page.getByTestId('diffusion-panel');
  await expect(panel.getByTestId('diffusion-model')).toContainText(DIFFUSION_ID);
  await panel.getByTestId('diffusion-steps').fill('2');
  await panel.getByTestId('diffusion-count').fill('1');
  await panel.getByTestId('diffusion-generate').click();
  const failure = panel.getByTestId('diffusion-error');
  const summary = panel.getByTestId('diffusion-summary');
  await expect(summary.or(failure).first()).toBeVisible({ timeout: 180_000 });
  if (await failure.count()) throw new Error(`diffusion failed offline: ${await failure.textContent()}`);
  await expect(summary).toHaveText(/^1 samples? staged$/);
  await expect(page.getByTestId('staging-pending')).toHaveText('1 pending');
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
});

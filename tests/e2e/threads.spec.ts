import { expect, test } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

/**
 * WASM threads are used: the preview serves COOP/COEP, so every worker that starts onnxruntime-web or tfjs WASM
 * runs `min(hardwareConcurrency, 8)` threads, and the System panel lists what each one got (and, for onnxruntime,
 * the sessions it holds: `src/runtime/ort-sessions.ts`). Training a head on
 * tfjs WASM finishing at all is the proof that its threaded build no longer hangs under cross-origin isolation
 * (tf.ts). Kept small: the tiny ResNet at 64×64, a CSE head for one epoch.
 */
test('each worker that starts a WASM runtime runs min(cores, 8) threads, and the System panel says so', async ({
  page,
}) => {
  test.setTimeout(600_000);
  await page.goto('/');
  await waitForApp(page);
  const expected = await page.evaluate(() =>
    self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency, 8) : 1,
  );
  expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
  await page.locator('[data-tab="system"]').click();
  await page.getByTestId('backend-wasm').check();
  await expect(page.getByTestId('system-env-threads')).toHaveAttribute('data-threads', String(expected));

  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-select').selectOption('tiny-resnet');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 180_000 });
  await page.getByTestId('pre-width').fill('64');
  await page.getByTestId('pre-height').fill('64');
  await page.getByTestId('head-kind').selectOption('cse');
  await page.getByTestId('tf-backend').selectOption('wasm');
  await page.getByTestId('hp-epochs').fill('1');
  await page.getByTestId('train-start').click();
  const result = page.getByTestId('train-result');
  const failure = page.getByTestId('toast-error');
  await expect(result.or(failure).first()).toBeVisible({ timeout: 400_000 });
  expect(await failure.count()).toBe(0);
  await expect(page.getByTestId('result-tf-backend')).toHaveText('wasm');

  await page.locator('[data-tab="system"]').click();
  const rows = page.getByTestId('system-worker-threads').locator('tbody tr[data-threads]');
  const ort = page.locator('[data-testid$="-onnxruntime"][data-threads]');
  const tfjs = page.locator('[data-testid$="-tfjs"][data-threads]');
  await expect(ort.first()).toBeVisible({ timeout: 10_000 });
  await expect(tfjs.first()).toBeVisible({ timeout: 10_000 });
  const seen = await rows.evaluateAll((trs) =>
    trs.map((tr) => ({
      id: tr.getAttribute('data-testid'),
      threads: Number(tr.getAttribute('data-threads')),
    })),
  );
  for (const r of seen) expect(r, JSON.stringify(seen)).toEqual({ id: r.id, threads: expected });
  // Next to its threads, the train worker's onnxruntime sessions as it last reported them: the backbone's one.
  await expect(page.getByTestId('worker-sessions-train-onnxruntime')).toHaveAttribute('data-sessions', '1');
});

/**
 * The guided first run on WASM through the built app: the status line offers it, the guide opens with "lite"
 * preset from capability detection (SwiftShader here is a software adapter → lite), "Apply settings" sets the
 * Paint and Train tabs, and the four steps tick as the user paints, generates (MemSeg ×8, accept all), trains (tiny
 * ResNet on WASM, BCE head) and evaluates. Its duration is measured by `npm run bench workshop`, not here.
 */
import { expect, test } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

test('guided first run: paint, generate, train, evaluate on the sample data with the lite models', async ({
  page,
}) => {
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto('/');
  await waitForApp(page);
  await page.getByTestId('guide-offer-open').click();
  const guide = page.getByTestId('first-run');
  await expect(guide).toBeVisible();
  await expect(page.getByTestId('first-run-lite')).toBeChecked();
  await expect(page.getByTestId('first-run-lite-reason')).toContainText('software WebGPU adapter');
  for (const s of ['paint', 'generate', 'train', 'evaluate'])
    await expect(page.getByTestId(`first-run-step-${s}`)).toHaveAttribute('data-done', 'false');
  await page.getByTestId('first-run-start').click();

  // 1. Paint: the tab opened with the guide's settings.
  await expect(page.getByTestId('generate-view')).toBeVisible();
  await expect(page.getByTestId('gen-count')).toHaveValue('8');
  await expect(page.getByTestId('gen-mask')).toHaveValue('painted');
  const canvas = page.getByTestId('painter-canvas');
  await expect(canvas).toBeVisible({ timeout: 60_000 });
  await canvas.scrollIntoViewIfNeeded();
  await canvas.click({ position: { x: 2, y: 2 }, button: 'middle' });
  await page.keyboard.press(']');
  await page.keyboard.press(']');
  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx - box.width * 0.2, cy);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++)
    await page.mouse.move(cx - box.width * 0.2 + (i * box.width * 0.4) / 10, cy + (i % 2) * 6);
  await page.mouse.up();
  await expect(page.getByTestId('painter-count')).not.toHaveText('0 px');

  // 2. Generate and accept.
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staging-pending')).toHaveText(/^[1-8] pending$/, { timeout: 120_000 });
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('first-run-step-paint')).toHaveAttribute('data-done', 'true');
  await expect(page.getByTestId('first-run-step-generate')).toHaveAttribute('data-done', 'true');

  // 3. Train: the guide's step link opens the tab with the lite backbone on WASM.
  await page.getByTestId('first-run-step-train').getByRole('button', { name: 'Train' }).click();
  await expect(page.getByTestId('backbone-select')).toHaveValue('tiny-resnet');
  await expect(page.getByTestId('backbone-device')).toHaveValue('wasm');
  await expect(page.getByTestId('pre-width')).toHaveValue('64');
  await expect(page.getByTestId('hp-epochs')).toHaveValue('3');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
  await page.getByTestId('train-start').click();
  const table = page.getByTestId('train-metric-table');
  const failure = page.getByTestId('toast-error');
  await expect(table.or(failure).first()).toBeVisible({ timeout: 180_000 });
  if (await failure.count()) throw new Error(`training failed: ${await failure.first().textContent()}`);
  await expect(page.getByTestId('result-tf-backend')).toHaveText('wasm');

  // 4. Evaluate: the trained head's test metrics are stored and shown; every step is ticked.
  const ap = Number(await page.getByTestId('train-metric-ap').textContent());
  expect(ap).toBeGreaterThanOrEqual(0);
  expect(ap).toBeLessThanOrEqual(1);
  for (const s of ['paint', 'generate', 'train', 'evaluate'])
    await expect(page.getByTestId(`first-run-step-${s}`)).toHaveAttribute('data-done', 'true');
  await expect(page.getByTestId('first-run-finished')).toBeVisible();
});

/**
 * Without WebGPU every feature still works on WASM, with a visible notice. Chromium starts without the WebGPU
 * flags of playwright.config.ts (no --enable-unsafe-webgpu, no SwiftShader adapter) and with WebGPU switched
 * off; in this Chromium `navigator.gpu` then still exists but `requestAdapter()` answers null, in the page and
 * in workers, which is what a browser with WebGPU blocklisted or absent looks like to the app. Checked first,
 * so the test cannot pass on a machine that has an adapter after all. Then, all on "auto": the notice, the
 * System panel, an import, a MemSeg generation accepted into the dataset, and backbone features + a BCE head
 * trained on WASM (the tiny ResNet, built by `npm run models:tiny`).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encode } from 'fast-png';
import { chromiumArgs } from '../../playwright.config.ts';
import { expect, test } from './fixtures.ts';
import { importIntoNewDataset, waitForApp } from './helpers.ts';

test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [...chromiumArgs.filter((a) => !/webgpu|swiftshader/i.test(a)), '--disable-features=WebGPU'],
  },
});

test('no WebGPU adapter: notice, System panel, import, MemSeg and training all on WASM', async ({ page }) => {
  test.setTimeout(900_000);
  await page.goto('/');

  // 1. There really is no adapter, neither in the page nor in a worker.
  const gpu = await page.evaluate(async () => {
    const nav = navigator as Navigator & { gpu?: GPU };
    const adapter = nav.gpu ? await nav.gpu.requestAdapter() : null;
    const src =
      'const g = navigator.gpu; (g ? g.requestAdapter() : Promise.resolve(null)).then((a) => postMessage(!!a));';
    const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
    const inWorker = await new Promise<boolean>((r) => (w.onmessage = (e) => r(e.data as boolean)));
    w.terminate();
    return { adapter: !!adapter, inWorker, isolated: self.crossOriginIsolated };
  });
  expect(gpu).toEqual({ adapter: false, inWorker: false, isolated: true });

  // 2. The notice, on every tab, says so and that WASM takes over.
  await waitForApp(page);
  const banner = page.getByTestId('webgpu-banner');
  await expect(banner).toContainText('WebGPU is not available');
  await expect(banner).toContainText('Everything still works on WASM');

  // 3. The System panel: not available with the reason, auto resolves to WASM without a benchmark.
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('system-webgpu-status')).toContainText('Not available');
  await expect(page.getByTestId('system-webgpu-status')).toContainText('requestAdapter returned no adapter');
  await expect(page.getByText('Every feature still works on WASM (CPU), more slowly.')).toBeVisible();
  await expect(page.getByTestId('backend-auto')).toBeChecked();
  await expect(page.getByTestId('system-backend-decision')).toContainText(
    'Using WASM — WebGPU is not available',
  );
  await expect(page.getByTestId('system-isolated')).toHaveText('yes');
  await expect(banner).toBeVisible();

  // 4. Import: three PNGs into a new dataset.
  const dir = mkdtempSync(path.join(tmpdir(), 'defectlab-nogpu-'));
  const files = [0, 1, 2].map((i) => {
    const f = path.join(dir, `plain-${i}.png`);
    const px = new Uint8Array(32 * 32).map((_, k) => (k * (i + 3)) & 255);
    writeFileSync(f, encode({ width: 32, height: 32, channels: 1, depth: 8, data: px }));
    return f;
  });
  await importIntoNewDataset(page, 'import-files', files, 3);
  await expect(page.getByTestId('count-total')).toHaveText('3 images');

  // 5. MemSeg on the built-in sample dataset's first image, accepted into the dataset.
  const sample = page.getByTestId('dataset-select').locator('option', { hasText: /sample/i });
  await page.getByTestId('dataset-select').selectOption({ label: (await sample.textContent())!.trim() });
  await expect(page.getByTestId('count-total')).not.toHaveText('3 images');
  const before = Number(/(\d+)/.exec((await page.getByTestId('count-total').textContent())!)![1]);
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
  await page.locator('[data-tab="data"]').click();
  await expect(page.getByTestId('count-total')).toHaveText(`${before + 3} images`);
  await expect(page.getByTestId('count-generated-memseg')).toHaveText('memseg 3');

  // 6. Features and a small BCE head, everything on "auto": both must land on WASM.
  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-select').selectOption('tiny-resnet');
  await expect(page.getByTestId('backbone-device')).toHaveValue('auto');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
  await page.getByTestId('pre-width').fill('64');
  await page.getByTestId('pre-height').fill('64');
  await expect(page.getByTestId('tf-backend')).toHaveValue('auto');
  await page.getByTestId('hp-epochs').fill('3');
  await page.getByTestId('train-start').click();
  const table = page.getByTestId('train-metric-table');
  const failure = page.getByTestId('toast-error');
  await expect(table.or(failure).first()).toBeVisible({ timeout: 600_000 });
  if (await failure.count()) throw new Error(`training failed: ${await failure.first().textContent()}`);
  await expect(page.getByTestId('result-tf-backend')).toHaveText('wasm');
  const ap = Number(await page.getByTestId('train-metric-ap').textContent());
  expect(ap).toBeGreaterThanOrEqual(0);
  expect(ap).toBeLessThanOrEqual(1);
  const epochsRun = Number(await page.getByTestId('loss-chart').getAttribute('data-epochs'));
  expect(epochsRun).toBeGreaterThan(0);
  expect(epochsRun).toBeLessThanOrEqual(3);
  expect(Number(await page.getByTestId('features-rate').getAttribute('data-rate'))).toBeGreaterThan(0);
});

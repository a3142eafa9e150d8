import { expect, test, type Page } from './fixtures.ts';
import { MOBILENET_INT8, importIntoNewDataset, mtManifest, mtSubset, waitForApp } from './helpers.ts';

/**
 * The real-data path in the built app: import a small magnetic-tile subset (real photos, ../shared read in place
 * and copied only into a temp dir), pick the real MobileNetV2-int8 file through the "pick an ONNX file" input,
 * extract features, train a BCE head with tfjs on WebGPU and again on WASM (backend override), and read the
 * metric table (with its defect-free baseline rows). Kept small (20 images at 224×224) because WebGPU here is SwiftShader.
 */

/** 6 train normals + 4 few-shot defects (train) + 5 test normals + 5 test defects. */
function subset(): string {
  const m = mtManifest();
  const take = (split: string, label: number, n: number) =>
    m.items.filter((i) => i.split === split && i.label === label).slice(0, n);
  return mtSubset('mt-subset', [
    ...take('train', 0, 6),
    ...take('fewshot', 1, 4),
    ...take('test', 0, 5),
    ...take('test', 1, 5),
  ]);
}

async function trainOnce(page: Page, tfBackend: 'webgpu' | 'wasm') {
  await page.getByTestId('tf-backend').selectOption(tfBackend);
  // A different preprocessing per run: the cache key changes, so each run extracts on its own device.
  await page.getByTestId('pre-resize').selectOption(tfBackend === 'webgpu' ? 'stretch' : 'letterbox');
  await page.getByTestId('hp-epochs').fill('20');
  await page.getByTestId('hp-lr').fill('0.001');
  await page.getByTestId('train-start').click();
  const table = page.getByTestId('train-metric-table');
  // An error toast ends the wait at once and names the failure, instead of a 10-minute timeout.
  const failure = page.getByTestId('toast-error');
  await expect(table.or(failure).first()).toBeVisible({ timeout: 600_000 });
  if (await failure.count()) throw new Error(`training failed: ${await failure.first().textContent()}`);
  await expect(page.getByTestId('result-tf-backend')).toHaveText(tfBackend);
  await expect(table.getByTestId('baseline-row')).toHaveCount(2);
  const ap = Number(await page.getByTestId('train-metric-ap').textContent());
  const auroc = Number(await page.getByTestId('train-metric-auroc').textContent());
  // 5 defects among 10 test images: AP of a random ranking is ≈ 0.5; finite numbers in [0, 1] prove the table
  // is computed from real scores, and the loss chart shows one point per epoch that ran.
  expect(ap).toBeGreaterThanOrEqual(0);
  expect(ap).toBeLessThanOrEqual(1);
  expect(auroc).toBeGreaterThanOrEqual(0);
  expect(Number(await page.getByTestId('loss-chart').getAttribute('data-epochs'))).toBeGreaterThan(0);
  const featuresPerSecond = Number(await page.getByTestId('features-rate').getAttribute('data-rate'));
  expect(featuresPerSecond).toBeGreaterThan(0);
  return { ap, auroc, featuresPerSecond };
}

test('MobileNetV2-int8 features of real tiles → BCE head on WebGPU and on WASM → metric table', async ({
  page,
}) => {
  test.setTimeout(1_500_000);
  const folder = subset();
  await page.goto('/');
  await waitForApp(page);

  await importIntoNewDataset(page, 'import-folder', folder, 20, 180_000);

  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-file').setInputFiles(MOBILENET_INT8);
  await page.getByTestId('backbone-device').selectOption('webgpu');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-info')).toBeVisible({ timeout: 180_000 });
  // An adapter whose int8 DequantizeLinear is wrong (SwiftShader) runs the int8 backbone on WASM, and says so;
  // the head below still trains on tfjs-WebGPU.
  if ((await page.getByTestId('backbone-backend').textContent()) !== 'webgpu')
    await expect(page.getByTestId('backbone-fallback')).toContainText('DequantizeLinear');
  // The picked bytes are recognised by sha256 as the manifest's MobileNetV2: pooled = the dequantized pool output,
  // spatial = the pool's 1280×7×7 float input (tensor 627), the same maps the Node runner uses.
  await expect(page.getByTestId('backbone-info')).toContainText('464_quantized__defectlab_float');
  await expect(page.getByTestId('backbone-info')).toContainText('spatial 627');

  const gpu = await trainOnce(page, 'webgpu');
  await expect(page.getByTestId('head-item')).toHaveCount(1);

  // WASM: the backbone on ORT-WASM and the head on tfjs-wasm.
  await page.getByTestId('backbone-device').selectOption('wasm');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 180_000 });
  const wasm = await trainOnce(page, 'wasm');
  await expect(page.getByTestId('head-item')).toHaveCount(2);
  console.log(JSON.stringify({ gpu, wasm }));

  // Export: model.json + weights + metadata in one zip.
  const download = page.waitForEvent('download');
  await page.getByTestId('head-export').first().click();
  expect((await download).suggestedFilename()).toMatch(/\.zip$/);
});

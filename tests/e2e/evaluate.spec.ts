import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { expect, test, type Page } from './fixtures.ts';
import { checkTable, evalSubset as subset, openDefectCell } from './evaluation.ts';
import { MOBILENET_INT8, importIntoNewDataset, loadBackboneFileOnWasm, waitForApp } from './helpers.ts';

/**
 * Evaluation in the built app on real data, kept tiny: 14 magnetic-tile photos (../shared, copied only into a
 * temp dir) with their real masks and defect classes, MobileNetV2-int8 features on ORT-WASM, then
 * - a spatial head and a CSE head on tfjs-WASM: the metric table has the head row with AUPRO and the two
 *   defect-free baseline rows; the evaluation panel has per-class metrics; a confusion cell opens its images with
 *   the heat map drawn over them;
 * - the spatial head once more on tfjs-WebGPU (SwiftShader here: few epochs);
 * - a long run stopped with the Stop button;
 * - a saved head re-evaluated, and exported as tfjs model.json + weights.bin + metadata.json.
 */

async function train(page: Page, head: 'spatial' | 'cse', tfBackend: 'wasm' | 'webgpu', epochs: number) {
  await page.getByTestId('head-kind').selectOption(head);
  await page.getByTestId('tf-backend').selectOption(tfBackend);
  await page.getByTestId('hp-epochs').fill(String(epochs));
  await page.getByTestId('hp-lr').fill('0.001');
  await page.getByTestId('train-start').click();
  const done = page.getByTestId('evaluation');
  const failure = page.getByTestId('toast-error');
  await expect(done.or(failure).first()).toBeVisible({ timeout: 600_000 });
  if (await failure.count()) throw new Error(`training failed: ${await failure.first().textContent()}`);
  await expect(page.getByTestId('result-tf-backend')).toHaveText(tfBackend);
}

test('real tiles: spatial + CSE heads → metric table with PRO and baselines, heat maps in confusion cells, stop, re-evaluate, export', async ({
  page,
}) => {
  test.setTimeout(1_200_000);
  const folder = subset();
  await page.goto('/');
  await waitForApp(page);
  await importIntoNewDataset(page, 'import-folder', folder, 14, 180_000);
  await loadBackboneFileOnWasm(page, MOBILENET_INT8, 180_000);

  // Spatial head on WASM.
  await train(page, 'spatial', 'wasm', 15);
  const spatialPro = await checkTable(page);
  await openDefectCell(page);
  await expect(page.getByTestId('head-item')).toHaveCount(1);

  // CSE head on WASM (no real defect used; synthetic ones made on the fly).
  await train(page, 'cse', 'wasm', 2);
  await checkTable(page);
  await openDefectCell(page);

  // One WebGPU run: the spatial head on tfjs-WebGPU.
  await train(page, 'spatial', 'webgpu', 3);
  const gpuPro = await checkTable(page);

  // Stop: a long run ends as cancelled soon after the button is pressed.
  await page.getByTestId('head-kind').selectOption('spatial');
  await page.getByTestId('tf-backend').selectOption('wasm');
  await page.getByTestId('hp-epochs').fill('1000');
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('train-progress')).toContainText('train', { timeout: 300_000 });
  await page.getByTestId('train-stop').click();
  await expect(page.getByTestId('result-stopped')).toHaveText('cancelled', { timeout: 300_000 });
  const epochsRun = Number(await page.getByTestId('loss-chart').getAttribute('data-epochs'));
  expect(epochsRun).toBeGreaterThan(0);
  expect(epochsRun).toBeLessThan(1000);
  await expect(page.getByTestId('head-item')).toHaveCount(4);
  const stoppedPro = await checkTable(page);

  // Re-evaluate a saved spatial head: cached features and restored weights give the PRO of one of the spatial
  // runs above (the three share a name, so which one is not known here).
  const first = page.getByTestId('head-item').filter({ hasText: 'spatial' }).first();
  await first.getByTestId('head-evaluate').click();
  await expect(page.getByTestId('evaluation-title')).toContainText('re-evaluated', { timeout: 300_000 });
  expect([spatialPro, gpuPro, stoppedPro]).toContain(await checkTable(page));

  // Export: a zip with a tfjs layers model and its metadata.
  const download = page.waitForEvent('download');
  await first.getByTestId('head-export').click();
  const file = await (await download).path();
  const files = unzipSync(new Uint8Array(readFileSync(file)));
  expect(Object.keys(files).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
  const modelJson = JSON.parse(new TextDecoder().decode(files['model.json']));
  expect(modelJson.format).toBe('layers-model');
  expect(modelJson.weightsManifest[0].paths).toEqual(['./weights.bin']);
  const bytes = modelJson.weightsManifest[0].weights.reduce(
    (s: number, w: { shape: number[] }) => s + 4 * w.shape.reduce((a, b) => a * b, 1),
    0,
  );
  expect(files['weights.bin'].length).toBe(bytes);
  const meta = JSON.parse(new TextDecoder().decode(files['metadata.json']));
  expect(meta).toMatchObject({ kind: 'spatial', backbone: 'mobilenetv2-12-int8' });
  expect(Number.isFinite(meta.threshold)).toBe(true);
  expect(meta.model.input.shape).toEqual([1280, 7, 7]);
});

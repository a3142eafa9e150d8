/**
 * #15 fault injection: the WebGPU device lost mid-job (`device.destroy()`, what a GPU process crash or reset
 * looks like to the page). Page init scripts do not reach workers, so the test patches the worker's own
 * `GPUAdapter.prototype.requestDevice` through Playwright's Worker handle as soon as the worker exists, keeps
 * every device the worker's runtime (onnxruntime, tfjs) requests, and destroys them mid-job. The job must fail
 * with `GpuDeviceLostError` (message + fix), the buttons come back, nothing is stored for the failed job, and the
 * next job runs on WASM (`src/runtime/device-lost.ts`, the doors `ort-web.ts` and `tf.ts`): a diffusion batch
 * (and the Models tab then shows the model on WASM with the reason), a training, and an experiment grid.
 */
import { expect, test, type Page } from '../fixtures.ts';
import { paintStroke, waitForApp } from '../helpers.ts';
import {
  halfRecords,
  memsegGrid,
  recordWorkers,
  storeCounts,
  trainTabWithTinyBackbone,
  workersMade,
} from './faults.ts';

type PwWorker = ReturnType<Page['workers']>[number];

/** Records the GPUDevices every worker whose URL contains `name` requests, from its first moments on. */
function recordWorkerDevices(page: Page, name: string): PwWorker[] {
  const seen: PwWorker[] = [];
  page.on('worker', (w) => {
    if (!w.url().includes(name)) return;
    seen.push(w);
    void w
      .evaluate(() => {
        const g = self as unknown as { __faultDevices?: GPUDevice[] };
        if (g.__faultDevices || typeof GPUAdapter === 'undefined') return;
        const devices: GPUDevice[] = [];
        g.__faultDevices = devices;
        const request = GPUAdapter.prototype.requestDevice;
        GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, ...a) {
          const d = await request.apply(this, a);
          devices.push(d);
          return d;
        };
      })
      .catch(() => undefined);
  });
  return seen;
}

/** Destroys every device the worker has requested; answers how many. */
function destroyDevices(w: PwWorker): Promise<number> {
  return w.evaluate(() => {
    const devices = (self as unknown as { __faultDevices?: GPUDevice[] }).__faultDevices ?? [];
    for (const d of devices) d.destroy();
    return devices.length;
  });
}

test('the WebGPU device lost mid-generation: GpuDeviceLostError with a fix, the next batch runs on WASM', async ({
  page,
}) => {
  const MODEL = 'tiny-sd-inpaint';
  await recordWorkers(page);
  const diffusionWorkers = recordWorkerDevices(page, 'diffusion');
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="models"]').click();
  await page.getByTestId(`model-download-${MODEL}`).click();
  await expect(page.getByTestId('model-download-done')).toContainText('Downloaded 100%', {
    timeout: 120_000,
  });
  await page.getByTestId('models-backend').selectOption('webgpu');
  await page.getByTestId(`model-load-${MODEL}`).click();
  await expect(page.getByTestId('models-loaded')).toContainText(MODEL, { timeout: 180_000 });

  await page.locator('[data-tab="generate"]').click();
  await paintStroke(page);
  await page.getByTestId('gen-generator').selectOption('diffusion');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  const panel = page.getByTestId('diffusion-panel');
  await expect(panel.getByTestId('diffusion-model')).toContainText(MODEL);
  await panel.getByTestId('diffusion-steps').fill('50');
  await panel.getByTestId('diffusion-seed').fill('11');
  await panel.getByTestId('diffusion-count').fill('20');
  const before = await storeCounts(page);
  await panel.getByTestId('diffusion-generate').click();
  const progress = page.getByTestId('diffusion-progress');
  await expect(progress).toBeVisible({ timeout: 180_000 });
  const made = await workersMade(page, 'diffusion');
  expect(diffusionWorkers.length).toBe(made);
  // The model ran on WebGPU: its worker holds the device onnxruntime requested.
  expect(await destroyDevices(diffusionWorkers.at(-1)!)).toBeGreaterThan(0);

  const error = panel.getByTestId('diffusion-error');
  await expect(error).toContainText(
    'GpuDeviceLostError: the WebGPU device of onnxruntime was lost (destroyed',
    {
      timeout: 60_000,
    },
  );
  await expect(error).toContainText('fix: run it again: the model is loaded again on WASM');
  await expect(progress).toHaveCount(0);
  await expect(panel.getByTestId('diffusion-generate')).toBeEnabled();
  const after = await storeCounts(page);
  expect([after.images, after.masks, after.datasets]).toEqual([before.images, before.masks, before.datasets]);
  expect(await halfRecords(page)).toEqual([]);

  // Generate again, nothing loaded by hand: a fresh worker loads the model on WASM and stages the sample.
  await panel.getByTestId('diffusion-steps').fill('2');
  await panel.getByTestId('diffusion-count').fill('1');
  await panel.getByTestId('diffusion-generate').click();
  await expect(panel.getByTestId('diffusion-summary')).toHaveText('1 sample staged', { timeout: 180_000 });
  await expect(error).toHaveCount(0);
  expect(await workersMade(page, 'diffusion')).toBe(made + 1);
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('1 accepted');
  const backends = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const all = await new Promise<
      { provenance?: { generator?: string; parameters?: { backend?: string } } }[]
    >((res, rej) => {
      const r = db.transaction('images').objectStore('images').getAll();
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    db.close();
    return all
      .filter((i) => i.provenance?.generator === 'diffusion')
      .map((i) => i.provenance?.parameters?.backend);
  });
  expect(backends).toEqual(['wasm']);

  // The Models tab says where the model is now and why, not the WebGPU placement it was loaded with.
  await page.locator('[data-tab="models"]').click();
  const loaded = page.getByTestId('models-loaded');
  await expect(loaded).toContainText(`Loaded ${MODEL}`);
  await expect(loaded).toContainText(/\bon\s+wasm\b/);
  await expect(page.getByTestId('models-loaded-reason')).toContainText(
    'the WebGPU device was lost (destroyed',
  );
  await expect(page.getByTestId('models-loaded-reason')).toContainText('loaded again on WASM');
});

test('the WebGPU device lost mid-training: GpuDeviceLostError with a fix, no head saved, the next run trains on WASM', async ({
  page,
}) => {
  await recordWorkers(page);
  const trainWorkers = recordWorkerDevices(page, 'train');
  await page.goto('/');
  await waitForApp(page);
  await trainTabWithTinyBackbone(page, 'webgpu', 400);
  const before = await storeCounts(page);
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('train-progress')).toContainText(/^train \d+\/400/, { timeout: 180_000 });
  expect(trainWorkers.length).toBeGreaterThan(0);
  expect(await destroyDevices(trainWorkers.at(-1)!)).toBeGreaterThan(0);

  const toast = page.getByTestId('toast-error').filter({ hasText: 'GpuDeviceLostError' });
  await expect(toast).toBeVisible({ timeout: 60_000 });
  await expect(toast).toContainText('the WebGPU device of tfjs (the training heads) was lost (destroyed');
  await expect(toast).toContainText('fix: run it again: DefectLab now trains on WASM');
  await expect(page.getByTestId('train-progress')).toHaveCount(0);
  await expect(page.getByTestId('train-start')).toBeEnabled();
  const after = await storeCounts(page);
  expect([after.heads, after.runs, after.images]).toEqual([before.heads, before.runs, before.images]);
  expect(await halfRecords(page)).toEqual([]);

  // The next run ('auto') trains on WASM in the same worker, and says why.
  const made = await workersMade(page, 'train');
  await page.getByTestId('tf-backend').selectOption('auto');
  await page.getByTestId('hp-epochs').fill('2');
  await page.getByTestId('train-start').click();
  await expect(page.getByTestId('head-item')).toHaveCount(before.heads + 1, { timeout: 180_000 });
  await expect(page.getByTestId('result-tf-backend')).toHaveText('wasm');
  await expect(page.getByTestId('result-tf-reason')).toContainText('the WebGPU device was lost earlier');
  expect(await workersMade(page, 'train')).toBe(made);
  await expect(page.getByTestId('toast-error')).toHaveCount(1);
});

test('the WebGPU device lost mid-grid: GpuDeviceLostError with a fix, the next grid runs on WASM and says why', async ({
  page,
}) => {
  await recordWorkers(page);
  const gridWorkers = recordWorkerDevices(page, 'experiments');
  await page.goto('/');
  await waitForApp(page);
  await trainTabWithTinyBackbone(page, 'webgpu');
  const { panel, runButton } = await memsegGrid(page, {
    nAug: 4,
    seeds: '0,1,2',
    epochs: 300,
    id: 'faults-gpu-lost',
  });
  const before = await storeCounts(page);
  await runButton.click();
  await expect(panel.getByText(/\d+ \/ [1-9]\d* cells/)).toBeVisible({ timeout: 120_000 });
  expect(gridWorkers.length).toBeGreaterThan(0);
  // The heads run on tfjs webgpu: the experiments worker holds the device tfjs requested.
  expect(await destroyDevices(gridWorkers.at(-1)!)).toBeGreaterThan(0);

  const alert = panel.getByRole('alert');
  await expect(alert).toContainText(
    'GpuDeviceLostError: the WebGPU device of tfjs (the training heads) was lost (destroyed',
    { timeout: 60_000 },
  );
  await expect(alert).toContainText('fix: run it again: DefectLab now trains on WASM');
  await expect(runButton).toBeEnabled();
  expect((await storeCounts(page)).images).toBe(before.images);
  expect(await halfRecords(page)).toEqual([]);

  // The next grid ('auto') runs its heads on WASM in the same worker, and says why.
  const made = await workersMade(page, 'experiments');
  await page.getByTestId('tf-backend').selectOption('auto');
  await panel.getByLabel('seeds', { exact: true }).fill('0');
  await panel.getByLabel('epochs', { exact: true }).fill('2');
  await panel.getByLabel('experiment id').fill('faults-gpu-after');
  await runButton.click();
  await expect(panel.getByTestId('experiment-table')).toBeVisible({ timeout: 120_000 });
  await expect(alert).toHaveCount(0);
  await expect(panel.getByTestId('experiment-tf-backend')).toHaveText('wasm');
  await expect(panel).toContainText('the WebGPU device was lost earlier');
  expect(await workersMade(page, 'experiments')).toBe(made);
});

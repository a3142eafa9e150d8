import { expect, test } from './fixtures.ts';

test('the built app loads, is cross-origin isolated and sees a WebGPU adapter under SwiftShader', async ({
  page,
}) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'DefectLab' })).toBeVisible();
  const info = await page.evaluate(async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    const adapter = gpu ? await gpu.requestAdapter() : null;
    return { isolated: self.crossOriginIsolated, adapter: !!adapter, vendor: adapter?.info?.vendor ?? '' };
  });
  expect(info.isolated).toBe(true);
  expect(info.adapter).toBe(true);
});

test('the System panel shows the SwiftShader adapter labelled as software, its limits, threads and storage', async ({
  page,
}) => {
  await page.goto('/');
  // Software WebGPU gets a visible notice on every tab.
  await expect(page.getByTestId('webgpu-banner')).toContainText('software adapter');
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('system-webgpu-status')).toContainText('Available');
  await expect(page.getByTestId('system-adapter-kind')).toHaveText('software adapter');
  // What the page itself reads from the adapter must be what the panel shows.
  const arch = await page.evaluate(async () => {
    const a = await (navigator as Navigator & { gpu: GPU }).gpu.requestAdapter();
    return a?.info.architecture ?? '';
  });
  expect(arch.toLowerCase()).toContain('swiftshader');
  await expect(page.getByTestId('system-adapter-architecture')).toHaveText(arch);
  // SwiftShader here: 1 GiB buffers and no shader-f16 (DEVELOPERS.md).
  await expect(page.getByTestId('system-max-buffer')).toHaveText('1.0 GB');
  await expect(page.getByTestId('system-shader-f16')).toContainText('no');
  await expect(page.getByTestId('system-isolated')).toHaveText('yes');
  await expect(page.getByTestId('system-storage')).toContainText('used of');
  // 'auto' without a stored benchmark says so instead of guessing; an explicit choice is honoured at once.
  await expect(page.getByTestId('system-backend-decision')).toContainText('Not measured');
  await page.getByTestId('backend-wasm').check();
  await expect(page.getByTestId('system-backend-decision')).toContainText('Using WASM');
  await page.reload();
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('backend-wasm')).toBeChecked();
});

test('"auto" measures both backends once on this device, picks WASM over SwiftShader WebGPU and remembers it', async ({
  page,
}) => {
  await page.goto('/');
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('backend-auto')).toBeChecked();
  await page.getByTestId('run-benchmark').click();
  // On a software adapter WebGPU is far slower than WASM; a failed WASM run would read "failed (…)".
  await expect(page.getByTestId('system-backend-decision')).toContainText('Using WASM — benchmark: WebGPU', {
    timeout: 120_000,
  });
  await expect(page.getByTestId('system-bench')).toContainText(/WASM \d+\.\d ms/);
  // The result is stored per device: after a reload the decision is known without measuring again.
  await page.reload();
  await page.locator('[data-tab="system"]').click();
  await expect(page.getByTestId('system-backend-decision')).toContainText('Using WASM — benchmark');
  const backend = await page.evaluate(async () => {
    const keys = Object.keys(localStorage).filter((k) => k.startsWith('defectlab.backend.bench.'));
    return keys.length;
  });
  expect(backend).toBe(1);
});

import { expect, test } from '@playwright/test';

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

/**
 * #15 fault injection: the experiments worker terminated mid-grid (see worker-terminate.spec.ts for the why).
 * WASM only, as experiments.spec.ts: the runner's heads ask tfjs for 'auto', which must not pick SwiftShader.
 */
import { chromiumArgs } from '../../../playwright.config.ts';
import { expect, test } from '../fixtures.ts';
import { waitForApp } from '../helpers.ts';
import {
  halfRecords,
  memsegGrid,
  recordWorkers,
  storeCounts,
  terminateWorker,
  trainTabWithTinyBackbone,
  workersMade,
} from './faults.ts';
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs.filter((a) => !/webgpu|swiftshader/i.test(a)),
  },
});

test('terminated mid-grid: the grid fails with the worker named, the panel recovers, a grid runs again', async ({
  page,
}) => {
  await recordWorkers(page);
  await page.goto('/');
  await waitForApp(page);
  await trainTabWithTinyBackbone(page);
  const { panel, runButton } = await memsegGrid(page, {
    nAug: 8,
    seeds: '0,1,2',
    epochs: 300,
    id: 'faults-killed',
  });
  const before = await storeCounts(page);
  await runButton.click();
  await expect(panel.getByText(/\d+ \/ [1-9]\d* cells/)).toBeVisible({ timeout: 60_000 });
  expect(await terminateWorker(page, 'experiments')).toBe(true);

  const alert = panel.getByRole('alert');
  await expect(alert).toContainText('the experiments worker stopped', { timeout: 20_000 });
  await expect(alert).toContainText('fix: run it again (the backbone is loaded again by itself)');
  await expect(runButton).toBeEnabled();
  expect((await storeCounts(page)).images).toBe(before.images);
  expect(await halfRecords(page)).toEqual([]);

  // A short grid afterwards runs to its table on a fresh worker, which got the backbone back by itself.
  await panel.getByLabel('seeds', { exact: true }).fill('0');
  await panel.getByLabel('epochs', { exact: true }).fill('2');
  await panel.getByLabel('experiment id').fill('faults-after');
  await runButton.click();
  await expect(panel.getByTestId('experiment-table').or(alert).first()).toBeVisible({ timeout: 120_000 });
  await expect(runButton).toBeEnabled({ timeout: 120_000 });
  await expect(alert).toHaveCount(0);
  expect(await workersMade(page, 'experiments')).toBeGreaterThanOrEqual(2);
});

import { readFileSync } from 'node:fs';
import { chromiumArgs } from '../../playwright.config.ts';
import type { CellResult } from '../../src/core/experiments/types.ts';
import { expect, test, type Page } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

/**
 * The experiment runner panel in the built app, on the built-in sample dataset with the tiny ResNet backbone:
 * 1. without a cached diffusion model, diffusion and In&Out are disabled and the panel says why and what to do;
 *    a MemSeg grid with the BCE and spatial heads runs and shows the per-defect-class table;
 * 2. after the Models tab downloads the tiny SD-inpaint, diffusion and In&Out cells run in the experiments worker,
 *    and the exported JSON shows the In&Out cell made half of its defects with each generator.
 * WASM only (the browser starts without the WebGPU flags): the runner's heads ask tfjs for 'auto'.
 */
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs.filter((a) => !/webgpu|swiftshader/i.test(a)),
  },
});

const MODEL = 'tiny-sd-inpaint';

async function openRunner(page: Page) {
  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-select').selectOption('tiny-resnet');
  await page.getByTestId('backbone-device').selectOption('wasm');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
  await page.getByText('Experiment runner (generators').click();
  const panel = page.getByRole('region', { name: 'Experiments' });
  await expect(panel.getByRole('button', { name: 'Run', exact: true })).toBeEnabled({ timeout: 120_000 });
  return panel;
}

async function setChecks(panel: ReturnType<Page['getByRole']>, on: Record<string, boolean>) {
  for (const [label, v] of Object.entries(on)) await panel.getByLabel(label, { exact: true }).setChecked(v);
}

async function run(page: Page, panel: ReturnType<Page['getByRole']>, id: string) {
  await panel.getByLabel('experiment id').fill(id);
  await panel.getByRole('button', { name: 'Run', exact: true }).click();
  const error = panel.getByRole('alert');
  const table = panel.getByTestId('experiment-table');
  await expect(table.or(error).first()).toBeVisible({ timeout: 600_000 });
  await expect(panel.getByRole('button', { name: 'Run', exact: true })).toBeEnabled({ timeout: 600_000 });
  if (await error.count()) throw new Error(`experiment ${id} failed: ${await error.textContent()}`);
  const download = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Export JSON' }).click();
  return JSON.parse(readFileSync(await (await download).path(), 'utf8')) as {
    cells: Omit<CellResult, 'scores'>[];
  };
}

test('experiment runner: spatial head and per-class table; diffusion and In&Out once a model is cached', async ({
  page,
}) => {
  test.setTimeout(1_200_000);
  await page.goto('/');
  await waitForApp(page);

  let panel = await openRunner(page);
  await expect(panel.getByTestId('experiment-generator-diffusion')).toBeDisabled();
  await expect(panel.getByTestId('experiment-generator-in-out')).toBeDisabled();
  await expect(panel.getByTestId('experiment-diffusion-reason')).toContainText(
    'no diffusion model is cached — download a diffusion model in the Models tab',
  );
  await setChecks(panel, { none: false, memseg: true, BCE: true, Spatial: true, CSE: false });
  await panel.getByLabel('N_aug list').fill('8');
  await panel.getByLabel('seeds', { exact: true }).fill('0');
  await panel.getByLabel('epochs', { exact: true }).fill('3');
  const first = await run(page, panel, 'e2e-spatial');
  for (const c of first.cells) expect(c.status, `${c.id}: ${c.error}`).toBe('done');
  expect(first.cells.map((c) => c.config.head).sort()).toEqual(['bce', 'knn', 'mean', 'spatial']);
  // The sample dataset has masks for its test defects: the spatial head's heat maps give AUPRO.
  expect(first.cells.find((c) => c.config.head === 'spatial')?.metrics?.auPro).toBeGreaterThan(0);
  await expect(panel.getByTestId('experiment-table')).toContainText('memseg ×8 · spatial');
  const classTable = panel.getByTestId('experiment-class-table');
  await expect(classTable).toBeVisible();
  const classes = Object.keys(first.cells.find((c) => c.config.head === 'bce')?.perClass ?? {});
  expect(classes.length).toBeGreaterThan(0);
  for (const k of classes) await expect(classTable.locator('th', { hasText: k })).toHaveCount(1);

  // Cache the tiny SD-inpaint; the train tab (and its runner) is rebuilt when it is opened again.
  await page.locator('[data-tab="models"]').click();
  await page.getByTestId(`model-download-${MODEL}`).click();
  await expect(page.getByTestId('model-download-done')).toContainText('Downloaded 100%', {
    timeout: 120_000,
  });
  panel = await openRunner(page);
  await expect(panel.getByTestId('experiment-generator-diffusion')).toBeEnabled();
  await setChecks(panel, {
    none: false,
    memseg: false,
    diffusion: true,
    'In&Out 50/50': true,
    Spatial: false,
  });
  await expect(panel.getByTestId('experiment-diffusion')).toBeVisible();
  await expect(panel.getByLabel('diffusion model')).toHaveValue(MODEL);
  await expect(panel.getByLabel('guidance scale')).toHaveValue('20'); // DIAG's preset
  await panel.getByLabel('steps', { exact: true }).fill('2');
  await panel.getByLabel('N_aug list').fill('4');
  await panel.getByLabel('seeds', { exact: true }).fill('0');
  await panel.getByLabel('epochs', { exact: true }).fill('3');
  const second = await run(page, panel, 'e2e-diffusion');
  for (const c of second.cells) expect(c.status, `${c.id}: ${c.error}`).toBe('done');
  const inOut = second.cells.find((c) => c.config.generator === 'in-out');
  expect(inOut?.synthetic).toEqual({ diffusion: 2, memseg: 2 });
  expect(inOut?.config.diffusion).toMatchObject({ model: MODEL, steps: 2, guidanceScale: 20 });
  expect(second.cells.find((c) => c.config.generator === 'diffusion')?.synthetic).toEqual({ diffusion: 4 });
  await expect(panel.getByTestId('experiment-table')).toContainText('in-out ×4 · bce');

  // A paper preset pasted into the runner (docs/presets/diag-table1.json, made small): it runs on this dataset
  // and backbone, setting aside the CLI-only keys, with DIAG's crop-around-mask in its cells.
  const preset = JSON.parse(readFileSync('docs/presets/diag-table1.json', 'utf8'));
  const pasted = {
    ...preset,
    nAug: [4],
    seeds: [0],
    epochs: 3,
    data: 'my-folder',
    diffusion: { ...preset.diffusion, model: MODEL, steps: 2 },
  };
  await panel.getByText('Run a grid config').click();
  await panel
    .getByTestId('experiment-config-text')
    .fill('{"generators": ["memseg"], "nAug": [4], "seed": [0]}');
  await panel.getByTestId('experiment-config-run').click();
  await expect(panel.getByRole('alert')).toContainText(
    'GridConfigError: the pasted config: has an unknown key "seed"',
  );
  await panel.getByLabel('experiment id').fill('e2e-preset');
  await panel.getByTestId('experiment-config-text').fill(JSON.stringify(pasted));
  await panel.getByTestId('experiment-config-run').click();
  await expect(panel.getByTestId('experiment-config-note')).toContainText(
    'set aside: about, columns, data, title',
  );
  await expect(panel.getByTestId('experiment-table')).toContainText('diffusion ×4 · bce', {
    timeout: 600_000,
  });
  await expect(panel.getByTestId('experiment-table')).toContainText('memseg ×4 · bce');
  await expect(panel.getByRole('button', { name: 'Run', exact: true })).toBeEnabled({ timeout: 600_000 });
});

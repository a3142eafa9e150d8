import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, type Page } from './fixtures.ts';

/** `../shared` beside the checkout: reference data and models, read in place and never written. */
export const SHARED = path.resolve(import.meta.dirname, '../../../shared');
export const MT_DATA = path.join(SHARED, 'data/magnetic-tile-compact');
export const MOBILENET_INT8 = path.join(SHARED, 'models/mobilenetv2-12-int8.onnx');

/** One entry of the magnetic-tile `manifest.json`. */
export interface MtItem {
  file: string;
  label: number;
  split: string;
  mask: string | null;
  defect_class: string;
  width: number;
  height: number;
}

export function mtManifest(): { items: MtItem[] } & Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(MT_DATA, 'manifest.json'), 'utf8')) as {
    items: MtItem[];
  } & Record<string, unknown>;
}

/**
 * A folder holding only `items` (images, masks and a manifest naming just them), made in the OS temp dir so that
 * `../shared` stays untouched and parallel Playwright runs, which wipe test-results/, cannot remove it.
 */
export function mtSubset(name: string, items: MtItem[]): string {
  const root = path.join(mkdtempSync(path.join(tmpdir(), `dl-${name}-`)), name);
  mkdirSync(path.join(root, 'images'), { recursive: true });
  mkdirSync(path.join(root, 'masks'), { recursive: true });
  for (const i of items) {
    copyFileSync(path.join(MT_DATA, i.file), path.join(root, i.file));
    if (i.mask) copyFileSync(path.join(MT_DATA, i.mask), path.join(root, i.mask));
  }
  writeFileSync(path.join(root, 'manifest.json'), JSON.stringify({ ...mtManifest(), items }, null, 1));
  return root;
}

/** The shell is up and its first-start work (sample dataset, capability probe) has finished. */
export async function waitForApp(page: Page) {
  await expect(page.getByRole('heading', { name: 'DefectLab' })).toBeVisible();
  await expect(page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
}

/**
 * Imports files or a folder into a new dataset through the Data tab's real inputs and closes the report once it
 * says `added` images were stored.
 */
export async function importIntoNewDataset(
  page: Page,
  input: 'import-files' | 'import-folder',
  files: string | string[],
  added: number,
  timeout = 120_000,
) {
  await page.locator('[data-tab="data"]').click();
  await page.getByTestId('import-target').selectOption('new');
  await page.getByTestId(input).setInputFiles(files);
  const report = page.getByTestId('import-report');
  await expect(report.getByTestId('report-added')).toHaveText(String(added), { timeout });
  await report.getByTestId('report-close').click();
}

/** Picks an ONNX backbone file in the Train tab and loads it on ORT-WASM. */
export async function loadBackboneFileOnWasm(page: Page, file: string, timeout: number) {
  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-file').setInputFiles(file);
  await page.getByTestId('backbone-device').selectOption('wasm');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout });
}

/**
 * The painted pixel count as the painter shows it once the frame after the last pointer event is drawn. The
 * painter redraws (and recounts) in requestAnimationFrame, so reading the label straight after `mouse.up()` can
 * see the frame before the stroke on a loaded machine. A frame requested now runs after the painter's own.
 */
export async function paintedPx(page: Page): Promise<number> {
  await page.evaluate(
    () => new Promise<void>((done) => requestAnimationFrame(() => requestAnimationFrame(() => done()))),
  );
  return Number((await page.getByTestId('painter-count').textContent())!.split(' ')[0]);
}

/** Paints one stroke across the middle of the Generate tab's canvas (a brush two sizes up). */
export async function paintStroke(page: Page): Promise<void> {
  const canvas = page.getByTestId('painter-canvas');
  await expect(canvas).toBeVisible({ timeout: 60_000 });
  await canvas.click({ position: { x: 2, y: 2 }, button: 'middle' });
  await page.keyboard.press(']');
  await page.keyboard.press(']');
  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx - box.height * 0.15, cy - box.height * 0.1);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++)
    await page.mouse.move(cx - box.height * 0.15 + (i * box.height * 0.3) / 10, cy);
  await page.mouse.up();
}

/**
 * Workshop figures for the README's "Running a workshop":
 *
 * - `shareLink`: characters of a share link (on `https://defectlab.example/`) for the DIAG reference setup
 *   (`src/core/share/example.ts`) with 4 real magnetic-tile defect masks (../shared, read in place), with no
 *   masks, and with 4 random Perlin regions at 256×256 (a denser shape than a painted stroke: an upper figure).
 * - `firstRun`: wall-clock seconds of the guided first run in the production build on WASM (Chromium, WebGPU on
 *   SwiftShader → lite): app start, then each step as a user does it — paint a stroke, MemSeg ×8 + accept all,
 *   load the tiny ResNet + train the BCE head (3 epochs) + its evaluation — and the total. Port
 *   `DL_BENCH_WORKSHOP_PORT` (4216).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeMaskPng } from '../src/core/mask/index.ts';
import { shareUrl } from '../src/core/share/codec.ts';
import { diagReferenceSetup } from '../src/core/share/example.ts';
import type { SharedMask } from '../src/core/share/setup.ts';
import { randomPerlinMask } from '../src/core/synth/regionMask.ts';
import { ROOT, browserSkipReason, withBuiltApp } from './_browser.ts';

const MT = path.resolve(ROOT, '../shared/data/magnetic-tile-compact');
const BASE = 'https://defectlab.example/';

function realMasks(n: number): SharedMask[] | null {
  const file = path.join(MT, 'manifest.json');
  if (!existsSync(file)) return null;
  const items = (
    JSON.parse(readFileSync(file, 'utf8')) as { items: { mask: string | null; defect_class: string }[] }
  ).items;
  const seen = new Set<string>();
  const out: SharedMask[] = [];
  for (const i of items) {
    if (!i.mask || seen.has(i.defect_class) || out.length === n) continue;
    seen.add(i.defect_class);
    out.push({
      name: path.basename(i.mask),
      mask: decodeMaskPng(readFileSync(path.join(MT, i.mask)), i.mask),
    });
  }
  return out;
}

function shareLink(): Record<string, unknown> {
  const real = realMasks(4);
  const perlin = [0, 1, 2, 3].map((i) => ({
    name: `perlin ${i}`,
    mask: randomPerlinMask(256, 256, {}, `bench:${i}`).mask,
  }));
  return {
    base: BASE,
    diagNoMasks: shareUrl(BASE, diagReferenceSetup([])).length,
    diag4RealMasks: real ? shareUrl(BASE, diagReferenceSetup(real)).length : 'skipped: no ../shared',
    realMasks: real?.map((m) => `${m.name} ${m.mask.width}×${m.mask.height}`),
    diag4Perlin256: shareUrl(BASE, diagReferenceSetup(perlin)).length,
    target: 2000,
  };
}

async function firstRun(): Promise<Record<string, unknown>> {
  const skip = browserSkipReason();
  if (skip) return { skipped: skip };
  const port = Number(process.env.DL_BENCH_WORKSHOP_PORT ?? 4216);
  return withBuiltApp(port, async ({ url, browser }) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const t = [performance.now()];
    const lap = () => {
      t.push(performance.now());
      return (t[t.length - 1] - t[t.length - 2]) / 1000;
    };
    await page.goto(url);
    await page.getByTestId('guide-offer-open').waitFor({ timeout: 300_000 });
    await page.getByTestId('app-busy').waitFor({ state: 'detached', timeout: 300_000 });
    const appStart = lap();
    await page.getByTestId('guide-offer-open').click();
    const lite = await page.getByTestId('first-run-lite').isChecked();
    await page.getByTestId('first-run-start').click();
    const canvas = page.getByTestId('painter-canvas');
    await canvas.waitFor({ timeout: 120_000 });
    await canvas.click({ position: { x: 2, y: 2 }, button: 'middle' });
    await page.keyboard.press(']');
    await page.keyboard.press(']');
    const box = (await canvas.boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await page.mouse.move(cx - box.width * 0.2, cy);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++)
      await page.mouse.move(cx - box.width * 0.2 + (i * box.width * 0.4) / 10, cy);
    await page.mouse.up();
    const paint = lap();
    await page.getByTestId('gen-run').click();
    await page
      .getByTestId('staging-pending')
      .filter({ hasText: /^[1-8] pending$/ })
      .waitFor({ timeout: 300_000 });
    await page.getByTestId('staging-accept-all').click();
    await page
      .locator('[data-testid="first-run-step-generate"][data-done="true"]')
      .waitFor({ timeout: 60_000 });
    const generate = lap();
    await page.getByTestId('first-run-step-train').getByRole('button', { name: 'Train' }).click();
    // The guide's settings reach the tab when it mounts: load only once the lite backbone is selected.
    await page.waitForFunction(
      () =>
        (document.querySelector('[data-testid="backbone-select"]') as HTMLSelectElement | null)?.value ===
        'tiny-resnet',
      undefined,
      { timeout: 60_000 },
    );
    await page.getByTestId('backbone-load').click();
    await page.getByTestId('backbone-backend').filter({ hasText: 'wasm' }).waitFor({ timeout: 120_000 });
    await page.getByTestId('train-start').click();
    await page.getByTestId('train-metric-table').waitFor({ timeout: 600_000 });
    await page.getByTestId('first-run-finished').waitFor({ timeout: 60_000 });
    const trainAndEvaluate = lap();
    const ap = Number(await page.getByTestId('train-metric-ap').textContent());
    await context.close();
    return {
      lite,
      appStartSeconds: appStart,
      paintSeconds: paint,
      generateSeconds: generate,
      trainAndEvaluateSeconds: trainAndEvaluate,
      pathSeconds: paint + generate + trainAndEvaluate,
      totalSeconds: (t[t.length - 1] - t[0]) / 1000,
      testAp: ap,
      targetSeconds: 120,
    };
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { shareLink: shareLink() };
  try {
    out.firstRun = await firstRun();
  } catch (e) {
    out.firstRun = { error: e instanceof Error ? e.message : String(e) };
  }
  return out;
}

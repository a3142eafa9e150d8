/**
 * The diffusion flow in the built app, driven through the UI: download the tiny SDXL-inpaint model from the
 * app's own server into the browser cache (progress reaches 100 %, sha256 verified), reload (the model is served
 * from the cache: no request reaches /models/), load it, paint a mask, generate 2 samples with a fixed seed,
 * accept them, and find them stored in IndexedDB with their provenance (generator, model, seed, prompt, source
 * image, mask). WASM backend here for speed; the WebGPU path is covered by diffusion-parity.spec.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, test } from './fixtures.ts';
import { paintStroke, paintedPx, waitForApp } from './helpers.ts';

const ID = 'tiny-sdxl-inpaint';

test('download → reload from cache → paint → generate 2 → accept → stored with provenance', async ({
  page,
}) => {
  const modelRequests: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/models/')) modelRequests.push(r.url());
  });
  // Requests made by the worker are attributed to the page's context too.
  page.context().on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/models/') && !modelRequests.includes(r.url()))
      modelRequests.push(r.url());
  });

  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="models"]').click();
  const row = page.getByTestId(`model-row-${ID}`);
  await expect(row).toBeVisible();
  await expect(page.getByTestId(`model-cached-${ID}`)).toHaveText('—');
  await page.getByTestId(`model-download-${ID}`).click();
  await expect(page.getByTestId('model-download-done')).toContainText('Downloaded 100%', {
    timeout: 120_000,
  });
  await expect(page.getByTestId(`model-cached-${ID}`)).toContainText('✓');
  const firstRun = modelRequests.length;
  expect(firstRun).toBeGreaterThanOrEqual(12); // 5 graphs + 4 tokenizer files + … each fetched with Range

  // Reload: the cached copy is listed and loads without touching the network.
  await page.reload();
  await waitForApp(page);
  modelRequests.length = 0;
  await page.locator('[data-tab="models"]').click();
  await expect(page.getByTestId(`model-cached-${ID}`)).toContainText('✓');
  await page.getByTestId('models-backend').selectOption('wasm');
  await page.getByTestId(`model-load-${ID}`).click();
  await expect(page.getByTestId('models-loaded')).toContainText(ID, { timeout: 120_000 });
  expect(modelRequests).toEqual([]);

  // Paint a region on the first image of the built-in sample dataset.
  await page.locator('[data-tab="generate"]').click();
  await paintStroke(page);
  expect(await paintedPx(page)).toBeGreaterThan(0);

  await page.getByTestId('gen-generator').selectOption('diffusion');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  const panel = page.getByTestId('diffusion-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('diffusion-model')).toContainText(ID);
  await panel.getByTestId('diffusion-diag').click();
  await expect(panel.getByTestId('diffusion-steps')).toHaveValue('30');
  await expect(panel.getByTestId('diffusion-guidance')).toHaveValue('20');
  await panel.getByTestId('diffusion-steps').fill('4');
  await panel.getByTestId('diffusion-seed').fill('1234');
  await panel.getByTestId('diffusion-count').fill('2');
  await expect(panel.getByText('1 region mask(s)')).toBeVisible();
  await panel.getByTestId('diffusion-generate').click();
  await expect(panel.getByTestId('diffusion-summary')).toHaveText('2 samples staged', { timeout: 180_000 });
  await expect(page.getByTestId('staging-pending')).toHaveText('2 pending');
  // The latest raw generation is previewed: an opaque picture at the model's resolution, not a blank.
  const { resolution } = JSON.parse(
    readFileSync(resolve(process.cwd(), 'models/manifests', `${ID}.json`), 'utf8'),
  ) as { resolution: number };
  const preview = await panel.getByTestId('diffusion-preview').evaluate(async (el: HTMLImageElement) => {
    await el.decode();
    const c = document.createElement('canvas');
    c.width = el.naturalWidth;
    c.height = el.naturalHeight;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(el, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let opaque = true;
    const grays = new Set<number>();
    for (let p = 0; p < d.length; p += 4) {
      opaque &&= d[p + 3] === 255;
      grays.add(d[p]);
    }
    return { w: el.naturalWidth, h: el.naturalHeight, opaque, levels: grays.size };
  });
  expect([preview.w, preview.h]).toEqual([resolution, resolution]);
  expect(preview.opaque).toBe(true);
  expect(preview.levels).toBeGreaterThan(8);
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('2 accepted');

  // Stored with provenance (read back from IndexedDB, reading only).
  const stored = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const all = await new Promise<
      {
        label: string;
        maskId?: string;
        provenance?: Record<string, unknown> & { parameters: Record<string, unknown> };
      }[]
    >((res, rej) => {
      const r = db.transaction('images').objectStore('images').getAll();
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    return all
      .filter((i) => i.provenance?.generator === 'diffusion')
      .map((i) => ({
        label: i.label,
        hasMask: !!i.maskId,
        modelId: i.provenance!.modelId,
        seed: i.provenance!.seed,
        prompt: i.provenance!.prompt,
        negativePrompt: i.provenance!.negativePrompt,
        sourceImageId: i.provenance!.sourceImageId,
        maskId: i.provenance!.maskId,
        steps: i.provenance!.parameters.steps,
        guidance: i.provenance!.parameters.guidanceScale,
        backend: i.provenance!.parameters.backend,
      }));
  });
  expect(stored).toHaveLength(2);
  expect(stored.map((s) => s.seed).sort()).toEqual([1234, 1235]);
  for (const s of stored) {
    expect(s.label).toBe('defect');
    expect(s.hasMask).toBe(true);
    expect(s.modelId).toBe(ID);
    // DIAG's pool has two prompts; paired mode gives sample i prompt i mod 2 and seed 1234 + i.
    expect(s.prompt).toBe(s.seed === 1234 ? 'white marks on the wall' : 'copper metal scratches');
    expect(s.negativePrompt).toBe('smooth, plain, black, dark, shadow');
    expect(typeof s.sourceImageId).toBe('string');
    expect(typeof s.maskId).toBe('string');
    expect(s.steps).toBe(4);
    expect(s.guidance).toBe(20);
    expect(s.backend).toBe('wasm');
  }
  expect(modelRequests).toEqual([]);
});

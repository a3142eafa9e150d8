/**
 * The generation form beyond the paint → accept flow (paint-generate.spec.ts), on real magnetic-tile photos from
 * ../shared (read in place), through the built app:
 * - MemSeg with texture images drawn from the dataset's other images, inside a painted region with a feather σ:
 *   the σ is saved with the library mask, becomes the diffusion panel's mask blur, and every accepted sample's
 *   provenance names the dataset image it used as texture and the σ; masks stay binary, inside the region, and
 *   pixels outside them are the source's;
 * - MemSeg with texture image files picked from disk (not imported): provenance names the file;
 * - cancelling a large MemSeg batch mid-run: the toast says how many samples were kept, and exactly those are in
 *   the staging strip.
 * Stored records are read back from IndexedDB (reading only).
 */
import path from 'node:path';
import { expect, test, type Page } from './fixtures.ts';
import { MT_DATA, importIntoNewDataset, mtManifest, waitForApp } from './helpers.ts';

const manifest = mtManifest();
const free = manifest.items.filter((i) => i.defect_class === 'MT_Free').slice(0, 3);

/** Imports real tiles into a new dataset through the Data tab and opens the Paint & generate tab. */
async function importTiles(page: Page, files: string[]) {
  await page.goto('/');
  await waitForApp(page);
  await importIntoNewDataset(
    page,
    'import-files',
    files.map((f) => path.join(MT_DATA, f)),
    files.length,
  );
  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('painter-canvas')).toBeVisible();
}

interface Sample {
  sourceImageId?: string;
  parameters: Record<string, unknown>;
  maskOn: number;
  maskOutsideRegion: number;
  maskBinary: boolean;
  changedOutsideMask: number;
  changedInsideMask: number;
}

/** Every generated image of the dataset, its mask against the source's region, and its pixels against the source. */
function readSamples(page: Page): Promise<{ imageIds: string[]; samples: Sample[] }> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const all = <T>(store: string) =>
      new Promise<T[]>((res, rej) => {
        const r = db.transaction(store).objectStore(store).getAll();
        r.onsuccess = () => res(r.result as T[]);
        r.onerror = () => rej(r.error);
      });
    type Img = {
      id: string;
      datasetId: string;
      blob: Blob;
      maskId?: string;
      provenance?: { sourceImageId?: string; parameters: Record<string, unknown> };
    };
    type Msk = { id: string; imageId?: string; kind: string; blob: Blob };
    const images = await all<Img>('images');
    const masks = await all<Msk>('masks');
    db.close();
    async function red(blob: Blob) {
      const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = c.getContext('2d')!;
      ctx.drawImage(bmp, 0, 0);
      const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
      const v = new Uint8Array(bmp.width * bmp.height);
      for (let i = 0; i < v.length; i++) v[i] = d[4 * i];
      return v;
    }
    const generated = images.filter((i) => i.provenance);
    const ds = generated[0]?.datasetId;
    const samples: Sample[] = [];
    for (const s of generated) {
      const src = images.find((i) => i.id === s.provenance!.sourceImageId);
      const region = masks.find((m) => m.kind === 'region' && m.imageId === src?.id);
      const mask = masks.find((m) => m.id === s.maskId);
      if (!src || !region || !mask) throw new Error(`sample ${s.id}: source, region or mask missing`);
      const [sp, rp, mp, px] = await Promise.all([
        red(src.blob),
        red(region.blob),
        red(mask.blob),
        red(s.blob),
      ]);
      let on = 0;
      let outside = 0;
      let binary = true;
      let changedOut = 0;
      let changedIn = 0;
      for (let i = 0; i < mp.length; i++) {
        if (mp[i] !== 0 && mp[i] !== 255) binary = false;
        if (mp[i]) {
          on++;
          if (!rp[i]) outside++;
          if (px[i] !== sp[i]) changedIn++;
        } else if (px[i] !== sp[i]) changedOut++;
      }
      samples.push({
        sourceImageId: s.provenance!.sourceImageId,
        parameters: s.provenance!.parameters,
        maskOn: on,
        maskOutsideRegion: outside,
        maskBinary: binary,
        changedOutsideMask: changedOut,
        changedInsideMask: changedIn,
      });
    }
    return { imageIds: images.filter((i) => i.datasetId === ds).map((i) => i.id), samples };
  });
}

test('MemSeg with dataset textures inside a feathered painted region: provenance names the texture', async ({
  page,
}) => {
  await importTiles(
    page,
    free.map((f) => f.file),
  );

  // Paint a thick stroke and feather it (σ 3).
  const canvas = page.getByTestId('painter-canvas');
  await canvas.click({ position: { x: 2, y: 2 }, button: 'middle' }); // focus without painting
  await page.keyboard.press(']');
  await page.keyboard.press(']');
  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx - box.height * 0.12, cy - box.height * 0.2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++)
    await page.mouse.move(cx - box.height * 0.12 + i * 3, cy - box.height * 0.2 + i * box.height * 0.04);
  await page.mouse.up();
  await expect(page.getByTestId('painter-count')).not.toHaveText('0 px');
  await page.getByTestId('painter-feather').evaluate((el: HTMLInputElement) => {
    el.value = '3';
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });

  // The σ is saved with the library mask …
  await page.getByTestId('library-name').fill('feathered');
  await page.getByTestId('library-save').click();
  await expect(page.getByTestId('library-item')).toHaveCount(1);
  await expect(page.getByTestId('library-feather')).toContainText('σ 3');

  // … and is the diffusion panel's default mask blur for the painted region.
  await page.getByTestId('gen-generator').selectOption('diffusion');
  await expect(page.getByTestId('diffusion-panel')).toBeVisible();
  await expect(page.getByTestId('diffusion-blur')).toHaveValue('3');

  // MemSeg, always a texture source, textures = 2 other images of the dataset.
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  await page.getByTestId('gen-texture-source').selectOption('dataset');
  await page.getByTestId('gen-texture-count').fill('2');
  await page.getByTestId('gen-options').locator('xpath=..').locator('summary').click();
  await page.getByTestId('gen-opt-p_texture').fill('1');
  await page.getByTestId('gen-opt-p_texture').press('Tab');
  await page.getByTestId('gen-count').fill('4');
  await page.getByTestId('gen-seed').fill('5');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staging-pending')).toHaveText('4 pending', { timeout: 120_000 });
  await expect(page.getByTestId('gen-progress')).toHaveCount(0);
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('4 accepted');

  const { imageIds, samples } = await readSamples(page);
  expect(samples).toHaveLength(4);
  const used = new Set<string>();
  for (const s of samples) {
    const p = s.parameters as {
      textureSource: string;
      textureImages: { kind: string; imageId: string }[];
      texture: { kind: string; imageId: string; name: string };
      featherSigma: number;
      drawn: { source: string; texture: { image_index: number } };
      options: { p_texture: number; textures: number };
    };
    expect(p.textureSource).toBe('dataset');
    expect(p.options.p_texture).toBe(1);
    expect(p.options.textures).toBe(2); // a count: pixels never go into provenance
    expect(p.drawn.source).toBe('texture');
    expect(p.textureImages).toHaveLength(2);
    // The texture is another image of this dataset, never the source, and the one the generator indexed.
    expect(imageIds).toContain(p.texture.imageId);
    expect(p.texture.imageId).not.toBe(s.sourceImageId);
    expect(p.texture).toEqual(p.textureImages[p.drawn.texture.image_index]);
    used.add(p.texture.imageId);
    expect(p.featherSigma).toBe(3);
    // Feathering keeps the label binary and inside the region, and leaves everything outside it alone.
    expect(s.maskBinary).toBe(true);
    expect(s.maskOn).toBeGreaterThan(0);
    expect(s.maskOutsideRegion).toBe(0);
    expect(s.changedOutsideMask).toBe(0);
    expect(s.changedInsideMask).toBeGreaterThan(0);
  }
  expect(used.size).toBeGreaterThanOrEqual(1);
});

test('MemSeg with texture image files the user picks: provenance names the file', async ({ page }) => {
  await importTiles(page, [free[0].file]);
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('random');
  await page.getByTestId('gen-texture-source').selectOption('files');
  // Any image file will do as a texture: here two other tiles, picked from disk (not imported).
  await page
    .getByTestId('gen-texture-files')
    .setInputFiles([free[1].file, free[2].file].map((f) => path.join(MT_DATA, f)));
  await expect(page.getByTestId('gen-texture-loaded')).toHaveText('2 loaded');
  await page.getByTestId('gen-options').locator('xpath=..').locator('summary').click();
  await page.getByTestId('gen-opt-p_texture').fill('1');
  await page.getByTestId('gen-opt-p_texture').press('Tab');
  await page.getByTestId('gen-count').fill('3');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staging-pending')).toHaveText('3 pending', { timeout: 120_000 });
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('3 accepted');
  const stored = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const imgs = await new Promise<{ provenance?: { parameters: Record<string, unknown> } }[]>((res, rej) => {
      const r = db.transaction('images').objectStore('images').getAll();
      r.onsuccess = () => res(r.result as never);
      r.onerror = () => rej(r.error);
    });
    db.close();
    return imgs.filter((i) => i.provenance).map((i) => i.provenance!.parameters);
  });
  expect(stored).toHaveLength(3);
  const names = [free[1].file, free[2].file].map((f) => path.basename(f));
  for (const p of stored) {
    expect(p.textureSource).toBe('files');
    expect(p.maskSource).toBe('random');
    expect(p.textureImages).toEqual(names.map((name) => ({ kind: 'file', name })));
    expect(names).toContain((p.texture as { name: string }).name);
    expect((p.drawn as { source: string }).source).toBe('texture');
  }
});

test('cancelling a large MemSeg batch keeps exactly the samples the toast reports', async ({ page }) => {
  await importTiles(page, [free[0].file]);
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('none');
  const total = 20000;
  await page.getByTestId('gen-count').fill(String(total));
  await page.getByTestId('gen-seed').fill('9');
  await page.getByTestId('gen-run').click();

  // Samples stream into the strip while the batch runs; cancel once some are there.
  await expect(page.getByTestId('gen-progress')).toBeVisible({ timeout: 60_000 });
  await expect
    .poll(() => page.getByTestId('staged-item').count(), { timeout: 120_000 })
    .toBeGreaterThanOrEqual(4);
  await page.getByTestId('gen-progress-cancel').click();

  const toast = page.getByTestId('toast-info').filter({ hasText: 'Generation cancelled' });
  await expect(toast).toBeVisible({ timeout: 60_000 });
  const m = /the (\d+) samples? made so far (?:is|are) in the staging strip/.exec(
    (await toast.textContent()) ?? '',
  );
  expect(m, `toast text: ${await toast.textContent()}`).not.toBeNull();
  const kept = Number(m![1]);
  expect(kept).toBeGreaterThanOrEqual(4);
  expect(kept).toBeLessThan(total);
  await expect(page.getByTestId('gen-progress')).toHaveCount(0);
  await expect(page.getByTestId('staged-item')).toHaveCount(kept);
  await expect(page.getByTestId('staging-pending')).toHaveText(`${kept} pending`);
  // Nothing trickles in afterwards.
  await page.waitForTimeout(1000);
  await expect(page.getByTestId('staged-item')).toHaveCount(kept);
  // The kept ones are the batch's first samples, in order (seeds differ, none repeats).
  const seeds = await page
    .getByTestId('staged-item')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-seed')));
  expect(new Set(seeds).size).toBe(kept);
});

/**
 * Paint → library → generate → stage → accept, through the built app's UI on a real magnetic-tile photo
 * (../shared, read in place): import one MT_Free image through the Data tab's file input, paint a stroke with the
 * mouse, undo and redo it (keyboard), save it to the mask library, generate 8 MemSeg defects inside it in the
 * synth worker, accept 5 and reject 3 (keyboard and buttons), reload, and find exactly 5 new defect images whose
 * stored masks lie inside the painted region. Stored records are read back from IndexedDB (reading only).
 */
import path from 'node:path';
import { expect, test, type Page } from './fixtures.ts';
import { MT_DATA, importIntoNewDataset, mtManifest, paintedPx, waitForApp } from './helpers.ts';

const manifest = mtManifest();
const tile = manifest.items.find((i) => i.defect_class === 'MT_Free')!;
const tileName = path.basename(tile.file);

interface Check {
  datasetImages: number;
  sourceId: string | null;
  region: { width: number; height: number; on: number } | null;
  samples: {
    name: string;
    label: string;
    generator: string | undefined;
    sourceImageId: string | undefined;
    width: number;
    height: number;
    maskOn: number;
    maskOutside: number;
    maskBinary: boolean;
  }[];
}

/** Reads the dataset of the imported tile back from IndexedDB and checks every generated mask against the region. */
function readBack(page: Page, tileFile: string, regionName: string): Promise<Check> {
  return page.evaluate(
    async ({ tileFile, regionName }) => {
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
        name: string;
        label: string;
        width: number;
        height: number;
        maskId?: string;
        provenance?: { generator: string; sourceImageId?: string };
      };
      type Msk = { id: string; datasetId: string; kind: string; name?: string; blob: Blob };
      const images = await all<Img>('images');
      const masks = await all<Msk>('masks');
      db.close();
      async function pixels(blob: Blob) {
        const bmp = await createImageBitmap(blob);
        const c = new OffscreenCanvas(bmp.width, bmp.height);
        const ctx = c.getContext('2d')!;
        ctx.drawImage(bmp, 0, 0);
        const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
        const v = new Uint8Array(bmp.width * bmp.height);
        for (let i = 0; i < v.length; i++) v[i] = d[4 * i];
        return { width: bmp.width, height: bmp.height, v };
      }
      const source = images.find((i) => i.name.endsWith(tileFile));
      if (!source) return { datasetImages: 0, sourceId: null, region: null, samples: [] };
      const inDataset = images.filter((i) => i.datasetId === source.datasetId);
      const regionRec = masks.find(
        (m) => m.datasetId === source.datasetId && m.kind === 'library' && m.name === regionName,
      );
      const region = regionRec ? await pixels(regionRec.blob) : null;
      const samples = [];
      for (const s of inDataset.filter((i) => i.provenance)) {
        const m = masks.find((x) => x.id === s.maskId);
        const px = m ? await pixels(m.blob) : null;
        let on = 0;
        let outside = 0;
        let binary = true;
        if (px && region) {
          for (let i = 0; i < px.v.length; i++) {
            if (px.v[i] !== 0 && px.v[i] !== 255) binary = false;
            if (px.v[i]) {
              on++;
              if (!region.v[i]) outside++;
            }
          }
        }
        samples.push({
          name: s.name,
          label: s.label,
          generator: s.provenance?.generator,
          sourceImageId: s.provenance?.sourceImageId,
          width: s.width,
          height: s.height,
          maskOn: on,
          maskOutside: px && region ? outside : -1,
          maskBinary: binary,
        });
      }
      return {
        datasetImages: inDataset.length,
        sourceId: source.id,
        region: region
          ? { width: region.width, height: region.height, on: region.v.filter((x) => x).length }
          : null,
        samples,
      };
    },
    { tileFile, regionName },
  );
}

test('paint a region on a real tile, generate 8 MemSeg defects in it, accept 5, reject 3, survive a reload', async ({
  page,
}) => {
  await page.goto('/');
  await waitForApp(page);

  // Import one real photo into a new dataset through the Data tab's file input.
  await importIntoNewDataset(page, 'import-files', path.join(MT_DATA, tile.file), 1);

  // Paint.
  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('paint-image-size')).toHaveText(`${tile.width}×${tile.height}`);
  const canvas = page.getByTestId('painter-canvas');
  await expect(canvas).toBeVisible();
  await expect(page.getByTestId('painter-count')).toHaveText('0 px');
  await canvas.click({ position: { x: 2, y: 2 }, button: 'middle' }); // focus without painting
  // ] twice: a bigger brush (shortcut), so MemSeg has room.
  const size0 = Number(await page.getByTestId('painter-size-value').textContent());
  await page.keyboard.press(']');
  await page.keyboard.press(']');
  const size2 = Number(await page.getByTestId('painter-size-value').textContent());
  expect(size2).toBeGreaterThan(size0);

  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx - box.height * 0.15, cy - box.height * 0.15);
  await page.mouse.down();
  for (let i = 1; i <= 12; i++)
    await page.mouse.move(
      cx - box.height * 0.15 + (i * box.height * 0.3) / 12,
      cy - box.height * 0.15 + (i % 2 ? 0.1 : 0.2) * box.height * (i / 6),
    );
  await page.mouse.up();
  const strokePx = await paintedPx(page);
  expect(strokePx).toBeGreaterThan(500);
  expect(await page.getByTestId('painter-state').textContent()).toBe('brush.idle');

  // Undo and redo with the keyboard (Ctrl+Z / Ctrl+Shift+Z), then once more with the buttons.
  await page.keyboard.press('Control+z');
  await expect(page.getByTestId('painter-count')).toHaveText('0 px');
  await page.keyboard.press('Control+Shift+Z');
  await expect(page.getByTestId('painter-count')).toHaveText(`${strokePx} px`);
  await page.getByTestId('painter-undo').click();
  await expect(page.getByTestId('painter-count')).toHaveText('0 px');
  await page.getByTestId('painter-redo').click();
  await expect(page.getByTestId('painter-count')).toHaveText(`${strokePx} px`);

  // Save to the library.
  await page.getByTestId('library-name').fill('e2e region');
  await page.getByTestId('library-save').click();
  await expect(page.getByTestId('library-item')).toHaveCount(1);
  await expect(page.getByTestId('library-count')).toContainText('1 mask(s), 1 selected');

  // The diffusion choice shows the diffusion engineer's panel, fed with the painted region.
  await page.getByTestId('gen-generator').selectOption('diffusion');
  await expect(page.getByTestId('diffusion-panel')).toBeVisible();
  await expect(page.getByTestId('diffusion-use-painting')).toContainText('stored');

  // Generate 8 MemSeg defects inside the painted region, in the synth worker.
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  await page.getByTestId('gen-count').fill('8');
  await page.getByTestId('gen-seed').fill('42');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staging-pending')).toHaveText('8 pending', { timeout: 120_000 });
  await expect(page.getByTestId('staged-item')).toHaveCount(8);
  await expect(page.getByTestId('gen-progress')).toHaveCount(0); // the bar goes when the run ends

  // Accept 5 (3 by keyboard A, 2 by button) and reject 3 (2 by keyboard R, 1 by button).
  await page.getByTestId('staging-strip').focus();
  for (let i = 0; i < 3; i++) await page.keyboard.press('a');
  await expect(page.getByTestId('staging-accepted')).toHaveText('3 accepted');
  const pendingItems = page.locator('[data-testid="staged-item"][data-status="pending"]');
  await pendingItems.first().getByTestId('staged-accept').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('4 accepted');
  await pendingItems.first().getByTestId('staged-accept').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('5 accepted');
  await page.getByTestId('staging-strip').focus();
  await page.keyboard.press('r');
  await page.keyboard.press('r');
  await expect(page.getByTestId('staging-rejected')).toHaveText('2 rejected');
  await pendingItems.first().getByTestId('staged-reject').click();
  await expect(page.getByTestId('staging-rejected')).toHaveText('3 rejected');
  await expect(page.getByTestId('staging-pending')).toHaveText('0 pending');

  // Reload: the 5 accepted samples are stored, defect-labelled, with provenance and masks inside the region.
  await page.reload();
  await waitForApp(page);
  await page.locator('[data-tab="data"]').click();
  await expect(page.getByTestId('count-total')).toHaveText('6 images');
  await expect(page.getByTestId('count-label-defect')).toHaveText('defect 5');
  await expect(page.getByTestId('count-generated-memseg')).toHaveText('memseg 5');

  const check = await readBack(page, tileName, 'e2e region');
  expect(check.datasetImages).toBe(6);
  expect(check.region).toEqual({ width: tile.width, height: tile.height, on: strokePx });
  expect(check.samples).toHaveLength(5);
  for (const s of check.samples) {
    expect(s.label).toBe('defect');
    expect(s.generator).toBe('memseg');
    expect(s.sourceImageId).toBe(check.sourceId);
    expect([s.width, s.height]).toEqual([tile.width, tile.height]);
    expect(s.maskBinary).toBe(true);
    expect(s.maskOn).toBeGreaterThan(0);
    expect(s.maskOutside).toBe(0);
  }
  // The staging strip is session state: nothing is pending after the reload.
  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('staged-item')).toHaveCount(0);
});

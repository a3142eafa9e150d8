/**
 * Share links through the built app: build a setup on the sample dataset (MemSeg count, seed and an option, a mask
 * mode, Perlin library masks, epochs and the threshold policy, diffusion prompts with an HTML-looking prompt, negative prompt, steps and seed),
 * press "Share setup", open the link in a fresh browser context (empty storage), read the confirm dialog, apply,
 * and find the same values in the forms and the same masks (pixel counts, read back from IndexedDB). A tampered
 * link in another fresh context is refused with the named error and changes nothing.
 */
import { createHash } from 'node:crypto';
import type { Browser, Page } from '@playwright/test';
import { encode } from 'fast-png';
import { zipSync } from 'fflate';
import { encodeSetup } from '../../src/core/share/codec.ts';
import { expect, test } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

const XSS = '<img src=x onerror=alert(1)>';
const PROMPTS = [`a crack ${XSS} on tile`, 'copper metal scratches'];

/** Library masks of every dataset: name → pixels on (decoded from the stored PNGs). */
function libraryMasks(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const masks = await new Promise<{ kind: string; name?: string; blob: Blob }[]>((res, rej) => {
      const r = db.transaction('masks').objectStore('masks').getAll();
      r.onsuccess = () => res(r.result as { kind: string; name?: string; blob: Blob }[]);
      r.onerror = () => rej(r.error);
    });
    db.close();
    const out: Record<string, number> = {};
    for (const m of masks.filter((x) => x.kind === 'library')) {
      const bmp = await createImageBitmap(m.blob);
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const ctx = c.getContext('2d')!;
      ctx.drawImage(bmp, 0, 0);
      const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
      let on = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] >= 128) on++;
      out[m.name ?? '?'] = on;
    }
    return out;
  });
}

async function freshPage(browser: Browser, url: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // An alert would mean a prompt was parsed as HTML.
  page.on('dialog', (d) => {
    errors.push(`unexpected ${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(url);
  return { context, page, errors };
}

test('a shared setup opens in a fresh browser with the same prompts, parameters, masks and seeds; a tampered link changes nothing', async ({
  page,
  browser,
}) => {
  await page.goto('/');
  await waitForApp(page);
  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('paint-image-size')).toBeVisible();
  await page.getByTestId('gen-count').fill('13');
  await page.getByTestId('gen-seed').fill('4242');
  await page.getByTestId('gen-mask').selectOption('library');
  await page.getByText('Options', { exact: true }).click();
  await page.getByTestId('gen-opt-p_texture').fill('0.25');
  await page.getByTestId('library-random').click();
  await expect(page.getByTestId('library-item').first()).toBeVisible();
  const hostMasks = await libraryMasks(page);
  const nMasks = Object.keys(hostMasks).length;
  expect(nMasks).toBeGreaterThan(0);

  await page.getByTestId('gen-generator').selectOption('diffusion');
  await page.getByTestId('diffusion-prompt').fill(PROMPTS.join('\n'));
  await page.getByTestId('diffusion-negative').fill('smooth, plain');
  await page.getByTestId('diffusion-steps').fill('12');
  await page.getByTestId('diffusion-seed').fill('777');
  await page.getByTestId('gen-generator').selectOption('memseg');
  await expect(page.getByTestId('gen-opt-p_texture')).toHaveValue('0.25');

  // Train & evaluate: a head setting and the threshold policy.
  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('hp-epochs').fill('7');
  await page.getByTestId('threshold-mode').selectOption('val-fpr');

  await page.getByTestId('share-open').click();
  const link = await page.getByTestId('share-link').inputValue();
  expect(link).toContain('#setup=');
  console.log(`share link with ${nMasks} Perlin masks: ${link.length} characters`);

  // A fresh context: empty storage, its own sample dataset.
  const guest = await freshPage(browser, link);
  const g = guest.page;
  const confirmDialog = g.getByTestId('share-confirm-dialog');
  await expect(confirmDialog).toBeVisible();
  await expect(confirmDialog).toContainText('memseg, 13 samples, seed 4242');
  await expect(confirmDialog).toContainText(`adds ${nMasks} mask`);
  await expect(confirmDialog).toContainText(
    'backbone mobilenetv2-12-int8, head bce, 7 epochs, threshold val-fpr',
  );
  await expect(g.getByTestId('share-download')).toContainText(
    'mobilenetv2-12-int8 (backbone, from a file picked in the Train tab): 3.5 MB',
  );
  // Prompts render as text: the markup is visible verbatim and no <img> was made from it.
  await expect(confirmDialog).toContainText(XSS);
  expect(await confirmDialog.locator('img').count()).toBe(0);
  await g.getByTestId('share-confirm').click();
  await expect(confirmDialog).toBeHidden();
  await expect(g.getByTestId('generate-view')).toBeVisible();
  expect(new URL(g.url()).hash).toBe('');

  await expect(g.getByTestId('gen-count')).toHaveValue('13');
  await expect(g.getByTestId('gen-seed')).toHaveValue('4242');
  await expect(g.getByTestId('gen-mask')).toHaveValue('library');
  await g.getByText('Options', { exact: true }).click();
  await expect(g.getByTestId('gen-opt-p_texture')).toHaveValue('0.25');
  await expect(g.getByTestId('library-item')).toHaveCount(nMasks);
  expect(await libraryMasks(g)).toEqual(hostMasks);
  await g.getByTestId('gen-generator').selectOption('diffusion');
  await expect(g.getByTestId('diffusion-prompt')).toHaveValue(PROMPTS.join('\n'));
  await expect(g.getByTestId('diffusion-negative')).toHaveValue('smooth, plain');
  await expect(g.getByTestId('diffusion-steps')).toHaveValue('12');
  await expect(g.getByTestId('diffusion-seed')).toHaveValue('777');
  await g.locator('[data-tab="train"]').click();
  await expect(g.getByTestId('hp-epochs')).toHaveValue('7');
  await expect(g.getByTestId('threshold-mode')).toHaveValue('val-fpr');
  expect(guest.errors).toEqual([]);
  await guest.context.close();

  // Tampered: one character of the token changed.
  const at = link.indexOf('#setup=') + 7 + 20;
  const tampered = link.slice(0, at) + (link[at] === 'A' ? 'B' : 'A') + link.slice(at + 1);
  const bad = await freshPage(browser, tampered);
  await expect(bad.page.getByTestId('share-error')).toContainText('ShareLinkChecksumError');
  await expect(bad.page.getByTestId('share-error')).toContainText('fix:');
  await expect(bad.page.getByTestId('share-confirm-dialog')).toBeHidden();
  await bad.page.getByTestId('share-error-close').click();
  await expect(bad.page.getByTestId('app-busy')).toHaveCount(0, { timeout: 120_000 });
  await bad.page.locator('[data-tab="generate"]').click();
  await expect(bad.page.getByTestId('gen-count')).toHaveValue('8');
  await expect(bad.page.getByTestId('library-item')).toHaveCount(0);
  expect(await libraryMasks(bad.page)).toEqual({});
  expect(bad.errors).toEqual([]);
  await bad.context.close();
});

test('a link with a dataset bundle downloads it, checks its size and sha256 and imports it; a wrong hash imports nothing', async ({
  browser,
  baseURL,
}) => {
  const png = (v: number) =>
    encode({ width: 24, height: 24, channels: 1, depth: 8, data: new Uint8Array(576).fill(v) });
  const zip = zipSync({ 'a.png': png(40), 'b.png': png(120), 'c.png': png(200) });
  const sha256 = createHash('sha256').update(zip).digest('hex');
  // A host the built app may fetch from (its CSP's connect-src: this machine, or an origin added with
  // DL_MODEL_ORIGINS, docs/security.md); the request is answered by the route below, no server runs there.
  const url = 'http://localhost:4999/workshop-ds.zip';
  const link = (sha: string) =>
    `${baseURL}/#setup=${encodeSetup({ title: 'bundle', dataset: { url, sha256: sha, size: zip.length, name: 'workshop-ds' }, generate: { generator: 'memseg', count: 5, seed: 9 } })}`;

  for (const [sha, ok] of [
    [sha256, true],
    ['0'.repeat(64), false],
  ] as const) {
    const context = await browser.newContext();
    const page = await context.newPage();
    // The bundle host: any static server that allows cross-origin reads (the app is cross-origin isolated).
    await page.route(url, (route) =>
      route.fulfill({
        status: 200,
        body: Buffer.from(zip),
        headers: { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/zip' },
      }),
    );
    await page.goto(link(sha));
    const dialog = page.getByTestId('share-confirm-dialog');
    await expect(dialog).toContainText('workshop-ds');
    await expect(page.getByTestId('share-confirm')).toBeEnabled({ timeout: 120_000 });
    await page.getByTestId('share-confirm').click();
    if (ok) {
      await expect(dialog).toBeHidden({ timeout: 60_000 });
      await expect(
        page.getByTestId('toast-info').filter({ hasText: 'dataset workshop-ds imported (3 images)' }),
      ).toBeVisible();
      await page.locator('[data-tab="data"]').click();
      await expect(page.getByTestId('count-total')).toHaveText('3 images');
    } else {
      await expect(page.getByTestId('toast-error')).toContainText('DatasetBundleError');
      await expect(page.getByTestId('toast-error')).toContainText('nothing was imported');
      const names = await page.evaluate(async () => {
        const db = await new Promise<IDBDatabase>((res) => {
          const r = indexedDB.open('defectlab');
          r.onsuccess = () => res(r.result);
        });
        const all = await new Promise<{ name: string }[]>((res) => {
          const r = db.transaction('datasets').objectStore('datasets').getAll();
          r.onsuccess = () => res(r.result as { name: string }[]);
        });
        db.close();
        return all.map((d) => d.name);
      });
      expect(names.some((n) => n.includes('workshop-ds'))).toBe(false);
    }
    await context.close();
  }
});

/**
 * Offline after the first load: open the built app once, press "Prepare for offline", cut the network
 * (`context.setOffline(true)`), reload, and still get the app (cross-origin isolated, from the service worker's
 * precache), a MemSeg batch on the cached sample data, and a tiny-ResNet feature pass + BCE head trained on WASM
 * (the backbone file comes from the cache "Prepare for offline" filled). Then the workshop case for diffusion: a
 * share link names a tiny diffusion model nobody downloaded; "Prepare for offline" fetches all of its files (its
 * external-data parts too) with the one progress; offline, after a reload, the model loads from the cache and
 * generates. Last, an update: a new build deployed while a session is open shows the reload prompt, nothing
 * reloads by itself, and Reload brings the new version.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeSetup } from '../../src/core/share/codec.ts';
import { expect, test } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

test('load once, go offline, reload: MemSeg generation and head training still work on the cached sample data', async ({
  page,
  context,
}) => {
  await page.goto('/');
  await waitForApp(page);
  await page.getByTestId('offline-prepare').click();
  await expect(page.getByTestId('offline-ready')).toBeAttached({ timeout: 120_000 });
  await expect(page.getByTestId('offline-prepare')).toHaveText('Ready offline ✓');

  await context.setOffline(true);
  await page.reload();
  await waitForApp(page);
  const state = await page.evaluate(() => ({
    online: navigator.onLine,
    isolated: self.crossOriginIsolated,
    controlled: !!navigator.serviceWorker.controller,
  }));
  expect(state).toEqual({ online: false, isolated: true, controlled: true });

  await page.locator('[data-tab="generate"]').click();
  await expect(page.getByTestId('painter-canvas')).toBeVisible({ timeout: 60_000 });
  await page.getByTestId('gen-generator').selectOption('memseg');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('none');
  await page.getByTestId('gen-count').fill('3');
  await page.getByTestId('gen-seed').fill('7');
  await page.getByTestId('gen-run').click();
  await expect(page.getByTestId('staging-pending')).toHaveText('3 pending', { timeout: 120_000 });
  await page.getByTestId('staging-accept-all').click();
  await expect(page.getByTestId('staging-accepted')).toHaveText('3 accepted');

  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-select').selectOption('tiny-resnet');
  await page.getByTestId('backbone-device').selectOption('wasm');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
  await page.getByTestId('pre-width').fill('64');
  await page.getByTestId('pre-height').fill('64');
  await page.getByTestId('tf-backend').selectOption('wasm');
  await page.getByTestId('hp-epochs').fill('3');
  await page.getByTestId('train-start').click();
  const table = page.getByTestId('train-metric-table');
  const failure = page.getByTestId('toast-error');
  await expect(table.or(failure).first()).toBeVisible({ timeout: 180_000 });
  if (await failure.count())
    throw new Error(`training failed offline: ${await failure.first().textContent()}`);
  const ap = Number(await page.getByTestId('train-metric-ap').textContent());
  expect(ap).toBeGreaterThanOrEqual(0);
  expect(ap).toBeLessThanOrEqual(1);
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
});

/** External data in parts: the model whose files are most easily missed. */
const DIFFUSION_ID = 'tiny-sd-inpaint-extdata';

test('a share link names a diffusion model; Prepare for offline fetches it; offline after a reload it loads and generates', async ({
  page,
  context,
}) => {
  const token = encodeSetup({
    title: 'offline diffusion',
    diffusion: {
      model: DIFFUSION_ID,
      prompts: ['a scratch on metal'],
      negativePrompt: '',
      steps: 2,
      guidanceScale: 5,
      strength: 0.9,
      seed: 11,
      seedLocked: true,
      mode: 'paired',
      count: 1,
    },
  });
  const modelRequests: string[] = [];
  context.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/models/tiny/tiny-sd')) modelRequests.push(r.url());
  });
  await page.goto(`/#setup=${token}`);
  await waitForApp(page);
  await expect(page.getByTestId('share-confirm-dialog')).toBeVisible();
  await page.getByTestId('share-confirm').click();
  await expect(page.getByTestId('share-confirm-dialog')).toBeHidden();
  await page.locator('[data-tab="models"]').click();
  await expect(page.getByTestId(`model-cached-${DIFFUSION_ID}`)).toHaveText('—');

  await page.getByTestId('offline-prepare').click();
  // One progress bar, counting bytes for the backbone and the model together.
  const bar = page.getByTestId('offline-progress').locator('progress');
  await expect(bar).toBeAttached();
  const max = Number(await bar.getAttribute('max'));
  expect(max).toBeGreaterThan(1000);
  await expect(page.getByTestId('offline-ready')).toContainText(DIFFUSION_ID, { timeout: 180_000 });
  await expect(page.getByTestId(`model-cached-${DIFFUSION_ID}`)).toContainText('✓');
  // Every file of the manifest was fetched (Range requests, so one or more per file).
  const manifest = JSON.parse(
    readFileSync(resolve(process.cwd(), 'models/manifests', `${DIFFUSION_ID}.json`), 'utf8'),
  ) as { files: { path: string }[] };
  const fetched = new Set(modelRequests.map((u) => decodeURIComponent(new URL(u).pathname)));
  for (const f of manifest.files) expect(fetched, f.path).toContain(`/models/tiny/${DIFFUSION_ID}/${f.path}`);

  await context.setOffline(true);
  await page.reload();
  await waitForApp(page);
  modelRequests.length = 0;
  await page.locator('[data-tab="models"]').click();
  await expect(page.getByTestId(`model-cached-${DIFFUSION_ID}`)).toContainText('✓');
  await page.getByTestId('models-backend').selectOption('wasm');
  await page.getByTestId(`model-load-${DIFFUSION_ID}`).click();
  await expect(page.getByTestId('models-loaded')).toContainText(DIFFUSION_ID, { timeout: 120_000 });

  // Paint a region on the sample image and generate one sample with the loaded model.
  await page.locator('[data-tab="generate"]').click();
  const canvas = page.getByTestId('painter-canvas');
  await expect(canvas).toBeVisible({ timeout: 60_000 });
  const box = (await canvas.boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.keyboard.press(']');
  await page.mouse.move(cx - box.height * 0.15, cy);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++)
    await page.mouse.move(cx - box.height * 0.15 + (i * box.height * 0.3) / 10, cy);
  await page.mouse.up();
  await page.getByTestId('gen-generator').selectOption('diffusion');
  await page.getByTestId('gen-source').selectOption('current');
  await page.getByTestId('gen-mask').selectOption('painted');
  const panel = page.getByTestId('diffusion-panel');
  await expect(panel.getByTestId('diffusion-model')).toContainText(DIFFUSION_ID);
  await panel.getByTestId('diffusion-steps').fill('2');
  await panel.getByTestId('diffusion-count').fill('1');
  await panel.getByTestId('diffusion-generate').click();
  const failure = panel.getByTestId('diffusion-error');
  const summary = panel.getByTestId('diffusion-summary');
  await expect(summary.or(failure).first()).toBeVisible({ timeout: 180_000 });
  if (await failure.count()) throw new Error(`diffusion failed offline: ${await failure.textContent()}`);
  await expect(summary).toHaveText(/^1 samples? staged$/);
  await expect(page.getByTestId('staging-pending')).toHaveText('1 pending');
  expect(await page.evaluate(() => navigator.onLine)).toBe(false);
});

/**
 * Serves a copy of the build on its own port (so it can be changed mid-test without touching DL_DIST) with the
 * same `vite preview` and headers as the main server; `vite preview` reads files per request, so editing the
 * copy is "deploying" a new version.
 */
async function servedCopy(port: number) {
  const dir = mkdtempSync(join(tmpdir(), 'dl-update-'));
  cpSync(process.env.DL_DIST ?? 'dist', dir, { recursive: true });
  const server = spawn('npx', ['vite', 'preview', '--outDir', dir, '--port', String(port), '--strictPort'], {
    detached: true,
    stdio: 'ignore',
  });
  const base = `http://localhost:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(base)).ok) break;
    } catch {
      if (i > 120) throw new Error(`vite preview of the copy did not start on ${base}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    base,
    dir,
    close: () => {
      try {
        process.kill(-server.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A new version: index.html gains a build marker and the service worker's precache manifest its new revision —
 * what a rebuild of changed sources does to these two files (the hashed chunks would change too; the shell is what
 * decides which ones a page loads).
 */
function deployNewVersion(dir: string, marker: string) {
  const htmlPath = join(dir, 'index.html');
  const html = readFileSync(htmlPath, 'utf8').replace(
    '<meta name="theme-color"',
    `<meta name="defectlab-build" content="${marker}" />\n    <meta name="theme-color"`,
  );
  writeFileSync(htmlPath, html);
  const swPath = join(dir, 'sw.js');
  const sw = readFileSync(swPath, 'utf8');
  const revision = createHash('md5').update(html).digest('hex');
  const next = sw.replace(
    /\{url:"index\.html",revision:"[0-9a-f]+"\}/,
    `{url:"index.html",revision:"${revision}"}`,
  );
  if (next === sw)
    throw new Error('sw.js has no index.html precache entry — the vite-plugin-pwa output changed');
  writeFileSync(swPath, next);
}

test('an update never breaks an open session: the reload prompt shows, nothing reloads by itself, Reload brings the new version', async ({
  page,
}) => {
  const copy = await servedCopy(Number(process.env.DL_PORT ?? 4173) + 20);
  try {
    await page.goto(`${copy.base}/`);
    await waitForApp(page);
    await page.waitForFunction(() => navigator.serviceWorker.ready.then((r) => !!r.active));
    // A session the next day: the page is served by the installed worker.
    await page.reload();
    await waitForApp(page);
    expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
    await expect(page.locator('meta[name="defectlab-build"]')).toHaveCount(0);

    // Open work the user must not lose: a marker in the page's memory and an edited form field.
    await page.evaluate(() => ((window as unknown as { __session: string }).__session = 'open'));
    await page.locator('[data-tab="generate"]').click();
    await page.getByTestId('gen-count').fill('17');
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });

    deployNewVersion(copy.dir, 'v2');
    // The browser checks for a new worker on navigations and periodically; ask now instead of waiting.
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    await expect(page.getByTestId('update-ready')).toBeVisible({ timeout: 60_000 });
    const waiting = await page.evaluate(async () => {
      const r = (await navigator.serviceWorker.getRegistration())!;
      return { waiting: !!r.waiting, active: !!r.active };
    });
    expect(waiting).toEqual({ waiting: true, active: true });
    // Nothing reloads by itself: give it time to misbehave, then check the session is untouched.
    await page.waitForTimeout(3000);
    expect(navigations).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __session?: string }).__session)).toBe('open');
    await expect(page.getByTestId('gen-count')).toHaveValue('17');
    await expect(page.locator('meta[name="defectlab-build"]')).toHaveCount(0);

    // The user chooses to reload: the waiting worker takes over and serves the new shell.
    await Promise.all([page.waitForEvent('load'), page.getByTestId('update-reload').click()]);
    await waitForApp(page);
    await expect(page.locator('meta[name="defectlab-build"]')).toHaveAttribute('content', 'v2');
    expect(
      await page.evaluate(() => (window as unknown as { __session?: string }).__session),
    ).toBeUndefined();
    await expect(page.getByTestId('update-ready')).toHaveCount(0);
    expect(
      await page.evaluate(async () => {
        const r = (await navigator.serviceWorker.getRegistration())!;
        return { waiting: !!r.waiting, controlled: !!navigator.serviceWorker.controller };
      }),
    ).toEqual({ waiting: false, controlled: true });
  } finally {
    copy.close();
  }
});

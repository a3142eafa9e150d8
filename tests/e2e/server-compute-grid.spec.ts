/**
 * System → Compute "Server", past generation: the built app, switched to a real DefectLab server (`npm run server`
 * as a user starts it, a child process on 127.0.0.1 with a token and the app's origin in --cors), extracts the
 * dataset's backbone features and runs an experiment grid through it. The jobs the app submitted are looked up on
 * the server afterwards (its own record of what it ran): the Train tab's run sends one `features` job
 * (its features then come from this browser's cache: "all cached"), the Experiments panel's grid one
 * `experiment` job over the uploaded IndexedDB dataset, and the panel shows the grid's result table with the
 * server named as where it ran; a Paint-tab diffusion sample is one `generate` job, stored with
 * `server <url> (cpu)` in its provenance. Stop on a long grid cancels the server job. Data: 14 real magnetic-tile photos
 * (../shared, copied to a temp dir). WASM only (as experiments.spec.ts).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { chromiumArgs } from '../../playwright.config.ts';
import { expect, test } from './fixtures.ts';
import { importIntoNewDataset, mtManifest, mtSubset, waitForApp } from './helpers.ts';

/** A small magnetic-tile subset: 5 train normals, 3 few-shot defects (train), 3 + 3 test. */
function subset(): string {
  const m = mtManifest();
  const take = (split: string, label: number, n: number) =>
    m.items.filter((i) => i.split === split && i.label === label).slice(0, n);
  return mtSubset('mt-server-grid', [
    ...take('train', 0, 5),
    ...take('fewshot', 1, 3),
    ...take('test', 0, 3),
    ...take('test', 1, 3),
  ]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** `npm run server` (tsx server/main.ts) on a free loopback port; resolves once it says it listens. */
async function startServer(token: string, origin: string) {
  const port = await freePort();
  const p = spawn(
    'node_modules/.bin/tsx',
    [
      'server/main.ts',
      '--port',
      String(port),
      '--token',
      token,
      '--cors',
      origin,
      '--models',
      'models/tiny',
      '--device',
      'cpu',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } },
  );
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the server did not start: ${log}`)), 60_000);
    const seen = (d: Buffer) => {
      log += d.toString();
      if (log.includes('DefectLab API http://')) {
        clearTimeout(t);
        resolve();
      }
    };
    p.stdout!.on('data', seen);
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    p.on('exit', (code) => reject(new Error(`the server exited ${code}: ${log}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (p.exitCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      }),
  };
}

test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs.filter((a) => !/webgpu|swiftshader/i.test(a)),
  },
});

test('the app switched to the server extracts features, runs a grid and a Paint-tab diffusion sample through it', async ({
  page,
  baseURL,
}) => {
  test.setTimeout(600_000);
  const token = 'e2e-grid-'.padEnd(40, 'x');
  const server = await startServer(token, new URL(baseURL!).origin);
  const url = server.url;
  // The jobs the app submits (POST /api/jobs answers their ids); their states are asked of the server at the end.
  const submitted: { id: string; kind: string }[] = [];
  page.on('response', async (r) => {
    if (r.request().method() === 'POST' && r.url() === `${url}/api/jobs` && r.status() === 202)
      submitted.push((await r.json()) as { id: string; kind: string });
  });
  const ran = async () => {
    const out: string[] = [];
    for (const j of submitted) {
      const s = (await (
        await fetch(`${url}/api/jobs/${j.id}`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { kind: string; state: string };
      out.push(`${s.kind}:${s.state}`);
    }
    return out;
  };
  try {
    await page.goto('/');
    await waitForApp(page);
    await page.locator('[data-tab="system"]').click();
    const compute = page.getByTestId('compute-panel');
    await compute.getByTestId('compute-server').check();
    await compute.getByTestId('compute-url').fill(url);
    await compute.getByTestId('compute-token').fill(token);
    await compute.getByTestId('compute-apply').click();
    await expect(compute.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'server');
    await importIntoNewDataset(page, 'import-folder', subset(), 14, 180_000);

    // Train tab: the backbone loads here (its info and preprocessing); the dataset's features come from the server.
    await page.locator('[data-tab="train"]').click();
    await page.getByTestId('backbone-select').selectOption('tiny-resnet');
    await page.getByTestId('backbone-device').selectOption('wasm');
    await page.getByTestId('backbone-load').click();
    await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
    await page.getByTestId('hp-epochs').fill('3');
    await page.getByTestId('train-start').click();
    await expect(page.getByTestId('train-result').or(page.getByTestId('toast-error')).first()).toBeVisible({
      timeout: 300_000,
    });
    await expect(page.getByTestId('toast-error')).toHaveCount(0);
    await expect.poll(ran).toEqual(['features:done']);
    await expect(page.getByTestId('features-rate')).toHaveText(' (all cached)');

    // The Experiments panel's grid runs as one experiment job; its table is shown as a local run's.
    await page.getByText('Experiment runner (generators').click();
    const panel = page.getByRole('region', { name: 'Experiments' });
    await expect(panel.getByRole('button', { name: 'Run', exact: true })).toBeEnabled({ timeout: 120_000 });
    for (const [label, v] of Object.entries({
      none: false,
      memseg: true,
      BCE: true,
      Spatial: false,
      CSE: false,
    }))
      await panel.getByLabel(label, { exact: true }).setChecked(v);
    await panel.getByLabel('N_aug list').fill('6');
    await panel.getByLabel('seeds', { exact: true }).fill('0');
    await panel.getByLabel('epochs', { exact: true }).fill('3');
    await panel.getByLabel('experiment id').fill('e2e-server-grid');
    await panel.getByRole('button', { name: 'Run', exact: true }).click();
    const table = panel.getByTestId('experiment-table');
    await expect(table.or(panel.getByRole('alert')).first()).toBeVisible({ timeout: 300_000 });
    await expect(panel.getByRole('alert')).toHaveCount(0);
    await expect(table).toContainText('memseg ×6 · bce');
    await expect(table).toContainText('baseline: k-NN cosine distance');
    await expect(panel.getByTestId('experiment-tf-backend')).toHaveText(`server ${url}`);
    await expect.poll(ran).toEqual(['features:done', 'experiment:done']);

    // Stop on a long grid cancels it on the server: the panel names the cancel, the job ended cancelled.
    await panel.getByLabel('N_aug list').fill('2000');
    await panel.getByLabel('seeds', { exact: true }).fill('0,1,2,3');
    await panel.getByLabel('experiment id').fill('e2e-server-stop');
    await panel.getByRole('button', { name: 'Run', exact: true }).click();
    await expect
      .poll(() => ran(), { timeout: 60_000 })
      .toEqual(['features:done', 'experiment:done', 'experiment:running']);
    await panel.getByRole('button', { name: 'Stop' }).click();
    await expect(panel.getByRole('alert')).toContainText('CancelledError', { timeout: 120_000 });
    await expect.poll(ran).toEqual(['features:done', 'experiment:done', 'experiment:cancelled']);

    // Paint tab: a diffusion sample is a server generate job (no model in this browser); its provenance says so.
    await page.locator('[data-tab="generate"]').click();
    const canvas = page.getByTestId('painter-canvas');
    await expect(canvas).toBeVisible({ timeout: 60_000 });
    const box = (await canvas.boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await canvas.click({ position: { x: 2, y: 2 }, button: 'middle' });
    await page.keyboard.press(']');
    await page.keyboard.press(']');
    await page.mouse.move(cx - box.height * 0.15, cy);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++)
      await page.mouse.move(cx - box.height * 0.15 + (i * box.height * 0.3) / 10, cy);
    await page.mouse.up();
    await page.getByTestId('gen-generator').selectOption('diffusion');
    await page.getByTestId('gen-source').selectOption('current');
    await page.getByTestId('gen-mask').selectOption('painted');
    const diffusion = page.getByTestId('diffusion-panel');
    await diffusion.getByTestId('diffusion-steps').fill('2');
    await diffusion.getByTestId('diffusion-seed').fill('77');
    await diffusion.getByTestId('diffusion-count').fill('1');
    await diffusion.getByTestId('diffusion-generate').click();
    await expect(diffusion.getByTestId('diffusion-summary')).toHaveText('1 sample staged', {
      timeout: 180_000,
    });
    await page.getByTestId('staging-accept-all').click();
    await expect(page.getByTestId('staging-accepted')).toHaveText('1 accepted');
    await expect
      .poll(ran)
      .toEqual(['features:done', 'experiment:done', 'experiment:cancelled', 'generate:done']);
    const provenance = await page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open('defectlab');
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      const all = await new Promise<
        { provenance?: Record<string, unknown> & { parameters: Record<string, unknown> } }[]
      >((res, rej) => {
        const r = db.transaction('images').objectStore('images').getAll();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      return all.filter((i) => i.provenance?.generator === 'diffusion').map((i) => i.provenance!);
    });
    expect(provenance.length).toBe(1);
    expect(provenance[0].parameters.backend).toBe(`server ${url} (cpu)`);
    expect(provenance[0]).toMatchObject({ seed: 77, modelId: expect.stringMatching(/^tiny-sd/) });
  } finally {
    await server.stop();
  }
});

/**
 * System → Compute "Server": the built app talks to a real DefectLab server (started here, on 127.0.0.1, with a
 * token and the app's origin in --cors) across origins under the app's cross-origin isolation. A wrong token is
 * a clear message and the saved choice stays "this browser"; the right one shows the server's version, devices
 * and queue, and the choice survives a reload. Then the Generate tab runs its batch as a server job (the server
 * counts it) and the samples reach the staging strip as local ones do. Feature extraction and a grid through
 * the server: server-compute-grid.spec.ts.
 */
import { join } from 'node:path';
import { buildServer } from '../../server/app.ts';
import { MemoryQueue, executeJob } from '../../server/jobs.ts';
import { expect, test } from './fixtures.ts';
import { MT_DATA, importIntoNewDataset, mtManifest, waitForApp } from './helpers.ts';

test('System → Compute: server health check (wrong token refused, choice kept), then the Generate tab runs its batch on the server', async ({
  page,
  baseURL,
}) => {
  const token = 'e2e-token-'.padEnd(40, 'x');
  const models = join(import.meta.dirname, '../../models/tiny');
  const jobs: string[] = [];
  const queue = new MemoryQueue(
    { concurrency: 1, maxQueue: 10, datasets: '', models, device: 'cpu', runner: 'e2e' },
    (id, spec, ...rest) => {
      jobs.push(`${spec.kind}:${spec.generator}`);
      return executeJob(id, spec, ...rest);
    },
  );
  const server = buildServer({
    queue,
    options: {
      token,
      cors: [new URL(baseURL!).origin],
      models,
      device: 'cpu',
    },
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  try {
    await page.goto('/');
    await waitForApp(page);
    await page.locator('[data-tab="system"]').click();
    const panel = page.getByTestId('compute-panel');
    await expect(panel.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'browser');

    await panel.getByTestId('compute-server').check();
    await panel.getByTestId('compute-url').fill(url);
    await panel.getByTestId('compute-token').fill('wrong');
    await panel.getByTestId('compute-apply').click();
    await expect(panel.getByTestId('compute-error')).toContainText(
      'refused the token — fix: paste the token',
    );
    await expect(panel.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'browser');

    await panel.getByTestId('compute-token').fill(token);
    await panel.getByTestId('compute-apply').click();
    await expect(panel.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'server');
    await expect(panel.getByTestId('compute-error')).toHaveCount(0);
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as {
      version: string;
    };
    await expect(panel.getByTestId('compute-version')).toHaveText(pkg.version);
    await expect(panel.getByTestId('compute-devices')).toContainText('cpu');
    await expect(panel.getByTestId('compute-queue')).toContainText('memory: 0 waiting, 0 running');

    // Saved in the store: after a reload the panel re-checks the server it was left on.
    await page.reload();
    await waitForApp(page);
    await page.locator('[data-tab="system"]').click();
    await expect(page.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'server');
    await expect(page.getByTestId('compute-version')).toHaveText(pkg.version);

    // The Generate tab's batch runs on the server: 3 MemSeg samples (its procedural textures sent along) reach
    // the staging strip.
    const files = mtManifest()
      .items.filter((i) => i.defect_class === 'MT_Free')
      .slice(0, 2)
      .map((i) => join(MT_DATA, i.file));
    await importIntoNewDataset(page, 'import-files', files, 2);
    await page.locator('[data-tab="generate"]').click();
    await expect(page.getByTestId('painter-canvas')).toBeVisible();
    await expect(page.getByTestId('gen-generator')).toHaveValue('memseg');
    await page.getByTestId('gen-source').selectOption('current');
    await page.getByTestId('gen-mask').selectOption('none');
    await page.getByTestId('gen-count').fill('3');
    await page.getByTestId('gen-seed').fill('5');
    await page.getByTestId('gen-run').click();
    await expect(page.getByTestId('staging-pending')).toHaveText('3 pending', { timeout: 60_000 });
    expect(jobs).toEqual(['generate:memseg']);
    await page.locator('[data-tab="system"]').click();

    // Server gone: the check says so with its fix; the saved choice is untouched.
    await server.close();
    await page.getByTestId('compute-apply').click();
    await expect(page.getByTestId('compute-error')).toContainText('did not answer');
    await expect(page.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'server');
  } finally {
    await server.close();
  }
});

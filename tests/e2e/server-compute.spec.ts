/**
 * System → Compute "Server": the built app talks to a real DefectLab server (started here, on 127.0.0.1, with a
 * token and the app's origin in --cors) across origins under the app's cross-origin isolation. A wrong token is
 * a clear message and the saved choice stays "this browser"; the right one shows the server's version, devices
 * and queue, and the choice survives a reload. (Running generation, features and grids as server jobs from the
 * tabs is not wired yet: see docs/server.md.)
 */
import { join } from 'node:path';
import { buildServer } from '../../server/app.ts';
import { expect, test } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

test('System → Compute: server health check, wrong token refused without changing the saved choice', async ({
  page,
  baseURL,
}) => {
  const token = 'e2e-token-'.padEnd(40, 'x');
  const server = buildServer({
    options: {
      token,
      cors: [new URL(baseURL!).origin],
      models: join(import.meta.dirname, '../../models/tiny'),
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

    // Server gone: the check says so with its fix; the saved choice is untouched.
    await server.close();
    await page.getByTestId('compute-apply').click();
    await expect(page.getByTestId('compute-error')).toContainText('did not answer');
    await expect(page.getByTestId('compute-saved')).toHaveAttribute('data-mode', 'server');
  } finally {
    await server.close();
  }
});

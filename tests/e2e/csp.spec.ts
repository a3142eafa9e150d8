/**
 * The built app under its Content-Security-Policy (scripts/csp.ts, docs/security.md): the header `vite preview`
 * sends with every file (page, workers, service worker) and the meta tag with Trusted Types in index.html.
 * A MemSeg batch (first visit, from the network) and a tiny-ResNet head trained on threaded WASM (offline, from the
 * service worker) run with zero CSP or Trusted Types violations (in the page and in every worker, listened to from
 * their start); an injected inline script does not run and is
 * reported; `eval` and `new Function` throw; a string written into an HTML sink is refused (Trusted Types).
 * HTML-looking prompts and file names rendering as text are checked where they are entered, now under this same
 * policy since every spec runs against the same preview: `share.spec.ts` (a prompt) and `a11y.spec.ts` (a file
 * name).
 */
import { expect, test, type Page } from './fixtures.ts';
import { waitForApp } from './helpers.ts';

interface Violation {
  where: string;
  directive: string;
  blocked: string;
  sample: string;
}

/**
 * Records every `securitypolicyviolation` in the page (from before its first script) and in each worker (a
 * listener added as soon as Playwright sees the worker; it logs each one as a tagged console error, so a worker
 * that has ended by the time we look has already told us), plus console errors that mention the policy or
 * Trusted Types.
 */
async function watchViolations(page: Page) {
  const consoleErrors: string[] = [];
  const inWorkers: Violation[] = [];
  const workers: string[] = [];
  const TAG = 'csp-violation ';
  page.on('console', (m) => {
    if (m.type() !== 'error' || m.text().startsWith(TAG)) return;
    if (/Content Security Policy|Trusted Type|TrustedScript|TrustedHTML/i.test(m.text()))
      consoleErrors.push(m.text());
  });
  page.on('worker', (w) => {
    workers.push(w.url());
    w.on('console', (m) => {
      if (m.type() === 'error' && m.text().startsWith(TAG))
        inWorkers.push(JSON.parse(m.text().slice(TAG.length)) as Violation);
    });
    void w
      .evaluate((tag) => {
        self.addEventListener('securitypolicyviolation', (e) =>
          console.error(
            tag +
              JSON.stringify({
                where: self.location.href,
                directive: e.effectiveDirective,
                blocked: e.blockedURI,
                sample: e.sample,
              }),
          ),
        );
      }, TAG)
      .catch(() => undefined);
  });
  await page.addInitScript(() => {
    const g = window as unknown as { __csp: unknown[] };
    g.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      g.__csp.push({
        where: 'page',
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        sample: e.sample,
      }),
    );
  });
  return {
    consoleErrors,
    workers,
    all: async (): Promise<Violation[]> => [
      ...(await page.evaluate(() => (window as unknown as { __csp: Violation[] }).__csp)),
      ...inWorkers,
    ],
  };
}

test('MemSeg generation and head training run under the CSP and Trusted Types with no violation', async ({
  page,
}) => {
  const watch = await watchViolations(page);
  const res = await page.goto('/');
  const header = res!.headers()['content-security-policy'] ?? '';
  expect(header).toContain("script-src 'self' 'wasm-unsafe-eval' blob:;");
  expect(header).not.toContain("'unsafe-eval'");
  expect(header).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  expect(header).toMatch(/connect-src 'self' blob:[^;]*https:\/\/huggingface\.co/);
  const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(meta).toContain("require-trusted-types-for 'script'");
  await waitForApp(page);
  await page.waitForFunction(() => navigator.serviceWorker.ready.then((r) => !!r.active));

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

  // Then the path a workshop takes when the wifi drops: offline, reloaded, the page and every worker script served
  // by the service worker (registered through the Trusted Types default policy) with the headers it stored.
  await page.getByTestId('offline-prepare').click();
  await expect(page.getByTestId('offline-ready')).toBeAttached({ timeout: 120_000 });
  expect(await watch.all(), 'violations on the first visit').toEqual([]);
  await page.context().setOffline(true);
  await page.reload();
  await waitForApp(page);
  expect(await page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
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
  if (await failure.count()) throw new Error(`training failed: ${await failure.first().textContent()}`);
  await expect(page.getByTestId('result-tf-backend')).toHaveText('wasm');

  // The features and train workers really ran (so their policy was exercised, not just the page's).
  expect(watch.workers.length).toBeGreaterThanOrEqual(2);
  expect(await watch.all(), 'violations offline').toEqual([]);
  expect(watch.consoleErrors).toEqual([]);
});

test.describe('attacks', () => {
  // No service worker here: every request must reach page.route (a worker would answer from its precache).
  test.use({ serviceWorkers: 'block' });
  test('an injected inline script is blocked, eval throws, HTML sinks refuse strings', async ({ page }) => {
    const watch = await watchViolations(page);
    // A same-origin script file (allowed by script-src 'self'): it, not Playwright's evaluate (which the
    // DevTools protocol exempts from the policy), tries eval and new Function as the page's own code would.
    await page.route('/csp-probe.js', (route) =>
      route.fulfill({
        contentType: 'text/javascript',
        body: `const t = (f) => { try { f(); return 'ran'; } catch (e) { return e.name; } };
        window.__probe = { eval: t(() => (0, eval)('1 + 1')), fn: t(() => new Function('return 1')()) };
        window.__probeFetch = fetch('https://models.unlisted.example/unet/model.onnx').then(
          () => 'ran', (e) => e.name);`,
      }),
    );
    // The real response (real headers), with an inline script and an inline handler injected into its HTML.
    await page.route('/', async (route) => {
      const real = await route.fetch();
      const body = (await real.text()).replace(
        '<div id="app"></div>',
        `<div id="app"></div><script>window.__inline = 1</script><img src="/favicon.svg" onload="window.__handler = 1">`,
      );
      await route.fulfill({ response: real, body });
    });
    await page.goto('/');
    await waitForApp(page);
    await page.evaluate(async () => {
      const s = document.createElement('script');
      s.src = '/csp-probe.js'; // a plain string: the Trusted Types default policy admits same-origin URLs
      const loaded = new Promise((res, rej) => ((s.onload = res), (s.onerror = rej)));
      document.head.append(s);
      await loaded;
    });
    expect(await page.evaluate(() => (window as unknown as { __probe: unknown }).__probe)).toEqual({
      eval: 'EvalError',
      fn: 'EvalError',
    });
    // A model download from an origin that is not configured never leaves the page.
    expect(
      await page.evaluate(() => (window as unknown as { __probeFetch: Promise<string> }).__probeFetch),
    ).toBe('TypeError');
    const result = await page.evaluate(() => {
      const w = window as unknown as Record<string, unknown>;
      const attempt = (f: () => unknown) => {
        try {
          f();
          return 'ran';
        } catch (e) {
          return (e as Error).name;
        }
      };
      return {
        inline: w.__inline ?? null,
        handler: w.__handler ?? null,
        innerHTML: attempt(() => {
          document.createElement('div').innerHTML = '<b>x</b>';
        }),
        scriptText: attempt(() => {
          const s = document.createElement('script');
          s.textContent = 'window.__late = 1';
          document.body.append(s);
        }),
        foreignWorker: attempt(() => new Worker('https://example.com/evil.js')),
        policy: attempt(() =>
          (
            window as unknown as { trustedTypes: { createPolicy(n: string, r: object): unknown } }
          ).trustedTypes.createPolicy('attacker', { createHTML: (s: string) => s }),
        ),
      };
    });
    expect(result).toEqual({
      inline: null,
      handler: null,
      innerHTML: 'TypeError',
      scriptText: 'TypeError',
      foreignWorker: 'TypeError',
      policy: 'TypeError',
    });
    const directives = (await watch.all()).map((v) => v.directive);
    expect(directives).toContain('script-src-elem');
    expect(directives).toContain('script-src-attr');
    expect(directives).toContain('require-trusted-types-for');
    expect(
      (await watch.all()).some(
        (v) => v.directive === 'connect-src' && v.blocked.startsWith('https://models.unlisted.example'),
      ),
    ).toBe(true);
    // The app still works: the HTML the app itself renders passed Svelte's policy.
    await expect(page.locator('[data-tab="generate"]')).toBeVisible();
  });
});

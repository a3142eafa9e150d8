/**
 * Shared plumbing of the browser benches: the production build (`DL_DIST`, default `dist`, built first when
 * missing), a `vite preview` of it on its own port, Debian's Chromium through Playwright with the e2e tests'
 * flags (WebGPU on SwiftShader here), and the app's own built workers driven from its page.
 *
 * A worker is reached the way the app reaches it: the built `assets/<name>.worker-<hash>.js` is started as a
 * module worker in the app's (cross-origin isolated) page and wrapped with comlink — the library the app's
 * clients use — so a bench calls the same engine API (`benchmark`, `loadBackbone`, `extractImages`, …) on the
 * same bundle users run. The `_` prefix keeps `bench/run.ts` from treating this file as a topic.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from '@playwright/test';
import { chromiumArgs } from '../playwright.config.ts';

export const ROOT = resolve(import.meta.dirname, '..');

export function distDir(): string {
  return process.env.DL_DIST ?? 'dist';
}

/**
 * Why the browser half of a bench cannot run here, or null when it can. `DL_BENCH_BROWSER=0` turns the browser
 * benches off (a `skipped` figure, not a failure).
 */
export function browserSkipReason(): string | null {
  if (process.env.DL_BENCH_BROWSER === '0') return 'DL_BENCH_BROWSER=0';
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromiumPath))
    return `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;
  return null;
}

/** Builds `dist` once per bench run when it has no index.html; returns whether it built. */
let builtNow: boolean | null = null;
export function ensureBuild(dist = distDir()): boolean {
  if (builtNow !== null) return builtNow;
  if (existsSync(resolve(ROOT, dist, 'index.html'))) return (builtNow = false);
  const b = spawnSync('npx', ['vite', 'build', '--outDir', dist], { cwd: ROOT, stdio: 'inherit' });
  if (b.status !== 0) throw new Error(`vite build --outDir ${dist} failed (exit ${b.status})`);
  return (builtNow = true);
}

export async function waitForServer(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`vite preview did not answer at ${url} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function stop(server: ChildProcess): void {
  // The server runs in its own process group (detached), so this ends npx and vite together.
  if (server.pid)
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      // already gone
    }
}

export interface BuiltApp {
  url: string;
  dist: string;
  browser: Browser;
  builtNow: boolean;
}

/**
 * Serves the build on `port` (strict: a port in use fails instead of measuring someone else's server), launches
 * Chromium, runs `fn`, and always closes both.
 */
export async function withBuiltApp<T>(port: number, fn: (app: BuiltApp) => Promise<T>): Promise<T> {
  const dist = distDir();
  const built = ensureBuild(dist);
  const server = spawn('npx', ['vite', 'preview', '--outDir', dist, '--port', String(port), '--strictPort'], {
    cwd: ROOT,
    stdio: 'ignore',
    detached: true,
  });
  const url = `http://localhost:${port}/`;
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: chromiumArgs,
    });
    await waitForServer(url, 60_000);
    return await fn({ url, dist, browser, builtNow: built });
  } finally {
    await browser?.close();
    stop(server);
  }
}

/**
 * Opens the app in a fresh context and waits until its start-up work (sample dataset, backend probe) is over,
 * so that work does not share the CPU with the measurement.
 */
export async function openApp(app: BuiltApp): Promise<Page> {
  const context = await app.browser.newContext();
  const page = await context.newPage();
  await page.goto(app.url);
  await page.getByRole('heading', { name: 'DefectLab' }).waitFor({ timeout: 120_000 });
  await page.getByTestId('app-busy').waitFor({ state: 'detached', timeout: 300_000 });
  return page;
}

/** `assets/<name>.worker-<hash>.js` of the build. */
export function builtWorkerUrl(dist: string, name: string): string {
  const dir = resolve(ROOT, dist, 'assets');
  const files = readdirSync(dir).filter((f) => f.startsWith(`${name}.worker-`) && f.endsWith('.js'));
  if (files.length !== 1)
    throw new Error(
      `${dist}/assets has ${files.length} ${name}.worker-*.js files — fix: rebuild (npx vite build --outDir ${dist})`,
    );
  return `/assets/${files[0]}`;
}

/**
 * Starts the app's built `<name>` worker in the page and exposes its comlink proxy as
 * `globalThis.__bench[name]`, for code passed to `page.evaluate`.
 */
export async function startWorker(page: Page, dist: string, name: string): Promise<void> {
  if (!(await page.evaluate(() => 'Comlink' in globalThis)))
    // Evaluated, not added as a <script>: the app's CSP and Trusted Types refuse script text set from outside.
    await page.evaluate(readFileSync(resolve(ROOT, 'node_modules/comlink/dist/umd/comlink.js'), 'utf8'));
  // Plain JS source: tsx's keepNames would inject a `__name` helper the page does not have.
  await page.evaluate(`(() => {
    const g = globalThis;
    g.__bench ??= {};
    const w = new Worker(${JSON.stringify(builtWorkerUrl(dist, name))}, { type: 'module', name: ${JSON.stringify(name)} });
    w.addEventListener('error', (e) => { g.__benchErrors = [...(g.__benchErrors ?? []), ${JSON.stringify(name)} + ': ' + (e.message || 'worker crashed')]; });
    g.__bench[${JSON.stringify(name)}] = g.Comlink.wrap(w);
  })()`);
}

/** Runs a plain-JS async function source in the page with a JSON-able argument and returns its result. */
export async function evaluateSource<T>(page: Page, fnSource: string, arg: unknown): Promise<T> {
  return (await page.evaluate(`(${fnSource})(${JSON.stringify(arg)})`)) as T;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

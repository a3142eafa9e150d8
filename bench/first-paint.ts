/**
 * Time to first (contentful) paint of the production build: Chromium (Playwright, Debian's binary) loads a
 * `vite preview` of `DL_DIST` (default `dist`, built first when missing) in a fresh context per run, so every
 * run is a cold load from the local server. Reports the median over runs of FCP, DOMContentLoaded, load and the
 * time until the app shell's heading is on screen, plus the bytes of JS/CSS the page fetched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from '@playwright/test';
import { chromiumArgs } from '../playwright.config.ts';

const RUNS = Number(process.env.DL_BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function waitForServer(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`vite preview did not answer at ${url} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function stop(server: ChildProcess): void {
  // The server runs in its own process group (detached), so this ends npx and vite together.
  if (server.pid) {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const root = resolve(import.meta.dirname, '..');
  const dist = process.env.DL_DIST ?? 'dist';
  const port = Number(process.env.DL_BENCH_PORT ?? 4211);
  let built = false;
  if (!existsSync(resolve(root, dist, 'index.html'))) {
    const b = spawnSync('npx', ['vite', 'build', '--outDir', dist], { cwd: root, stdio: 'inherit' });
    if (b.status !== 0) throw new Error(`vite build --outDir ${dist} failed (exit ${b.status})`);
    built = true;
  }
  const server = spawn('npx', ['vite', 'preview', '--outDir', dist, '--port', String(port), '--strictPort'], {
    cwd: root,
    stdio: 'ignore',
    detached: true,
  });
  const url = `http://localhost:${port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: chromiumArgs,
  });
  try {
    await waitForServer(url, 60_000);
    const fcp: number[] = [];
    const dcl: number[] = [];
    const load: number[] = [];
    const shell: number[] = [];
    let scriptBytes = 0;
    let styleBytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      let js = 0;
      let css = 0;
      page.on('response', (r) => {
        const type = r.request().resourceType();
        if (type !== 'script' && type !== 'stylesheet') return;
        r.body()
          .then((b) => {
            if (type === 'script') js += b.length;
            else css += b.length;
          })
          .catch(() => undefined);
      });
      await page.goto(url, { waitUntil: 'load' });
      await page.getByRole('heading', { name: 'DefectLab' }).waitFor();
      const t = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        return {
          fcp: paint?.startTime ?? NaN,
          dcl: nav.domContentLoadedEventEnd,
          load: nav.loadEventEnd,
          now: performance.now(),
        };
      });
      fcp.push(t.fcp);
      dcl.push(t.dcl);
      load.push(t.load);
      shell.push(t.now);
      scriptBytes = js;
      styleBytes = css;
      await context.close();
    }
    return {
      dist,
      builtNow: built,
      runs: RUNS,
      firstContentfulPaintMs: median(fcp),
      firstContentfulPaintMsAll: fcp.map((x) => Math.round(x * 10) / 10),
      domContentLoadedMs: median(dcl),
      loadMs: median(load),
      /** Upper bound for "shell heading visible": performance.now() once Playwright saw it. */
      shellVisibleMs: median(shell),
      initialScriptKB: Math.round(scriptBytes / 1024),
      initialStyleKB: Math.round(styleBytes / 1024),
    };
  } finally {
    await browser.close();
    stop(server);
  }
}

// `npx tsx bench/first-paint.ts` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await run(), null, 2));
}

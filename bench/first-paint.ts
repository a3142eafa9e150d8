/**
 * Time to first (contentful) paint of the production build: Chromium (Playwright, Debian's binary) loads a
 * `vite preview` of `DL_DIST` (default `dist`, built first when missing) in a fresh context per run, so every
 * run is a cold load from the local server. Reports the median over runs of FCP, DOMContentLoaded, load and the
 * time until the app shell's heading is on screen, plus the bytes of JS/CSS the page fetched.
 */
import { browserSkipReason, median, withBuiltApp } from './_browser.ts';

const RUNS = Number(process.env.DL_BENCH_RUNS ?? 5);

export async function run(): Promise<Record<string, unknown>> {
  const skip = browserSkipReason();
  if (skip) return { skipped: skip };
  const port = Number(process.env.DL_BENCH_PORT ?? 4211);
  return withBuiltApp(port, async ({ url, dist, browser, builtNow }) => {
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
      builtNow,
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
  });
}

// `npx tsx bench/first-paint.ts` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await run(), null, 2));
}

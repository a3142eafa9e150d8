/**
 * Import benchmark: 2,331 generated 632×224 RGB PNGs (the size and count of KSDD2) through the import engine
 * into fake-indexeddb in Node — decode, SHA-256, thumbnail, batched transactions — the same code the import
 * worker runs in the browser. Prints seconds, images/s, MB read, MB stored and peak JS heap (`heapUsed`;
 * typed-array bytes are in `peakExternalMB`) and RSS.
 *
 * The files: 12 procedural surfaces, each file made unique by a tEXt chunk carrying its index, so every file has
 * its own SHA-256 (no duplicate short-cuts) and full decoding cost, without spending minutes encoding 2,331 PNGs.
 * `DL_BENCH_IMPORT_N` overrides the count, `DL_BENCH_IMPORT_BATCH` the images per transaction (default 32, the
 * app's). Both halves print where the time went per image (`perImageMs`, `browserPerImageMs`: the report's
 * `profile`), and the machine's 1-minute load average before and after each half (`loadAverage1m`).
 *
 * Browser half (issue 16): the same files through the built app's import worker (`workers/import.worker.ts`,
 * which prepares items in its pool of decode workers) into real IndexedDB in Chromium, as the app's import
 * panel calls it: the files as `File`s, `importIntoNewDataset`. Keys: `browserImagesPerSec`, `browserSeconds`,
 * `browserMBStored` (growth of `navigator.storage.estimate().usage`), `browserPeakHeapMB` (the largest sum of
 * `performance.memory.usedJSHeapSize` over the page and its workers, sampled every 100 ms), and, in the same
 * run, a serial reference — the same worker with `serial: true` (every item prepared in the import worker, one
 * at a time; `DL_BENCH_IMPORT_SERIAL_N` files, default 600, so the run stays short) — as
 * `browserSerialImagesPerSec` and `browserParallelToSerial`. Port `DL_BENCH_IMPORT_PORT` (4217).
 */
import 'fake-indexeddb/auto';
import { crop } from '../src/core/image.ts';
import { Rng } from '../src/core/rng.ts';
import { renderSurface, SURFACE_FAMILIES } from '../src/core/sample-data/index.ts';
import { deleteStore, openStore } from '../src/runtime/db/store.ts';
import { encodePng } from '../src/runtime/decode.ts';
import { ImportEngine, type ImportProfile, type ImportSource } from '../workers/import.engine.ts';
import { browserSkipReason, evaluateSource, openApp, startWorker, withBuiltApp } from './_browser.ts';
import type { Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/**
 * Where an import's time went, per image (ms): the prepare stages as the decoders measured them (summed over
 * decoders that run in parallel, so they add up to more than the wall time per image when the pool has more
 * than one), the way to a decoder (structured clone + queueing behind the items ahead of it there) and back,
 * the IndexedDB transactions, and how long the engine itself waited for results
 * in plan order and for the previous transaction. `wall` is the import's seconds per image.
 */
export function perImageMs(p: ImportProfile | undefined, seconds: number): Record<string, number> | null {
  // A build from before the profile existed (a same-run reference against an older dist) has none.
  if (!p) return null;
  const n = Math.max(1, p.items);
  return {
    wall: (seconds * 1000) / n,
    read: p.readMs / n,
    decode: p.decodeMs / n,
    mask: p.maskMs / n,
    thumbnail: p.thumbnailMs / n,
    thumbnailPng: p.thumbnailPngMs / n,
    hash: p.hashMs / n,
    toDecoder: p.toDecoderMs / n,
    fromDecoder: p.fromDecoderMs / n,
    write: p.writeMs / n,
    engineWaitsForResults: p.resultWaitMs / n,
    engineWaitsForWriter: p.writerWaitMs / n,
  };
}

/** Images per transaction: the app's default, or `DL_BENCH_IMPORT_BATCH` to try another. */
const BATCH = Number(process.env.DL_BENCH_IMPORT_BATCH ?? 32);
const WIDTH = 632;
const HEIGHT = 224;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with a `tEXt` chunk (keyword "id") inserted after IHDR: same pixels, different bytes. */
function withTextChunk(png: Uint8Array, text: string): Uint8Array {
  const data = new TextEncoder().encode(`id\u0000${text}`);
  const chunk = new Uint8Array(12 + data.length);
  const dv = new DataView(chunk.buffer);
  dv.setUint32(0, data.length);
  chunk.set([0x74, 0x45, 0x58, 0x74], 4); // "tEXt"
  chunk.set(data, 8);
  dv.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
  const at = 8 + 25; // signature + IHDR chunk
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, at));
  out.set(chunk, at);
  out.set(png.subarray(at), at + chunk.length);
  return out;
}

function basePngs(): Uint8Array[] {
  const bases: Uint8Array[] = [];
  for (let i = 0; i < 12; i++) {
    const family = SURFACE_FAMILIES[i % SURFACE_FAMILIES.length];
    const square = renderSurface(family, WIDTH, new Rng(`bench-import-${i}`));
    bases.push(encodePng(crop(square, { x: 0, y: 0, width: WIDTH, height: HEIGHT })));
  }
  return bases;
}

/**
 * Runs in the app's page: builds the files from the base PNGs exactly as `withTextChunk` does (the chunk's CRC
 * included, so every file is a valid PNG with its own SHA-256), imports them through the import worker and
 * returns the figures the page can see.
 */
const PAGE_IMPORT = `async ({ b64, n, serial, label, batchSize }) => {
  const api = globalThis.__bench.import;
  const bases = b64.map((s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
  const table = new Uint32Array(256);
  for (let k = 0; k < 256; k++) { let c = k; for (let j = 0; j < 8; j++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; table[k] = c >>> 0; }
  const crc = (b) => { let c = 0xffffffff; for (let i = 0; i < b.length; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const entries = [];
  let inputBytes = 0;
  for (let i = 0; i < n; i++) {
    const png = bases[i % bases.length];
    const data = new TextEncoder().encode('id\u0000' + i);
    const chunk = new Uint8Array(12 + data.length);
    const dv = new DataView(chunk.buffer);
    dv.setUint32(0, data.length);
    chunk.set([0x74, 0x45, 0x58, 0x74], 4);
    chunk.set(data, 8);
    dv.setUint32(8 + data.length, crc(chunk.subarray(4, 8 + data.length)));
    const at = 33;
    const out = new Uint8Array(png.length + chunk.length);
    out.set(png.subarray(0, at)); out.set(chunk, at); out.set(png.subarray(at), at + chunk.length);
    inputBytes += out.length;
    const path = 'ksdd2-like/train/' + String(i).padStart(5, '0') + '.png';
    entries.push({ path, data: new File([out], path.split('/').pop(), { type: 'image/png' }) });
  }
  const before = (await navigator.storage.estimate()).usage ?? 0;
  const t0 = performance.now();
  const { report } = await api.importIntoNewDataset(label, { entries }, { batchSize, serial });
  const seconds = (performance.now() - t0) / 1000;
  const after = (await navigator.storage.estimate()).usage ?? 0;
  return {
    profile: report.profile,
    images: n, added: report.added, rejected: report.rejected.length, stopped: report.stopped?.message ?? null,
    seconds, imagesPerSecond: report.added / seconds, inputMB: inputBytes / 1048576,
    storedMB: (after - before) / 1048576,
    decodeWorkers: serial ? 0 : Math.min(navigator.hardwareConcurrency || 1, 4),
  };
}`;

/** Largest sum of `usedJSHeapSize` over the page and every worker Playwright sees, until `stop()`. */
function heapSampler(page: Page): { stop: () => Promise<number | null> } {
  let peak: number | null = null;
  let running = true;
  const read = (): number | null =>
    (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? null;
  const loop = (async () => {
    while (running) {
      const parts = await Promise.all(
        [page.evaluate(read), ...page.workers().map((w) => w.evaluate(read))].map((p) => p.catch(() => null)),
      );
      const known = parts.filter((x): x is number => typeof x === 'number');
      if (known.length)
        peak = Math.max(
          peak ?? 0,
          known.reduce((a, b) => a + b, 0),
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

async function browserFigures(bases: Uint8Array[], n: number): Promise<Record<string, unknown>> {
  const skip = browserSkipReason();
  if (skip) return { browser: { skipped: skip } };
  const serialN = Math.min(n, Number(process.env.DL_BENCH_IMPORT_SERIAL_N ?? 600));
  const port = Number(process.env.DL_BENCH_IMPORT_PORT ?? 4217);
  return withBuiltApp(port, async (app) => {
    const page = await openApp(app);
    await startWorker(page, app.dist, 'import');
    const b64 = bases.map((b) => Buffer.from(b).toString('base64'));
    const heap = heapSampler(page);
    const par = await evaluateSource<Record<string, number>>(page, PAGE_IMPORT, {
      b64,
      n,
      serial: false,
      label: 'bench-import',
      batchSize: BATCH,
    });
    const peak = await heap.stop();
    const ser = await evaluateSource<Record<string, number>>(page, PAGE_IMPORT, {
      b64,
      n: serialN,
      serial: true,
      label: 'bench-import-serial',
      batchSize: BATCH,
    });
    const MB = 1024 * 1024;
    const parProfile = (par as unknown as { profile?: ImportProfile }).profile;
    const serProfile = (ser as unknown as { profile?: ImportProfile }).profile;
    return {
      browserPerImageMs: perImageMs(parProfile, par.seconds),
      browserSerialPerImageMs: perImageMs(serProfile, ser.seconds),
      browserImagesPerSec: par.imagesPerSecond,
      browserSeconds: par.seconds,
      browserMBStored: par.storedMB,
      browserPeakHeapMB: peak === null ? null : peak / MB,
      browserSerialImagesPerSec: ser.imagesPerSecond,
      browserParallelToSerial: par.imagesPerSecond / ser.imagesPerSecond,
      browser: { parallel: par, serial: ser, store: 'IndexedDB (Chromium)' },
    };
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const n = Number(process.env.DL_BENCH_IMPORT_N ?? 2331);
  const tGen = performance.now();
  const bases = basePngs();
  const entries: ImportSource[] = Array.from({ length: n }, (_, i) => ({
    path: `ksdd2-like/train/${String(i).padStart(5, '0')}.png`,
    data: withTextChunk(bases[i % bases.length], String(i)),
  }));
  const inputBytes = entries.reduce((s, e) => s + (e.data as Uint8Array).length, 0);
  const generateSeconds = (performance.now() - tGen) / 1000;

  const name = `bench-import-${process.pid}`;
  const store = await openStore(name);
  const engine = new ImportEngine(store);
  const dataset = await store.createDataset({ name: 'bench', source: 'files' });
  let peakHeap = 0;
  let peakRss = 0;
  let peakExternal = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
    // Typed-array bytes (the files, decoded pixels) live outside the JS heap proper.
    peakExternal = Math.max(peakExternal, m.external);
  };
  const timer = setInterval(sample, 50);
  const loadBefore = loadavg();
  const t0 = performance.now();
  const report = await engine.importFiles(dataset.id, { entries }, { batchSize: BATCH, onProgress: sample });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  sample();

  let storedBytes = 0;
  let thumbBytes = 0;
  for (const r of await store.listImages(dataset.id)) {
    storedBytes += r.blob.size;
    thumbBytes += r.thumbnail.size;
  }
  store.close();
  await deleteStore(name);
  const loadAfterNode = loadavg();
  const MB = 1024 * 1024;
  let browser: Record<string, unknown>;
  try {
    browser = await browserFigures(bases, n);
  } catch (e) {
    // Reported (bench/run.ts then exits 1) without losing the Node figures.
    browser = { browserError: { error: e instanceof Error ? e.message : String(e) } };
  }
  return {
    // 1-minute load average before each half and after the run (this machine is shared: say how loaded it was).
    loadAverage1m: { beforeNode: loadBefore[0], afterNode: loadAfterNode[0], afterBrowser: loadavg()[0] },
    images: n,
    batchSize: BATCH,
    size: `${WIDTH}x${HEIGHT} RGB PNG`,
    perImageMs: perImageMs(report.profile, seconds),
    added: report.added,
    rejected: report.rejected.length,
    seconds,
    imagesPerSecond: report.added / seconds,
    inputMB: inputBytes / MB,
    storedMB: (storedBytes + thumbBytes) / MB,
    thumbnailsMB: thumbBytes / MB,
    peakHeapMB: peakHeap / MB,
    peakExternalMB: peakExternal / MB,
    peakRssMB: peakRss / MB,
    generateSeconds,
    store: 'fake-indexeddb (Node); browser IndexedDB differs',
    ...browser,
    browserToNode:
      typeof browser.browserImagesPerSec === 'number'
        ? browser.browserImagesPerSec / (report.added / seconds)
        : null,
  };
}

/**
 * bench/README.md's import rows from saved `npm run bench import` outputs (the JSON `bench/run.ts` prints, or
 * this topic's own), so the tables are written by code: `npx tsx bench/import.ts --table <label>=<json>…`. Two
 * kinds of row: the figures (`kind` 'rate') and the browser's per-image breakdown (`kind` 'profile').
 */
export function importTableRows(
  runs: { label: string; result: Record<string, unknown> }[],
  kind: 'rate' | 'profile',
): string[] {
  const f = (x: unknown, d = 1) => (typeof x === 'number' ? x.toFixed(d) : '—');
  return runs.map(({ label, result: raw }) => {
    const r = ((raw.results as Record<string, unknown> | undefined)?.import ?? raw) as Record<
      string,
      unknown
    >;
    const load = r.loadAverage1m as Record<string, number> | undefined;
    const loadText = load ? `${f(load.beforeNode)}–${f(Math.max(load.afterNode, load.afterBrowser))}` : '—';
    if (kind === 'rate') {
      const perSec = r.browserImagesPerSec;
      const full = typeof perSec === 'number' ? `${f(2331 / perSec)} s` : '—';
      return `| ${label} | ${loadText} | ${f(r.imagesPerSecond)} | ${f(perSec)} | ${full} | ${f(r.browserSerialImagesPerSec)} | ${f(r.browserParallelToSerial, 2)}× | ${f(r.browserMBStored)} | ${f(r.browserPeakHeapMB)} |`;
    }
    const p = (r.browserPerImageMs ?? {}) as Record<string, number>;
    const q = (r.perImageMs ?? {}) as Record<string, number>;
    return `| ${label} | ${f(p.wall, 2)} (${f(q.wall, 2)}) | ${f(p.read, 2)} | ${f(p.decode, 2)} (${f(q.decode, 2)}) | ${f(p.thumbnail, 2)} (${f(q.thumbnail, 2)}) | ${f(p.thumbnailPng, 2)} (${f(q.thumbnailPng, 2)}) | ${f(p.hash, 2)} | ${f(p.fromDecoder, 2)} | ${f(p.write, 2)} (${f(q.write, 2)}) | ${f(p.engineWaitsForResults, 2)} / ${f(p.engineWaitsForWriter, 2)} |`;
  });
}

// `npx tsx bench/import.ts` runs it alone; `--table <label>=<json>…` prints the README rows of saved runs.
if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === '--table') {
    const runs = process.argv.slice(3).map((a) => {
      const [label, file] = a.includes('=') ? (a.split('=', 2) as [string, string]) : [a, a];
      return { label, result: JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> };
    });
    console.log(importTableRows(runs, 'rate').join('\n'));
    console.log('');
    console.log(importTableRows(runs, 'profile').join('\n'));
  } else console.log(JSON.stringify(await run(), null, 2));
}

/**
 * `npm run bench server`: the server as a compute backend, on loopback only.
 * - `load`: autocannon for `DL_BENCH_SERVER_SECONDS` (default 5, at most 30) with 10 connections on a cheap job
 *   route (`GET /api/jobs/:id` of a finished job: auth, Host check, rate-limit bookkeeping, queue lookup) —
 *   requests per second and latency p50/p99 in ms.
 * - `memseg`: MemSeg samples per second at 256×256 RGB through a server `generate` job (POST → done, PNG-encoded
 *   and zipped), against the app's synth worker in Chromium (`benchmark()`, raw rasters) — the worker figure
 *   does not encode PNGs, so the ratio favours the worker.
 * - `features`: tiny-resnet features per second through a server `features` job (uploaded 64×64 PNGs decoded,
 *   batch 16, onnxruntime-node CPU) against the app's features worker on WASM.
 * The browser halves are `skipped` with DL_BENCH_BROWSER=0 or without Chromium.
 */
import autocannon from 'autocannon';
import { buildServer } from '../server/app.ts';
import { createRaster } from '../src/core/image.ts';
import { benchmarkMemseg } from '../src/core/synth/index.ts';
import { Rng } from '../src/core/rng.ts';
import { encodePng } from '../src/runtime/decode.ts';
import { browserSkipReason, evaluateSource, openApp, startWorker, withBuiltApp } from './_browser.ts';

const TINY_MODELS = new URL('../models/tiny', import.meta.url).pathname;

function noise(w: number, h: number, c: 1 | 3, seed: string): string {
  const rng = new Rng(seed);
  const img = createRaster(w, h, c);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 80 + rng.int(0, 90);
  return Buffer.from(encodePng(img)).toString('base64');
}

async function job(base: string, body: unknown): Promise<{ id: string; seconds: number }> {
  const t0 = performance.now();
  const r = await fetch(`${base}/api/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status !== 202) throw new Error(`POST /api/jobs: ${r.status} ${await r.text()}`);
  const { id } = (await r.json()) as { id: string };
  for (;;) {
    const s = (await (await fetch(`${base}/api/jobs/${id}`)).json()) as {
      state: string;
      error?: { message: string };
    };
    if (s.state === 'done') return { id, seconds: (performance.now() - t0) / 1000 };
    if (s.state === 'failed' || s.state === 'cancelled')
      throw new Error(`job ${s.state}: ${s.error?.message}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

const WORKER_MEMSEG = `async ({ seconds }) => globalThis.__bench.synth.benchmark(256, 256, seconds)`;
const WORKER_FEATURES = `async ({ count }) => {
  const api = globalThis.__bench.features;
  let s = 12345;
  const make = (n) => Array.from({ length: n }, () => {
    const data = new Uint8ClampedArray(64 * 64 * 3);
    for (let i = 0; i < data.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; data[i] = s >>> 24; }
    return { width: 64, height: 64, channels: 3, data };
  });
  await api.loadBackbone({ manifestId: 'tiny-resnet', url: '/models/tiny/tiny-resnet/model.onnx', device: 'wasm' });
  await api.extractImages(make(16));
  const imgs = make(count);
  const t0 = performance.now();
  await api.extractImages(imgs);
  const seconds = (performance.now() - t0) / 1000;
  await api.releaseBackbone();
  return { images: count, seconds, featuresPerSecond: count / seconds };
}`;

async function browserHalf(): Promise<Record<string, unknown>> {
  const skip = browserSkipReason();
  if (skip) return { skipped: skip };
  const port = Number(process.env.DL_BENCH_SERVER_PORT ?? 4216);
  return withBuiltApp(port, async (app) => {
    const page = await openApp(app);
    await startWorker(page, app.dist, 'synth');
    await startWorker(page, app.dist, 'features');
    const memseg = await evaluateSource<{ defectsPerSecond: number }>(page, WORKER_MEMSEG, { seconds: 2 });
    const features = await evaluateSource<{ featuresPerSecond: number }>(page, WORKER_FEATURES, {
      count: 256,
    });
    return { memsegPerSecond: memseg.defectsPerSecond, featuresPerSecond: features.featuresPerSecond };
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const seconds = Math.min(30, Number(process.env.DL_BENCH_SERVER_SECONDS ?? 5));
  const app = buildServer({ options: { models: TINY_MODELS, device: 'cpu', rateLimit: 10_000_000 } });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const out: Record<string, unknown> = {
    machineNote: 'loopback, one process, in-process queue, concurrency 1',
  };
  try {
    // Warm-up (JIT, first PNG encode), then the measured jobs.
    await job(base, {
      kind: 'generate',
      generator: 'memseg',
      images: [noise(256, 256, 3, 'w')],
      n: 4,
      seed: 0,
    });
    const n = 100;
    const m = await job(base, {
      kind: 'generate',
      generator: 'memseg',
      images: [noise(256, 256, 3, 'm')],
      n,
      seed: 1,
    });
    const count = 256;
    const images = Array.from({ length: count }, (_, i) => noise(64, 64, 3, `f${i}`));
    await job(base, { kind: 'features', images: images.slice(0, 16), model: 'tiny-resnet/model.onnx' });
    const f = await job(base, { kind: 'features', images, model: 'tiny-resnet/model.onnx' });

    const load = await autocannon({ url: `${base}/api/jobs/${m.id}`, connections: 10, duration: seconds });
    out.load = {
      route: 'GET /api/jobs/:id',
      seconds,
      connections: 10,
      requestsPerSecond: load.requests.average,
      latencyMs: { p50: load.latency.p50, p99: load.latency.p99, max: load.latency.max },
      non2xx: load.non2xx,
      errors: load.errors,
    };
    const server = { memsegPerSecond: n / m.seconds, featuresPerSecond: count / f.seconds };
    let browser: Record<string, unknown>;
    try {
      browser = await browserHalf();
    } catch (e) {
      browser = { error: e instanceof Error ? e.message : String(e) };
    }
    const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? a / b : null);
    out.memseg = {
      size: '256x256 RGB',
      serverJob: server.memsegPerSecond,
      // The same generator in this Node process without the job around it (upload decode, PNG encode, zip).
      nodeComputeOnly: benchmarkMemseg(256, 256, { minSeconds: 1.5 }).defectsPerSecond,
      browserWorker: browser.memsegPerSecond ?? browser,
      serverOverWorker: ratio(server.memsegPerSecond, browser.memsegPerSecond),
    };
    out.features = {
      model: 'tiny-resnet 64x64',
      serverJob: server.featuresPerSecond,
      browserWorkerWasm: browser.featuresPerSecond ?? browser,
      serverOverWorker: ratio(server.featuresPerSecond, browser.featuresPerSecond),
    };
  } finally {
    await app.close();
  }
  return out;
}

/**
 * Features per second (pooled + spatial map, batch 8: the features engine's default) of the real
 * MobileNetV2-int8 (224×224) and the tiny ResNet-shaped backbone (64×64, `npm run models:tiny`), after one
 * warm-up batch, on
 * - onnxruntime-node CPU;
 * - the built app's features worker (`workers/features.*`, onnxruntime-web) in Chromium on WebGPU and on WASM,
 *   with the ratio to Node CPU (`wasmToNode`, `webgpuToNode` per backbone: the path "auto" picks); for the int8
 *   MobileNetV2 also its float path (`wasmFloatToNode`, `webgpuFloatToNode`, `src/runtime/dequantize.ts`) and
 *   its int8 graph (`wasmInt8ToNode`) forced. WebGPU here is SwiftShader (a CPU emulation, ~100× slower than WASM), so the
 *   WebGPU figures say nothing about a real GPU, and they use fewer images.
 * Reads ../shared in place; a missing file or build part is `skipped` with the reason.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { type RasterImage, createRaster } from '../src/core/image.ts';
import { Rng } from '../src/core/rng.ts';
import { Backbone, findBackbone, manifestLoadOptions } from '../src/runtime/backbone.ts';
import { nodeBackend } from '../src/runtime/ort-node.ts';
import { tinyResnetModel } from '../models/builders/backbone.ts';
import { ROOT, browserSkipReason, evaluateSource, openApp, startWorker, withBuiltApp } from './_browser.ts';

const MNV2 = resolve(ROOT, '../shared/models/mobilenetv2-12-int8.onnx');
const TINY = resolve(ROOT, 'models/tiny/tiny-resnet/model.onnx');
const BATCH = 8;

/** Images per measurement: Node CPU and WASM, and SwiftShader WebGPU (slow, so fewer). */
const COUNTS: Record<string, { cpu: number; webgpu: number }> = {
  'tiny-resnet': { cpu: 256, webgpu: Number(process.env.DL_BENCH_FEATURES_GPU_TINY ?? 64) },
  'mobilenetv2-12-int8': { cpu: 32, webgpu: Number(process.env.DL_BENCH_FEATURES_GPU_MNV2 ?? 16) },
};

function images(n: number, w: number, h: number): RasterImage[] {
  const rng = new Rng('bench-features');
  return Array.from({ length: n }, () => {
    const img = createRaster(w, h, 3);
    for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(0, 256);
    return img;
  });
}

interface Figure {
  backend: string;
  images: number;
  batchSize: number;
  seconds: number;
  featuresPerSecond: number;
}

async function nodeFigure(bytes: Uint8Array, id: string): Promise<Figure> {
  const entry = findBackbone(id)!;
  const bb = await Backbone.load(bytes, { ...manifestLoadOptions(entry), ort: nodeBackend, device: 'cpu' });
  const { width, height } = entry.preprocess;
  const n = COUNTS[id].cpu;
  const imgs = images(n, width, height);
  await bb.extract(imgs.slice(0, BATCH), { batchSize: BATCH });
  const t0 = performance.now();
  await bb.extract(imgs, { batchSize: BATCH });
  const s = (performance.now() - t0) / 1000;
  await bb.release();
  return {
    backend: 'onnxruntime-node cpu',
    images: n,
    batchSize: BATCH,
    seconds: s,
    featuresPerSecond: n / s,
  };
}

/**
 * Runs in the page against the features worker: per backend, load (bytes or the app's /models/ URL), one warm-up
 * batch, then `extractImages` of `count` images (random pixels from a fixed LCG) timed end to end, as the app
 * calls it (images cloned into the worker, features back).
 */
const WORKER_BENCH = `async ({ manifestId, url, b64, width, height, runs, batch }) => {
  const api = globalThis.__bench.features;
  const bytes = b64 ? Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)) : undefined;
  let s = 12345;
  const make = (n) => Array.from({ length: n }, () => {
    const data = new Uint8ClampedArray(width * height * 3);
    for (let i = 0; i < data.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; data[i] = s >>> 24; }
    return { width, height, channels: 3, data };
  });
  const out = {};
  for (const { label, device, floatPath, floatExecutor, count } of runs) {
    const t0 = performance.now();
    const info = await api.loadBackbone({ manifestId, url, bytes, device, floatPath, floatExecutor });
    const loadMs = performance.now() - t0;
    await api.extractImages(make(batch));
    const imgs = make(count);
    const t1 = performance.now();
    const f = await api.extractImages(imgs);
    const seconds = (performance.now() - t1) / 1000;
    out[label] = {
      backend: (info.floatExecutor === 'tfjs' ? 'tfjs-backend-wasm (XNNPACK) ' : 'onnxruntime-web ') + info.backend + ' (features worker)',
      ranOn: info.backend,
      asked: { device, floatPath, ...(floatExecutor ? { floatExecutor } : {}) },
      floatPath: info.floatPath,
      ...(info.floatExecutor ? { floatExecutor: info.floatExecutor } : {}),
      ...(info.floatPathReason ? { floatPathReason: info.floatPathReason } : {}),
      // Threads need it (threads.ts): without isolation the worker runs onnxruntime on one thread.
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      ...(info.fallbackReason ? { fallbackReason: info.fallbackReason } : {}),
      images: count,
      batchSize: batch,
      loadMs: Math.round(loadMs),
      seconds,
      featuresPerSecond: count / seconds,
      pooledDim: f.pooled[0].length,
      spatialDims: f.spatial[0].dims,
    };
  }
  await api.releaseBackbone();
  return out;
}`;

type BrowserFigures = Record<string, Record<string, unknown>>;

/**
 * The browser runs per backbone: each backend as "auto" picks the path (`wasm`, `webgpu`: for an int8 model the
 * float path or the int8 graph, whichever the features engine measured faster), and for an int8 model also each
 * path forced (`wasmFloat`, `wasmInt8`, `webgpuFloat`), so the ratios of both candidates print side by side.
 */
function runsFor(
  id: string,
): { label: string; device: string; floatPath: string; floatExecutor?: string; count: number }[] {
  const c = COUNTS[id];
  const runs: { label: string; device: string; floatPath: string; floatExecutor?: string; count: number }[] =
    [
      { label: 'wasm', device: 'wasm', floatPath: 'auto', count: c.cpu },
      { label: 'webgpu', device: 'webgpu', floatPath: 'auto', count: c.webgpu },
    ];
  if (id === 'mobilenetv2-12-int8')
    runs.push(
      { label: 'wasmFloat', device: 'wasm', floatPath: 'fp32', count: c.cpu },
      // The same fp32 float path on the tfjs executor (XNNPACK; src/runtime/onnx-tf.ts).
      { label: 'wasmFloatTfjs', device: 'wasm', floatPath: 'fp32', floatExecutor: 'tfjs', count: c.cpu },
      { label: 'wasmInt8', device: 'wasm', floatPath: 'off', count: c.cpu },
      // fp16 where the adapter has shader-f16 (the engine decides; SwiftShader: fp32).
      { label: 'webgpuFloat', device: 'webgpu', floatPath: 'fp16', count: c.webgpu },
    );
  return runs;
}

async function browserFigures(): Promise<BrowserFigures | { skipped: string }> {
  const skip = browserSkipReason();
  if (skip) return { skipped: skip };
  const port = Number(process.env.DL_BENCH_FEATURES_PORT ?? 4215);
  return withBuiltApp(port, async (app) => {
    const page = await openApp(app);
    await startWorker(page, app.dist, 'features');
    const out: BrowserFigures = {};
    const models = [
      {
        id: 'tiny-resnet',
        ok: existsSync(TINY) || 'no models/tiny/tiny-resnet/model.onnx (npm run models:tiny)',
        // As the app loads it: from its own server (the preview serves models/ at /models/).
        arg: { url: '/models/tiny/tiny-resnet/model.onnx' },
      },
      {
        id: 'mobilenetv2-12-int8',
        ok: existsSync(MNV2) || `${MNV2} not found`,
        // As a user picks it: the file's bytes.
        arg: { b64: existsSync(MNV2) ? readFileSync(MNV2).toString('base64') : '' },
      },
    ];
    for (const m of models) {
      if (m.ok !== true) {
        out[m.id] = { skipped: m.ok };
        continue;
      }
      const { width, height } = findBackbone(m.id)!.preprocess;
      try {
        out[m.id] = await evaluateSource(page, WORKER_BENCH, {
          manifestId: m.id,
          ...m.arg,
          width,
          height,
          runs: runsFor(m.id),
          batch: BATCH,
        });
      } catch (e) {
        out[m.id] = { error: e instanceof Error ? e.message : String(e) };
      }
    }
    return out;
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  out['tiny-resnet'] = {
    nodeCpu: await nodeFigure(
      existsSync(TINY) ? new Uint8Array(readFileSync(TINY)) : tinyResnetModel(),
      'tiny-resnet',
    ),
  };
  out['mobilenetv2-12-int8'] = existsSync(MNV2)
    ? { nodeCpu: await nodeFigure(new Uint8Array(readFileSync(MNV2)), 'mobilenetv2-12-int8') }
    : { skipped: `${MNV2} not found` };
  let browser: BrowserFigures | { skipped: string } | { error: string };
  try {
    browser = await browserFigures();
  } catch (e) {
    // Reported (bench/run.ts then exits 1) without losing the Node figures.
    browser = { error: e instanceof Error ? e.message : String(e) };
  }
  if ('skipped' in browser || 'error' in browser) return { ...out, browser };
  for (const [id, figs] of Object.entries(browser)) {
    const node = (out[id]?.nodeCpu as Figure | undefined)?.featuresPerSecond;
    if ('skipped' in figs || 'error' in figs) {
      out[id].browser = figs;
      continue;
    }
    for (const [label, f] of Object.entries(figs as Record<string, { featuresPerSecond: number }>)) {
      const ratio = node ? f.featuresPerSecond / node : null;
      out[id][`browser_${label}`] = { ...f, ratioToNodeCpu: ratio };
      // The issue-16 names, side by side per backbone: browser worker features/s over onnxruntime-node CPU's
      // (`wasmToNode` / `webgpuToNode`: what "auto" picks; `wasmFloatToNode`, `wasmInt8ToNode`,
      // `webgpuFloatToNode`: one path forced).
      out[id][`${label}ToNode`] = ratio;
    }
  }
  return out;
}

/**
 * bench/README.md's issue-16 features rows from saved `npm run bench features` outputs (the JSON `bench/run.ts`
 * prints, or this topic's own), one row per run and backbone, so the table is written by code:
 * `npx tsx bench/features.ts --table run1.json run2.json …`.
 */
export function featuresTableRows(results: Record<string, unknown>[]): string[] {
  const f = (x: unknown, d = 1) => (typeof x === 'number' ? x.toFixed(d) : '—');
  const ratio = (x: unknown) => (typeof x === 'number' ? `${x.toFixed(x < 0.1 ? 3 : 2)}×` : '—');
  const rows: string[] = [];
  results.forEach((raw, i) => {
    const r = ((raw.results as Record<string, unknown> | undefined)?.features ?? raw) as Record<
      string,
      Record<string, { featuresPerSecond?: number; floatPath?: string } | number | undefined>
    >;
    for (const [id, v] of Object.entries(r)) {
      if (!v || typeof v !== 'object' || !('nodeCpu' in v)) continue;
      const fps = (k: string) => (v[k] as { featuresPerSecond?: number } | undefined)?.featuresPerSecond;
      const path = (v.browser_wasm as { floatPath?: string } | undefined)?.floatPath;
      rows.push(
        `| ${i + 1} | ${id} | ${f(fps('nodeCpu'))} | ${f(fps('browser_wasm'))} (${path === 'off' || !path ? 'as is' : `float ${path}`}) | ${ratio(
          v.wasmToNode,
        )} | ${ratio(v.wasmFloatToNode)} | ${ratio(v.wasmInt8ToNode)} | ${ratio(v.webgpuToNode)} | ${ratio(v.webgpuFloatToNode)} |`,
      );
    }
  });
  return rows;
}

export const EXECUTORS_BEGIN = '<!-- features:tfjs:begin -->';
export const EXECUTORS_END = '<!-- features:tfjs:end -->';

/**
 * bench/README.md's executor table (MobileNetV2-int8 in the built features worker on WASM: what "auto" picked,
 * the float path on onnxruntime-web and on the tfjs executor, the int8 graph, each over onnxruntime-node CPU),
 * from saved `npm run bench features` outputs, so the table is written by code:
 * `npx tsx bench/features.ts --executors --out bench/README.md bench/runs/features-tfjs-executor-*.json`.
 */
export function renderExecutorTable(runs: { name: string; json: Record<string, unknown> }[]): string {
  const num = (x: unknown, d: number) => (typeof x === 'number' ? x.toFixed(d) : '—');
  const lines = [
    '| run | load average (start → end) | onnxruntime-node CPU, features/s | auto picked | auto / Node | onnxruntime-web float / Node | tfjs XNNPACK float / Node | onnxruntime-web int8 / Node | tfjs ÷ onnxruntime-web (float) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const { name, json } of runs) {
    const machine = json.machine as { loadavgStart?: number[]; loadavgEnd?: number[] } | undefined;
    const r = ((json.results as Record<string, unknown> | undefined)?.features ?? json) as Record<
      string,
      Record<string, unknown>
    >;
    const v = r['mobilenetv2-12-int8'];
    if (!v) continue;
    const auto = v.browser_wasm as { floatPath?: string; floatExecutor?: string } | undefined;
    const picked =
      !auto?.floatPath || auto.floatPath === 'off'
        ? 'int8 graph'
        : `float ${auto.floatPath} on ${auto.floatExecutor === 'tfjs' ? 'tfjs' : 'onnxruntime-web'}`;
    const node = (v.nodeCpu as { featuresPerSecond?: number } | undefined)?.featuresPerSecond;
    const tf = v.wasmFloatTfjsToNode;
    const ort = v.wasmFloatToNode;
    const ratio = typeof tf === 'number' && typeof ort === 'number' ? tf / ort : undefined;
    lines.push(
      `| ${name} | ${num(machine?.loadavgStart?.[0], 1)} → ${num(machine?.loadavgEnd?.[0], 1)} | ${num(node, 0)} | ${picked} | ${num(v.wasmToNode, 2)}× | ${num(ort, 2)}× | ${num(tf, 2)}× | ${num(v.wasmInt8ToNode, 2)}× | ${num(ratio, 2)}× |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** `text` with the executor block replaced by `body`; throws naming the fix when the markers are missing. */
export function rewriteExecutorBlock(text: string, body: string, file: string): string {
  const i = text.indexOf(EXECUTORS_BEGIN);
  const j = text.indexOf(EXECUTORS_END);
  if (i < 0 || j < i)
    throw new Error(
      `${file}: no ${EXECUTORS_BEGIN} … ${EXECUTORS_END} block — fix: add the two marker lines`,
    );
  return `${text.slice(0, i + EXECUTORS_BEGIN.length)}\n${body}${text.slice(j)}`;
}

// `npx tsx bench/features.ts` runs it alone; `--table <json>…` prints the README rows of saved runs.
if (import.meta.url === `file://${process.argv[1]}`) {
  const load = (files: string[]) =>
    files.map((f) => ({
      name: basename(f, '.json'),
      json: JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>,
    }));
  if (process.argv[2] === '--executors' && process.argv[3] === '--out' && process.argv[4]) {
    const file = process.argv[4];
    const body = renderExecutorTable(load(process.argv.slice(5)));
    writeFileSync(file, rewriteExecutorBlock(readFileSync(file, 'utf8'), body, file));
  } else if (process.argv[2] === '--table')
    console.log(
      featuresTableRows(
        process.argv.slice(3).map((p) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>),
      ).join('\n'),
    );
  else console.log(JSON.stringify(await run(), null, 2));
}

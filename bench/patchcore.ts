/**
 * PatchCore cost (issue 13's targets: scoring one 224² image against a 10k-patch bank ≤ 20 ms in Node and
 * ≤ 100 ms in the browser worker on WASM; coreset selection of 100k patches ≤ 10 s in Node):
 * - `score`: `benchmarkPatchCoreScoring` (`src/app/patchcore.ts`): one image's s16 + s32 maps of MobileNetV2
 *   (96×14×14 + 160×7×7 → 196 patches × 256) against a 10 000 × 256 bank: in Node with the Node entry points'
 *   runtime (`nodePatchCoreRuntime`: the search on onnxruntime-node, one thread per core; `score.ort`,
 *   `nodeOrtPredictMs`), on tfjs WASM and CPU in Node (the previous Node path and the fallback; `score.wasm`,
 *   `nodePredictMs`) and in the built app's train worker in Chromium (tfjs WASM, the worker's threads): the
 *   whole `predict` (patch features, nearest neighbour, the 224² map with σ = 4, reweighting) and the search
 *   alone; median of 7 after a warm-up. Same-run references, interleaved with the head's searches (wall and CPU
 *   ms; CPU time counts every thread): the bare WASM product (`matMulMs`, the tfjs search's floor) and the
 *   previous unfused search (`unfusedNearestMs`). `browserToNode` = browser / Node WASM predict,
 *   `ortToWasm` = Node ORT / Node WASM predict.
 * - `coreset`: greedy selection of 1 % of 100 000 patches × 256 (projection to 128 by tfjs matMul, then the
 *   greedy scan). Patches are real when ../shared is there (the magnetic tiles' s16 + s32 features at native
 *   resolution, short side 448: ~1100 patches per tile), else a Gaussian mixture, which `source` says. Same-run
 *   reference: the plain scan (every row's full distance every step), timed over 10 steps and scaled. Then the
 *   Node path, the same scan split over worker_threads (`threadedGreedyCoreset`), checked to pick the same rows
 *   (`threadedSamePicks`), and the projection on onnxruntime-node (`nodeProjectionMs`); `nodeCoreset100kMs` =
 *   ORT projection + threaded greedy (the Node path), `coreset100kMs` = tfjs projection + the sequential greedy
 *   (the browser's path and the reference).
 *
 * `npx tsx bench/patchcore.ts --table FILE` prints bench/README.md's PatchCore row of a saved `npm run bench
 * patchcore` JSON (FILE, or `-` for standard input).
 * - `resolution`: what each input geometry costs per tile image (s16 + s32 taps, onnxruntime-node CPU): fixed
 *   224², the image's own size, short side 448, letterbox 224×320, 224² tiles; with the frame and s16 cells.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { InputResolution } from '../src/core/resolution.ts';
import { Rng } from '../src/core/rng.ts';
import { prepareTfForNode } from '../src/runtime/heads/tf-node.ts';
import { browserSkipReason, evaluateSource, openApp, startWorker, withBuiltApp } from './_browser.ts';

const SHARED = resolve(import.meta.dirname, '../../shared');
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** The train worker's `benchmarkPatchCore` in the built app (tfjs WASM, the worker's threads). */
const WORKER_BENCH = `async (arg) => {
  const api = globalThis.__bench.train;
  const errors = () => (globalThis.__benchErrors ?? []).join('; ');
  try {
    return await api.benchmarkPatchCore(arg);
  } catch (e) {
    throw new Error((e && e.message ? e.message : String(e)) + (errors() ? ' (' + errors() + ')' : ''));
  }
}`;

async function browserScore(runs: number): Promise<Record<string, unknown>> {
  const skip = browserSkipReason();
  if (skip) return { skipped: skip };
  const port = Number(process.env.DL_BENCH_PATCHCORE_PORT ?? 4217);
  return withBuiltApp(port, async (app) => {
    const page = await openApp(app);
    await startWorker(page, app.dist, 'train');
    const isolated = await page.evaluate(() => globalThis.crossOriginIsolated);
    const threads = await page.evaluate(() => navigator.hardwareConcurrency);
    return {
      ...(await evaluateSource<Record<string, unknown>>(page, WORKER_BENCH, { bankRows: 10_000, runs })),
      crossOriginIsolated: isolated,
      hardwareConcurrency: threads,
    };
  });
}

export async function run(): Promise<Record<string, unknown>> {
  prepareTfForNode();
  const { initTf, tf } = await import('../src/runtime/tf.ts');
  const { projectRows } = await import('../src/runtime/heads/patchcore.ts');
  const { benchmarkPatchCoreScoring } = await import('../src/app/patchcore.ts');
  const { nodePatchCoreRuntime, nodeThreads, threadedGreedyCoreset } =
    await import('../src/runtime/heads/patchcore-node.ts');
  const runtime = nodePatchCoreRuntime();
  const { patchFeatures } = await import('../src/core/patchcore/features.ts');
  const { greedyCoreset } = await import('../src/core/patchcore/coreset.ts');
  const rng = new Rng('bench-patchcore');
  const D = 256;
  const out: Record<string, unknown> = {
    targets: { scoreMs: 20, browserScoreMs: 100, coreset100kMs: 10_000 },
  };
  const score: Record<string, unknown> = {};
  await initTf('wasm');
  const ort = await benchmarkPatchCoreScoring({ bankRows: 10_000, runs: 7, runtime });
  const wasm = await benchmarkPatchCoreScoring({ bankRows: 10_000, runs: 7 });
  // References in the same run, same shapes, interleaved with the head's search so that all three see the
  // same load: the bare product (the floor of the search) and the previous search (matMul, ×2, subtraction as
  // three kernels, then arg-min). Wall and CPU time (tfjs WASM runs one thread in Node, so CPU time is the
  // compute without the waits of a loaded machine).
  {
    const { PatchCoreHead, patchCoreOptions } = await import('../src/runtime/heads/patchcore.ts');
    const bank = rng.normalArray(10_000 * D);
    const q = rng.normalArray(196 * D);
    const head = PatchCoreHead.fromBank(bank, D, patchCoreOptions({ taps: ['s16', 's32'] }), [224, 224]);
    const ortHead = PatchCoreHead.fromBank(
      bank,
      D,
      patchCoreOptions({ taps: ['s16', 's32'] }),
      [224, 224],
      runtime,
    );
    const rows = tf.tensor2d(bank, [10_000, D]);
    const bankT = tf.transpose(rows);
    const bankSq = tf.tidy(() => tf.sum(tf.square(rows), 1));
    const cpuMs = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const runs: Record<'head' | 'ort' | 'unfused' | 'matMul', { wall: number[]; cpu: number[] }> = {
      head: { wall: [], cpu: [] },
      ort: { wall: [], cpu: [] },
      unfused: { wall: [], cpu: [] },
      matMul: { wall: [], cpu: [] },
    };
    const cases: Record<keyof typeof runs, () => Promise<unknown>> = {
      head: () => head.nearest(q, 196),
      ort: () => ortHead.nearest(q, 196),
      unfused: async () => {
        const y = tf.tidy(() => {
          const x = tf.tensor2d(q, [196, D]);
          return tf.argMin(tf.sub(tf.expandDims(bankSq, 0), tf.mul(tf.matMul(x, bankT), 2)), 1);
        });
        await y.data();
        y.dispose();
      },
      matMul: async () => {
        const y = tf.tidy(() => tf.matMul(tf.tensor2d(q, [196, D]), bankT));
        await y.data();
        y.dispose();
      },
    };
    for (let i = 0; i < 10; i++)
      for (const k of Object.keys(cases) as (keyof typeof runs)[]) {
        const t = performance.now();
        const c = cpuMs();
        await cases[k]();
        if (i === 0) continue; // warm-up (packs the product's weights once)
        runs[k].wall.push(performance.now() - t);
        runs[k].cpu.push(cpuMs() - c);
      }
    head.dispose();
    ortHead.dispose();
    rows.dispose();
    bankT.dispose();
    bankSq.dispose();
    const m = (k: keyof typeof runs) => ({ wall: median(runs[k].wall), cpu: median(runs[k].cpu) });
    const [h, oh, u, mm] = [m('head'), m('ort'), m('unfused'), m('matMul')];
    score.ort = {
      ...ort,
      threads: nodeThreads(),
      interleaved: { nearestMs: oh.wall, nearestCpuMs: oh.cpu },
      nearestToWasmNearest: oh.wall / h.wall,
    };
    score.wasm = {
      ...wasm,
      interleaved: {
        nearestMs: h.wall,
        nearestCpuMs: h.cpu,
        unfusedNearestMs: u.wall,
        unfusedNearestCpuMs: u.cpu,
        matMulMs: mm.wall,
        matMulCpuMs: mm.cpu,
      },
      nearestToMatMul: h.cpu / mm.cpu,
      nearestToUnfused: h.cpu / u.cpu,
    };
  }
  await initTf('cpu');
  score.cpu = await benchmarkPatchCoreScoring({ bankRows: 10_000, runs: 3 });
  await initTf('wasm');
  try {
    const b = await browserScore(7);
    score.browser = b;
    if (typeof b.predictMs === 'number') {
      out.browserPredictMs = b.predictMs;
      out.browserToNode = b.predictMs / wasm.predictMs;
    }
  } catch (e) {
    score.browser = { error: e instanceof Error ? e.message : String(e) };
  }
  out.score = score;
  out.nodeOrtPredictMs = ort.predictMs;
  out.nodeOrtNearestMs = ort.nearestMs;
  out.nodePredictMs = wasm.predictMs;
  out.ortToWasm = ort.predictMs / wasm.predictMs;

  // Coreset: 100k patches, real if the shared model and tiles are there.
  const N = 100_000;
  let x: Float32Array;
  let source: string;
  const model = resolve(SHARED, 'models/mobilenetv2-12-int8.onnx');
  if (existsSync(model)) {
    const { Backbone, findBackbone, manifestLoadOptions } = await import('../src/runtime/backbone.ts');
    const { nodeBackend } = await import('../src/runtime/ort-node.ts');
    const { decodeImage } = await import('../src/runtime/decode.ts');
    const bb = await Backbone.load(new Uint8Array(readFileSync(model)), {
      ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!),
      ort: nodeBackend,
      dynamicInput: true,
    });
    const dir = resolve(SHARED, 'data/magnetic-tile-compact');
    const items = (
      JSON.parse(readFileSync(resolve(dir, 'manifest.json'), 'utf8')) as {
        items: { file: string; split: string }[];
      }
    ).items.filter((i) => i.split === 'train');
    x = new Float32Array(N * D);
    let rows = 0;
    for (const it of items) {
      if (rows >= N) break;
      const img = (await decodeImage(readFileSync(resolve(dir, it.file)), it.file)).raster;
      const [t] = await bb.extractTaps([img], {
        taps: ['s16', 's32'],
        resolution: { mode: 'native', shortSide: 448 },
      });
      const pf = patchFeatures([t.maps.s16, t.maps.s32]);
      const take = Math.min(pf.rows, N - rows);
      x.set(pf.data.subarray(0, take * D), rows * D);
      rows += take;
    }
    // What each input geometry costs (issue 13, native resolution): ms per tile image for the s16 + s32 taps.
    const sample = await Promise.all(
      items
        .slice(0, 8)
        .map(async (it) => (await decodeImage(readFileSync(resolve(dir, it.file)), it.file)).raster),
    );
    const resolutions: Record<string, InputResolution> = {
      fixed224: { mode: 'fixed' },
      native: { mode: 'native' },
      native448: { mode: 'native', shortSide: 448 },
      letterbox224x320: { mode: 'letterbox', width: 224, height: 320 },
      tile224: { mode: 'tile', shortSide: 224 },
    };
    const perImage: Record<string, { ms: number; frame: string; cells: number }> = {};
    for (const [name, resolution] of Object.entries(resolutions)) {
      await bb.extractTaps(sample.slice(0, 1), { taps: ['s16', 's32'], resolution });
      const t = performance.now();
      const f = await bb.extractTaps(sample, { taps: ['s16', 's32'], resolution });
      perImage[name] = {
        ms: (performance.now() - t) / sample.length,
        frame: `${f[0].frame.width}×${f[0].frame.height}`,
        cells: f[0].maps.s16.dims[1] * f[0].maps.s16.dims[2],
      };
    }
    out.resolution = perImage;
    await bb.release();
    source =
      rows === N
        ? `magnetic-tile train normals, native short side 448 (${N} patches)`
        : `only ${rows} real patches`;
    if (rows < N) x = x.subarray(0, rows * D);
  } else {
    const centres = Array.from({ length: 200 }, () => rng.normalArray(D));
    x = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      const c = centres[rng.int(0, 200)];
      for (let k = 0; k < D; k++) x[i * D + k] = c[k] * 3 + rng.normal();
    }
    source = 'Gaussian mixture (200 clusters; ../shared missing)';
  }
  const n = x.length / D;
  // CPU time next to wall time: both steps run on one thread here, so CPU time is what an idle core would take.
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const c0 = cpuNow();
  const t0 = performance.now();
  const p = await projectRows(x, n, D, 128, 0);
  const t1 = performance.now();
  const c1 = cpuNow();
  const picked = greedyCoreset(p, n, 128, Math.round(n * 0.01), { projectionDim: 128 });
  const t2 = performance.now();
  const c2 = cpuNow();
  // Same-run reference: the plain scan (every row's full distance to the new centre, every step), timed
  // over 10 steps of the same data and scaled to the selection — what the skip and the early stop save.
  const sel = picked.length;
  const t3 = performance.now();
  const minD = new Float64Array(n).fill(Infinity);
  for (let k = 0; k < 10; k++) {
    const c = picked[k] * 128;
    for (let i = 0; i < n; i++) {
      // Four accumulators, as the greedy's own kernel, so the reference is not slowed by one long chain.
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      const r = i * 128;
      for (let j = 0; j < 128; j += 4) {
        const a0 = p[r + j] - p[c + j];
        const a1 = p[r + j + 1] - p[c + j + 1];
        const a2 = p[r + j + 2] - p[c + j + 2];
        const a3 = p[r + j + 3] - p[c + j + 3];
        s0 += a0 * a0;
        s1 += a1 * a1;
        s2 += a2 * a2;
        s3 += a3 * a3;
      }
      const s = s0 + s1 + (s2 + s3);
      if (s < minD[i]) minD[i] = s;
    }
  }
  const plainScanMs = ((performance.now() - t3) / 10) * sel;
  const plainScanCpuMs = ((cpuNow() - c2) / 10) * sel;
  // The Node path: the projection on onnxruntime-node, the same scan over worker_threads (on the tfjs
  // projection, so its picks can be compared with the sequential ones); CPU time here counts every thread.
  const threads = nodeThreads();
  const c4 = cpuNow();
  const t4 = performance.now();
  await runtime.project!(x, n, D, 128, 0);
  const nodeProjectionMs = performance.now() - t4;
  const nodeProjectionCpuMs = cpuNow() - c4;
  const c5 = cpuNow();
  const t5 = performance.now();
  const pickedT = await threadedGreedyCoreset(p, n, 128, sel, { seed: 0, threads });
  const threadedGreedyMs = performance.now() - t5;
  const threadedGreedyCpuMs = cpuNow() - c5;
  const threadedSamePicks =
    pickedT.length === picked.length && pickedT.every((v: number, i: number) => v === picked[i]);
  out.nodeCoreset100kMs = nodeProjectionMs + threadedGreedyMs;
  out.coreset = {
    plainScanMs,
    plainScanCpuMs,
    greedyToPlainScan: (c2 - c1) / plainScanCpuMs,
    source,
    patches: n,
    dim: D,
    selected: picked.length,
    projectionMs: t1 - t0,
    greedyMs: t2 - t1,
    coreset100kMs: t2 - t0,
    projectionCpuMs: c1 - c0,
    greedyCpuMs: c2 - c1,
    coreset100kCpuMs: c2 - c0,
    threads,
    nodeProjectionMs,
    nodeProjectionCpuMs,
    threadedGreedyMs,
    threadedGreedyCpuMs,
    threadedSamePicks,
    threadedToSequential: threadedGreedyMs / (t2 - t1),
    nodeCoreset100kMs: nodeProjectionMs + threadedGreedyMs,
  };
  if (!threadedSamePicks)
    (out.coreset as Record<string, unknown>).error =
      'the threaded coreset picked other rows than the sequential scan — fix: src/runtime/heads/patchcore-node.ts';
  return out;
}

/** A number as the README prints it: ms below 10 s, else seconds. */
function fmt(ms: unknown, unit: 'ms' | 's' = 'ms'): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return unit === 's' ? `${(ms / 1000).toFixed(ms < 1000 ? 2 : 1)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

/**
 * bench/README.md's PatchCore table of saved `npm run bench patchcore` outputs (each the whole JSON or just its
 * `results.patchcore`), one row per run, labelled by `labels`.
 */
export function patchcoreTable(runs: Record<string, unknown>[], labels: string[]): string {
  type Obj = Record<string, unknown>;
  const at = (o: unknown, ...path: string[]): unknown =>
    path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Obj)[k] : undefined), o);
  const header = [
    'run',
    'Node ORT predict / nearest',
    'Node WASM predict / nearest',
    'search CPU: ORT / WASM / bare matMul',
    'browser worker predict / nearest',
    'coreset 100k, Node (ORT projection + threaded greedy)',
    'greedy wall: threaded / sequential',
    'greedy CPU: threaded / sequential',
    'same picks',
  ];
  const rows = runs.map((whole, i) => {
    const r = (at(whole, 'results', 'patchcore') ?? whole) as Obj;
    const ort = at(r, 'score', 'ort');
    const wasm = at(r, 'score', 'wasm');
    const br = at(r, 'score', 'browser');
    const c = at(r, 'coreset');
    return [
      labels[i] ?? `run ${i + 1}`,
      `${fmt(at(ort, 'predictMs'))} / ${fmt(at(ort, 'nearestMs'))} (${String(at(ort, 'threads') ?? '?')} threads)`,
      `${fmt(at(wasm, 'predictMs'))} / ${fmt(at(wasm, 'nearestMs'))}`,
      `${fmt(at(ort, 'interleaved', 'nearestCpuMs'))} / ${fmt(at(wasm, 'interleaved', 'nearestCpuMs'))} / ${fmt(at(wasm, 'interleaved', 'matMulCpuMs'))}`,
      at(br, 'predictMs') === undefined
        ? String(at(br, 'skipped') ?? at(br, 'error') ?? '—')
        : `${fmt(at(br, 'predictMs'))} / ${fmt(at(br, 'nearestMs'))}`,
      `${fmt(at(c, 'nodeCoreset100kMs'), 's')} (${fmt(at(c, 'nodeProjectionMs'), 's')} + ${fmt(at(c, 'threadedGreedyMs'), 's')})`,
      `${fmt(at(c, 'threadedGreedyMs'), 's')} / ${fmt(at(c, 'greedyMs'), 's')}`,
      `${fmt(at(c, 'threadedGreedyCpuMs'), 's')} / ${fmt(at(c, 'greedyCpuMs'), 's')}`,
      String(at(c, 'threadedSamePicks') ?? '—'),
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

if (process.argv[1] && import.meta.filename === resolve(process.argv[1]) && process.argv[2] === '--table') {
  const files = process.argv.slice(3);
  if (files.length === 0) {
    process.stderr.write('usage: npx tsx bench/patchcore.ts --table FILE… (saved bench JSON, - for stdin)\n');
    process.exit(2);
  }
  const texts = files.map((f) => readFileSync(f === '-' ? 0 : f, 'utf8'));
  // A saved run may carry the bench's stderr lines before its JSON.
  const json = (t: string) => JSON.parse(t.slice(t.indexOf('{'))) as Record<string, unknown>;
  // Each row is labelled by its file's name without the extension ('run1-0550.json' → 'run1-0550').
  console.log(
    patchcoreTable(
      texts.map(json),
      files.map((f) => basename(f).replace(/\.json$/, '')),
    ),
  );
}

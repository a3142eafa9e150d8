/**
 * Diffusion speed on the tiny models: per-step UNet time (one batched cond/uncond call, 8×8 latents; in the
 * browser the engine's own timing of each UNet call in the worker, `EngineResult.unetMs`) and
 * end-to-end generation time (encode prompts → VAE encode → N steps → decode → paste back), on
 * - Node CPU (onnxruntime-node), for tiny SDXL-inpaint, its int4 variant and tiny SD-inpaint;
 * - the browser worker (onnxruntime-web) on WASM and WebGPU (SwiftShader here: a CPU emulation, so WebGPU
 *   figures on this machine say nothing about a real GPU), via Playwright against `vite preview` of `DL_DIST`.
 *   Skipped with DL_BENCH_BROWSER=0 or when the build is missing.
 * Tiny models measure the pipeline's overhead, not SDXL's cost.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT, browserSkipReason, evaluateSource, median, withBuiltApp } from './_browser.ts';
import { nodeBackend } from '../src/runtime/ort-node.ts';
import { createDiffusionEngine } from '../workers/diffusion.engine.ts';
import { tinyDiffusionModels } from '../models/builders/diffusion.ts';
import { fromFloat32, tensor, toFloat32 } from '../src/core/tensor.ts';
import { Rng } from '../src/core/rng.ts';
import type { GenerateRequest } from '../src/core/diffusion/index.ts';

const STEPS = Number(process.env.DL_BENCH_DIFFUSION_STEPS ?? 10);

function request(steps: number): GenerateRequest {
  const rng = new Rng(1);
  const image = { width: 64, height: 64, channels: 3 as const, data: new Uint8ClampedArray(64 * 64 * 3) };
  for (let i = 0; i < image.data.length; i++) image.data[i] = rng.int(0, 256);
  const mask = { width: 64, height: 64, channels: 1 as const, data: new Uint8ClampedArray(64 * 64) };
  for (let y = 16; y < 48; y++) mask.data.fill(255, y * 64 + 16, y * 64 + 48);
  return {
    image,
    mask,
    prompt: 'white marks on the wall',
    negativePrompt: 'smooth, plain, black, dark, shadow',
    steps,
    guidanceScale: 20,
    strength: 0.99,
    seed: 3,
  };
}

async function nodeFigures(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const { manifest, files } of await tinyDiffusionModels()) {
    const engine = createDiffusionEngine({ ort: nodeBackend });
    const source = {
      kind: 'files' as const,
      files: new Map([...files].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])])),
    };
    const t0 = performance.now();
    await engine.load({ manifest, source, backend: 'cpu' });
    const loadMs = performance.now() - t0;
    // UNet alone: the batched (uncond, cond) call the loop makes per step.
    const unetComp = manifest.components.unet!;
    const unetSession = await nodeBackend.createSession(files.get(unetComp.file)!, {
      externalData: unetComp.externalData?.map((p) => ({ path: p.split('/').pop()!, data: files.get(p)! })),
    });
    const rng = new Rng(2);
    const sdxl = manifest.layout === 'sdxl-inpaint';
    const f32 = {
      sample: tensor('float32', rng.normalArray(2 * 9 * 64), [2, 9, 8, 8]),
      timestep: sdxl
        ? tensor('int64', BigInt64Array.of(500n), [1])
        : tensor('float32', Float32Array.of(500), []),
      encoder_hidden_states: tensor('float32', rng.normalArray(2 * 77 * (sdxl ? 2048 : 768)), [
        2,
        77,
        sdxl ? 2048 : 768,
      ]),
      ...(sdxl
        ? {
            text_embeds: tensor('float32', rng.normalArray(2 * 1280), [2, 1280]),
            time_ids: tensor('float32', new Float32Array(12).fill(64), [2, 6]),
          }
        : {}),
    };
    // In the graph's own dtypes (the fp16 variant takes fp16 halves).
    const feeds = Object.fromEntries(
      Object.entries(f32).map(([name, t]) => {
        const type = unetSession.inputs.find((i) => i.name === name)?.type ?? t.type;
        return [
          name,
          t.type === 'float32' && type === 'float16' ? fromFloat32(toFloat32(t), type, t.dims) : t,
        ];
      }),
    );
    const unetMs: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = performance.now();
      await unetSession.run(feeds);
      unetMs.push(performance.now() - t);
    }
    await unetSession.release();
    await engine.generate(request(2)); // warm-up
    const e2e: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await engine.generate(request(STEPS));
      e2e.push(performance.now() - t);
    }
    await engine.unload();
    out[manifest.id] = {
      loadMs: Math.round(loadMs),
      unetStepMedianMs: +median(unetMs.slice(5)).toFixed(3),
      endToEndMedianMs: +median(e2e).toFixed(1),
      steps: STEPS,
    };
  }
  return out;
}

/** Runs in the page: downloads the tiny SDXL model from the app's server, then times each backend. */
const BROWSER_BENCH = `async ({ req, plan }) => {
  const api = globalThis.__defectlabModels;
  const id = 'tiny-sdxl-inpaint';
  await api.downloadModel(id);
  if (api.models.error) throw new Error(api.models.error.message);
  const manifest = JSON.parse(JSON.stringify(api.manifests.find((m) => m.id === id)));
  const image = { ...req.image, data: Uint8ClampedArray.from(Object.values(req.image.data)) };
  const mask = { ...req.mask, data: Uint8ClampedArray.from(Object.values(req.mask.data)) };
  const out = {};
  for (const [backend, steps] of Object.entries(plan)) {
    const t0 = performance.now();
    const info = await api.client().load({ manifest, source: { kind: 'cache' }, backend });
    const loadMs = performance.now() - t0;
    const stamps = [];
    const t1 = performance.now();
    const r = await api.client().generate({ ...req, image, mask, steps }, {
      onProgress: (p) => { if (p.stage === 'denoise') stamps.push(performance.now()); },
    });
    const e2e = performance.now() - t1;
    const gaps = stamps.slice(1).map((t, i) => t - stamps[i]).sort((a, b) => a - b);
    // UNet-only: the engine times each UNet call inside the worker (no messaging or scheduler in it). The first
    // call compiles kernels/shaders (seconds on WebGPU), so it is reported apart from the median of the rest.
    const unet = r.unetMs.slice(1).sort((a, b) => a - b);
    out[backend] = {
      ranOn: info.components.unet.backend,
      loadMs: Math.round(loadMs),
      unetFirstCallMs: r.unetMs.length ? +r.unetMs[0].toFixed(1) : null,
      unetStepMedianMs: unet.length ? +unet[unet.length >> 1].toFixed(2) : null,
      stepMedianMs: gaps.length ? +gaps[gaps.length >> 1].toFixed(1) : null,
      endToEndMs: Math.round(e2e),
      steps,
    };
  }
  return out;
}`;

async function browserFigures(): Promise<Record<string, unknown>> {
  const skip = browserSkipReason();
  if (skip) return { skipped: skip };
  if (!existsSync(resolve(ROOT, 'models/tiny/tiny-sdxl-inpaint/manifest.json')))
    return { skipped: 'no tiny models (npm run models:tiny)' };
  return withBuiltApp(Number(process.env.DL_BENCH_DIFFUSION_PORT ?? 4213), async (app) => {
    const page = await app.browser.newPage();
    await page.goto(app.url);
    await page.waitForFunction(() => '__defectlabModels' in globalThis, undefined, { timeout: 60_000 });
    const req = request(0);
    // SwiftShader WebGPU is ~100× slower than WASM here: fewer steps keep the bench short.
    const plan = { wasm: STEPS, webgpu: Math.min(STEPS, 3) };
    return evaluateSource<Record<string, unknown>>(page, BROWSER_BENCH, { req, plan });
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const ortVersion = JSON.parse(
    readFileSync(resolve(ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8'),
  ).version;
  const node = await nodeFigures();
  let browser: Record<string, unknown>;
  try {
    browser = await browserFigures();
  } catch (e) {
    browser = { error: e instanceof Error ? e.message : String(e) };
  }
  return { ortVersion, nodeCpu: node, browserTinySdxl: browser };
}

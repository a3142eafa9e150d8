/**
 * Parity: the same inpainting request through the browser's diffusion worker (onnxruntime-web: WebGPU under
 * SwiftShader, then the WASM EP) and through Node (the same engine over onnxruntime-node CPU) must give final
 * latents within 1e-3 max abs difference. The tiny SDXL UNet's first conv has 9 input channels — the case that
 * gave wrong results with 'onnxruntime-web/webgpu' on SwiftShader. The browser reads the model from its cache
 * after downloading it from the app's own server, as a user would.
 */
import { expect, test } from './fixtures.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { createDiffusionEngine } from '../../workers/diffusion.engine.ts';
import type { ModelManifest } from '../../src/runtime/models/manifest.ts';

const ID = 'tiny-sdxl-inpaint';
const W = 64;
const H = 48;
const TOL = 1e-3;

/** A deterministic textured image and a rectangular mask, as plain arrays (they cross into the page as JSON). */
function scene(): { image: number[]; mask: number[] } {
  const image: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < 3; c++) image.push((x * 37 + y * 11 + c * 71 + ((x * y) % 13) * 5) % 256);
  const mask: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) mask.push(x >= 16 && x < 40 && y >= 8 && y < 32 ? 255 : 0);
  return { image, mask };
}

const settings = {
  prompt: 'copper metal scratches',
  negativePrompt: 'smooth, plain, black, dark, shadow',
  steps: 5,
  guidanceScale: 7.5,
  strength: 0.99,
  seed: 7,
};

async function nodeLatents(): Promise<Float32Array> {
  const dir = resolve(process.cwd(), 'models/tiny', ID);
  const manifest = JSON.parse(readFileSync(resolve(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  const engine = createDiffusionEngine({
    ort: nodeBackend,
    readLocal: async (p) => new Uint8Array(readFileSync(p)),
  });
  await engine.load({ manifest, source: { kind: 'dir', dir }, backend: 'cpu' });
  const { image, mask } = scene();
  const r = await engine.generate({
    ...settings,
    image: { width: W, height: H, channels: 3, data: Uint8ClampedArray.from(image) },
    mask: { width: W, height: H, channels: 1, data: Uint8ClampedArray.from(mask) },
  });
  await engine.unload();
  return r.latents;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('browser worker (WebGPU and WASM) and Node CPU give the same final latents within 1e-3', async ({
  page,
}) => {
  const reference = await nodeLatents();
  expect(reference.every(Number.isFinite)).toBe(true);

  await page.goto('/');
  await page.waitForFunction(() => '__defectlabModels' in globalThis);
  const { image, mask } = scene();
  const results = await page.evaluate(
    async ({ id, image, mask, settings, W, H }) => {
      type Api = {
        manifests: { id: string }[];
        downloadModel(id: string): Promise<void>;
        models: { error: { message: string } | null };
        client(): {
          load(
            req: unknown,
          ): Promise<{ components: Record<string, { backend: string; fallbackReason: string }> }>;
          generate(req: unknown): Promise<{ latents: Float32Array }>;
        };
      };
      const api = (globalThis as unknown as { __defectlabModels: Api }).__defectlabModels;
      await api.downloadModel(id);
      if (api.models.error) throw new Error(api.models.error.message);
      const manifest = JSON.parse(JSON.stringify(api.manifests.find((m) => m.id === id)));
      const req = {
        ...settings,
        image: { width: W, height: H, channels: 3, data: Uint8ClampedArray.from(image) },
        mask: { width: W, height: H, channels: 1, data: Uint8ClampedArray.from(mask) },
      };
      const out: Record<string, { latents: number[]; backends: string[]; reasons: string[]; ms: number }> =
        {};
      for (const backend of ['webgpu', 'wasm']) {
        const info = await api.client().load({ manifest, source: { kind: 'cache' }, backend });
        const t0 = performance.now();
        const r = await api.client().generate(req);
        out[backend] = {
          latents: Array.from(r.latents),
          backends: Object.values(info.components).map((c) => c.backend),
          reasons: Object.values(info.components).map((c) => c.fallbackReason),
          ms: performance.now() - t0,
        };
      }
      return out;
    },
    { id: ID, image, mask, settings, W, H },
  );

  // Each ran where it was asked to (no silent fallback would make the WebGPU comparison meaningless).
  expect(results.webgpu.backends, results.webgpu.reasons.join('; ')).toEqual(Array(5).fill('webgpu'));
  expect(results.wasm.backends).toEqual(Array(5).fill('wasm'));
  const dWebgpu = maxAbsDiff(results.webgpu.latents, reference);
  const dWasm = maxAbsDiff(results.wasm.latents, reference);
  console.log(
    JSON.stringify({
      maxAbsDiff: { webgpu: dWebgpu, wasm: dWasm },
      ms: { webgpu: results.webgpu.ms, wasm: results.wasm.ms },
    }),
  );
  expect(dWebgpu).toBeLessThan(TOL);
  expect(dWasm).toBeLessThan(TOL);
  // The latents are not trivially equal-by-zero: the model did something.
  expect(Math.max(...Array.from(reference, Math.abs))).toBeGreaterThan(0.1);
});

/**
 * Server vs browser: a server `generate` job with the diffusion generator (tiny SD-inpaint on onnxruntime-node
 * CPU, through the HTTP API of a real server on 127.0.0.1) and the app's diffusion worker in Chromium
 * (onnxruntime-web WASM, model downloaded into the app's cache as a user would) give final latents within 1e-3
 * max abs for the same image, mask, prompt and seed. (MemSeg pixels are identical: tests/unit/server-jobs.test.ts
 * against the synth worker's engine.)
 */
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { buildServer } from '../../server/app.ts';
import { encodePng } from '../../src/runtime/decode.ts';
import { expect, test } from './fixtures.ts';

const W = 64;
const H = 48;
const settings = {
  prompt: 'copper metal scratches',
  negativePrompt: 'smooth, plain, black, dark, shadow',
  steps: 5,
  guidanceScale: 7.5,
  strength: 0.99,
};
const SEED = 7;

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

test('tiny SD-inpaint: a server diffusion job and the browser diffusion worker agree on the final latents (max abs 1e-3)', async ({
  page,
}) => {
  const server = buildServer({
    options: { models: join(import.meta.dirname, '../../models/tiny'), device: 'cpu' },
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { image, mask } = scene();
    const png = (data: number[], channels: 1 | 3) =>
      Buffer.from(encodePng({ width: W, height: H, channels, data: Uint8ClampedArray.from(data) })).toString(
        'base64',
      );
    const post = await fetch(`${url}/api/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        kind: 'generate',
        generator: 'diffusion',
        images: [png(image, 3)],
        masks: [png(mask, 1)],
        n: 1,
        seed: SEED,
        diffusion: { model: 'tiny-sd-inpaint', ...settings },
      }),
    });
    expect(post.status).toBe(202);
    const { id } = (await post.json()) as { id: string };
    let state = '';
    for (let i = 0; i < 600 && state !== 'done'; i++) {
      state = ((await (await fetch(`${url}/api/jobs/${id}`)).json()) as { state: string }).state;
      expect(['queued', 'running', 'done']).toContain(state);
      if (state !== 'done') await new Promise((r) => setTimeout(r, 100));
    }
    const files = unzipSync(
      new Uint8Array(await (await fetch(`${url}/api/jobs/${id}/results`)).arrayBuffer()),
    );
    const server = new Float32Array(files['latents/0000.f32'].slice().buffer);

    await page.goto('/');
    await page.waitForFunction(() => '__defectlabModels' in globalThis);
    const browser = await page.evaluate(
      async ({ image, mask, settings, W, H, seed }) => {
        type Api = {
          manifests: { id: string }[];
          downloadModel(id: string): Promise<void>;
          models: { error: { message: string } | null };
          client(): {
            load(req: unknown): Promise<unknown>;
            generate(req: unknown): Promise<{ latents: Float32Array }>;
          };
        };
        const api = (globalThis as unknown as { __defectlabModels: Api }).__defectlabModels;
        await api.downloadModel('tiny-sd-inpaint');
        if (api.models.error) throw new Error(api.models.error.message);
        const manifest = JSON.parse(JSON.stringify(api.manifests.find((m) => m.id === 'tiny-sd-inpaint')));
        await api.client().load({ manifest, source: { kind: 'cache' }, backend: 'wasm' });
        const r = await api.client().generate({
          ...settings,
          seed,
          image: { width: W, height: H, channels: 3, data: Uint8ClampedArray.from(image) },
          mask: { width: W, height: H, channels: 1, data: Uint8ClampedArray.from(mask) },
        });
        return Array.from(r.latents);
      },
      { image, mask, settings, W, H, seed: SEED },
    );
    expect(browser.length).toBe(server.length);
    let max = 0;
    let peak = 0;
    for (let i = 0; i < server.length; i++) {
      max = Math.max(max, Math.abs(server[i] - browser[i]));
      peak = Math.max(peak, Math.abs(server[i]));
    }
    // Not trivially equal-by-zero: the model did something.
    expect(peak).toBeGreaterThan(0.1);
    expect(max).toBeLessThanOrEqual(1e-3);
  } finally {
    await server.close();
  }
});

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startWorker } from '../../bench/_browser.ts';
import { expect, test } from './fixtures.ts';
import { MOBILENET_INT8, mtManifest, waitForApp } from './helpers.ts';
import { cosine } from '../unit/similarity.ts';

/**
 * The float path of the real MobileNetV2-int8 (`src/runtime/dequantize.ts`) runs in the built app's features
 * worker on WASM and on SwiftShader WebGPU — where the int8 graph cannot (its DequantizeLinear kernel is wrong
 * there, so it falls back to WASM) — and its features agree with the same float path in onnxruntime-node: the
 * same graph through three sets of fp32 kernels, so only summation order differs. Tolerances: pooled and
 * spatial cosine ≥ 0.99999 per image, pooled max |Δ| ≤ 1e-4 of the vector's peak, WASM and WebGPU alike
 * (measured: cosine > 0.999999, max |Δ| ≤ 1.4e-6 of the peak).
 * The same holds for the fp32 float path on the tfjs executor (XNNPACK, `src/runtime/onnx-tf.ts`). "auto" on
 * WASM measures the three candidates and says which it took. Six real magnetic tiles (../shared).
 */
interface Fig {
  info: {
    backend: string;
    floatPath: string;
    floatExecutor?: string;
    floatPathReason: string;
    fallbackReason: string;
  };
  pooled: number[][];
  spatial: number[][];
}

const IN_PAGE = `async ({ b64, images, device, floatPath, floatExecutor }) => {
  const api = globalThis.__bench.features;
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const info = await api.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes, device, floatPath, floatExecutor });
  const rasters = images.map((i) => ({ width: i.width, height: i.height, channels: i.channels,
    data: Uint8ClampedArray.from(atob(i.b64), (c) => c.charCodeAt(0)) }));
  const f = await api.extractImages(rasters);
  await api.releaseBackbone();
  return { info, pooled: f.pooled.map((p) => Array.from(p)), spatial: f.spatial.map((s) => Array.from(s.data)) };
}`;

test('the float path runs on WASM and on SwiftShader WebGPU and agrees with onnxruntime-node', async ({
  page,
}) => {
  test.setTimeout(900_000);
  const items = mtManifest().items.filter((_, i) => i % 35 === 0);
  // onnxruntime-node's features (and the decoded rasters both sides use) from a tsx child: see its header.
  const child = spawnSync(
    'npx',
    ['tsx', path.join(import.meta.dirname, 'float-path-reference.ts'), ...items.map((i) => i.file)],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  expect(child.status, child.stderr).toBe(0);
  const ref = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
    images: { width: number; height: number; channels: number; b64: string }[];
    pooled: number[][];
    spatial: number[][];
  };
  const model = new Uint8Array(readFileSync(MOBILENET_INT8));

  await page.goto('/');
  await waitForApp(page);
  await startWorker(page, process.env.DL_DIST ?? 'dist', 'features');
  const arg = {
    b64: Buffer.from(model).toString('base64'),
    images: ref.images,
  };
  const run = (device: string, floatPath: string, floatExecutor?: string) =>
    page.evaluate(
      `(${IN_PAGE})(${JSON.stringify({ ...arg, device, floatPath, floatExecutor })})`,
    ) as Promise<Fig>;

  const figures: Record<string, unknown> = {};
  for (const [label, device, executor] of [
    ['wasm', 'wasm', 'onnxruntime'],
    ['webgpu', 'webgpu', 'onnxruntime'],
    // The tfjs executor (XNNPACK on tfjs-backend-wasm, src/runtime/onnx-tf.ts) in the same built worker.
    ['wasm-tfjs', 'wasm', 'tfjs'],
  ] as const) {
    const f = await run(device, 'fp32', executor);
    // SwiftShader has no shader-f16, and the float graph has no DequantizeLinear left: it stays on WebGPU.
    expect(f.info.backend, JSON.stringify(f.info)).toBe(device);
    expect(f.info.floatPath).toBe('fp32');
    expect(f.info.floatExecutor).toBe(executor);
    expect(f.pooled).toHaveLength(items.length);
    const cos = f.pooled.map((p, i) => cosine(p, ref.pooled[i]));
    const spatialCos = f.spatial.map((s, i) => cosine(s, ref.spatial[i]));
    const maxRel = f.pooled.map((p, i) => {
      const peak = Math.max(...ref.pooled[i].map(Math.abs));
      return Math.max(...p.map((v, k) => Math.abs(v - ref.pooled[i][k]))) / peak;
    });
    figures[label] = {
      pooledCosineMin: Math.min(...cos),
      spatialCosineMin: Math.min(...spatialCos),
      maxRel,
    };
    for (const c of [...cos, ...spatialCos]) expect(c).toBeGreaterThanOrEqual(0.99999);
    for (const r of maxRel) expect(r).toBeLessThanOrEqual(1e-4);
  }
  // The int8 graph on SwiftShader WebGPU falls back to WASM (the DequantizeLinear self-check), and says why.
  const int8 = await run('webgpu', 'off');
  expect(int8.info.backend).toBe('wasm');
  expect(int8.info.fallbackReason).toMatch(/DequantizeLinear/);
  // "auto" on WASM times the int8 graph and the float path on both executors in this worker, and reports the
  // measurement it decided by.
  const auto = await run('wasm', 'auto');
  expect(auto.info.floatPathReason).toMatch(
    /^auto: measured: float path \(fp32(, tfjs XNNPACK)?\) [\d.]+ ms on wasm vs int8 [\d.]+ ms.*; (onnxruntime|tfjs XNNPACK) ran it in [\d.]+ ms\)$/,
  );
  expect(['fp32', 'off']).toContain(auto.info.floatPath);
  figures.auto = auto.info;
  console.log(JSON.stringify({ floatPathE2e: figures }));
});

/**
 * Features per second of the real MobileNetV2-int8 (224×224) and the tiny ResNet-shaped backbone (64×64) on
 * onnxruntime-node CPU, batch 8, after one warm-up batch. Reads ../shared in place; skips MobileNetV2 (with a
 * reason) when the file is absent. Browser figures (WebGPU/WASM) come from the Train tab's own timing, printed by
 * the Playwright test tests/e2e/train.spec.ts, not from here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type RasterImage, createRaster } from '../src/core/image.ts';
import { Rng } from '../src/core/rng.ts';
import { Backbone, findBackbone, manifestLoadOptions } from '../src/runtime/backbone.ts';
import { nodeBackend } from '../src/runtime/ort-node.ts';
import { tinyResnetModel } from '../models/builders/backbone.ts';

const MNV2 = resolve(import.meta.dirname, '../../shared/models/mobilenetv2-12-int8.onnx');

function images(n: number, w: number, h: number): RasterImage[] {
  const rng = new Rng('bench-features');
  return Array.from({ length: n }, () => {
    const img = createRaster(w, h, 3);
    for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(0, 256);
    return img;
  });
}

async function measure(bytes: Uint8Array, id: string, n: number, batchSize: number) {
  const entry = findBackbone(id)!;
  const bb = await Backbone.load(bytes, { ...manifestLoadOptions(entry), ort: nodeBackend, device: 'cpu' });
  const { width, height } = entry.preprocess;
  const imgs = images(n, width, height);
  await bb.extract(imgs.slice(0, batchSize), { batchSize });
  const t0 = performance.now();
  await bb.extract(imgs, { batchSize });
  const s = (performance.now() - t0) / 1000;
  await bb.release();
  return { backend: 'onnxruntime-node cpu', images: n, batchSize, seconds: s, featuresPerSecond: n / s };
}

export async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  out['tiny-resnet'] = await measure(tinyResnetModel(), 'tiny-resnet', 256, 32);
  out['mobilenetv2-12-int8'] = existsSync(MNV2)
    ? await measure(new Uint8Array(readFileSync(MNV2)), 'mobilenetv2-12-int8', 32, 8)
    : { skipped: `${MNV2} not found` };
  out.browser = {
    note: 'WebGPU/WASM features/s come from the built app: tests/e2e/train.spec.ts prints featuresPerSecond per device (MobileNetV2-int8, 224×224, batch 8); compare with the Node CPU figure above',
  };
  return out;
}

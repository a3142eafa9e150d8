import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRaster } from '../../src/core/image.ts';
import { imagenetPreprocess, preprocessBatch } from '../../src/core/preprocess.ts';
import { float32, toFloat32 } from '../../src/core/tensor.ts';
import {
  Backbone,
  CachedFeatures,
  findBackbone,
  identifyBackbone,
  manifestLoadOptions,
  rewriteForFeatures,
} from '../../src/runtime/backbone.ts';
import type { FeatureKey, StoredFeatures } from '../../src/runtime/db/types.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { createSession, nodeBackend } from '../../src/runtime/ort-node.ts';

/** The real ImageNet-pretrained MobileNetV2-int8 (../shared/models/README.md), read in place. */
const MODEL = resolve(import.meta.dirname, '../../../shared/models/mobilenetv2-12-int8.onnx');
const DATA = resolve(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');

async function tiles(n: number, label: 0 | 1) {
  const m = JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as {
    items: { file: string; label: number; split: string }[];
  };
  const items = m.items.filter((i) => i.label === label && i.split === 'test').slice(0, n);
  return Promise.all(
    items.map(async (i) => (await decodeImage(readFileSync(resolve(DATA, i.file)), i.file)).raster),
  );
}

const cosine = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
};

describe('MobileNetV2-int8 backbone (real pretrained model, onnxruntime-node CPU)', () => {
  const bytes = new Uint8Array(readFileSync(MODEL));

  it('the rewrite finds the quantized pooling and exposes dequantized pooled + spatial outputs', () => {
    const { info } = rewriteForFeatures(bytes, 'mobilenetv2');
    expect(info.inputName).toBe('input');
    expect(info.originalOutputs).toEqual(['output']);
    expect(info.quantized).toBe(true);
    // The graph already dequantizes the pool's input (tensor '627'); the rewrite reuses it.
    expect(info.spatialOutput).toBe('627');
    expect(info.pooledOutput).toMatch(/^464_quantized__defectlab/);
  });

  it('without the manifest: [1280] pooled and the pool input [1280, 7, 7]; pooled = mean of spatial; deterministic', async () => {
    const bb = await Backbone.load(bytes, { id: 'mobilenetv2-12-int8', ort: nodeBackend, device: 'cpu' });
    const imgs = await tiles(3, 0);
    const a = await bb.extract(imgs, { batchSize: 2 });
    const b = await bb.extract(imgs, { batchSize: 3 });
    expect(a.pooled.map((p) => p.length)).toEqual([1280, 1280, 1280]);
    expect(a.spatial[0].dims).toEqual([1280, 7, 7]);
    // Same input → same features, whatever the batching.
    for (let i = 0; i < 3; i++) expect(Array.from(b.pooled[i])).toEqual(Array.from(a.pooled[i]));
    // The pooled vector is the (int8-requantized) average of the spatial map: within one quantization step.
    const sp = a.spatial[0].data;
    let maxErr = 0;
    for (let c = 0; c < 1280; c++) {
      let s = 0;
      for (let p = 0; p < 49; p++) s += sp[c * 49 + p];
      maxErr = Math.max(maxErr, Math.abs(s / 49 - a.pooled[0][c]));
    }
    expect(maxErr).toBeLessThan(0.05);
    expect(a.pooled[0].some((v) => v > 0)).toBe(true);
    await bb.release();
  });

  it('with the manifest (found by sha256): the 1280×7×7 pool input, as in Node; spatialTensor picks another map', async () => {
    const entry = await identifyBackbone(bytes);
    expect(entry?.id).toBe('mobilenetv2-12-int8');
    expect(findBackbone('mobilenetv2-12-int8')).toBe(entry);
    const bb = await Backbone.load(bytes, { ...manifestLoadOptions(entry!), ort: nodeBackend });
    const f = await bb.extract(await tiles(2, 0));
    expect(f.spatial[1].dims).toEqual(entry!.spatial);
    expect(f.spatial[1].dims).toEqual([1280, 7, 7]);
    expect(f.pooled[1].length).toBe(1280);
    await bb.release();
    // The finer stride-16 block output, dequantized with its own scale and zero point.
    const fine = await Backbone.load(bytes, {
      id: 'mobilenetv2-12-int8',
      ort: nodeBackend,
      spatialTensor: { tensor: '426_quantized', scale: '426_scale', zeroPoint: '426_zero_point' },
    });
    const g = await fine.extract(await tiles(2, 0));
    expect(g.spatial[1].dims).toEqual([96, 14, 14]);
    expect(fine.info.spatialOutput).toBe('426_quantized__defectlab_float');
    expect(Array.from(g.pooled[1])).toEqual(Array.from(f.pooled[1]));
    await fine.release();
  });

  it('keeps the classifier intact: logits equal the unrewritten model exactly', async () => {
    const bb = await Backbone.load(bytes, { id: 'mobilenetv2-12-int8', ort: nodeBackend });
    const original = await createSession(bytes, { backend: 'cpu' });
    const imgs = await tiles(2, 1);
    const { data, dims } = preprocessBatch(imgs, imagenetPreprocess());
    const ref = toFloat32((await original.run({ input: float32(data, dims) }))['output']);
    const got = await bb.logits(imgs);
    expect(Array.from(got[0])).toEqual(Array.from(ref.subarray(0, 1000)));
    expect(Array.from(got[1])).toEqual(Array.from(ref.subarray(1000, 2000)));
    // Sanity of the classifier: a flat gray image and a tile photo are not confused for the same thing.
    const gray = createRaster(224, 224, 3, 128);
    const [g] = await bb.logits([gray]);
    expect(cosine(g, got[0])).toBeLessThan(0.99);
    await original.release();
    await bb.release();
  });

  it('features are meaningful: two normal tiles are closer than a normal tile and a flat gray image', async () => {
    const bb = await Backbone.load(bytes, { id: 'mobilenetv2-12-int8', ort: nodeBackend });
    const [n1, n2] = await tiles(2, 0);
    const gray = createRaster(200, 256, 1, 128);
    const f = await bb.extract([n1, n2, gray], { pooledOnly: true });
    expect(cosine(f.pooled[0], f.pooled[1])).toBeGreaterThan(cosine(f.pooled[0], f.pooled[2]));
    await bb.release();
  });

  it('caches by (backbone, sha256, preprocessing): a second run extracts nothing', async () => {
    const bb = await Backbone.load(bytes, { id: 'mobilenetv2-12-int8', ort: nodeBackend });
    const mem = new Map<string, StoredFeatures>();
    const k = (x: FeatureKey) => `${x.backbone}|${x.sha256}|${x.preprocessing}`;
    const store = {
      getFeatures: async (x: FeatureKey) => mem.get(k(x)),
      putFeatures: async (x: FeatureKey, f: StoredFeatures) => void mem.set(k(x), f),
    };
    const imgs = await tiles(2, 0);
    let loads = 0;
    const items = imgs.map((img, i) => ({ sha256: `sha-${i}`, load: () => (loads++, img) }));
    const cache = new CachedFeatures(bb, store);
    const first = await cache.extract(items);
    expect([cache.hits, cache.misses, loads]).toEqual([0, 2, 2]);
    const second = await cache.extract(items);
    expect([cache.hits, cache.misses, loads]).toEqual([2, 2, 2]);
    expect(Array.from(second[1].pooled)).toEqual(Array.from(first[1].pooled));
    expect(second[0].spatial?.dims).toEqual([1280, 7, 7]);
    expect([...mem.keys()][0]).toContain('mobilenetv2-12-int8|sha-0|stretch-224x224');
    await bb.release();
  });

  it('names the problem for a file that is not an ONNX classifier', () => {
    expect(() => rewriteForFeatures(new Uint8Array([1, 2, 3, 4, 5]), 'notes.txt')).toThrow(
      /BackboneGraphError: notes.txt.*fix:/,
    );
  });
});

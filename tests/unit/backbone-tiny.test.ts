import { describe, expect, it } from 'vitest';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  Backbone,
  findBackbone,
  manifestLoadOptions,
  rewriteForFeatures,
} from '../../src/runtime/backbone.ts';
import { createSession, nodeBackend } from '../../src/runtime/ort-node.ts';
import { float32, toFloat32 } from '../../src/core/tensor.ts';
import { preprocessBatch } from '../../src/core/preprocess.ts';
import { tinyResnetModel } from '../../models/builders/backbone.ts';

function noise(seed: number) {
  const img = createRaster(80, 72, 3);
  const rng = new Rng(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(0, 256);
  return img;
}

describe('tiny ResNet-shaped backbone (float graph: GlobalAveragePool → Flatten → Gemm)', () => {
  it('is deterministic to build and the rewrite picks the float pool input and output', () => {
    const a = tinyResnetModel();
    expect(Array.from(tinyResnetModel())).toEqual(Array.from(a));
    const { info } = rewriteForFeatures(a, 'tiny');
    expect(info.quantized).toBe(false);
    expect(info.inputName).toBe('pixel_values');
    expect(info.pooledOutput).toMatch(/^GlobalAveragePool/);
    expect(info.spatialOutput).toMatch(/^Relu/);
  });

  it('extracts [32] pooled and [32, 8, 8] spatial; pooled is exactly the spatial mean; logits unchanged', async () => {
    const bytes = tinyResnetModel();
    const entry = findBackbone('tiny-resnet')!;
    const bb = await Backbone.load(bytes, { ...manifestLoadOptions(entry), ort: nodeBackend });
    const imgs = [noise(1), noise(2)];
    const f = await bb.extract(imgs);
    expect(f.pooled[0].length).toBe(32);
    expect(f.spatial[0].dims).toEqual([32, 8, 8]);
    for (let c = 0; c < 32; c++) {
      let s = 0;
      for (let p = 0; p < 64; p++) s += f.spatial[1].data[c * 64 + p];
      expect(f.pooled[1][c]).toBeCloseTo(s / 64, 5);
    }
    expect(f.pooled[0].some((v) => v > 0)).toBe(true);
    const ref = await createSession(bytes, {});
    const { data, dims } = preprocessBatch(imgs, entry.preprocess);
    const logits = toFloat32((await ref.run({ pixel_values: float32(data, dims) })).logits);
    const got = await bb.logits(imgs);
    expect(Array.from(got[1])).toEqual(Array.from(logits.subarray(10, 20)));
    await ref.release();
    await bb.release();
  });
});

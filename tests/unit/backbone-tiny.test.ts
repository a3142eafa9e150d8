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
import { GraphBuilder, randomWeights } from '../../models/builders/graph.ts';

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

describe('rewrite of a ResNet-export-shaped graph (AveragePool 4×4 → Flatten → Gemm, input "data")', () => {
  function flattenModel(): Uint8Array {
    const rng = new Rng(3);
    const g = new GraphBuilder('flatten-net');
    const x = g.input('data', 'float32', ['batch', 3, 8, 8]);
    const w = g.init('w', randomWeights(rng, 4 * 3 * 9, 0.3), [4, 3, 3, 3]);
    const h = g.op('Relu', [
      g.op('Conv', [x, w], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
    ]);
    const pooled = g.op('AveragePool', [h], { kernel_shape: [4, 4], strides: [4, 4] });
    const flat = g.op('Flatten', [pooled], { axis: 1 });
    const fw = g.init('fc', randomWeights(rng, 3 * 4, 0.5), [3, 4]);
    g.op('Gemm', [flat, fw], { transB: 1 }, 'logits');
    g.output('logits', 'float32', ['batch', 3]);
    return g.toModel({ opset: 17 });
  }

  it('pooled = the Flatten output, spatial = the input of the pooling node, and both are right', async () => {
    const bytes = flattenModel();
    const { info } = rewriteForFeatures(bytes, 'flatten-net');
    expect(info.inputName).toBe('data');
    expect(info.pooledOutput).toMatch(/^Flatten/);
    expect(info.spatialOutput).toMatch(/^Relu/);
    const bb = await Backbone.load(bytes, { id: 'flatten-net', ort: nodeBackend });
    expect(bb.preprocess.width).toBe(8); // read from the graph's input shape
    const f = await bb.extract([noise(4)]);
    expect(f.spatial[0].dims).toEqual([4, 4, 4]);
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let p = 0; p < 16; p++) s += f.spatial[0].data[c * 16 + p];
      expect(f.pooled[0][c]).toBeCloseTo(s / 16, 5);
    }
    await bb.release();
  });
});

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { averagePrecision } from '../../src/core/metrics/index.ts';
import { Backbone, findBackbone, manifestLoadOptions } from '../../src/runtime/backbone.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { trainBceHead } from '../../src/runtime/heads/bce.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { initTf } from '../../src/runtime/tf.ts';

/**
 * Backbone + BCE head on real photos: MobileNetV2-int8 pooled features of the magnetic-tile set, trained on the
 * 100 train normals and the 10 few-shot real defects, scored on the 100 test images. The bar for the
 * few-shot setting is AP ≥ 0.6 (a run here gives ≈ 0.75 with the default hyper-parameters; random ranking 0.5).
 */
const SHARED = resolve(import.meta.dirname, '../../../shared');
const DATA = resolve(SHARED, 'data/magnetic-tile-compact');

describe('real data: MobileNetV2-int8 features → BCE head', () => {
  it('few-shot (100 normals + 10 real defects) reaches test AP ≥ 0.6 with the default hyper-parameters', async () => {
    const m = JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as {
      items: { file: string; label: number; split: string }[];
    };
    const bb = await Backbone.load(
      new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-12-int8.onnx'))),
      {
        ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!),
        ort: nodeBackend,
      },
    );
    const features = async (items: typeof m.items) => {
      const imgs = await Promise.all(
        items.map(async (i) => (await decodeImage(readFileSync(resolve(DATA, i.file)), i.file)).raster),
      );
      return (await bb.extract(imgs, { pooledOnly: true, batchSize: 16 })).pooled;
    };
    const train = m.items.filter((i) => i.split === 'train' || i.split === 'fewshot');
    const test = m.items.filter((i) => i.split === 'test');
    expect([train.length, test.length]).toEqual([110, 100]);
    const [xtr, xte] = [await features(train), await features(test)];
    await initTf('wasm');
    const { head } = await trainBceHead(
      xtr,
      train.map((i) => i.label),
      { seed: 0 },
    );
    const ap = averagePrecision(
      await head.predict(xte),
      test.map((i) => i.label),
    );
    expect(ap).toBeGreaterThanOrEqual(0.6);
    head.dispose();
    await bb.release();
  }, 600_000);
});

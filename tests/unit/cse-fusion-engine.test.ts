import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/core/hash.ts';
import { type RasterImage, crop } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { blurDefect } from '../../src/core/synth/blur.ts';
import { proceduralTexture } from '../../src/core/synth/textures.ts';
import type { Label, Split } from '../../src/core/dataset.ts';
import { openStore } from '../../src/runtime/db/store.ts';
import type { NewImage } from '../../src/runtime/db/types.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { TrainEngine } from '../../workers/train.engine.ts';

/**
 * The Train tab's CSE path (the train engine in-thread, as the worker runs it) on the real MobileNetV2-int8, whose
 * manifest has taps s16 + s32: the head trains on the paper's two fused maps (96 + 160 channels on the 14×14
 * grid), scores on the 2×2-pooled 7×7 grid, and a saved head is re-evaluated through the same fused maps.
 */
const MODEL = resolve(import.meta.dirname, '../../../shared/models/mobilenetv2-12-int8.onnx');
const surface = proceduralTexture('weave', 320, 320, 1, new Rng('fusion-surface'));

async function record(img: RasterImage, i: number, label: Label, split: Split, mask?: RasterImage) {
  const png = encodePng(img);
  const rec: NewImage = {
    ...(mask
      ? {
          mask: {
            blob: new Blob([encodePng(mask) as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
            width: mask.width,
            height: mask.height,
          },
        }
      : {}),
    name: `img-${i}.png`,
    blob: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
    mime: 'image/png',
    width: img.width,
    height: img.height,
    channels: img.channels,
    sha256: await sha256Hex(png),
    thumbnail: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
    label,
    split,
  };
  return rec;
}

describe('CSE two-map fusion in the train engine (MobileNetV2 taps)', () => {
  it('trains on s16 + upsampled s32, scores on the pooled 7×7 grid, re-evaluates the saved head', async () => {
    const store = await openStore(`cse-fusion-${Math.random()}`);
    const ds = await store.createDataset({ name: 'weave', source: 'test' });
    const rng = new Rng(3);
    const cropAt = () => crop(surface, { x: rng.int(0, 256), y: rng.int(0, 256), width: 64, height: 64 });
    const recs: NewImage[] = [];
    let i = 0;
    for (let k = 0; k < 6; k++) recs.push(await record(cropAt(), i++, 'normal', 'train'));
    for (let k = 0; k < 3; k++) recs.push(await record(cropAt(), i++, 'normal', 'test'));
    for (let k = 0; k < 3; k++) {
      const d = blurDefect(cropAt(), { sigma: [2, 4], perlin_scale: [0, 2] }, 50 + k);
      recs.push(await record(d.image, i++, 'defect', 'test', d.mask));
    }
    await store.addImages(ds.id, recs);
    const engine = new TrainEngine({ ort: nodeBackend, store: async () => store, decode: decodeImage });
    await engine.loadBackbone({
      bytes: new Uint8Array(readFileSync(MODEL)),
      name: 'mobilenetv2-12-int8.onnx',
      device: 'cpu',
    });
    const res = await engine.train({
      datasetId: ds.id,
      head: 'cse',
      tfBackend: 'wasm',
      cse: { epochs: 2, stepsPerEpoch: 1, pairsPerStep: 2, generators: ['blur'] },
    });
    const ev = res.evaluation!;
    expect(ev.heatmapSize).toEqual([7, 7]);
    expect(ev.heatmaps![0].length).toBe(49);
    // The best-validation checkpoint: 20 % of the 6 normals (one) held out, a validation loss per epoch.
    expect(res.history.every((h) => Number.isFinite(h.valLoss))).toBe(true);
    const re = await engine.evaluateHead(res.headId!);
    expect(Array.from(re.evaluation!.scores)).toEqual(Array.from(ev.scores));
    const files = await engine.exportHead(res.headId!);
    const meta = JSON.parse(new TextDecoder().decode(files[2].data));
    expect(meta.model.input.shape).toEqual([96 + 160, 14, 14]);
    expect(meta.model.input.fused).toMatch(/s16.*s32/);
  }, 600_000);
});

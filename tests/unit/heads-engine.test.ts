import 'fake-indexeddb/auto';
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
import { tinyResnetModel } from '../../models/builders/backbone.ts';
import { TrainEngine } from '../../workers/train.engine.ts';

/**
 * The train engine in-thread (as the worker runs it), on the tiny ResNet-shaped backbone, a fake-indexeddb store
 * and a procedural dataset: weave crops as normals, blur defects as accepted synthetic defects (train) and as
 * test defects.
 */
const surface = proceduralTexture('weave', 256, 256, 1, new Rng('engine-surface'));

async function record(
  img: RasterImage,
  i: number,
  label: Label,
  split: Split,
  synthetic: boolean,
): Promise<NewImage> {
  const png = encodePng(img);
  return {
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
    ...(synthetic ? { provenance: { generator: 'blur', parameters: {}, seed: i, createdAt: 0 } } : {}),
  };
}

async function setup() {
  const store = await openStore(`engine-test-${Math.random()}`);
  const ds = await store.createDataset({ name: 'procedural', source: 'test' });
  const rng = new Rng(5);
  const cropAt = () => crop(surface, { x: rng.int(0, 192), y: rng.int(0, 192), width: 64, height: 64 });
  const blur = (img: RasterImage, s: number) =>
    blurDefect(img, { sigma: [2, 4], perlin_scale: [0, 2] }, s).image;
  const recs: NewImage[] = [];
  let i = 0;
  for (let k = 0; k < 12; k++) recs.push(await record(cropAt(), i++, 'normal', 'train', false));
  for (let k = 0; k < 8; k++) recs.push(await record(blur(cropAt(), 100 + k), i++, 'defect', 'train', true));
  for (let k = 0; k < 6; k++) recs.push(await record(cropAt(), i++, 'normal', 'test', false));
  for (let k = 0; k < 6; k++) recs.push(await record(blur(cropAt(), 200 + k), i++, 'defect', 'test', false));
  await store.addImages(ds.id, recs);
  const engine = new TrainEngine({ ort: nodeBackend, store: async () => store, decode: decodeImage });
  await engine.loadBackbone({ bytes: tinyResnetModel(), name: 'tiny-resnet.onnx', device: 'cpu' });
  return { engine, store, datasetId: ds.id };
}

describe('train engine (in-thread)', () => {
  it('recognises the picked tiny model, caches features, trains BCE, evaluates, saves and exports', async () => {
    const { engine, datasetId } = await setup();
    expect((await engine.backboneInfo())?.id).toBe('user:tiny-resnet.onnx:' + tinyResnetModel().length);
    const first = await engine.extractDataset(datasetId);
    expect(first.images.length).toBe(32);
    expect(first.cached).toBe(0);
    const again = await engine.extractDataset(datasetId);
    expect(again.cached).toBe(32);
    expect(Array.from(again.pooled[3])).toEqual(Array.from(first.pooled[3]));

    const epochs: number[] = [];
    const res = await engine.train(
      { datasetId, head: 'bce', tfBackend: 'wasm', supervised: { epochs: 5, learningRate: 1e-3 } },
      'job-1',
      (p) => p.stage === 'train' && epochs.push(p.done),
    );
    expect(res.counts).toEqual({ normal: 12, synthetic: 8, real: 0, test: 12, val: 0 });
    expect(epochs.length).toBe(res.history.length);
    expect(res.tfBackend).toBe('wasm');
    const ev = res.evaluation!;
    expect(ev.scores.length).toBe(12);
    expect(ev.thresholdSource).toBe('train (optimistic)');
    expect(ev.metrics.tp + ev.metrics.fn).toBe(6);
    expect(Number.isFinite(ev.metrics.ap)).toBe(true);
    const heads = await engine.listHeads(datasetId);
    expect(heads.map((h) => h.id)).toEqual([res.headId]);
    expect(heads[0].preprocessing).toMatch(/^stretch-64x64/); // not in the manifest: size read from the graph
    const files = await engine.exportHead(res.headId!);
    expect(files.map((f) => f.name.split('.').slice(-2).join('.'))).toEqual([
      'model.json',
      'weights.bin',
      'metadata.json',
    ]);
    const meta = JSON.parse(new TextDecoder().decode(files[2].data));
    expect(meta.backbone).toBe(heads[0].backbone);
    expect(meta.threshold).toBe(heads[0].threshold);
  });

  it('spatial head gives heat maps on the feature grid; CSE trains with on-the-fly defects; stop returns early', async () => {
    const { engine, datasetId } = await setup();
    const sp = await engine.train({
      datasetId,
      head: 'spatial',
      tfBackend: 'wasm',
      supervised: { epochs: 3, learningRate: 1e-3 },
      save: false,
    });
    expect(sp.headId).toBeNull();
    expect(sp.evaluation?.heatmaps?.length).toBe(12);
    expect(sp.evaluation?.heatmapSize).toEqual([8, 8]);

    let jobSeen = '';
    const cse = await engine.train(
      {
        datasetId,
        head: 'cse',
        tfBackend: 'wasm',
        cse: { epochs: 5, stepsPerEpoch: 2, pairsPerStep: 4, generators: ['blur'] },
      },
      'job-cse',
      (p) => {
        // Stop after the second epoch, like the Stop button.
        if (p.stage === 'train' && p.done === 2 && !jobSeen) {
          jobSeen = 'job-cse';
          engine.cancel('job-cse');
        }
      },
    );
    expect(cse.stopped).toBe('cancelled');
    expect(cse.history.length).toBe(2);
    expect(cse.evaluation?.scores.every((s) => s >= 0 && s <= 2)).toBe(true);
    expect(cse.headId).not.toBeNull();
  });

  it('names the problem when the stream has no defects for a supervised head', async () => {
    const { engine, datasetId } = await setup();
    await expect(
      engine.train({
        datasetId,
        head: 'bce',
        tfBackend: 'wasm',
        stream: { mode: 'concat', synthetic: false },
      }),
    ).rejects.toThrow(/NotEnoughDataError.*fix:/);
  });
});

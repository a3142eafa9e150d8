/**
 * The experiments engine in-thread, as the worker runs it: a dataset in the store (fake-indexeddb), the real
 * MobileNetV2-int8 on onnxruntime-node, tfjs CPU heads. A second run of the same experiment id — what the panel
 * does after a reload — resumes every cell from the store's RunRecords instead of training again.
 */
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { openStore } from '../../src/runtime/db/store.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { MOBILENET_PATH } from '../../server/features.ts';
import { ExperimentsEngine } from '../../workers/experiments.engine.ts';

function tile(seed: number, defect: boolean): RasterImage {
  const rng = new Rng(seed);
  const img = createRaster(64, 64, 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 110 + rng.normal() * 6;
  if (defect) for (let y = 20; y < 44; y++) for (let x = 30 - 2; x < 30 + 2; x++) img.data[y * 64 + x] = 20;
  return img;
}

function record(name: string, img: RasterImage, label: 'normal' | 'defect', split: 'train' | 'test') {
  const png = encodePng(img);
  return {
    name,
    blob: new Blob([png], { type: 'image/png' }),
    mime: 'image/png',
    width: img.width,
    height: img.height,
    channels: img.channels,
    sha256: createHash('sha256').update(png).digest('hex'),
    thumbnail: new Blob([png], { type: 'image/png' }),
    label,
    split,
    defectClass: label === 'defect' ? 'crack' : undefined,
  };
}

describe('experiments engine (in-thread, store + real backbone)', () => {
  it('runs a grid from the store and resumes it after a "reload"', { timeout: 300_000 }, async () => {
    const store = await openStore('experiments-engine-test');
    const ds = await store.createDataset({ name: 'tiles', source: 'test' });
    const images = [
      ...Array.from({ length: 10 }, (_, i) => record(`n${i}.png`, tile(i, false), 'normal', 'train')),
      ...Array.from({ length: 6 }, (_, i) => record(`tn${i}.png`, tile(100 + i, false), 'normal', 'test')),
      ...Array.from({ length: 6 }, (_, i) => record(`td${i}.png`, tile(200 + i, true), 'defect', 'test')),
    ];
    await store.addImages(ds.id, images);
    const deps = {
      ort: nodeBackend,
      store: async () => store,
      decode: decodeImage,
      autoDevice: async () => 'cpu' as const,
    };
    const bytes = new Uint8Array(readFileSync(MOBILENET_PATH));
    const spec = {
      generators: ['memseg' as const],
      nAug: [6],
      seeds: [0],
      heads: ['bce' as const],
      epochs: 3,
    };

    const engine = new ExperimentsEngine(deps);
    await engine.loadBackbone({ bytes, device: 'cpu' });
    const first = await engine.runExperiment({
      datasetId: ds.id,
      experimentId: 'e1',
      spec,
      tfBackend: 'cpu',
    });
    expect(first.cells.length).toBe(3); // bce + the two baselines
    expect(first.cells.every((c) => c.status === 'done')).toBe(true);
    expect(first.table.map((r) => r.label)).toContain('baseline: k-NN cosine distance');
    expect(first.resumed).toBe(0);

    // A fresh engine (a reloaded page) with the same experiment id skips every stored cell.
    const reloaded = new ExperimentsEngine(deps);
    await reloaded.loadBackbone({ bytes, device: 'cpu' });
    expect((await reloaded.storedCells(ds.id, 'e1')).length).toBe(3);
    const again = await reloaded.runExperiment({
      datasetId: ds.id,
      experimentId: 'e1',
      spec,
      tfBackend: 'cpu',
    });
    expect(again.resumed).toBe(3);
    expect(again.table[0].stats.ap.mean).toBe(first.table[0].stats.ap.mean);
  });
});

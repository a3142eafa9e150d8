/**
 * The experiments engine in-thread, as the worker runs it: a dataset in the store (fake-indexeddb), the real
 * MobileNetV2-int8 on onnxruntime-node, tfjs CPU heads. A second run of the same experiment id — what the panel
 * does after a reload — resumes every cell from the store's RunRecords instead of training again, and a new
 * experiment over the same images takes every feature (pooled and spatial, real and synthetic images) from the
 * store's feature cache: the backbone does not run again.
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
import type { OrtBackend } from '../../src/runtime/ort.ts';
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

/** nodeBackend, counting the backbone's session runs. */
function countingOrt(counter: { runs: number }): OrtBackend {
  return {
    ...nodeBackend,
    flavour: nodeBackend.flavour,
    version: nodeBackend.version,
    availableBackends: () => nodeBackend.availableBackends(),
    async createSession(model, opts) {
      const s = await nodeBackend.createSession(model, opts);
      return Object.assign(Object.create(s) as typeof s, {
        run: (feeds: Parameters<typeof s.run>[0], outputs?: Parameters<typeof s.run>[1]) => {
          counter.runs++;
          return s.run(feeds, outputs);
        },
      });
    },
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
    const counter = { runs: 0 };
    const deps = {
      ort: countingOrt(counter),
      store: async () => store,
      decode: decodeImage,
      autoDevice: async () => 'cpu' as const,
    };
    const bytes = new Uint8Array(readFileSync(MOBILENET_PATH));
    const spec = {
      generators: ['memseg' as const],
      nAug: [6],
      seeds: [0],
      heads: ['bce' as const, 'spatial' as const],
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
    expect(first.cells.length).toBe(4); // bce, spatial + the two baselines
    for (const c of first.cells) expect(c.status, c.error).toBe('done');
    expect(first.table.map((r) => r.head)).toContain('spatial');
    expect(first.table.map((r) => r.label)).toContain('baseline: k-NN cosine distance');
    expect(first.resumed).toBe(0);

    // A fresh engine (a reloaded page) with the same experiment id skips every stored cell.
    const reloaded = new ExperimentsEngine(deps);
    await reloaded.loadBackbone({ bytes, device: 'cpu' });
    expect((await reloaded.storedCells(ds.id, 'e1')).length).toBe(4);
    const again = await reloaded.runExperiment({
      datasetId: ds.id,
      experimentId: 'e1',
      spec,
      tfBackend: 'cpu',
    });
    expect(again.resumed).toBe(4);
    expect(again.table[0].stats.ap.mean).toBe(first.table[0].stats.ap.mean);

    // A new experiment (nothing to resume) over the same images: every cell trains again, but the backbone
    // never runs, because pooled and spatial features of the real and synthetic images are in the store.
    const runsBefore = counter.runs;
    expect(runsBefore).toBeGreaterThan(0);
    const fresh = await reloaded.runExperiment({
      datasetId: ds.id,
      experimentId: 'e2',
      spec,
      tfBackend: 'cpu',
    });
    expect(fresh.resumed).toBe(0);
    for (const c of fresh.cells) expect(c.status, c.error).toBe('done');
    expect(counter.runs).toBe(runsBefore);
    expect(fresh.cells.map((c) => c.metrics?.ap)).toEqual(first.cells.map((c) => c.metrics?.ap));

    // No diffusion source here: the panel is told why, and a grid asking for diffusion fails once, named.
    expect((await reloaded.diffusionModels()).reason).toMatch(/no diffusion engine/);
    await expect(
      reloaded.runExperiment({
        datasetId: ds.id,
        experimentId: 'e3',
        spec: { ...spec, generators: ['in-out'] },
        tfBackend: 'cpu',
      }),
    ).rejects.toThrow(/NoDiffusionModelError: .* — fix: .*Models tab/);
  });
});

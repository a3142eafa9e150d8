/**
 * The runner's spatial and CSE trainers (`server/heads.ts`) through the real runner and the real tfjs heads (CPU),
 * on a feature source whose maps are the images' own pixels (so the expected answer is known): 16×16 gray
 * textures, defects are bright 4×4 blobs with masks. The spatial head must learn the blobs (AP) and its heat map
 * must point at them (AUPRO from the runner); the CSE head must make its synthetic defects on the fly, one
 * generator call per synthetic pair, none up front.
 */
import { describe, expect, it } from 'vitest';
import {
  runExperiment,
  type ExperimentData,
  type ExperimentEnv,
  type ExperimentImage,
} from '../../src/core/experiments/index.ts';
import { toMarkdown } from '../../src/core/experiments/table.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { imagenetPreprocess } from '../../src/core/preprocess.ts';
import { Rng } from '../../src/core/rng.ts';
import type { FeatureMap } from '../../src/runtime/heads/spatial.ts';
import { initTf } from '../../src/runtime/tf.ts';
import { cseTrainer, spatialTrainer, SpatialMaps, type SpatialSource } from '../../src/app/heads.ts';

const S = 16;

function sample(id: string, blob: boolean): { img: RasterImage; mask: RasterImage } {
  const rng = new Rng(id);
  const img = createRaster(S, S, 1);
  const mask = createRaster(S, S, 1);
  for (let i = 0; i < S * S; i++) img.data[i] = 100 + rng.normal() * 6;
  if (blob) {
    const x = 2 * rng.int(0, 6);
    const y = 2 * rng.int(0, 6);
    for (let dy = 0; dy < 4; dy++)
      for (let dx = 0; dx < 4; dx++) {
        img.data[(y + dy) * S + x + dx] = 220;
        mask.data[(y + dy) * S + x + dx] = 255;
      }
  }
  return { img, mask };
}

function item(id: string, label: 0 | 1): ExperimentImage {
  return {
    id,
    label,
    defectClass: label ? 'blob' : undefined,
    load: async () => sample(id, label === 1).img,
    loadMask: async () => (label ? sample(id, true).mask : null),
  };
}

const data = (): ExperimentData => ({
  name: 'blobs',
  trainNormals: Array.from({ length: 24 }, (_, i) => item(`n${i}`, 0)),
  realDefects: [],
  test: [
    ...Array.from({ length: 12 }, (_, i) => item(`tn${i}`, 0)),
    ...Array.from({ length: 12 }, (_, i) => item(`td${i}`, 1)),
  ],
});

/** Maps [2, 8, 8]: mean and max of each 2×2 block (what a stride-2 backbone stage could see). */
function pixelMap(img: RasterImage): FeatureMap {
  const h = S / 2;
  const out = new Float32Array(2 * h * h);
  for (let gy = 0; gy < h; gy++)
    for (let gx = 0; gx < h; gx++) {
      let s = 0;
      let m = 0;
      for (let dy = 0; dy < 2; dy++)
        for (let dx = 0; dx < 2; dx++) {
          const v = img.data[(2 * gy + dy) * S + 2 * gx + dx] / 255;
          s += v;
          m = Math.max(m, v);
        }
      out[gy * h + gx] = s / 4;
      out[h * h + gy * h + gx] = m;
    }
  return { data: out, dims: [2, h, h] };
}

function source(counter: { single: number; batches: number }): SpatialSource {
  return {
    preprocess: imagenetPreprocess(S, S),
    spatial: async (images) => {
      if (images.length === 1) counter.single++;
      else counter.batches++;
      return images.map(pixelMap);
    },
  };
}

/** MemSeg-like blob generator (synchronous, as the CSE pair source wants). */
function blobGenerator(calls: { n: number }) {
  return (image: RasterImage, seed: number) => {
    calls.n++;
    const rng = new Rng(seed);
    const out = { ...image, data: new Uint8ClampedArray(image.data) };
    const mask = createRaster(S, S, 1);
    const x = rng.int(0, S - 4);
    const y = rng.int(0, S - 4);
    for (let dy = 0; dy < 4; dy++)
      for (let dx = 0; dx < 4; dx++) {
        out.data[(y + dy) * S + x + dx] = 220;
        mask.data[(y + dy) * S + x + dx] = 255;
      }
    return { image: out, mask };
  };
}

function env(maps: SpatialMaps, calls: { n: number }, cse: Record<string, unknown> = {}): ExperimentEnv {
  const gen = blobGenerator(calls);
  return {
    extractor: {
      id: 'pixels',
      extract: async (images) => images.map((im) => pixelMap(im).data.slice(0, 64)),
    },
    generators: { memseg: gen },
    trainers: {
      spatial: spatialTrainer(maps, { learningRate: 0.05, validationFraction: 0 }),
      cse: cseTrainer(maps, { generators: [gen], cse }),
    },
  };
}

describe('spatial head in the runner', () => {
  it(
    'learns the blobs from synthetic defects and its heat map finds them (AUPRO)',
    { timeout: 120_000 },
    async () => {
      await initTf('cpu');
      const counter = { single: 0, batches: 0 };
      const maps = new SpatialMaps(source(counter));
      const r = await runExperiment(
        { generators: ['memseg'], nAug: [24], seeds: [0], heads: ['spatial'], epochs: 40, baselines: false },
        data(),
        env(maps, { n: 0 }),
      );
      const cell = r.cells[0];
      expect(cell.status, cell.error).toBe('done');
      expect(cell.metrics!.ap).toBeGreaterThan(0.95);
      // The runner computes AUPRO for heads with heat maps when the test set has masks.
      expect(cell.metrics!.auPro).toBeGreaterThan(0.8);
      // Pixel AUROC over the same pixels (the papers' localisation column), with PRO's provenance.
      expect(cell.metrics!.pixelAuroc).toBeGreaterThan(0.8);
      expect(cell.pixel).toMatchObject({ fprLimit: 0.3, auPro: cell.metrics!.auPro });
      expect(cell.pixel!.regions).toBeGreaterThanOrEqual(12);
      // The table can print the papers' columns: confusion counts and pixel metrics.
      const md = toMarkdown(r.table, [
        'ap',
        'precision',
        'recall',
        'tp',
        'fp',
        'tn',
        'fn',
        'auPro',
        'pixelAuroc',
      ]);
      expect(md).toMatch(/\| AP \| P \| R \| TP \| FP \| TN \| FN \| AUPRO@0\.3 \| pixel AUROC \|/);
      expect(md).toContain(cell.metrics!.tp.toFixed(1));
      expect(cell.perClass?.blob.n).toBe(12);
    },
  );
});

describe('CSE head in the runner', () => {
  it(
    'makes its synthetic defects on the fly (one generator call and one extraction per synthetic pair)',
    { timeout: 120_000 },
    async () => {
      await initTf('cpu');
      const counter = { single: 0, batches: 0 };
      const calls = { n: 0 };
      const maps = new SpatialMaps(source(counter));
      const r = await runExperiment(
        { generators: ['none'], nAug: [0], seeds: [3], heads: ['cse'], epochs: 2, baselines: false },
        data(),
        env(maps, calls, { stepsPerEpoch: 3, pairsPerStep: 4 }),
      );
      expect(r.cells[0].status, r.cells[0].error).toBe('done');
      // 2 epochs × 3 steps × 4 pairs = 24 pairs, each synthetic with p = 0.5: Binomial(24, 0.5), never a fixed pool.
      expect(calls.n).toBeGreaterThan(0);
      expect(calls.n).toBeLessThan(24);
      expect(counter.single).toBe(calls.n);
      expect(r.cells[0].metrics!.auPro).toBeGreaterThan(0);
    },
  );
});

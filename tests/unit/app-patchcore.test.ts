/**
 * The PatchCore trainer (`src/app/patchcore.ts`) through the real runner and the real tfjs head (CPU), on a tap
 * source whose maps are the images' own pixels (so the answer is known): 16×16 gray textures, defects are bright
 * 4×4 blobs with masks. PatchCore sees normals only and must find the blobs (AP) and point at them (AUPRO from
 * the runner's heat maps); defect rows handed to `train` change nothing; a saved head scores the same.
 */
import { describe, expect, it } from 'vitest';
import {
  HEAD_CHOICES,
  runExperiment,
  type ExperimentData,
  type ExperimentImage,
  type HeadSample,
} from '../../src/core/experiments/index.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { imagenetPreprocess } from '../../src/core/preprocess.ts';
import { Rng } from '../../src/core/rng.ts';
import type { FeatureMap } from '../../src/runtime/heads/spatial.ts';
import { initTf } from '../../src/runtime/tf.ts';
import {
  TapMaps,
  patchcoreTrainer,
  savedPatchcoreTrainer,
  type PatchCoreTrained,
  type TapSource,
} from '../../src/app/patchcore.ts';

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
    id: `img:${id}`,
    label,
    defectClass: label ? 'blob' : undefined,
    load: async () => sample(id, label === 1).img,
    loadMask: async () => (label ? sample(id, true).mask : null),
  };
}

const data = (): ExperimentData => ({
  name: 'blobs',
  trainNormals: Array.from({ length: 16 }, (_, i) => item(`n${i}`, 0)),
  realDefects: [],
  test: [
    ...Array.from({ length: 10 }, (_, i) => item(`tn${i}`, 0)),
    ...Array.from({ length: 10 }, (_, i) => item(`td${i}`, 1)),
  ],
});

/** Block means at stride `s` (1 channel), what a stride-s backbone stage could see. */
function blockMap(img: RasterImage, s: number): FeatureMap {
  const h = S / s;
  const out = new Float32Array(h * h);
  for (let gy = 0; gy < h; gy++)
    for (let gx = 0; gx < h; gx++) {
      let v = 0;
      for (let dy = 0; dy < s; dy++)
        for (let dx = 0; dx < s; dx++) v += img.data[(gy * s + dy) * S + gx * s + dx];
      out[gy * h + gx] = v / (s * s * 255);
    }
  return { data: out, dims: [1, h, h] };
}

function source(calls: { n: number }): TapSource {
  return {
    preprocess: imagenetPreprocess(S, S),
    taps: async (images, taps) => {
      calls.n += images.length;
      return images.map((im) => Object.fromEntries(taps.map((t) => [t, blockMap(im, t === 's2' ? 2 : 4)])));
    },
  };
}

const rowsOf = async (items: ExperimentImage[]): Promise<HeadSample[]> =>
  items.map((it) => ({
    id: it.id,
    features: new Float32Array(1),
    label: it.label,
    source: 'normal',
    load: it.load,
  }));

describe('PatchCore trainer in the runner', () => {
  it(
    'is a head choice; finds the blobs from normals only (AP) and its heat map points at them (AUPRO)',
    { timeout: 120_000 },
    async () => {
      expect(HEAD_CHOICES).toContain('patchcore');
      await initTf('cpu');
      const calls = { n: 0 };
      const maps = new TapMaps(source(calls));
      const r = await runExperiment(
        { generators: ['none'], nAug: [0], seeds: [0], heads: ['patchcore'], baselines: false },
        data(),
        {
          extractor: { id: 'pixels', extract: async (images) => images.map((im) => blockMap(im, 4).data) },
          generators: {},
          trainers: {
            patchcore: patchcoreTrainer(maps, { taps: ['s2', 's4'], sigma: 1, coresetRatio: 0.5 }),
          },
        },
      );
      const cell = r.cells[0];
      expect(cell.status, cell.error).toBe('done');
      expect(cell.metrics!.ap).toBeGreaterThan(0.95);
      expect(cell.metrics!.auPro).toBeGreaterThan(0.5);
      // Dataset images (img: ids) are mapped once and reused by the next cell.
      const t = patchcoreTrainer(maps, { taps: ['s2', 's4'], sigma: 1 });
      const rows = await rowsOf(data().trainNormals);
      const first = (await t.train(rows, { seed: 0 })) as PatchCoreTrained;
      const before = calls.n;
      const head = (await t.train(rows, { seed: 1 })) as PatchCoreTrained;
      expect(calls.n).toBe(before);
      first.dispose();
      head.dispose();
    },
  );

  it('ignores defect rows in training; a saved head scores the same; heat maps have the image size', async () => {
    await initTf('cpu');
    const maps = new TapMaps(source({ n: 0 }));
    const t = patchcoreTrainer(maps, { taps: ['s2', 's4'], sigma: 1, coresetRatio: 0.5 });
    expect(t.unsupervised).toBe(true);
    const d = data();
    const normals = await rowsOf(d.trainNormals);
    const withDefects = [...normals, ...(await rowsOf(d.test.slice(10)))];
    const a = (await t.train(normals, { seed: 3 })) as PatchCoreTrained;
    const b = (await t.train(withDefects, { seed: 3 })) as PatchCoreTrained;
    expect(Array.from(b.head.bank)).toEqual(Array.from(a.head.bank));
    const test = await rowsOf(d.test);
    const sa = await a.score(test);
    const saved = (await savedPatchcoreTrainer(await a.artifacts(), maps).train([], {
      seed: 0,
    })) as PatchCoreTrained;
    expect(Array.from(await saved.score(test))).toEqual(Array.from(sa));
    const hm = await a.heatMaps(test.slice(0, 2));
    expect([hm[0].width, hm[0].height, hm[0].data.length]).toEqual([S, S, S * S]);
    const g = await a.gridMaps(test.slice(0, 1));
    expect([g.h, g.w, g.maps[0].length]).toEqual([S, S, S * S]);
    await expect(t.train(await rowsOf(d.test.slice(10)), { seed: 0 })).rejects.toThrow(
      /at least one normal image/,
    );
    for (const h of [a, b, saved]) h.dispose();
  });
});

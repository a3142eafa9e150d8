/**
 * The mask-supervised per-location head (`src/runtime/heads/masked.ts`) and its trainer (`src/app/masked.ts`) on
 * maps whose answer is known: 16×16 gray textures, defects are bright 4×4 blobs with masks, tap maps are block
 * means of the pixels (stride 2 and 4). With the blob masks as cell labels it must rank test defects above
 * normals (AP) and put its map's peak inside the test defects' masks; the cell labels are the mask fractions
 * counted by brute force; defect rows without a mask are left out; a saved head scores the same.
 */
import { describe, expect, it } from 'vitest';
import { HEAD_CHOICES, type HeadSample } from '../../src/core/experiments/index.ts';
import { averagePrecision } from '../../src/core/metrics/index.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { imagenetPreprocess } from '../../src/core/preprocess.ts';
import { Rng } from '../../src/core/rng.ts';
import type { FeatureMap } from '../../src/runtime/heads/spatial.ts';
import { initTf } from '../../src/runtime/tf.ts';
import { TapMaps, type TapSource } from '../../src/app/patchcore.ts';
import {
  maskedTrainer,
  savedMaskedTrainer,
  type MaskedRow,
  type MaskedTrained,
} from '../../src/app/masked.ts';

const S = 16;

function sample(id: string, blob: boolean): { img: RasterImage; mask: RasterImage } {
  const rng = new Rng(id);
  const img = createRaster(S, S, 1);
  const mask = createRaster(S, S, 1);
  for (let i = 0; i < S * S; i++) img.data[i] = 100 + rng.normal() * 6;
  if (blob) {
    const x = rng.int(0, S - 4);
    const y = rng.int(0, S - 4);
    for (let dy = 0; dy < 4; dy++)
      for (let dx = 0; dx < 4; dx++) {
        img.data[(y + dy) * S + x + dx] = 220;
        mask.data[(y + dy) * S + x + dx] = 255;
      }
  }
  return { img, mask };
}

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

const source: TapSource = {
  preprocess: imagenetPreprocess(S, S),
  taps: async (images, taps) =>
    images.map((im) => Object.fromEntries(taps.map((t) => [t, blockMap(im, t === 's2' ? 2 : 4)]))),
};

function row(id: string, label: 0 | 1, withMask = true): MaskedRow {
  return {
    id: `img:${id}`,
    features: new Float32Array(1),
    label,
    source: label ? 'synthetic' : 'normal',
    load: async () => sample(id, label === 1).img,
    ...(label && withMask ? { loadMask: async () => sample(id, true).mask } : {}),
  };
}

const opts = { taps: ['s2', 's4'], sigma: 1, epochs: 40, learningRate: 0.01, batchSize: 64 };

describe('mask-supervised per-location head', () => {
  it('learns where the defects are from masks: AP on test images and map peaks inside the masks', async () => {
    expect(HEAD_CHOICES).toContain('masked');
    await initTf('cpu');
    const maps = new TapMaps(source);
    const train = [
      ...Array.from({ length: 16 }, (_, i) => row(`n${i}`, 0)),
      ...Array.from({ length: 16 }, (_, i) => row(`d${i}`, 1)),
    ];
    const t = maskedTrainer(maps, opts);
    const head = (await t.train(train, { seed: 0 })) as MaskedTrained;
    // Cell labels: the masks' fractions on the 8×8 grid ≥ 0.25, counted here by brute force.
    let want = 0;
    for (let i = 0; i < 16; i++) {
      const m = sample(`d${i}`, true).mask;
      for (let gy = 0; gy < 8; gy++)
        for (let gx = 0; gx < 8; gx++) {
          let on = 0;
          for (let dy = 0; dy < 2; dy++)
            for (let dx = 0; dx < 2; dx++) on += m.data[(2 * gy + dy) * S + 2 * gx + dx] ? 1 : 0;
          if (on / 4 >= 0.25) want++;
        }
    }
    expect(head.training!.defectCells).toBe(want);
    const test: HeadSample[] = [
      ...Array.from({ length: 10 }, (_, i) => row(`tn${i}`, 0)),
      ...Array.from({ length: 10 }, (_, i) => row(`td${i}`, 1)),
    ];
    const scores = await head.score(test);
    expect(
      averagePrecision(
        scores,
        test.map((r) => r.label),
      ),
    ).toBeGreaterThan(0.95);
    const hm = await head.heatMaps(test.slice(10));
    let inside = 0;
    hm.forEach((m, i) => {
      let best = 0;
      for (let p = 1; p < m.data.length; p++) if (m.data[p] > m.data[best]) best = p;
      if (sample(`td${i}`, true).mask.data[best]) inside++;
    });
    expect(inside).toBeGreaterThanOrEqual(8);
    const saved = (await savedMaskedTrainer(await head.artifacts(), maps).train([], {
      seed: 0,
    })) as MaskedTrained;
    expect(Array.from(await saved.score(test))).toEqual(Array.from(scores));
    saved.dispose();
    head.dispose();
  });

  it('defect rows without a mask are left out; none with a mask is a clear error', async () => {
    await initTf('cpu');
    const maps = new TapMaps(source);
    const t = maskedTrainer(maps, { ...opts, epochs: 2 });
    const normals = Array.from({ length: 6 }, (_, i) => row(`n${i}`, 0));
    await expect(t.train([...normals, row('d0', 1, false)], { seed: 0 })).rejects.toThrow(
      /masked head training rows must be defect rows with masks.*got "1 defect rows without a mask".*fix:/,
    );
    const a = (await t.train([...normals, row('d1', 1), row('d0', 1, false)], { seed: 0 })) as MaskedTrained;
    const b = (await t.train([...normals, row('d1', 1)], { seed: 0 })) as MaskedTrained;
    const test = [row('tn0', 0), row('td0', 1)];
    expect(Array.from(await a.score(test))).toEqual(Array.from(await b.score(test)));
    a.dispose();
    b.dispose();
  });
});

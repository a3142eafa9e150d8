/**
 * ISP-AD's real-defect augmentation, tested by properties (anomalib's habit): the identity changes nothing, the
 * same seed gives the same bytes, flips are exact and undo themselves, the mask stays binary and moves with the
 * image, brightness/contrast leave the geometry alone; in the runner every real draw becomes its own augmented row.
 */
import { describe, expect, it } from 'vitest';
import { expandGrid, runCells, type ExperimentImage } from '../../src/core/experiments/index.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  NO_AUGMENT,
  REAL_DEFECT_AUGMENT,
  applyAugment,
  augmentDefect,
  drawAugment,
} from '../../src/core/synth/augment.ts';

function tile(seed: string, w = 40, h = 30, channels: 1 | 3 = 1) {
  const img = createRaster(w, h, channels);
  const mask = createRaster(w, h, 1);
  const rng = new Rng(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(40, 200);
  for (let y = 8; y < 14; y++)
    for (let x = 5; x < 17; x++) {
      mask.data[y * w + x] = 255;
      for (let c = 0; c < channels; c++) img.data[(y * w + x) * channels + c] = 250;
    }
  return { img, mask };
}
const same = (a: RasterImage, b: RasterImage) => expect(Array.from(a.data)).toEqual(Array.from(b.data));

describe('real-defect augmentation', () => {
  it('the identity changes nothing; the same seed gives the same bytes; another seed another image', () => {
    const { img, mask } = tile('a', 40, 30, 3);
    const id = applyAugment(img, mask, drawAugment(NO_AUGMENT, new Rng(1)));
    same(id.image, img);
    same(id.mask!, mask);
    const x = augmentDefect(img, mask, REAL_DEFECT_AUGMENT, 'k');
    const y = augmentDefect(img, mask, REAL_DEFECT_AUGMENT, 'k');
    same(x.image, y.image);
    expect(x.params).toEqual(y.params);
    expect(Array.from(augmentDefect(img, mask, REAL_DEFECT_AUGMENT, 'other').image.data)).not.toEqual(
      Array.from(x.image.data),
    );
  });

  it('flips are exact mirror images and undo themselves', () => {
    const { img, mask } = tile('f');
    const p = { ...drawAugment(NO_AUGMENT, new Rng(1)), hflip: true };
    const h = applyAugment(img, mask, p);
    for (let y = 0; y < 30; y++)
      for (let x = 0; x < 40; x++) expect(h.image.data[y * 40 + x]).toBe(img.data[y * 40 + (39 - x)]);
    same(applyAugment(h.image, h.mask, p).image, img);
    const v = applyAugment(img, mask, { ...p, hflip: false, vflip: true });
    for (let y = 0; y < 30; y++)
      for (let x = 0; x < 40; x++) expect(v.mask!.data[y * 40 + x]).toBe(mask.data[(29 - y) * 40 + x]);
  });

  it('the mask stays binary and keeps its defect under rotation, scale and shear; colour changes keep the geometry', () => {
    const { img, mask } = tile('m');
    for (let s = 0; s < 20; s++) {
      const r = augmentDefect(img, mask, REAL_DEFECT_AUGMENT, s);
      expect(r.mask!.data.every((v) => v === 0 || v === 255)).toBe(true);
      const n = r.mask!.data.filter((v) => v === 255).length;
      // 72 defect pixels, scale 0.9–1.1: the transformed area stays within a generous bound.
      expect(n).toBeGreaterThan(40);
      expect(n).toBeLessThan(110);
      // Defect pixels (bright 250) sit under the mask: mean inside ≫ mean outside.
      let inside = 0;
      let outside = 0;
      r.mask!.data.forEach((v, i) => (v ? (inside += r.image.data[i] / n) : (outside += r.image.data[i])));
      expect(inside).toBeGreaterThan(outside / (1200 - n) + 30);
    }
    const colour = applyAugment(img, mask, {
      ...drawAugment(NO_AUGMENT, new Rng(1)),
      brightness: 0.1,
      contrast: 1.2,
    });
    same(colour.mask!, mask);
    expect(Array.from(colour.image.data)).not.toEqual(Array.from(img.data));
  });

  it('names a bad range', () => {
    expect(() => drawAugment({ ...REAL_DEFECT_AUGMENT, scale: [1.2, 0.8] }, new Rng(1))).toThrow(
      /augment\.scale/,
    );
  });

  it('in the runner each real draw becomes its own augmented training row (seeded), counts unchanged', async () => {
    const item = (id: string, label: 0 | 1): ExperimentImage => ({
      id,
      label,
      load: async () => tile(id, 16, 16).img,
      ...(label ? { loadMask: async () => tile(id, 16, 16).mask } : {}),
    });
    const data = {
      name: 'aug',
      trainNormals: Array.from({ length: 10 }, (_, i) => item(`n${i}`, 0)),
      realDefects: Array.from({ length: 3 }, (_, i) => item(`r${i}`, 1)),
      test: [
        ...Array.from({ length: 6 }, (_, i) => item(`t${i}`, 0)),
        ...Array.from({ length: 6 }, (_, i) => item(`d${i}`, 1)),
      ],
    };
    const seen: string[] = [];
    const env = {
      extractor: {
        id: 'mean',
        extract: async (imgs: RasterImage[]) =>
          imgs.map((im) => Float32Array.of(im.data.reduce((a, v) => a + v, 0))),
      },
      trainers: {
        bce: {
          kind: 'bce' as const,
          async train(rows: { id: string }[]) {
            seen.push(...rows.map((r) => r.id));
            return { score: async (q: unknown[]) => new Float32Array(q.length) };
          },
        },
      },
      generators: {},
    };
    const cells = (augmentReal: boolean) =>
      expandGrid(
        {
          generators: ['none'],
          nAug: [0],
          seeds: [0],
          heads: ['bce'],
          fewShot: [true],
          augmentReal,
          baselines: false,
        },
        'aug',
        'mean',
      );
    expect(cells(true)[0].augmentReal).toBe(true);
    const r = await runCells(cells(true), data, env);
    expect(r.cells[0].status, r.cells[0].error).toBe('done');
    expect(r.cells[0].counts?.train).toEqual({ normal: 8, synthetic: 0, real: 3 });
    expect(seen.filter((id) => id.startsWith('aug:'))).toHaveLength(3);
    expect(new Set(seen.filter((id) => id.startsWith('aug:'))).size).toBe(3);
    seen.length = 0;
    await runCells(cells(false), data, env);
    expect(seen.filter((id) => id.startsWith('aug:'))).toHaveLength(0);
  });
});

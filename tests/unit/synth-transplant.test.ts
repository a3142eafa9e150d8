/**
 * Defect transplant, tested by properties like the other generators (same seed same bytes, binary mask inside
 * the region, pixels outside the mask unchanged up to the blend border) on real magnetic tiles (../shared: a
 * normal tile and a few-shot defect with its mask), plus the Poisson solve itself: the discrete equation's
 * residual after the sweeps, and seamlessness (a flat defect on a flat surface disappears).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { type Channels, type RasterImage, createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  generatorDefaults,
  getGenerator,
  poissonBlend,
  transplantDefect,
} from '../../src/core/synth/index.ts';

const TILES = resolve(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');
const png = (p: string): RasterImage => {
  const d = decode(readFileSync(resolve(TILES, p)));
  return {
    width: d.width,
    height: d.height,
    channels: d.channels as Channels,
    data: new Uint8ClampedArray(d.data as Uint8Array),
  };
};
const items = (
  JSON.parse(readFileSync(resolve(TILES, 'manifest.json'), 'utf8')) as {
    items: { file: string; mask: string | null; split: string; label: number }[];
  }
).items;
const normal = png(items.find((i) => i.label === 0 && i.split === 'train')!.file);
const shots = items.filter((i) => i.split === 'fewshot').slice(0, 3);
const defects = shots.map((i) => png(i.file));
const masks = shots.map((i) => png(i.mask!));
const opts = { defects, defect_masks: masks };

/** Pixels within Chebyshev distance r of the mask. */
function grown(mask: RasterImage, r: number): Uint8Array {
  const { width: W, height: H } = mask;
  const out = new Uint8Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      if (mask.data[y * W + x])
        for (let dy = -r; dy <= r; dy++)
          for (let dx = -r; dx <= r; dx++)
            if (y + dy >= 0 && y + dy < H && x + dx >= 0 && x + dx < W) out[(y + dy) * W + x + dx] = 1;
  return out;
}

describe('transplant generator (real few-shot defects into a real normal tile)', () => {
  it('same seed → same bytes; other seeds → other placements and transforms', () => {
    const a = transplantDefect(normal, opts, 7);
    const b = transplantDefect(normal, opts, 7);
    expect(b.image.data).toEqual(a.image.data);
    expect(b.mask.data).toEqual(a.mask.data);
    const c = transplantDefect(normal, opts, 8);
    expect(c.mask.data).not.toEqual(a.mask.data);
  });

  it('mask is binary, non-empty, inside the painted region; nothing changes beyond blend_border px of it', () => {
    const { width: W, height: H } = normal;
    const region = createRaster(W, H, 1);
    for (let y = 40; y < 200; y++) for (let x = 30; x < 150; x++) region.data[y * W + x] = 255;
    for (let seed = 0; seed < 12; seed++) {
      const border = seed % 4;
      const r = transplantDefect(normal, { ...opts, region_mask: region, blend_border: border }, seed);
      expect([r.image.width, r.image.height, r.image.channels]).toEqual([W, H, normal.channels]);
      let inside = 0;
      let bad = 0;
      for (let p = 0; p < W * H; p++) {
        if (r.mask.data[p] !== 0 && r.mask.data[p] !== 255) bad++;
        if (r.mask.data[p]) {
          inside++;
          if (region.data[p] !== 255) bad++;
        }
      }
      expect(bad).toBe(0);
      expect(inside).toBeGreaterThan(0);
      const near = grown(r.mask, border);
      let changedNear = 0;
      let changedFar = 0;
      let changedOutsideRegion = 0;
      for (let p = 0; p < W * H; p++) {
        const changed = r.image.data[p] !== normal.data[p];
        if (!changed) continue;
        if (near[p]) changedNear++;
        else changedFar++;
        // The blend never reaches outside the region either.
        if (region.data[p] !== 255) changedOutsideRegion++;
      }
      expect([changedFar, changedOutsideRegion]).toEqual([0, 0]);
      expect(changedNear).toBeGreaterThan(0);
    }
  });

  it('paste mode: outside the mask bit for bit, inside the transformed defect; defects are real-sized', () => {
    const r = transplantDefect(
      normal,
      { ...opts, blend: 'paste', flip: false, rotation_range: 0, scale_range: 1, intensity_jitter: 0 },
      3,
    );
    const k = r.params.defect_index as number;
    let area = 0;
    for (let p = 0; p < normal.width * normal.height; p++) {
      if (!r.mask.data[p]) expect(r.image.data[p]).toBe(normal.data[p]);
      else area++;
    }
    // Scale 1, no rotation: the pasted area is the defect mask's area (minus what the image edge clipped).
    const srcArea = masks[k].data.reduce((s, v, i) => s + (i % masks[k].channels === 0 && v > 0 ? 1 : 0), 0);
    expect(area).toBeLessThanOrEqual(srcArea);
    expect(area).toBeGreaterThan(0);
  });

  it('seamless: a flat defect on a flat surface vanishes under Poisson, stays a step under paste', () => {
    const W = 64;
    const target = createRaster(W, W, 1, 100);
    const src = createRaster(40, 40, 1, 200);
    const m = createRaster(40, 40, 1);
    for (let y = 10; y < 30; y++) for (let x = 12; x < 28; x++) m.data[y * 40 + x] = 255;
    const o = { defects: [src], defect_masks: [m], intensity_jitter: 0, iterations: 400 };
    const poisson = transplantDefect(target, o, 1);
    const paste = transplantDefect(target, { ...o, blend: 'paste' }, 1);
    let maxDev = 0;
    let stepped = 0;
    for (let p = 0; p < W * W; p++) {
      maxDev = Math.max(maxDev, Math.abs(poisson.image.data[p] - 100));
      if (paste.mask.data[p]) {
        stepped++;
        expect(paste.image.data[p]).toBe(200);
      }
    }
    expect(stepped).toBeGreaterThan(0);
    expect(maxDev).toBeLessThanOrEqual(1);
  });

  it('the Poisson solve satisfies the discrete equation (4-neighbour Laplacian) to 1e-2 after the sweeps', () => {
    const rng = new Rng('poisson');
    const W = 30;
    const H = 24;
    const img = createRaster(W, H, 1);
    for (let i = 0; i < img.data.length; i++) img.data[i] = rng.int(0, 256);
    const [x0, y0, bw, bh] = [5, 4, 18, 14];
    const guide = new Float32Array(bw * bh);
    for (let i = 0; i < guide.length; i++) guide[i] = rng.uniform(0, 255);
    const omega = new Uint8Array(bw * bh);
    for (let y = 2; y < bh - 2; y++) for (let x = 2 + (y % 3); x < bw - 3; x++) omega[y * bw + x] = 1;
    const f = poissonBlend(img, guide, omega, x0, y0, bw, bh, 1, 2000);
    let worst = 0;
    for (let l = 0; l < bw * bh; l++) {
      if (!omega[l]) continue;
      const lx = l % bw;
      const ly = (l - lx) / bw;
      let lhs = 0;
      let rhs = 0;
      for (const [dx, dy] of [
        [-1, 0],
        [1, 0],
        [0, -1],
        [0, 1],
      ]) {
        const m = l + dy * bw + dx;
        lhs += f[l] - (omega[m] ? f[m] : img.data[(y0 + ly + dy) * W + x0 + lx + dx]);
        rhs += guide[l] - guide[m];
      }
      worst = Math.max(worst, Math.abs(lhs - rhs));
    }
    expect(worst).toBeLessThan(1e-2);
  });

  it('is registered with a schema; bad input names the option and the fix', () => {
    const entry = getGenerator('transplant');
    expect(entry.fn).toBe(transplantDefect);
    expect(Object.keys(generatorDefaults('transplant'))).toContain('defect_masks');
    expect(structuredClone(entry.schema)).toEqual(entry.schema);
    expect(() => transplantDefect(normal, {}, 1)).toThrow(
      /defects must be at least one real defect image.*fix:/,
    );
    expect(() => transplantDefect(normal, { defects, defect_masks: masks.slice(1) }, 1)).toThrow(
      /defect_masks must be one mask per defect image \(3\), got 2/,
    );
    expect(() =>
      transplantDefect(
        normal,
        { defects: [defects[0]], defect_masks: [createRaster(masks[0].width, masks[0].height, 1)] },
        1,
      ),
    ).toThrow(/defect_masks\[0\] must be a mask with at least one defect pixel/);
    expect(() => transplantDefect(normal, { ...opts, scale_range: [0, 1] }, 1)).toThrow(
      /scale_range must be in \[0.1, 4\]/,
    );
  });
});

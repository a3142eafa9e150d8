import { describe, expect, it } from 'vitest';
import {
  binarize,
  createRaster,
  crop,
  maskBounds,
  paste,
  resizeBilinear,
  resizeNearest,
  toGray,
  toRGB,
} from '../../src/core/image.ts';

describe('image ops', () => {
  it('toGray uses BT.601 luma weights', () => {
    const img = createRaster(1, 1, 3);
    img.data.set([255, 0, 0]);
    expect(toGray(img).data[0]).toBe(76); // 0.299 * 255 = 76.2
  });

  it('toRGB replicates gray', () => {
    const g = createRaster(2, 1, 1);
    g.data.set([10, 200]);
    expect(Array.from(toRGB(g).data)).toEqual([10, 10, 10, 200, 200, 200]);
  });

  it('bilinear resize of a constant image is constant; 2× upsample interpolates half-pixel centres', () => {
    const c = createRaster(5, 3, 1, 77);
    expect(new Set(resizeBilinear(c, 11, 7).data)).toEqual(new Set([77]));
    const g = createRaster(2, 1, 1);
    g.data.set([0, 100]);
    // align_corners=false: output x=1 maps to source 0.25 → 25, x=2 to 0.75 → 75.
    expect(Array.from(resizeBilinear(g, 4, 1).data)).toEqual([0, 25, 75, 100]);
  });

  it('nearest resize keeps masks binary', () => {
    const m = binarize(createRaster(7, 5, 1, 200));
    m.data[3] = 0;
    const r = resizeNearest(m, 13, 9);
    for (const v of r.data) expect(v === 0 || v === 255).toBe(true);
  });

  it('crop then paste round-trips and maskBounds finds the box', () => {
    const img = createRaster(6, 4, 1);
    img.data[1 * 6 + 2] = 255;
    img.data[2 * 6 + 4] = 255;
    expect(maskBounds(img)).toEqual({ x: 2, y: 1, width: 3, height: 2 });
    const c = crop(img, { x: 2, y: 1, width: 3, height: 2 });
    const blank = createRaster(6, 4, 1);
    paste(blank, c, 2, 1);
    expect(Array.from(blank.data)).toEqual(Array.from(img.data));
    expect(maskBounds(createRaster(3, 3, 1))).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { createRaster } from '../../src/core/image.ts';
import type { RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  EmptyMaskError,
  MaskCoversImageError,
  binaryMask,
  blurMask,
  compositeThroughMask,
  cropRegion,
  imageToPlanar,
  maskToLatent,
  maskedPlanar,
  pasteBackMask,
  planarToImage,
  validateMask,
} from '../../src/core/diffusion/inpaint.ts';
import { fakeDiffusionModels, timestepFeed } from '../../src/core/diffusion/index.ts';
import { checkModelLayout } from '../../src/core/diffusion/session-io.ts';

function rectMask(w: number, h: number, x0: number, y0: number, x1: number, y1: number): RasterImage {
  const m = createRaster(w, h, 1);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m.data[y * w + x] = 255;
  return m;
}

describe('"only masked" crop region (diffusers get_crop_region + _expand_crop_region)', () => {
  it('grows the bounding box by the padding, then to the generation aspect around its centre', () => {
    // Box x 40..59, y 10..19 (20×10), no padding, square target: height grows by 10, 5 above and 5 below.
    expect(cropRegion(rectMask(100, 100, 40, 10, 60, 20), 0, 64, 64)).toEqual({
      x: 40,
      y: 5,
      width: 20,
      height: 20,
    });
    // Padding 4: 28×18 box → 28×28.
    expect(cropRegion(rectMask(100, 100, 40, 10, 60, 20), 4, 64, 64)).toEqual({
      x: 36,
      y: 1,
      width: 28,
      height: 28,
    });
    // Wide target 2:1 on a 10×20 box: the width grows to 40, 15 each side.
    expect(cropRegion(rectMask(100, 100, 40, 10, 50, 30), 0, 128, 64)).toEqual({
      x: 25,
      y: 10,
      width: 40,
      height: 20,
    });
  });

  it('shifts the region back inside the image at the edges', () => {
    const r = cropRegion(rectMask(100, 60, 90, 50, 100, 60), 2, 64, 64);
    expect(r.x + r.width).toBeLessThanOrEqual(100);
    expect(r.y + r.height).toBeLessThanOrEqual(60);
    expect(r.x).toBeGreaterThanOrEqual(0);
    expect(r.y).toBeGreaterThanOrEqual(0);
    expect(r.x).toBeLessThanOrEqual(88);
    expect(r.width).toBe(r.height);
  });

  it('rejects an empty mask and a negative padding by name', () => {
    expect(() => cropRegion(createRaster(10, 10, 1), 0, 8, 8)).toThrow(EmptyMaskError);
    expect(() => cropRegion(rectMask(10, 10, 1, 1, 3, 3), -1, 8, 8)).toThrow(/onlyMasked\.padding must be/);
  });
});

describe('mask validation', () => {
  it('binarizes at 128, refuses empty always and full unless allowed (never in only-masked mode)', () => {
    const img = createRaster(4, 4, 3);
    const soft = createRaster(4, 4, 1, 127);
    expect(() => validateMask(binaryMask(img, soft), { onlyMasked: false, allowFull: true })).toThrow(
      EmptyMaskError,
    );
    const full = binaryMask(img, createRaster(4, 4, 1, 128));
    expect(() => validateMask(full, { onlyMasked: false, allowFull: false })).toThrow(MaskCoversImageError);
    expect(() => validateMask(full, { onlyMasked: true, allowFull: true })).toThrow(/only masked/);
    expect(validateMask(full, { onlyMasked: false, allowFull: true })).toBe(1);
    expect(
      validateMask(binaryMask(img, rectMask(4, 4, 0, 0, 2, 2)), { onlyMasked: true, allowFull: false }),
    ).toBe(0.25);
  });
});

describe('tensors of the inpaint UNet', () => {
  it('planar [-1, 1] round-trips an RGB image exactly', () => {
    const img = createRaster(5, 3, 3);
    const r = new Rng(1);
    for (let i = 0; i < img.data.length; i++) img.data[i] = r.int(0, 256);
    const planar = imageToPlanar(img);
    expect(planar.length).toBe(45);
    expect(Math.min(...planar)).toBeGreaterThanOrEqual(-1);
    expect(Array.from(planarToImage(planar, 5, 3).data)).toEqual(Array.from(img.data));
  });

  it('the masked image is 0 (mid-gray) where painted and the image elsewhere', () => {
    const img = createRaster(2, 1, 3, 255);
    const m = maskedPlanar(imageToPlanar(img), rectMask(2, 1, 1, 0, 2, 1));
    expect(Array.from(m)).toEqual([1, 0, 1, 0, 1, 0]);
  });

  it('shrinks the mask like torch nearest interpolation (source ⌊i·in/out⌋)', () => {
    const a = maskToLatent(rectMask(16, 16, 8, 8, 9, 9), 2, 2);
    expect(Array.from(a)).toEqual([0, 0, 0, 1]);
    const b = maskToLatent(rectMask(16, 16, 9, 9, 16, 16), 2, 2);
    expect(Array.from(b)).toEqual([0, 0, 0, 0]);
  });
});

describe('paste-back', () => {
  it('blur keeps the mask mass, spreads it, and sigma 0 is the identity', () => {
    const m = rectMask(40, 40, 15, 15, 25, 25);
    const b = blurMask(m, 2);
    const sum = (x: RasterImage) => x.data.reduce((s, v) => s + v, 0);
    expect(Math.abs(sum(b) - sum(m)) / sum(m)).toBeLessThan(0.01);
    expect(b.data[20 * 40 + 13]).toBeGreaterThan(0);
    // 2.5σ from every edge: (1D mass 0.988)² of 255 ≈ 249.
    expect(b.data[20 * 40 + 20]).toBeGreaterThan(245);
    expect(Array.from(blurMask(m, 0).data)).toEqual(Array.from(m.data));
  });

  it('the paste-back mask is zero outside the generated region', () => {
    const pm = pasteBackMask(rectMask(40, 40, 15, 15, 25, 25), { x: 14, y: 14, width: 12, height: 12 }, 3);
    expect(pm.data[20 * 40 + 13]).toBe(0);
    expect(pm.data[20 * 40 + 14]).toBeGreaterThan(0);
  });

  it('composites source where alpha is 0, patch where 255, a rounded blend between', () => {
    const src = createRaster(3, 1, 1, 100);
    const patch = createRaster(3, 1, 3, 200);
    const alpha = createRaster(3, 1, 1);
    alpha.data.set([0, 255, 51]);
    const out = compositeThroughMask(src, patch, { x: 0, y: 0, width: 3, height: 1 }, alpha);
    expect(Array.from(out.data)).toEqual([100, 200, 120]);
    expect(Array.from(src.data)).toEqual([100, 100, 100]);
  });
});

describe('session inputs read from the graph', () => {
  it('timestep feeds follow the declared dtype and rank', () => {
    expect(timestepFeed({ name: 'timestep', type: 'int64', shape: [] }, 951, 2)).toMatchObject({
      type: 'int64',
      dims: [],
    });
    expect(timestepFeed({ name: 'timestep', type: 'float32', shape: ['batch'] }, 951, 2).dims).toEqual([2]);
    expect(timestepFeed({ name: 'timestep', type: 'float32', shape: [1] }, 951, 2).dims).toEqual([1]);
    expect(
      Array.from(
        timestepFeed({ name: 'timestep', type: 'int64', shape: ['b'] }, 951, 2).data as BigInt64Array,
      ),
    ).toEqual([951n, 951n]);
    expect(() => timestepFeed({ name: 'timestep', type: 'float32', shape: [1, 1] }, 1, 1)).toThrow(/rank 2/);
  });

  it('checkModelLayout accepts the fakes and names what a mismatched graph lacks', () => {
    expect(() => checkModelLayout(fakeDiffusionModels())).not.toThrow();
    expect(() => checkModelLayout(fakeDiffusionModels({ layout: 'sd-inpaint' }))).not.toThrow();
    const badScale = fakeDiffusionModels();
    badScale.config.vaeScalingFactor = 0;
    expect(() => checkModelLayout(badScale)).toThrow(
      /vaeScalingFactor must be a positive number.* — fix: .*0\.13025/,
    );
    const noTe2 = fakeDiffusionModels();
    delete noTe2.textEncoder2;
    expect(() => checkModelLayout(noTe2)).toThrow(/needs text_encoder_2/);
    expect(() => checkModelLayout(fakeDiffusionModels({ dropUnetInput: 'encoder_hidden_states' }))).toThrow(
      /ModelLayoutError: unet has no input "encoder_hidden_states".* — fix:/,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  imagenetPreprocess,
  preprocessBatch,
  preprocessImage,
  preprocessingId,
  resizeForBackbone,
} from '../../src/core/preprocess.ts';

/** Gray image whose pixel (x, y) is `f(x, y)`. */
function gray(w: number, h: number, f: (x: number, y: number) => number): RasterImage {
  const img = createRaster(w, h, 1);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data[y * w + x] = f(x, y);
  return img;
}

// Values are float32; 1e-6 absolute tolerance covers the float32 rounding of (v/255 − mean)/std (|v| < 2.7).
const TOL = 6;

describe('preprocess', () => {
  it('normalizes with the ImageNet mean/std per channel, gray replicated to RGB, planar layout', () => {
    const img = gray(2, 1, (x) => (x === 0 ? 0 : 255));
    const out = preprocessImage(img, { ...imagenetPreprocess(2, 1) });
    expect(out.length).toBe(6);
    // channel R: black → (0 − 0.485)/0.229 = −2.117903930…, white → (1 − 0.485)/0.229 = 2.248908296…
    expect(out[0]).toBeCloseTo(-2.1179039301310043, TOL);
    expect(out[1]).toBeCloseTo(2.2489082969432315, TOL);
    // channel G: (0 − 0.456)/0.224 = −2.035714285…, (1 − 0.456)/0.224 = 2.428571428…
    expect(out[2]).toBeCloseTo(-2.0357142857142856, TOL);
    expect(out[3]).toBeCloseTo(2.4285714285714284, TOL);
    // channel B: (0 − 0.406)/0.225 = −1.804444…, (1 − 0.406)/0.225 = 2.64
    expect(out[4]).toBeCloseTo(-1.8044444444444445, TOL);
    expect(out[5]).toBeCloseTo(2.64, TOL);
  });

  it('keeps RGB channel order and drops alpha', () => {
    const img = createRaster(1, 1, 4);
    img.data.set([51, 102, 153, 7]);
    const out = preprocessImage(img, {
      width: 1,
      height: 1,
      resize: 'stretch',
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    expect(Array.from(out)).toEqual([51 / 255, 102 / 255, 153 / 255].map(Math.fround));
  });

  it('stretch resizes to exactly W×H (aspect not kept)', () => {
    const img = gray(4, 2, () => 10);
    const r = resizeForBackbone(img, { ...imagenetPreprocess(3, 5), resize: 'stretch' });
    expect([r.width, r.height]).toEqual([3, 5]);
    expect(Array.from(r.data).every((v) => v === 10)).toBe(true);
  });

  it('letterbox keeps the aspect ratio and pads top/bottom with the fill value', () => {
    // 4×2 into 4×4: scale 1, the image occupies rows 1–2, rows 0 and 3 are padding.
    const img = gray(4, 2, (x, y) => 100 + 10 * y + x);
    const r = resizeForBackbone(img, { ...imagenetPreprocess(4, 4), resize: 'letterbox', fill: 7 });
    expect(Array.from(r.data)).toEqual([7, 7, 7, 7, 100, 101, 102, 103, 110, 111, 112, 113, 7, 7, 7, 7]);
    expect(preprocessingId({ ...imagenetPreprocess(4, 4), resize: 'letterbox', fill: 7 })).toContain('-f7');
  });

  it('center-crop covers W×H and cuts the centre', () => {
    // 4×2 into 2×2: scale 1, columns 1–2 kept.
    const img = gray(4, 2, (x, y) => 10 * y + x);
    const r = resizeForBackbone(img, { ...imagenetPreprocess(2, 2), resize: 'center-crop' });
    expect(Array.from(r.data)).toEqual([1, 2, 11, 12]);
    // 2×4 portrait into 4×4: scaled ×2 to 4×8, rows 2–5 kept.
    const tall = gray(2, 4, (_x, y) => 50 * y);
    const t = resizeForBackbone(tall, { ...imagenetPreprocess(4, 4), resize: 'center-crop' });
    expect([t.width, t.height]).toEqual([4, 4]);
  });

  it('batches to NCHW [N, 3, H, W] with each image at its offset', () => {
    const a = gray(2, 2, () => 0);
    const b = gray(2, 2, () => 255);
    const { data, dims } = preprocessBatch([a, b], imagenetPreprocess(2, 2));
    expect(dims).toEqual([2, 3, 2, 2]);
    expect(data.length).toBe(24);
    expect(data[0]).toBeCloseTo((0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], TOL);
    expect(data[12]).toBeCloseTo((1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], TOL);
    expect(data[23]).toBeCloseTo((1 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], TOL);
  });

  it('ids differ when anything that changes the tensor differs, and bad options are named', () => {
    const base = imagenetPreprocess();
    const ids = new Set([
      preprocessingId(base),
      preprocessingId({ ...base, resize: 'letterbox' }),
      preprocessingId({ ...base, resize: 'center-crop' }),
      preprocessingId({ ...base, width: 632 }),
      preprocessingId({ ...base, mean: [0.5, 0.5, 0.5] }),
    ]);
    expect(ids.size).toBe(5);
    expect(() => preprocessingId({ ...base, width: 0 })).toThrow(/preprocess.width/);
    expect(() => preprocessingId({ ...base, std: [1, 0, 1] })).toThrow(/fix:/);
  });
});

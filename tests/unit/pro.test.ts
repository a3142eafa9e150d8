import { describe, expect, it } from 'vitest';
import { auPro, labelComponents, pro, proCurve } from '../../src/core/metrics/index.ts';

/** 4×4 mask with region A = (0,0),(1,0) and region B = (3,3); 13 defect-free pixels. */
function twoRegionCase() {
  const mask = { width: 4, height: 4, channels: 1, data: new Uint8Array(16) };
  mask.data[0] = mask.data[1] = 255; // A
  mask.data[15] = 255; // B
  const map = { width: 4, height: 4, data: new Float64Array(16).fill(0.1) };
  map.data[0] = 0.9; // A, first pixel
  map.data[1] = 0.5; // A, second pixel
  map.data[15] = 0.7; // B
  map.data[6] = 0.8; // one false positive
  return { mask, map };
}

describe('PRO / AUPRO (MVTec AD definition)', () => {
  it('labels 8-connected regions (diagonal neighbours join)', () => {
    const m = { width: 3, height: 3, data: [255, 0, 0, 0, 255, 0, 0, 0, 255] };
    expect(labelComponents(m).count).toBe(1);
    const m2 = { width: 3, height: 3, data: [255, 0, 255, 0, 0, 0, 255, 0, 255] };
    const l = labelComponents(m2);
    expect(l.count).toBe(4);
    expect(l.sizes).toEqual([1, 1, 1, 1]);
  });

  it('curve of a hand-made map', () => {
    const { mask, map } = twoRegionCase();
    const c = proCurve([map], [mask]);
    // Thresholds 0.9: A half found → PRO (½ + 0)/2 = ¼, FPR 0.  0.8: the false positive → FPR 1/13.
    // 0.7: B found → PRO (½ + 1)/2 = ¾.  0.5: A complete → PRO 1.  0.1: every pixel → FPR 1.
    expect(Array.from(c.fpr)).toEqual([0, 0, 1 / 13, 1 / 13, 1 / 13, 1, 1]);
    expect(Array.from(c.pro)).toEqual([0, 0.25, 0.25, 0.75, 1, 1, 1]);
    expect(c.regions).toBe(2);
    expect(pro([map], [mask], 0.7)).toBe(0.75);
    expect(pro([map], [mask], 0.95)).toBe(0);
  });

  it('AUPRO at 0.3 of the hand-made map', () => {
    const { mask, map } = twoRegionCase();
    // Area: PRO ¼ over FPR [0, 1/13], then PRO 1 over [1/13, 0.3] → 0.25/13 + 0.3 − 1/13 = 0.3 − 0.75/13.
    // Normalized by 0.3: 1 − 2.5/13.
    expect(auPro([map], [mask], 0.3)).toBeCloseTo(1 - 2.5 / 13, 14);
    // With the limit at 1: 0.25/13 + (1 − 1/13) = 1 − 0.75/13.
    expect(auPro([map], [mask], 1)).toBeCloseTo(1 - 0.75 / 13, 14);
  });

  it('pools images: regions average over all images, FPR over all defect-free pixels', () => {
    const { mask, map } = twoRegionCase();
    const emptyMask = { width: 2, height: 2, channels: 1, data: new Uint8Array(4) };
    // 17 defect-free pixels in total (13 + 4). Three false positives at 0.95 in the defect-free image give
    // FPR 3/17 before any region is found.
    const hot = { width: 2, height: 2, data: [0.95, 0.95, 0.95, 0.0] };
    const c = proCurve([map, hot], [mask, emptyMask]);
    expect(c.fpr[1]).toBeCloseTo(3 / 17, 15);
    expect(c.pro[1]).toBe(0);
    // At 0.5: FPR (3 + 1)/17, PRO 1.
    const k = Array.from(c.thresholds).indexOf(0.5);
    expect(c.fpr[k]).toBeCloseTo(4 / 17, 15);
    expect(c.pro[k]).toBe(1);
  });

  it('perfect map → 1, inverted map → 0, no defect → NaN', () => {
    const { mask } = twoRegionCase();
    const perfect = { width: 4, height: 4, data: Array.from(mask.data, (v) => (v ? 1 : 0)) };
    const inverted = { width: 4, height: 4, data: Array.from(mask.data, (v) => (v ? 0 : 1)) };
    expect(auPro([perfect], [mask])).toBe(1);
    expect(auPro([inverted], [mask])).toBe(0);
    const empty = { width: 4, height: 4, channels: 1, data: new Uint8Array(16) };
    expect(auPro([perfect], [empty])).toBeNaN();
  });

  it('size mismatch names the mask and the fix', () => {
    const { mask } = twoRegionCase();
    expect(() => auPro([{ width: 2, height: 2, data: [0, 0, 0, 0] }], [mask])).toThrow(
      /masks\[0\] size.*fix/,
    );
  });
});

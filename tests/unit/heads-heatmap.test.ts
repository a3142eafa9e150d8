import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { createRaster } from '../../src/core/image.ts';
import { imagenetPreprocess, resizeForBackbone, type ResizeMode } from '../../src/core/preprocess.ts';
import { heatmapToImage, imageToFrame } from '../../src/runtime/heads/heatmap.ts';
import { initTf, tf } from '../../src/runtime/tf.ts';

describe('heat map → image pixels', () => {
  it('stretch equals tfjs resizeBilinear with half-pixel centres (the reference upsampler)', async () => {
    await initTf('cpu');
    const rng = new Rng(3);
    const [gh, gw] = [14, 14];
    const map = rng.normalArray(gh * gw);
    for (const [w, h] of [
      [256, 192],
      [37, 301],
      [14, 14],
    ]) {
      const got = heatmapToImage(map, gh, gw, imagenetPreprocess(224, 224, 'stretch'), w, h);
      const ref = tf.image.resizeBilinear(tf.tensor3d(map, [gh, gw, 1]), [h, w], false, true);
      const want = await ref.data();
      ref.dispose();
      let maxDiff = 0;
      for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
      // float32 interpolation on both sides.
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });

  it.each(['letterbox', 'center-crop', 'stretch'] as ResizeMode[])(
    '%s: image pixels land where resizeForBackbone put them',
    (mode) => {
      // A horizontal ramp image (value = column index) through the real preprocessing: the frame pixel p then
      // holds the image column it was sampled from, so imageToFrame must send that column back to p.
      const [iw, ih] = [200, 120];
      const img = createRaster(iw, ih, 1);
      for (let y = 0; y < ih; y++) for (let x = 0; x < iw; x++) img.data[y * iw + x] = x;
      const pre = imagenetPreprocess(64, 96, mode);
      const framed = resizeForBackbone(img, pre);
      const g = imageToFrame(pre, iw, ih);
      const row = Math.floor(pre.height / 2);
      let checked = 0;
      for (let p = 0; p < pre.width; p++) {
        const v = framed.data[row * pre.width + p];
        if (mode === 'letterbox' && (p < g.bx || p >= pre.width - g.bx)) continue; // padding
        const u = g.ax * (v + 0.5) + g.bx; // frame coordinate of that image column's centre
        // Rounding to 8 bits moves the column by ≤ 0.5, i.e. ≤ 0.5·ax frame pixels.
        expect(Math.abs(u - (p + 0.5))).toBeLessThanOrEqual(0.5 * g.ax + 1e-9);
        checked++;
      }
      expect(checked).toBeGreaterThan(pre.width / 2);
    },
  );

  it('a linear ramp on the grid comes back as the frame coordinate of each pixel (interior)', () => {
    const pre = imagenetPreprocess(224, 224, 'letterbox');
    const [gh, gw] = [7, 7];
    const map = Float32Array.from({ length: gh * gw }, (_, k) => ((k % gw) + 0.5) * (224 / gw));
    const [iw, ih] = [256, 128];
    const out = heatmapToImage(map, gh, gw, pre, iw, ih);
    const g = imageToFrame(pre, iw, ih);
    for (const x of [60, 128, 190]) {
      const u = g.ax * (x + 0.5) + g.bx;
      expect(out[64 * iw + x]).toBeCloseTo(u, 3);
    }
    expect(() => heatmapToImage(map, 6, 7, pre, iw, ih)).toThrow(/heat map length.*fix:/);
  });
});

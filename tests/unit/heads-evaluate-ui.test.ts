import { describe, expect, it } from 'vitest';
import { perClassMetrics } from '../../src/ui/evaluate/per-class.ts';
import { blendHeat, heatColor, overlayRange } from '../../src/ui/evaluate/overlay.ts';

describe('evaluation panel helpers', () => {
  it('per-class metrics: each class against all normals, worked by hand', () => {
    // normals 0.1, 0.4; class a: 0.9, 0.3; class b: 0.5; an unnamed defect 0.95 is left out.
    const scores = [0.1, 0.4, 0.9, 0.3, 0.5, 0.95];
    const labels = [0, 0, 1, 1, 1, 1];
    const classes = [undefined, undefined, 'a', 'a', 'b', undefined];
    const rows = perClassMetrics(scores, labels, classes, 0.45);
    expect(rows.map((r) => r.defectClass)).toEqual(['a', 'b']);
    // a: ranking 0.9 (a) 0.4 (n) 0.3 (a) 0.1 (n) → AP = ½·1 + ½·⅔; AUROC: pairs (0.9>0.1,0.4), (0.3>0.1) = 3/4.
    expect(rows[0].ap).toBeCloseTo(0.5 + 1 / 3, 12);
    expect(rows[0].auroc).toBeCloseTo(0.75, 12);
    expect(rows[0]).toMatchObject({ n: 2, detected: 1, recall: 0.5 });
    // b: 0.5 above both normals.
    expect(rows[1]).toMatchObject({ n: 1, ap: 1, auroc: 1, detected: 1, recall: 1 });
    expect(
      perClassMetrics(
        scores,
        labels,
        scores.map(() => undefined),
        0.5,
      ),
    ).toEqual([]);
  });

  it('overlay colours run from dark blue (low) to red (high); the range spans all maps', () => {
    const [lo, hi] = overlayRange([
      [0.2, 1],
      [-3, 0.5],
    ]);
    expect([lo, hi]).toEqual([-3, 1]);
    const low = heatColor(0);
    const high = heatColor(1);
    expect(low[2]).toBeGreaterThan(low[0]);
    expect(high[0]).toBeGreaterThan(high[2]);
    expect(overlayRange([])).toEqual([0, 1]);
    // A black pixel under the hottest value turns red at the maximum opacity; the coldest barely changes.
    const px = new Uint8ClampedArray([0, 0, 0, 255, 200, 200, 200, 255]);
    blendHeat(px, [1, 0], [0, 1], 0.6);
    expect(Array.from(px.slice(0, 4))).toEqual([Math.round(high[0] * 0.6), 0, 0, 255]);
    expect(px[4]).toBeGreaterThan(150);
  });
});

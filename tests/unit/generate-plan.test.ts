/**
 * The Paint tab's pure planning (`src/ui/generate/plan.ts`) that the controller runs around: source choice,
 * region seeds, library-mask cycling and the messages after a batch. Sampling is checked against a brute-force
 * property (a seeded draw without replacement: distinct, from the pool, order-independent of the input order).
 */
import { describe, expect, it } from 'vitest';
import {
  GenerationInputError,
  batchSummary,
  cancelledSummary,
  cycleIndices,
  pickSources,
  regionSeeds,
} from '../../src/ui/generate/plan.ts';

type Img = { id: string; label: string; provenance?: unknown };
const img = (id: string, label = 'normal', provenance?: unknown): Img => ({ id, label, provenance });

describe('pickSources', () => {
  const images = [
    img('n1'),
    img('n2'),
    img('n3'),
    img('d1', 'defect'),
    img('g1', 'defect', { generator: 'memseg' }),
    img('g2', 'normal', { generator: 'x' }),
  ];
  const base = { current: null, selected: [], images, sampledCount: 2, seed: 7 };

  it('current / selection: that image, those images, or a named error with the fix', () => {
    expect(pickSources('current', { ...base, current: images[1] })).toEqual([images[1]]);
    expect(() => pickSources('current', base)).toThrow(GenerationInputError);
    expect(() => pickSources('current', base)).toThrow(
      'GenerationInputError: no image is open in the painter — fix: pick an image above',
    );
    expect(pickSources('selection', { ...base, selected: [images[3]] })).toEqual([images[3]]);
    expect(() => pickSources('selection', base)).toThrow(/no images are selected — fix: select images/);
  });

  it('sampled: k distinct real normals, the same for the same seed whatever the list order', () => {
    const a = pickSources('sampled', base);
    expect(a).toHaveLength(2);
    expect(new Set(a.map((i) => i.id)).size).toBe(2);
    for (const i of a) expect(['n1', 'n2', 'n3']).toContain(i.id);
    expect(pickSources('sampled', { ...base, images: [...images].reverse() }).map((i) => i.id)).toEqual(
      a.map((i) => i.id),
    );
    // Over many seeds every real normal is drawn, and never a defect or a generated image.
    const drawn = new Set<string>();
    for (let s = 0; s < 50; s++)
      for (const i of pickSources('sampled', { ...base, seed: s })) drawn.add(i.id);
    expect([...drawn].sort()).toEqual(['n1', 'n2', 'n3']);
    // No real normal: the whole dataset is the pool; no image at all: a named error.
    expect(pickSources('sampled', { ...base, images: [images[3]], sampledCount: 1 })).toEqual([images[3]]);
    expect(() => pickSources('sampled', { ...base, images: [] })).toThrow(/the dataset has no images/);
  });
});

describe('masks and messages', () => {
  it('region seeds name the batch seed and the source; library masks cycle i mod M', () => {
    expect(regionSeeds(3, 3)).toEqual(['3:region:0', '3:region:1', '3:region:2']);
    expect(cycleIndices(5, 2)).toEqual([0, 1, 0, 1, 0]);
    expect(() => cycleIndices(2, 0)).toThrow(/library masks must be at least one selected mask/);
  });

  it('the toasts say how many samples were made, failed or kept after a cancel', () => {
    expect(batchSummary(8, 8, [])).toEqual({
      level: 'info',
      text: '8 samples are waiting in the staging strip.',
    });
    expect(batchSummary(6, 8, [{ message: 'no room' }, { message: 'x' }])).toEqual({
      level: 'warn',
      text: '2 of 8 samples found no room: no room',
    });
    expect(cancelledSummary(0)).toBe('Generation cancelled before the first sample.');
    expect(cancelledSummary(1)).toBe(
      'Generation cancelled; the 1 sample made so far is in the staging strip.',
    );
    expect(cancelledSummary(5)).toBe(
      'Generation cancelled; the 5 samples made so far are in the staging strip.',
    );
  });
});

/**
 * The CSE paper's recipe for on-the-fly defects: structural (MemSeg's scrambled-image source), textural
 * (MemSeg's texture source) and blur, each with probability 1/3 per synthetic pair.
 */
import { describe, expect, it } from 'vitest';
import { CSE_PAPER_GENERATORS, cseGenerators, cseGeneratorsByName } from '../../src/app/generators.ts';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { blurDefect, memsegDefect } from '../../src/core/synth/index.ts';
import { makeCsePairSource } from '../../src/runtime/heads/stream.ts';
import { CSE_GENERATORS_DEFAULT } from '../../src/ui/train/request.ts';

const img = (() => {
  const r = createRaster(48, 48, 1);
  const rng = new Rng('cse-recipe');
  for (let i = 0; i < r.data.length; i++) r.data[i] = 90 + rng.int(0, 60);
  return r;
})();

describe('CSE on-the-fly defects', () => {
  it('are the three kinds of the paper: structure-only and texture-only MemSeg, and blur', () => {
    const g = cseGenerators();
    expect(g).toHaveLength(3);
    expect(CSE_PAPER_GENERATORS).toEqual(['structure', 'texture', 'blur']);
    // The Train tab's default names the same three.
    expect(CSE_GENERATORS_DEFAULT.split(',')).toEqual([...CSE_PAPER_GENERATORS]);
    for (const seed of [1, 2, 3]) {
      expect(g[0](img, seed).image.data).toEqual(memsegDefect(img, { p_texture: 0 }, seed).image.data);
      expect(g[1](img, seed).image.data).toEqual(memsegDefect(img, { p_texture: 1 }, seed).image.data);
      expect(g[2](img, seed).image.data).toEqual(blurDefect(img, {}, seed).image.data);
    }
    // Structure and texture sources really differ (p_texture decides the source).
    expect(g[0](img, 7).image.data).not.toEqual(g[1](img, 7).image.data);
    expect(() => cseGeneratorsByName(['no-such'])).toThrow(/no-such/);
  });

  it('each kind makes 1/3 of the synthetic pairs (3,000 pairs, 4σ bound)', async () => {
    const calls = [0, 0, 0];
    const gens = cseGenerators().map((g, k) => (im: typeof img, seed: number) => {
      calls[k]++;
      return g(im, seed);
    });
    const map = { data: new Float32Array(4), dims: [1, 2, 2] as [number, number, number] };
    const source = makeCsePairSource({
      normals: [img],
      normalMaps: [map],
      extract: async (images) => images.map(() => map),
      generators: gens,
      preprocess: { width: 48, height: 48, resize: 'stretch', mean: [0, 0, 0], std: [1, 1, 1] } as never,
      pDefect: 1,
    });
    const rng = new Rng('pairs');
    for (let i = 0; i < 3000; i++) await source(rng);
    // Binomial(3000, 1/3): σ ≈ 25.8.
    for (const c of calls) expect(Math.abs(c - 1000)).toBeLessThan(4 * 25.8);
  });
});

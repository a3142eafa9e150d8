/**
 * The diffusion panel's pure planning: DIAG batch mode draws reproducible (image, mask, prompt) triplets from one
 * seed; paired mode keeps each image with its own mask; requests carry the settings; provenance records
 * everything needed to regenerate a sample.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SETTINGS,
  DIAG_PRESET,
  buildRequest,
  changedMask,
  fitMask,
  planSamples,
  promptPool,
  provenanceOf,
} from '../../src/core/diffusion/plan.ts';
import { createRaster } from '../../src/core/image.ts';

describe('planSamples', () => {
  const pools = { images: 5, masks: 3, prompts: 2 };
  it('triplets: same seed → same batch, different seed → different batch, every index in range', () => {
    const a = planSamples(pools, 50, 7, 'triplets');
    expect(planSamples(pools, 50, 7, 'triplets')).toEqual(a);
    expect(planSamples(pools, 50, 8, 'triplets')).not.toEqual(a);
    for (const p of a) {
      expect(p.imageIndex).toBeGreaterThanOrEqual(0);
      expect(p.imageIndex).toBeLessThan(5);
      expect(p.maskIndex).toBeLessThan(3);
      expect(p.promptIndex).toBeLessThan(2);
      expect(Number.isInteger(p.seed) && p.seed >= 0 && p.seed < 2 ** 31).toBe(true);
    }
    // Draws cover the pools (50 draws from 5 images: all appear).
    expect(new Set(a.map((p) => p.imageIndex)).size).toBe(5);
    expect(new Set(a.map((p) => p.seed)).size).toBe(50);
    // A prefix of a larger batch is the smaller batch: N_aug can grow without changing earlier samples.
    expect(planSamples(pools, 10, 7, 'triplets')).toEqual(a.slice(0, 10));
  });
  it('paired: images in order with their own mask, prompts cycling, seeds consecutive', () => {
    const p = planSamples({ ...pools, maskOfImage: (i) => (i === 1 ? 2 : undefined) }, 4, 100, 'paired');
    expect(p).toEqual([
      { imageIndex: 0, maskIndex: 0, promptIndex: 0, seed: 100 },
      { imageIndex: 1, maskIndex: 2, promptIndex: 1, seed: 101 },
      { imageIndex: 2, maskIndex: 2, promptIndex: 0, seed: 102 },
      { imageIndex: 3, maskIndex: 0, promptIndex: 1, seed: 103 },
    ]);
  });
  it('names what is missing', () => {
    expect(() => planSamples({ ...pools, masks: 0 }, 1, 1, 'paired')).toThrow(
      /EmptyMaskError: the mask has no painted pixel.*— fix: paint the region/,
    );
    expect(() => planSamples({ ...pools, prompts: 0 }, 1, 1, 'paired')).toThrow(/prompts/);
    expect(() => planSamples(pools, 0, 1, 'paired')).toThrow(/count must be an integer in 1\.\.1000/);
  });
});

describe('requests and provenance', () => {
  it('DIAG preset is the paper’s settings', () => {
    expect(promptPool(DIAG_PRESET)).toEqual(['white marks on the wall', 'copper metal scratches']);
    expect(DIAG_PRESET).toMatchObject({
      negativePrompt: 'smooth, plain, black, dark, shadow',
      steps: 30,
      guidanceScale: 20,
      strength: 0.99,
    });
  });
  it('fits masks to the image (nearest, stays binary, 1 channel) and builds the request', () => {
    const image = createRaster(40, 20, 3);
    const mask = createRaster(20, 10, 3);
    mask.data.fill(255, 0, 3 * 20 * 5);
    const m = fitMask(mask, image);
    expect([m.width, m.height, m.channels]).toEqual([40, 20, 1]);
    expect(new Set(m.data)).toEqual(new Set([0, 255]));
    expect(m.data.filter((v) => v === 255).length).toBe(400);
    const r = buildRequest(
      { ...DEFAULT_SETTINGS, onlyMasked: true, padding: 12, maskBlur: 3 },
      image,
      mask,
      'p',
      9,
    );
    expect(r).toMatchObject({ prompt: 'p', seed: 9, onlyMasked: { padding: 12 }, maskBlur: 3, steps: 30 });
    expect(buildRequest(DEFAULT_SETTINGS, image, mask, 'p', 9).onlyMasked).toBeUndefined();
  });
  it('changedMask marks every pixel the paste-back can touch', () => {
    const paste = createRaster(4, 1, 1);
    paste.data.set([0, 1, 128, 255]);
    expect(Array.from(changedMask(paste).data)).toEqual([0, 255, 255, 255]);
  });
  it('provenance carries model, backend, parameters, seed, prompts and ids', () => {
    const params = { seed: 5, prompt: 'a', negativePrompt: 'b', steps: 4, guidanceScale: 20 } as never;
    const p = provenanceOf(
      { params, modelId: 'm', backend: 'webgpu', ms: 10 },
      { sourceImageId: 'img', maskId: 'msk' },
      { mode: 'triplets', batchSeed: 77, index: 3 },
      1000,
    );
    expect(p).toEqual({
      generator: 'diffusion',
      parameters: {
        ...(params as object),
        backend: 'webgpu',
        ms: 10,
        batchMode: 'triplets',
        batchSeed: 77,
        batchIndex: 3,
      },
      seed: 5,
      prompt: 'a',
      negativePrompt: 'b',
      sourceImageId: 'img',
      maskId: 'msk',
      modelId: 'm',
      createdAt: 1000,
    });
  });
});

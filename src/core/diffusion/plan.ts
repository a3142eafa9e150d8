/**
 * Pure planning for the diffusion panel: settings → requests, DIAG's batch mode (N_aug samples from random
 * (normal image, prompt, mask) triplets, seeded), and the provenance each staged sample carries. No DOM, no
 * workers: unit-tested in Node.
 */
import type { SampleProvenance } from '../dataset.ts';
import type { GenerateRequest, GenerateResult } from './index.ts';
import { InvalidArgumentError } from '../errors.ts';
import { EmptyMaskError } from './inpaint.ts';
import { createRaster, resizeNearest, type RasterImage } from '../image.ts';
import { Rng } from '../rng.ts';
import { DIFFUSION_COUNT, type DiffusionSettings } from './settings.ts';

// The settings schema lives in settings.ts; these names stay importable from here.
export { DEFAULT_SETTINGS, DIAG_PRESET, type DiffusionSettings } from './settings.ts';

export function promptPool(s: Pick<DiffusionSettings, 'prompts'>): string[] {
  return s.prompts
    .split('\n')
    .map((p) => p.trim())
    .filter(Boolean);
}

/** One sample to generate: indices into the image, mask and prompt pools, and its own seed. */
export interface PlannedSample {
  imageIndex: number;
  maskIndex: number;
  promptIndex: number;
  seed: number;
}

/**
 * Plans `count` samples. 'triplets' draws (image, mask, prompt) uniformly with replacement from `new Rng(seed)`
 * and gives each sample a seed from the same stream, so one seed reproduces the whole batch. 'paired' walks the
 * images in order with their own mask (`maskOfImage`) when they have one, seeds seed, seed+1, ….
 */
export function planSamples(
  pools: { images: number; masks: number; prompts: number; maskOfImage?: (i: number) => number | undefined },
  count: number,
  seed: number,
  mode: DiffusionSettings['mode'],
): PlannedSample[] {
  const { min, max } = DIFFUSION_COUNT;
  if (!Number.isInteger(count) || count < min || count > max)
    throw new InvalidArgumentError('count', `an integer in ${min}..${max}`, count);
  if (pools.images < 1) throw new InvalidArgumentError('source images', 'at least one image', pools.images);
  // No mask at all is the UI's form of an empty mask (an empty painting is not stored): the engine's own error.
  if (pools.masks < 1) throw new EmptyMaskError();
  if (pools.prompts < 1)
    throw new InvalidArgumentError('prompts', 'at least one non-empty prompt', pools.prompts);
  const out: PlannedSample[] = [];
  if (mode === 'triplets') {
    const rng = new Rng(seed);
    for (let i = 0; i < count; i++)
      out.push({
        imageIndex: rng.int(0, pools.images),
        maskIndex: rng.int(0, pools.masks),
        promptIndex: rng.int(0, pools.prompts),
        seed: rng.nextUint32() >>> 1,
      });
    return out;
  }
  for (let i = 0; i < count; i++) {
    const imageIndex = i % pools.images;
    out.push({
      imageIndex,
      maskIndex: pools.maskOfImage?.(imageIndex) ?? i % pools.masks,
      promptIndex: i % pools.prompts,
      seed: (seed + i) >>> 0,
    });
  }
  return out;
}

/** A region mask at the image's size (nearest-neighbour, stays binary), single channel. */
export function fitMask(mask: RasterImage, image: RasterImage): RasterImage {
  let m = mask;
  if (m.channels !== 1) {
    const g = createRaster(m.width, m.height, 1);
    for (let i = 0; i < g.data.length; i++) g.data[i] = m.data[i * m.channels];
    m = g;
  }
  return m.width === image.width && m.height === image.height
    ? m
    : resizeNearest(m, image.width, image.height);
}

export function buildRequest(
  s: DiffusionSettings,
  image: RasterImage,
  mask: RasterImage,
  prompt: string,
  seed: number,
): GenerateRequest {
  return {
    image,
    mask: fitMask(mask, image),
    prompt,
    negativePrompt: s.negativePrompt,
    steps: s.steps,
    guidanceScale: s.guidanceScale,
    strength: s.strength,
    seed,
    ...(s.onlyMasked ? { onlyMasked: { padding: s.padding } } : {}),
    maskBlur: s.maskBlur,
    ...(s.previewEvery > 0 ? { previewEvery: s.previewEvery } : {}),
  };
}

/** The staged sample's label mask: every pixel the paste-back could change (paste-back mask > 0) as 255. */
export function changedMask(pasteBack: RasterImage): RasterImage {
  const out = createRaster(pasteBack.width, pasteBack.height, 1);
  for (let i = 0; i < out.data.length; i++)
    out.data[i] = pasteBack.data[i * pasteBack.channels] > 0 ? 255 : 0;
  return out;
}

/** Everything needed to regenerate the sample: model, backend, all parameters, seed, prompt, source and mask ids. */
export function provenanceOf(
  r: Pick<GenerateResult, 'params'> & { modelId: string; backend: string; ms: number },
  ids: { sourceImageId: string; maskId: string },
  plan: { mode: DiffusionSettings['mode']; batchSeed: number; index: number },
  now = Date.now(),
): SampleProvenance {
  return {
    generator: 'diffusion',
    parameters: {
      ...r.params,
      backend: r.backend,
      ms: r.ms,
      batchMode: plan.mode,
      batchSeed: plan.batchSeed,
      batchIndex: plan.index,
    },
    seed: r.params.seed,
    prompt: r.params.prompt,
    negativePrompt: r.params.negativePrompt,
    sourceImageId: ids.sourceImageId,
    maskId: ids.maskId,
    modelId: r.modelId,
    createdAt: now,
  };
}

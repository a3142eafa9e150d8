/**
 * The reference setup the README's link length is measured on (bench `share` and the unit tests): DIAG's
 * diffusion settings (expert prompts, negative prompt, 30 steps, guidance 20, strength 0.99, triplets), MemSeg
 * with every option at its default written out, the tiny SDXL model and the MobileNetV2 backbone, a BCE head with
 * a threshold policy, a generator × N_aug × seed × head grid, and the masks given (the tests pass 4 real
 * magnetic-tile defect masks).
 */
import { DIAG_PRESET, promptPool } from '../diffusion/plan.ts';
import { MEMSEG_SCHEMA } from '../synth/memseg.ts';
import type { SharedMask, WorkshopSetup, Json } from './setup.ts';

export function diagReferenceSetup(masks: SharedMask[]): WorkshopSetup {
  const options: Record<string, Json> = {};
  for (const o of MEMSEG_SCHEMA)
    if (o.kind !== 'mask' && o.kind !== 'images') options[o.key] = o.default as Json;
  return {
    title: 'DIAG on magnetic tiles',
    generate: {
      generator: 'memseg',
      optionsFor: 'memseg',
      options,
      sourceMode: 'sampled',
      sampledCount: 8,
      maskMode: 'library',
      count: 100,
      seed: 7,
      textureMode: 'dataset',
      textureCount: 8,
    },
    diffusion: {
      model: 'tiny-sdxl-inpaint',
      prompts: promptPool(DIAG_PRESET),
      negativePrompt: DIAG_PRESET.negativePrompt,
      steps: DIAG_PRESET.steps,
      guidanceScale: DIAG_PRESET.guidanceScale,
      strength: DIAG_PRESET.strength,
      seed: 1234,
      seedLocked: true,
      mode: 'triplets',
      count: 100,
      maskBlur: 4,
      onlyMasked: true,
      padding: 32,
    },
    masks,
    models: [
      { id: 'tiny-sdxl-inpaint', role: 'diffusion', source: 'server', bytes: 51_780 },
      { id: 'mobilenetv2-12-int8', role: 'backbone', source: 'server', bytes: 3_655_640 },
    ],
    train: {
      backbone: 'mobilenetv2-12-int8',
      taps: ['mobilenetv20_features_relu1_fwd'],
      resize: 'stretch',
      width: 224,
      height: 224,
      head: 'bce',
      epochs: 50,
      learningRate: 1e-4,
      batchSize: 32,
      hidden: 0,
      seed: 0,
      generators: 'memseg,blur',
      stream: 'concat',
      threshold: { mode: 'val-fpr', maxFpr: 0.05 },
    },
    grid: {
      generators: ['none', 'memseg', 'diffusion', 'in-out'],
      nAug: [0, 100],
      seeds: [0, 1, 2, 3],
      heads: ['bce', 'cse'],
      fewShot: [false, true],
      threshold: { mode: 'val-best-f1' },
      valFraction: 0.2,
      inOut: { in: 'diffusion', out: 'memseg' },
      diffusion: {
        model: 'tiny-sdxl-inpaint',
        prompts: promptPool(DIAG_PRESET),
        negativePrompt: DIAG_PRESET.negativePrompt,
        steps: 30,
        guidanceScale: 20,
        strength: 0.99,
        masks: 'auto',
      },
    },
  };
}

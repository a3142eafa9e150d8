/**
 * The diffusion settings schema: one list of fields (limits, defaults, labels) read by the Paint tab's diffusion
 * panel, the experiment runner's diffusion block, the grid config file, the server's `/api/diffusion/generate`
 * route and the pipeline's own request check. Defaults are DIAG's (Girella et al.) where DIAG sets them.
 */
import { numberField, schemaDefaults, type FormSchema } from '../fields.ts';

export interface DiffusionSettings {
  /** One prompt per line; several lines form the prompt pool batch mode draws from. */
  prompts: string;
  negativePrompt: string;
  steps: number;
  guidanceScale: number;
  strength: number;
  seed: number;
  /** Locked: the seed stays; unlocked: a fresh random seed per Generate click. */
  seedLocked: boolean;
  onlyMasked: boolean;
  padding: number;
  maskBlur: number;
  /** Samples per click (N_aug in batch mode). */
  count: number;
  /** Decode a preview every k steps (0 = only the final image); each costs one VAE decode. */
  previewEvery: number;
  /** 'paired': image i with its own region mask (or mask i mod M), prompt i mod P; 'triplets': DIAG's random draw. */
  mode: 'paired' | 'triplets';
}

/** DIAG's settings (Girella et al.): expert prompts, the negative prompt, 30 steps, guidance 20, strength 0.99. */
export const DIAG_PRESET: Pick<
  DiffusionSettings,
  'prompts' | 'negativePrompt' | 'steps' | 'guidanceScale' | 'strength' | 'onlyMasked' | 'padding'
> = {
  prompts: 'white marks on the wall\ncopper metal scratches',
  negativePrompt: 'smooth, plain, black, dark, shadow',
  steps: 30,
  guidanceScale: 20,
  strength: 0.99,
  // DIAG's code inpaints a crop around the mask (diffusers' `padding_mask_crop`), resized to the model's
  // resolution and pasted back: the "only masked" crop with its padding.
  onlyMasked: true,
  padding: 32,
};

/** Largest seed the panel draws (`Math.random() · 2^31`) and accepts. */
export const MAX_SEED = 2 ** 31 - 1;

export const DIFFUSION_FIELDS: FormSchema = [
  {
    key: 'prompts',
    kind: 'text',
    multiline: true,
    default: 'white marks on the wall',
    label: 'Prompt',
    help: 'one per line; several lines form the pool batch mode draws from',
  },
  {
    key: 'negativePrompt',
    kind: 'text',
    default: DIAG_PRESET.negativePrompt,
    label: 'Negative prompt',
    help: 'what the image should not look like',
  },
  {
    // A scheduler trained on 1000 timesteps has no 1001st: more steps would repeat timesteps.
    key: 'steps',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: DIAG_PRESET.steps,
    label: 'Steps',
    help: "scheduler steps before the strength cut (diffusers' num_inference_steps)",
  },
  {
    key: 'guidanceScale',
    kind: 'number',
    min: 0,
    max: 100,
    default: DIAG_PRESET.guidanceScale,
    label: 'Guidance',
    help: 'classifier-free guidance scale (1 = off)',
  },
  {
    key: 'strength',
    kind: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    default: DIAG_PRESET.strength,
    label: 'Strength',
    help: 'how much of the masked region is re-noised (1 = all of it)',
  },
  {
    key: 'seed',
    kind: 'number',
    min: 0,
    max: MAX_SEED,
    integer: true,
    default: 1234,
    label: 'Seed',
    help: 'the seed of the first sample; batch mode derives the others from it',
  },
  {
    key: 'seedLocked',
    kind: 'boolean',
    default: true,
    label: 'lock',
    help: 'locked: the seed stays; unlocked: a fresh random seed per Generate click',
  },
  {
    key: 'onlyMasked',
    kind: 'boolean',
    default: false,
    label: 'only masked',
    help: 'inpaint a crop around the mask (plus padding) at the model resolution',
  },
  {
    key: 'padding',
    kind: 'number',
    min: 0,
    max: 4096,
    integer: true,
    default: 32,
    label: 'padding',
    help: 'pixels around the mask in the "only masked" crop',
  },
  {
    key: 'maskBlur',
    kind: 'number',
    min: 0,
    max: 256,
    default: 0,
    label: 'Mask blur',
    help: 'Gaussian σ of the paste-back mask (0 = hard edge)',
  },
  {
    key: 'count',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 1,
    label: 'Batch N',
    help: 'samples per click (N_aug in batch mode)',
  },
  {
    key: 'previewEvery',
    kind: 'number',
    min: 0,
    max: 1000,
    integer: true,
    default: 5,
    label: 'Preview every',
    help: 'decode a preview every k steps (0 = only the final image); each costs one VAE decode',
    advanced: true,
  },
  {
    key: 'mode',
    kind: 'enum',
    choices: [
      { value: 'paired', label: 'each image with its mask' },
      { value: 'triplets', label: 'random (image, prompt, mask) triplets — DIAG' },
    ],
    default: 'paired',
    label: 'Batch mode',
    help: "paired: image i with its own mask; triplets: DIAG's seeded random draw",
  },
];

export const DEFAULT_SETTINGS: DiffusionSettings = schemaDefaults<DiffusionSettings>(DIFFUSION_FIELDS);

/** The limits every door checks: the panel inputs, the grid config, the server route, the pipeline. */
export const DIFFUSION_STEPS = numberField(DIFFUSION_FIELDS, 'steps');
export const DIFFUSION_GUIDANCE = numberField(DIFFUSION_FIELDS, 'guidanceScale');
export const DIFFUSION_STRENGTH = numberField(DIFFUSION_FIELDS, 'strength');
export const DIFFUSION_COUNT = numberField(DIFFUSION_FIELDS, 'count');

import type { RasterImage, Rect } from '../image.ts';
import type { CancelSignal, ProgressFn } from '../progress.ts';
import type { SessionLike } from '../tensor.ts';

/**
 * Which graph family the sessions form.
 * - `sdxl-inpaint`: two CLIP text encoders (768 ‖ 1280 penultimate hidden states → [B,77,2048]), added
 *   conditioning (`text_embeds` [B,1280] from encoder 2's projection, `time_ids` [B,6]).
 * - `sd-inpaint`: SD 1.5 / 2 inpaint, one text encoder ([B,77,768] or [B,77,1024]), no added conditioning.
 */
export type ModelLayout = 'sdxl-inpaint' | 'sd-inpaint';

/** Which scheduler drives the denoising loop. */
export type SchedulerKind = 'euler' | 'euler-ancestral' | 'ddim' | 'dpm-solver++';

/**
 * A diffusers `scheduler_config.json` object (snake_case, as shipped with the model). Unknown keys are ignored.
 * Defaults are those of diffusers' `EulerDiscreteScheduler` / `DDIMScheduler` constructors.
 */
export interface SchedulerConfig {
  _class_name?: string;
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  prediction_type?: 'epsilon' | 'v_prediction' | 'sample';
  steps_offset?: number;
  timestep_spacing?: 'leading' | 'trailing' | 'linspace';
  interpolation_type?: 'linear';
  use_karras_sigmas?: boolean;
  clip_sample?: boolean;
  clip_sample_range?: number;
  set_alpha_to_one?: boolean;
  rescale_betas_zero_snr?: boolean;
  [key: string]: unknown;
}

/** What the pipeline needs to know about a model beyond its graphs (from the model manifest). */
export interface DiffusionConfig {
  layout: ModelLayout;
  /** VAE latent scaling factor (`vae/config.json` `scaling_factor`): SDXL 0.13025, SD 1.5/2 0.18215. */
  vaeScalingFactor: number;
  /** Channels of the denoised latents (4 for SD/SDXL). */
  latentChannels: number;
  /** Native generation size in pixels: a number (square) or width × height (SDXL 1024, SD 512). */
  resolution: number | { width: number; height: number };
  /** The diffusers scheduler config of the model. */
  scheduler: SchedulerConfig;
  /** Which scheduler to run (default: from `scheduler._class_name`, else 'euler'). */
  schedulerKind?: SchedulerKind;
  /** Token sequence length of the text encoders (77). */
  maxTokens?: number;
  /** Pad id of text encoder 1 (SDXL / SD 1.5 pad with `<|endoftext|>` 49407; SD 2 with 0). */
  padTokenId?: number;
  /** Pad id of text encoder 2 (SDXL's second tokenizer pads with 0). */
  padTokenId2?: number;
  /**
   * Hidden state fed to the UNet from encoder 1 in the `sd-inpaint` layout: 'last' (`last_hidden_state`,
   * diffusers' default) or 'penultimate' (`hidden_states[-2]`, clip skip 1). SDXL always uses the penultimate.
   */
  textHiddenState?: 'last' | 'penultimate';
  /** SDXL's `force_zeros_for_empty_prompt`: an empty negative prompt gives zero embeddings (default true for SDXL). */
  forceZerosForEmptyPrompt?: boolean;
  /** SDXL refiner-style `requires_aesthetics_score` (time_ids of 5); read from the `time_ids` shape when absent. */
  requiresAestheticsScore?: boolean;
}

/**
 * The graphs of one model, as an optimum ONNX export names them:
 * text_encoder `input_ids` → `last_hidden_state`, `pooler_output`?, `hidden_states.N`;
 * text_encoder_2 `input_ids` → `text_embeds`, `last_hidden_state`?, `hidden_states.N`;
 * unet `sample` [B,9,h,w], `timestep` (float/int64, scalar or [B]), `encoder_hidden_states` [B,77,D],
 * `text_embeds` [B,1280]?, `time_ids` [B,6]? → `out_sample` [B,4,h,w];
 * vae_encoder `sample` [B,3,H,W] → `latent_sample` [B,4,H/8,W/8];
 * vae_decoder `latent_sample` [B,4,h,w] → `sample` [B,3,8h,8w].
 * Input names, dtypes (fp16/fp32, int32/int64) and ranks are read from `session.inputs`.
 */
export interface DiffusionModels {
  textEncoder: SessionLike;
  /** Required for `sdxl-inpaint`. */
  textEncoder2?: SessionLike;
  unet: SessionLike;
  vaeEncoder: SessionLike;
  vaeDecoder: SessionLike;
  config: DiffusionConfig;
}

/** What the pipeline needs from a tokenizer (`ClipTokenizer` implements it). */
export interface TokenizerLike {
  /** Token ids padded/truncated to `maxLength` (BOS + content + EOS + pads). */
  encodePadded(text: string, options?: { maxLength?: number; padTokenId?: number }): Int32Array;
}

/** One inpainting request. Image and mask are the full source image and its region mask, same size. */
export interface GenerateRequest {
  /** Source image (1, 3 or 4 channels). The output keeps its size and channel count. */
  image: RasterImage;
  /** Region to repaint: single-channel (or any, converted to gray), non-zero ≥ 128 = repaint. Same size as image. */
  mask: RasterImage;
  prompt: string;
  /** Empty → zero embeddings for SDXL (force_zeros_for_empty_prompt), the encoded "" for SD. */
  negativePrompt?: string;
  /** Number of scheduler steps before the strength cut (diffusers' `num_inference_steps`). */
  steps: number;
  /** Classifier-free guidance scale; ≤ 1 runs the conditional branch only (no negative prompt pass). */
  guidanceScale: number;
  /** In (0, 1]: 1 starts from pure noise, less starts from the noised source latents. */
  strength: number;
  /** Seed of the `Rng` that draws the initial noise (see `pipeline.ts` for the generator). */
  seed: number;
  /**
   * "Only masked": crop the mask's bounding box grown by `padding` pixels (then widened to the generation aspect
   * ratio), generate at model resolution, paste back. Without it the whole image is resized to model resolution.
   */
  onlyMasked?: { padding: number };
  /** Gaussian blur sigma (pixels, source scale) of the paste-back mask; 0 = hard edge. */
  maskBlur?: number;
  /** Decode a preview every k steps (0/undefined = never). Costs one VAE decode each. */
  previewEvery?: number;
  /** Generation size override (multiple of the VAE factor 8); default `config.resolution`. */
  width?: number;
  height?: number;
  /** Scheduler override (default from the config). */
  scheduler?: SchedulerKind;
  /**
   * A mask covering the whole image is refused unless this is true (then the whole image is regenerated, as
   * diffusers allows). "Only masked" always refuses it: there is nothing around the region to crop to.
   */
  allowFullMask?: boolean;
}

export interface GenerateOptions {
  signal?: CancelSignal;
  /** Per-step progress: stage 'denoise', unit 'steps'; `detail` is a `DenoiseProgressDetail`. */
  onProgress?: ProgressFn;
}

/** `Progress.detail` of the denoise stage. */
export interface DenoiseProgressDetail {
  timestep: number;
  /** Decoded estimate of the final image (generation size, RGB) every `previewEvery` steps. */
  preview?: RasterImage;
}

/** Everything needed to regenerate the result; goes into the sample's provenance `parameters`. */
export interface DiffusionParams {
  layout: ModelLayout;
  scheduler: SchedulerKind;
  prompt: string;
  negativePrompt: string;
  steps: number;
  /** Steps actually run after the strength cut. */
  stepsRun: number;
  guidanceScale: number;
  strength: number;
  seed: number;
  width: number;
  height: number;
  onlyMasked: { padding: number } | null;
  maskBlur: number;
  /** Region of the source image that was generated (whole image unless "only masked"). */
  cropRect: Rect;
  noise: 'defectlab-rng-sfc32-box-muller';
}

export interface GenerateResult {
  /** Source image with the generated region pasted back; same size and channels as the request image. */
  image: RasterImage;
  /**
   * The paste-back mask (1 channel, 0..255, source size): output = source where it is 0 (bit for bit), generated
   * where it is 255, blended in between.
   */
  mask: RasterImage;
  /** The raw decoded generation (RGB, generation size), before paste-back. */
  generated: RasterImage;
  /** Final latents [1, C, h, w] (unscaled, as the scheduler left them) — the parity tests compare these. */
  latents: Float32Array;
  latentDims: [number, number, number, number];
  params: DiffusionParams;
}

import { InvalidArgumentError } from '../errors.ts';
import type { RasterImage, Rect } from '../image.ts';
import { assertRaster, crop, resizeBilinear } from '../image.ts';
import { etaSeconds, throwIfCancelled, yieldToEventLoop } from '../progress.ts';
import { Rng } from '../rng.ts';
import type { SessionLike, TensorLike } from '../tensor.ts';
import {
  binaryMask,
  compositeThroughMask,
  cropRegion,
  imageToPlanar,
  maskToLatent,
  maskedPlanar,
  pasteBackMask,
  planarToImage,
  validateMask,
} from './inpaint.ts';
import type { Scheduler } from './schedulers.ts';
import { createScheduler, schedulerKindOf } from './schedulers.ts';
import {
  ModelLayoutError,
  checkModelLayout,
  fixedDim,
  floatFeed,
  idsFeed,
  inputInfo,
  penultimateOutput,
  readFloat,
  timestepFeed,
  unetOutput,
  vaeDecoderOutput,
  vaeEncoderOutput,
} from './session-io.ts';
import type {
  DiffusionConfig,
  DiffusionModels,
  DiffusionParams,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  TokenizerLike,
} from './types.ts';
import { checkNumber } from '../fields.ts';
import { DIFFUSION_STEPS } from './settings.ts';

/**
 * SDXL / SD inpainting over `SessionLike`, following diffusers' `StableDiffusionXLInpaintPipeline`.
 *
 * Noise: `new Rng(seed)` (sfc32 + Box–Muller, `src/core/rng.ts`) draws the initial latent noise first, C·h·w
 * standard normals in NCHW order; a fork of it feeds stochastic schedulers. The same seed gives the same image on
 * every runtime here, but not the image torch's generator would give for that seed in diffusers.
 *
 * Deliberate choices where diffusers leaves one open: the VAE encoder's output is used as exported (optimum's
 * `latent_sample`; the mean half of `latent_parameters`), so encoding is deterministic; the UNet sees the binary
 * mask while `maskBlur` only softens the paste-back; the result is always pasted back into the source, so pixels
 * where the returned paste-back mask is 0 are the source's bytes; the "only masked" crop is resized straight to
 * the generation size (diffusers' 'fill' mode differs only when the aspect-widened crop hits the image border).
 */

/** Conditioning for one UNet pass, batch order [uncond, cond] as diffusers (or [cond] without guidance). */
interface Conditioning {
  /** [B, L, D] */
  hidden: Float32Array;
  hiddenDims: [number, number, number];
  /** [B, P] pooled projection of encoder 2 (SDXL only). */
  pooled: Float32Array | null;
  pooledDim: number;
}

async function runEncoder(
  session: SessionLike,
  component: string,
  ids: Int32Array,
  wanted: string[],
  layout: DiffusionConfig['layout'],
): Promise<Record<string, TensorLike>> {
  const info = inputInfo(session, component, 'input_ids', layout);
  return session.run({ input_ids: idsFeed(info, ids, [1, ids.length]) }, wanted);
}

/** Hidden state [1, L, D] (+ pooled [1, P]) of one prompt. */
async function encodeOne(
  models: DiffusionModels,
  tokenizer: TokenizerLike,
  text: string,
): Promise<{ hidden: Float32Array; dims: [number, number, number]; pooled: Float32Array | null }> {
  const cfg = models.config;
  const L = cfg.maxTokens ?? 77;
  const layout = cfg.layout;
  const ids1 = tokenizer.encodePadded(text, { maxLength: L, padTokenId: cfg.padTokenId ?? 49407 });
  const e1 = models.textEncoder;
  const wantPenultimate = layout === 'sdxl-inpaint' || cfg.textHiddenState === 'penultimate';
  const pen1 = wantPenultimate ? penultimateOutput(e1) : null;
  if (wantPenultimate && !pen1)
    throw new ModelLayoutError(
      `text_encoder exports no hidden_states.N outputs, and ${layout} needs the penultimate layer`,
      'export the text encoder with its hidden states (optimum does for SDXL), or use textHiddenState "last" for SD',
    );
  const name1 = pen1 ?? 'last_hidden_state';
  const h1 = readFloat(await runEncoder(e1, 'text_encoder', ids1, [name1], layout), name1, 'text_encoder');
  if (layout !== 'sdxl-inpaint')
    return { hidden: h1.data, dims: dims3(h1.dims, 'text_encoder'), pooled: null };

  const e2 = models.textEncoder2!;
  const ids2 = tokenizer.encodePadded(text, { maxLength: L, padTokenId: cfg.padTokenId2 ?? 0 });
  const pen2 = penultimateOutput(e2);
  if (!pen2)
    throw new ModelLayoutError(
      'text_encoder_2 exports no hidden_states.N outputs, and SDXL needs its penultimate layer',
      'export text_encoder_2 with its hidden states (optimum does for SDXL)',
    );
  const out2 = await runEncoder(e2, 'text_encoder_2', ids2, [pen2, 'text_embeds'], layout);
  const h2 = readFloat(out2, pen2, 'text_encoder_2');
  const pooled = readFloat(out2, 'text_embeds', 'text_encoder_2');
  const [, l1, d1] = dims3(h1.dims, 'text_encoder');
  const [, l2, d2] = dims3(h2.dims, 'text_encoder_2');
  if (l1 !== l2)
    throw new ModelLayoutError(
      `the text encoders return ${l1} and ${l2} tokens`,
      'load both encoders of one model',
    );
  // Concatenate along the feature axis: [1, L, d1] ‖ [1, L, d2] → [1, L, d1 + d2].
  const D = d1 + d2;
  const hidden = new Float32Array(l1 * D);
  for (let t = 0; t < l1; t++) {
    hidden.set(h1.data.subarray(t * d1, (t + 1) * d1), t * D);
    hidden.set(h2.data.subarray(t * d2, (t + 1) * d2), t * D + d1);
  }
  return { hidden, dims: [1, l1, D], pooled: pooled.data.slice() };
}

function dims3(d: number[], component: string): [number, number, number] {
  if (d.length !== 3 || d[0] !== 1)
    throw new ModelLayoutError(
      `${component} returned hidden states of shape [${d}], expected [1, L, D]`,
      'check the export',
    );
  return [d[0], d[1], d[2]];
}

/**
 * Prompt + negative prompt → the batched conditioning. With guidance the batch is [uncond, cond]; an empty
 * negative prompt gives zeros when `forceZerosForEmptyPrompt` (SDXL's default), else the encoding of "".
 */
export async function encodeConditioning(
  models: DiffusionModels,
  tokenizer: TokenizerLike,
  prompt: string,
  negativePrompt: string,
  guidance: boolean,
): Promise<Conditioning> {
  const cond = await encodeOne(models, tokenizer, prompt);
  const [, L, D] = cond.dims;
  const P = cond.pooled?.length ?? 0;
  if (!guidance) return { hidden: cond.hidden, hiddenDims: [1, L, D], pooled: cond.pooled, pooledDim: P };
  const zeros = models.config.forceZerosForEmptyPrompt ?? models.config.layout === 'sdxl-inpaint';
  let uncond: { hidden: Float32Array; pooled: Float32Array | null };
  if (negativePrompt.trim() === '' && zeros)
    uncond = { hidden: new Float32Array(L * D), pooled: P ? new Float32Array(P) : null };
  else uncond = await encodeOne(models, tokenizer, negativePrompt);
  const hidden = new Float32Array(2 * L * D);
  hidden.set(uncond.hidden, 0);
  hidden.set(cond.hidden, L * D);
  let pooled: Float32Array | null = null;
  if (P) {
    pooled = new Float32Array(2 * P);
    pooled.set(uncond.pooled!, 0);
    pooled.set(cond.pooled!, P);
  }
  return { hidden, hiddenDims: [2, L, D], pooled, pooledDim: P };
}

/** Generation size from the request or the config's resolution. */
function generationSize(config: DiffusionConfig, req: GenerateRequest): { width: number; height: number } {
  const r = config.resolution;
  const width = req.width ?? (typeof r === 'number' ? r : r.width);
  const height = req.height ?? (typeof r === 'number' ? r : r.height);
  for (const [n, v] of [
    ['width', width],
    ['height', height],
  ] as const)
    if (!Number.isInteger(v) || v < 8 || v % 8 !== 0)
      throw new InvalidArgumentError(n, 'a positive multiple of 8 (the VAE’s downscale)', v);
  return { width, height };
}

function validateRequest(req: GenerateRequest): void {
  assertRaster(req.image, 'image');
  if (typeof req.prompt !== 'string') throw new InvalidArgumentError('prompt', 'a string', req.prompt);
  checkNumber(DIFFUSION_STEPS, req.steps, 'steps');
  if (!Number.isFinite(req.guidanceScale) || req.guidanceScale < 0)
    throw new InvalidArgumentError('guidanceScale', 'a finite number ≥ 0', req.guidanceScale);
  if (!(req.strength > 0 && req.strength <= 1))
    throw new InvalidArgumentError('strength', 'in (0, 1]', req.strength);
  if (!Number.isInteger(req.seed) || req.seed < 0 || req.seed > 0xffffffff)
    throw new InvalidArgumentError('seed', 'an integer in [0, 2^32)', req.seed);
  if (req.previewEvery !== undefined && (!Number.isInteger(req.previewEvery) || req.previewEvery < 0))
    throw new InvalidArgumentError('previewEvery', 'an integer ≥ 0', req.previewEvery);
}

/**
 * Runs the VAE encoder on a planar [3, H, W] image in [-1, 1] → scaled latents [C, h, w] (× vaeScalingFactor).
 */
async function encodeImage(
  models: DiffusionModels,
  planar: Float32Array,
  width: number,
  height: number,
): Promise<{ latents: Float32Array; h: number; w: number }> {
  const { config } = models;
  const info = inputInfo(models.vaeEncoder, 'vae_encoder', 'sample', config.layout);
  const name = vaeEncoderOutput(models.vaeEncoder);
  const out = readFloat(
    await models.vaeEncoder.run({ sample: floatFeed(info, planar, [1, 3, height, width]) }, [name]),
    name,
    'vae_encoder',
  );
  const [, c, h, w] = out.dims;
  const C = config.latentChannels;
  if (out.dims.length !== 4 || (c !== C && c !== 2 * C))
    throw new ModelLayoutError(
      `vae_encoder returned [${out.dims}], expected [1, ${C}, h, w] (or [1, ${2 * C}, h, w] mean ‖ logvar)`,
      'check latentChannels in the model manifest',
    );
  // [1, 2C, h, w] is the diagonal Gaussian's mean ‖ log-variance: its first C channels are the mode.
  const latents = new Float32Array(C * h * w);
  for (let i = 0; i < latents.length; i++) latents[i] = out.data[i] * config.vaeScalingFactor;
  return { latents, h, w };
}

/** Latents [C, h, w] (scaled) → RGB image of width × height. */
async function decodeLatents(
  models: DiffusionModels,
  latents: Float32Array,
  h: number,
  w: number,
): Promise<RasterImage> {
  const { config } = models;
  const info = inputInfo(models.vaeDecoder, 'vae_decoder', 'latent_sample', config.layout);
  const unscaled = new Float32Array(latents.length);
  for (let i = 0; i < latents.length; i++) unscaled[i] = latents[i] / config.vaeScalingFactor;
  const name = vaeDecoderOutput(models.vaeDecoder);
  const out = readFloat(
    await models.vaeDecoder.run(
      { latent_sample: floatFeed(info, unscaled, [1, config.latentChannels, h, w]) },
      [name],
    ),
    name,
    'vae_decoder',
  );
  if (out.dims.length !== 4 || out.dims[1] !== 3)
    throw new ModelLayoutError(
      `vae_decoder returned [${out.dims}], expected [1, 3, H, W]`,
      'check the export',
    );
  return planarToImage(out.data, out.dims[3], out.dims[2]);
}

interface UnetContext {
  models: DiffusionModels;
  cond: Conditioning;
  /** time_ids rows [6] (or [5] with an aesthetic score) for the uncond and cond batch items. */
  timeIds: { uncond: Float32Array; cond: Float32Array } | null;
  /** Mask at latent size [1, h, w] and masked-image latents [C, h, w] for a 9-channel UNet. */
  maskLatent: Float32Array;
  maskedLatents: Float32Array;
  inpaintUnet: boolean;
  h: number;
  w: number;
  /** Step-invariant feeds (hidden states, text_embeds, time_ids) per run offset, converted once (fp16 is costly). */
  constantFeeds: Map<number, Record<string, TensorLike>>;
}

/**
 * One guided noise prediction: the UNet on [uncond, cond] in one batch (or two runs when the graph fixes the
 * batch to 1), then ε = ε_u + g (ε_c − ε_u). Without guidance, ε_c alone.
 */
async function predictNoise(
  ctx: UnetContext,
  scaled: Float32Array,
  t: number,
  guidanceScale: number,
): Promise<Float32Array> {
  const { models, cond, h, w } = ctx;
  const { unet, config } = models;
  const layout = config.layout;
  const C = config.latentChannels;
  const hw = h * w;
  const B = cond.hiddenDims[0];
  const inC = ctx.inpaintUnet ? 2 * C + 1 : C;
  // One batch item of the UNet input: latents ‖ mask ‖ masked-image latents → [inC, h, w].
  const item = new Float32Array(inC * hw);
  item.set(scaled, 0);
  if (ctx.inpaintUnet) {
    item.set(ctx.maskLatent, C * hw);
    item.set(ctx.maskedLatents, (C + 1) * hw);
  }
  const sampleInfo = inputInfo(unet, 'unet', 'sample', layout);
  const tInfo = inputInfo(unet, 'unet', 'timestep', layout);
  const hInfo = inputInfo(unet, 'unet', 'encoder_hidden_states', layout);
  const declaredD = fixedDim(hInfo, 2);
  if (declaredD !== null && declaredD !== cond.hiddenDims[2])
    throw new ModelLayoutError(
      `unet expects encoder_hidden_states of width ${declaredD}, the text encoders give ${cond.hiddenDims[2]}`,
      'load the text encoders and unet of the same model',
    );
  const perRun = fixedDim(sampleInfo, 0) === 1 ? 1 : B;
  const [, L, D] = cond.hiddenDims;
  const outName = unetOutput(unet);
  const result = new Float32Array(B * C * hw);
  for (let b0 = 0; b0 < B; b0 += perRun) {
    const sample = new Float32Array(perRun * inC * hw);
    for (let k = 0; k < perRun; k++) sample.set(item, k * inC * hw);
    let constant = ctx.constantFeeds.get(b0);
    if (!constant) {
      constant = {
        encoder_hidden_states: floatFeed(hInfo, cond.hidden.slice(b0 * L * D, (b0 + perRun) * L * D), [
          perRun,
          L,
          D,
        ]),
      };
      if (layout === 'sdxl-inpaint') {
        const P = cond.pooledDim;
        constant.text_embeds = floatFeed(
          inputInfo(unet, 'unet', 'text_embeds', layout),
          cond.pooled!.slice(b0 * P, (b0 + perRun) * P),
          [perRun, P],
        );
        const rows = ctx.timeIds!;
        const T = rows.cond.length;
        const ids = new Float32Array(perRun * T);
        // Batch item b is uncond when guidance runs (B = 2, order [uncond, cond]).
        for (let k = 0; k < perRun; k++) ids.set(B === 2 && b0 + k === 0 ? rows.uncond : rows.cond, k * T);
        constant.time_ids = floatFeed(inputInfo(unet, 'unet', 'time_ids', layout), ids, [perRun, T]);
      }
      ctx.constantFeeds.set(b0, constant);
    }
    const feeds: Record<string, TensorLike> = {
      ...constant,
      sample: floatFeed(sampleInfo, sample, [perRun, inC, h, w]),
      timestep: timestepFeed(tInfo, t, perRun),
    };
    const out = readFloat(await unet.run(feeds, [outName]), outName, 'unet');
    if (out.data.length !== perRun * C * hw)
      throw new ModelLayoutError(
        `unet returned [${out.dims}], expected [${perRun}, ${C}, ${h}, ${w}]`,
        'check latentChannels and the unet export',
      );
    result.set(out.data, b0 * C * hw);
  }
  if (B === 1) return result;
  const n = C * hw;
  const eps = new Float32Array(n);
  for (let i = 0; i < n; i++) eps[i] = result[i] + guidanceScale * (result[n + i] - result[i]);
  return eps;
}

/**
 * SDXL's added time ids [orig_h, orig_w, crop_top, crop_left, target_h, target_w] (original = target = the
 * generation size, no crop offset, as diffusers' defaults), or the refiner form [orig_h, orig_w, crop_top,
 * crop_left, aesthetic score] with 6.0 for the prompt and 2.5 for the negative prompt.
 */
function timeIdsFor(
  models: DiffusionModels,
  height: number,
  width: number,
): { uncond: Float32Array; cond: Float32Array } | null {
  if (models.config.layout !== 'sdxl-inpaint') return null;
  const info = inputInfo(models.unet, 'unet', 'time_ids', models.config.layout);
  const aesthetic = models.config.requiresAestheticsScore ?? fixedDim(info, 1) === 5;
  if (aesthetic)
    return {
      cond: Float32Array.from([height, width, 0, 0, 6]),
      uncond: Float32Array.from([height, width, 0, 0, 2.5]),
    };
  const row = Float32Array.from([height, width, 0, 0, height, width]);
  return { cond: row, uncond: row };
}

/**
 * Inpaints `request.mask` of `request.image` with the model. See the file comment for the noise generator.
 *
 * Stages: validate → crop ("only masked") and resize to the generation size → encode prompts → VAE-encode the
 * masked image (and the image when strength < 1) → denoise (progress per step, cancel between steps) →
 * decode → resize back and paste through the paste-back mask.
 */
export async function generate(
  models: DiffusionModels,
  tokenizer: TokenizerLike,
  request: GenerateRequest,
  options: GenerateOptions = {},
): Promise<GenerateResult> {
  const { signal, onProgress } = options;
  validateRequest(request);
  checkModelLayout(models);
  const config = models.config;
  const mask = binaryMask(request.image, request.mask);
  const onlyMasked = request.onlyMasked ?? null;
  validateMask(mask, { onlyMasked: onlyMasked !== null, allowFull: request.allowFullMask ?? false });
  const { width, height } = generationSize(config, request);
  const maskBlur = request.maskBlur ?? 0;
  const region: Rect = onlyMasked
    ? cropRegion(mask, onlyMasked.padding, width, height)
    : { x: 0, y: 0, width: request.image.width, height: request.image.height };
  const pasteMask = pasteBackMask(mask, region, maskBlur);

  // Generation-size image and mask.
  const imgGen = resizeBilinear(crop(request.image, region), width, height);
  const maskCropped = crop(mask, region);
  const maskGen = resizeBilinear(maskCropped, width, height);
  const planar = imageToPlanar(imgGen);
  const masked = maskedPlanar(planar, maskGen);

  const kind = request.scheduler ?? config.schedulerKind ?? schedulerKindOf(config.scheduler);
  const scheduler: Scheduler = createScheduler(config.scheduler, kind);
  const timesteps = scheduler.inpaintTimesteps(request.steps, request.strength);
  const guidance = request.guidanceScale > 1;
  const negativePrompt = request.negativePrompt ?? '';

  throwIfCancelled(signal, 'diffusion generation');
  const cond = await encodeConditioning(models, tokenizer, request.prompt, negativePrompt, guidance);
  throwIfCancelled(signal, 'diffusion generation');

  const maskedEnc = await encodeImage(models, masked, width, height);
  const { h, w } = maskedEnc;
  const C = config.latentChannels;
  const unetChannels = fixedDim(inputInfo(models.unet, 'unet', 'sample', config.layout), 1);
  const inpaintUnet = unetChannels === null || unetChannels === 2 * C + 1;
  const maskLatent = maskToLatent(maskGen, h, w);

  const rng = new Rng(request.seed);
  const noise = rng.normalArray(C * h * w);
  const schedulerRng = rng.fork('scheduler');
  const strengthMax = request.strength === 1;
  // A plain 4-channel UNet re-imposes the noised source outside the mask each step, so it needs the latents too.
  const imageLatents =
    !strengthMax || !inpaintUnet ? (await encodeImage(models, planar, width, height)).latents : null;
  let latents: Float32Array;
  if (strengthMax) {
    latents = new Float32Array(noise.length);
    for (let i = 0; i < noise.length; i++) latents[i] = noise[i] * scheduler.initNoiseSigma;
  } else {
    latents = scheduler.addNoise(imageLatents!, noise, timesteps[0]);
  }

  const ctx: UnetContext = {
    models,
    cond,
    timeIds: timeIdsFor(models, height, width),
    maskLatent,
    maskedLatents: maskedEnc.latents,
    inpaintUnet,
    h,
    w,
    constantFeeds: new Map(),
  };
  const start = Date.now();
  const n = timesteps.length;
  for (let i = 0; i < n; i++) {
    const t = timesteps[i];
    throwIfCancelled(signal, 'diffusion generation', `${i} of ${n} steps were done`);
    const scaled = scheduler.scaleModelInput(latents, t);
    const eps = await predictNoise(ctx, scaled, t, request.guidanceScale);
    latents = scheduler.step(eps, t, latents, schedulerRng);
    if (!inpaintUnet && imageLatents)
      latents = blendKnown(scheduler, imageLatents, noise, latents, maskLatent, timesteps, i);
    let preview: RasterImage | undefined;
    const k = request.previewEvery ?? 0;
    if (k > 0 && (i + 1) % k === 0 && i + 1 < n)
      preview = await decodeLatents(models, scheduler.predOriginalSample ?? latents, h, w);
    onProgress?.({
      stage: 'denoise',
      done: i + 1,
      total: n,
      unit: 'steps',
      etaSeconds: etaSeconds(start, Date.now(), i + 1, n),
      detail: { timestep: t, preview },
    });
    // Lets a worker's cancel message land between steps.
    await yieldToEventLoop();
  }
  throwIfCancelled(signal, 'diffusion generation', `all ${n} steps were done, the decode was not`);

  const generated = await decodeLatents(models, latents, h, w);
  const patch = resizeBilinear(generated, region.width, region.height);
  const image = compositeThroughMask(request.image, patch, region, pasteMask);
  const params: DiffusionParams = {
    layout: config.layout,
    scheduler: kind,
    prompt: request.prompt,
    negativePrompt,
    steps: request.steps,
    stepsRun: n,
    guidanceScale: request.guidanceScale,
    strength: request.strength,
    seed: request.seed,
    width,
    height,
    onlyMasked,
    maskBlur,
    cropRect: region,
    noise: 'defectlab-rng-sfc32-box-muller',
  };
  return { image, mask: pasteMask, generated, latents, latentDims: [1, C, h, w], params };
}

/** A 4-channel UNet keeps the known region: latents = (1 − m)·noised source + m·latents (diffusers' rule). */
function blendKnown(
  scheduler: Scheduler,
  imageLatents: Float32Array,
  noise: Float32Array,
  latents: Float32Array,
  maskLatent: Float32Array,
  timesteps: number[],
  i: number,
): Float32Array {
  const known =
    i < timesteps.length - 1 ? scheduler.addNoise(imageLatents, noise, timesteps[i + 1]) : imageLatents;
  const hw = maskLatent.length;
  const out = new Float32Array(latents.length);
  for (let j = 0; j < latents.length; j++) {
    const m = maskLatent[j % hw];
    out[j] = (1 - m) * known[j] + m * latents[j];
  }
  return out;
}

import { DefectLabError } from '../errors.ts';
import type { SessionLike, TensorLike, ValueInfo } from '../tensor.ts';
import { fromFloat32, tensor, toFloat32 } from '../tensor.ts';
import type { DiffusionModels, ModelLayout } from './types.ts';

/**
 * Feeding and reading sessions without assuming their exporter: input names, dtypes (fp32/fp16 floats, int32/int64
 * ids and timesteps) and ranks (scalar or [B] timestep, fixed or symbolic batch) come from `session.inputs`.
 */

export class ModelLayoutError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('ModelLayoutError', problem, fix);
  }
}

const FIX =
  'load an optimum ONNX export of the layout’s components (text_encoder, text_encoder_2 for SDXL, unet, vae_encoder, vae_decoder) or pick the other layout';

/** The graph input `name`, or a named error listing what the graph has. */
export function inputInfo(
  session: SessionLike,
  component: string,
  name: string,
  layout: ModelLayout,
): ValueInfo {
  const info = session.inputs.find((i) => i.name === name);
  if (!info)
    throw new ModelLayoutError(
      `${component} has no input "${name}" that the ${layout} layout needs (it has: ${session.inputNames.join(', ') || 'none'})`,
      FIX,
    );
  return info;
}

export function hasInput(session: SessionLike, name: string): boolean {
  return session.inputs.some((i) => i.name === name);
}

/** A float input in the graph's own dtype (fp16 graphs get Uint16Array halves). */
export function floatFeed(info: ValueInfo, data: Float32Array, dims: readonly number[]): TensorLike {
  if (info.type !== 'float32' && info.type !== 'float16')
    throw new ModelLayoutError(`input "${info.name}" is ${info.type}, expected a float tensor`, FIX);
  return fromFloat32(data, info.type, dims);
}

/** Token ids [B, L] as the graph's integer type (optimum exports int32 or int64). */
export function idsFeed(info: ValueInfo, ids: Int32Array, dims: readonly number[]): TensorLike {
  if (info.type === 'int32') return tensor('int32', ids, dims);
  if (info.type === 'int64')
    return tensor(
      'int64',
      BigInt64Array.from(ids, (v) => BigInt(v)),
      dims,
    );
  throw new ModelLayoutError(`input "${info.name}" is ${info.type}, expected int32 or int64 token ids`, FIX);
}

/**
 * The UNet timestep in the form the graph declares: rank 0 → a scalar, rank 1 → one value per batch item
 * ([B], or [1] when the graph fixes that dimension to 1); float32, float16, int64 or int32.
 */
export function timestepFeed(info: ValueInfo, t: number, batch: number): TensorLike {
  const rank = info.shape.length;
  if (rank > 1)
    throw new ModelLayoutError(`unet input "timestep" has rank ${rank}, expected a scalar or [batch]`, FIX);
  const n = rank === 0 ? 1 : info.shape[0] === 1 ? 1 : batch;
  const dims = rank === 0 ? [] : [n];
  const data = new Float32Array(n).fill(t);
  if (info.type === 'float32' || info.type === 'float16' || info.type === 'int64' || info.type === 'int32')
    return fromFloat32(data, info.type, dims);
  throw new ModelLayoutError(`unet input "timestep" is ${info.type}, expected float or int64`, FIX);
}

/** A float output as float32 values plus dims; a named error when the graph did not return it. */
export function readFloat(
  out: Record<string, TensorLike>,
  name: string,
  component: string,
): { data: Float32Array; dims: number[] } {
  const t = out[name];
  if (!t)
    throw new ModelLayoutError(
      `${component} did not return "${name}" (it returned: ${Object.keys(out).join(', ') || 'nothing'})`,
      FIX,
    );
  return { data: toFloat32(t), dims: [...t.dims] };
}

/** `hidden_states.N` outputs sorted by N. */
export function hiddenStateOutputs(session: SessionLike): string[] {
  return session.outputNames
    .filter((n) => /^hidden_states\.\d+$/.test(n))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
}

/** The penultimate hidden state's output name (diffusers' `hidden_states[-2]`), or null when not exported. */
export function penultimateOutput(session: SessionLike): string | null {
  const hs = hiddenStateOutputs(session);
  return hs.length >= 2 ? hs[hs.length - 2] : null;
}

/** The output a VAE encoder names its latents by (`latent_sample`, newer optimum `latent_parameters`, else the first). */
export function vaeEncoderOutput(session: SessionLike): string {
  for (const n of ['latent_sample', 'latent_parameters', 'latent_dist'])
    if (session.outputNames.includes(n)) return n;
  return session.outputNames[0];
}

export function unetOutput(session: SessionLike): string {
  return session.outputNames.includes('out_sample') ? 'out_sample' : session.outputNames[0];
}

export function vaeDecoderOutput(session: SessionLike): string {
  return session.outputNames.includes('sample') ? 'sample' : session.outputNames[0];
}

/** A numeric dimension of a declared shape, or null when symbolic/unknown. */
export function fixedDim(info: ValueInfo, axis: number): number | null {
  const d = info.shape[axis];
  return typeof d === 'number' && d > 0 ? d : null;
}

/**
 * Checks that the sessions form the declared layout before any work (and before anything is stored):
 * every input the pipeline feeds exists, the UNet takes 9 (inpaint) or 4 channels, SDXL has encoder 2 with
 * `text_embeds`. Throws `ModelLayoutError` naming the component, the missing name and what the graph has.
 */
export function checkModelLayout(models: DiffusionModels): void {
  const { layout } = models.config;
  if (layout !== 'sdxl-inpaint' && layout !== 'sd-inpaint')
    throw new ModelLayoutError(
      `unknown layout ${JSON.stringify(layout)}`,
      'use "sdxl-inpaint" or "sd-inpaint"',
    );
  const cfg = models.config;
  if (!(typeof cfg.vaeScalingFactor === 'number' && cfg.vaeScalingFactor > 0))
    throw new ModelLayoutError(
      `config.vaeScalingFactor must be a positive number, got ${String(cfg.vaeScalingFactor)}`,
      'copy scaling_factor from the model’s vae/config.json into the manifest (SDXL 0.13025, SD 0.18215)',
    );
  if (!Number.isInteger(cfg.latentChannels) || cfg.latentChannels < 1)
    throw new ModelLayoutError(
      `config.latentChannels must be a positive integer, got ${String(cfg.latentChannels)}`,
      'copy latent_channels from the model’s vae/config.json into the manifest (4 for SD/SDXL)',
    );
  inputInfo(models.textEncoder, 'text_encoder', 'input_ids', layout);
  const unetSample = inputInfo(models.unet, 'unet', 'sample', layout);
  inputInfo(models.unet, 'unet', 'timestep', layout);
  inputInfo(models.unet, 'unet', 'encoder_hidden_states', layout);
  inputInfo(models.vaeEncoder, 'vae_encoder', 'sample', layout);
  inputInfo(models.vaeDecoder, 'vae_decoder', 'latent_sample', layout);
  const ch = fixedDim(unetSample, 1);
  const lc = models.config.latentChannels;
  if (ch !== null && ch !== 2 * lc + 1 && ch !== lc)
    throw new ModelLayoutError(
      `unet "sample" has ${ch} channels; an inpainting UNet takes ${2 * lc + 1} (latents ‖ mask ‖ masked-image latents)`,
      FIX,
    );
  if (layout === 'sdxl-inpaint') {
    if (!models.textEncoder2)
      throw new ModelLayoutError('the sdxl-inpaint layout needs text_encoder_2, none was loaded', FIX);
    inputInfo(models.textEncoder2, 'text_encoder_2', 'input_ids', layout);
    if (!models.textEncoder2.outputNames.includes('text_embeds'))
      throw new ModelLayoutError(
        `text_encoder_2 has no output "text_embeds" (it has: ${models.textEncoder2.outputNames.join(', ')})`,
        FIX,
      );
    inputInfo(models.unet, 'unet', 'text_embeds', layout);
    inputInfo(models.unet, 'unet', 'time_ids', layout);
  } else if (hasInput(models.unet, 'time_ids') || hasInput(models.unet, 'text_embeds')) {
    throw new ModelLayoutError(
      'the unet takes added conditioning (text_embeds/time_ids), so it is an SDXL UNet, not sd-inpaint',
      'pick the sdxl-inpaint layout and load both text encoders',
    );
  }
  for (const [name, s] of [
    ['text_encoder', models.textEncoder],
    ['unet', models.unet],
    ['vae_encoder', models.vaeEncoder],
    ['vae_decoder', models.vaeDecoder],
  ] as const)
    if (s.outputNames.length === 0) throw new ModelLayoutError(`${name} has no outputs`, FIX);
}

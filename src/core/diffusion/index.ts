/**
 * The diffusion inpainting pipeline core: pure TypeScript over `SessionLike`, so the same code runs with
 * onnxruntime-web in a worker, onnxruntime-node on the server, and pure-TS fakes in unit tests.
 *
 * Entry points: `ClipTokenizer` (tokenizer.ts), `EulerDiscreteScheduler` / `DDIMScheduler` (schedulers.ts),
 * `generate(models, tokenizer, request, { signal, onProgress })` (pipeline.ts), `checkModelLayout(models)`.
 */
export type {
  DenoiseProgressDetail,
  DiffusionConfig,
  DiffusionModels,
  DiffusionParams,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  ModelLayout,
  SchedulerConfig,
  SchedulerKind,
  TokenizerLike,
} from './types.ts';
export {
  BOS_TOKEN_ID,
  ClipTokenizer,
  EOS_TOKEN_ID,
  TokenizerFileError,
  bytesToUnicode,
  cleanText,
} from './tokenizer.ts';
export {
  DDIMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  SchedulerConfigError,
  SchedulerStateError,
  createScheduler,
  schedulerKindOf,
} from './schedulers.ts';
export type { Scheduler } from './schedulers.ts';
export { encodeConditioning, generate } from './pipeline.ts';
export {
  EmptyMaskError,
  MaskCoversImageError,
  MaskSizeError,
  binaryMask,
  blurMask,
  compositeThroughMask,
  cropRegion,
  imageToPlanar,
  maskToLatent,
  maskedPlanar,
  pasteBackMask,
  planarToImage,
  validateMask,
} from './inpaint.ts';
export { ModelLayoutError, checkModelLayout, penultimateOutput, timestepFeed } from './session-io.ts';
export { FakeSession, fakeDiffusionModels, fakeTokenizer } from './testing.ts';
export type { FakeModelOptions } from './testing.ts';

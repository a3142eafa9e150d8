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
  EulerDiscreteScheduler,
  SchedulerConfigError,
  SchedulerStateError,
  createScheduler,
  schedulerKindOf,
} from './schedulers.ts';
export type { Scheduler } from './schedulers.ts';

/** Synthetic defect generators: pure, seeded, typed-array kernels over `RasterImage` (see README.md). */
export {
  perlin2D,
  perlinFromGradients,
  perlinGradients,
  perlinAt,
  rotatedPerlinMask,
  fade,
  type NoiseField,
} from './perlin.ts';
export { memsegDefect, MEMSEG_SCHEMA, type MemSegOptions } from './memseg.ts';
export {
  randomWalkDefect,
  RANDOM_WALK_SCHEMA,
  WALK_KINDS,
  type RandomWalkOptions,
  type WalkKind,
} from './randomWalk.ts';
export { cutPasteDefect, CUTPASTE_SCHEMA, type CutPasteOptions } from './cutpaste.ts';
export { blurDefect, BLUR_SCHEMA, type BlurOptions } from './blur.ts';
export { transplantDefect, poissonBlend, TRANSPLANT_SCHEMA, type TransplantOptions } from './transplant.ts';
export { proceduralTexture, TEXTURE_KINDS, type TextureKind } from './textures.ts';
export {
  randomPerlinMask,
  RegionCoverageError,
  REGION_MASK_SCHEMA,
  type RandomPerlinMaskOptions,
  type RandomPerlinMaskResult,
} from './regionMask.ts';
export { featherDefect } from './feather.ts';
export { STRUCTURE_OPS, type StructureOp } from './ops.ts';
export { MaskUnsatisfiableError, type DefectResult, type GeneratorFn, type Seed } from './common.ts';
export {
  resolveOptions,
  defaultOptions,
  type OptionSpec,
  type GeneratorSchema,
  type Range,
} from './options.ts';
export {
  registerGenerator,
  listGenerators,
  getGenerator,
  generatorDefaults,
  type GeneratorEntry,
} from './registry.ts';
export {
  generateBatch,
  sampleSeed,
  type BatchSample,
  type BatchFailure,
  type BatchResult,
  type BatchOptions,
} from './batch.ts';
export { benchmarkMemseg, benchmarkGenerator, type SynthBenchResult } from './bench.ts';

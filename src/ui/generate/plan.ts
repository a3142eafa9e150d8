/**
 * Pure helpers of the generation form: which images to use (sources and texture images), the options a generator
 * gets, and the provenance of each sample, so a staged sample records enough to regenerate it
 * (`fn(source, {...options, textures, region_mask}, seed)`, then `featherDefect` when a feather σ is recorded).
 */
import type { SampleProvenance } from '../../core/dataset.ts';
import { DefectLabError, InvalidArgumentError } from '../../core/errors.ts';
import type { RasterImage } from '../../core/image.ts';
import { Rng } from '../../core/rng.ts';
import type { OptionSpec } from '../../core/synth/options.ts';

export type SourceMode = 'current' | 'selection' | 'sampled';
export type MaskMode = 'painted' | 'library' | 'image-region' | 'random' | 'none';
/**
 * Where a texture source (MemSeg's p_texture branch) comes from: procedural textures from src/core/synth,
 * other images of the dataset (sampled with the batch seed), or image files the user picks.
 */
export type TextureMode = 'procedural' | 'dataset' | 'files';

/** What a texture image was, as provenance records it (never the pixels). */
export type TextureRef = { kind: 'dataset'; imageId: string; name: string } | { kind: 'file'; name: string };

/** Most texture images one batch takes (they are copied to the worker with every batch). */
export const MAX_TEXTURES = 64;

export class NoTextureImagesError extends DefectLabError {
  constructor(datasetImages: number, sources: number) {
    super(
      'NoTextureImagesError',
      `no dataset image is left to use as a texture (${datasetImages} image(s), ${sources} of them sources, generated ones skipped)`,
      'import more images, or choose procedural textures or image files as the texture source',
    );
  }
}

/** `k` ids drawn without replacement from `ids` with a seeded shuffle (sorted first, so order in → same out). */
export function sampleIds(
  ids: readonly string[],
  k: number,
  seed: number | string,
  salt = 'sources',
): string[] {
  const sorted = [...ids].sort();
  return new Rng(`${salt}:${seed}`).sampleIndices(sorted.length, k).map((i) => sorted[i]);
}

/**
 * The dataset images used as textures: `k` drawn (seeded by the batch seed, independently of the source draw)
 * from the real images of the dataset that are not sources of this batch. Generated images are left out, so a
 * texture is never a previous synthetic defect.
 * @throws NoTextureImagesError when no candidate is left; InvalidArgumentError when k is out of range
 */
export function pickTextureImages<T extends { id: string; provenance?: unknown }>(
  images: readonly T[],
  sourceIds: readonly string[],
  k: number,
  seed: number | string,
): T[] {
  if (!Number.isInteger(k) || k < 1 || k > MAX_TEXTURES)
    throw new InvalidArgumentError('texture image count', `an integer in [1, ${MAX_TEXTURES}]`, k);
  const skip = new Set(sourceIds);
  const pool = images.filter((i) => !i.provenance && !skip.has(i.id));
  if (pool.length === 0) throw new NoTextureImagesError(images.length, sourceIds.length);
  const byId = new Map(pool.map((i) => [i.id, i]));
  return sampleIds(
    pool.map((i) => i.id),
    k,
    seed,
    'textures',
  ).map((id) => byId.get(id)!);
}

/** The options a generator gets from the form: schema defaults for what the form does not edit. */
export function formDefaults(specs: readonly OptionSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of specs) {
    if (s.kind === 'mask' || s.kind === 'images') continue;
    out[s.key] = Array.isArray(s.default) ? [...(s.default as unknown[])] : s.default;
  }
  return out;
}

/** True when the generator takes texture images (an `images` option, MemSeg's `textures`). */
export function takesTextures(specs: readonly OptionSpec[]): boolean {
  return specs.some((s) => s.kind === 'images');
}

/**
 * The options sent to the generator: the schema's editable defaults, the form's values for this generator's keys
 * only (the form may still hold another generator's values, and unknown keys are errors), and the texture images
 * in every `images` option when there are any (none → the option's default, procedural textures).
 */
export function generatorOptions(
  specs: readonly OptionSpec[],
  edited: Record<string, unknown>,
  textures: readonly RasterImage[] = [],
): Record<string, unknown> {
  const opts = formDefaults(specs);
  for (const k of Object.keys(opts)) if (edited[k] !== undefined) opts[k] = edited[k];
  if (textures.length > 0) for (const s of specs) if (s.kind === 'images') opts[s.key] = [...textures];
  return opts;
}

/** The options as provenance stores them: image lists are replaced by their count (pixels do not belong there). */
export function provenanceOptions(
  specs: readonly OptionSpec[],
  opts: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...opts };
  for (const s of specs)
    if (s.kind === 'images' && Array.isArray(out[s.key])) out[s.key] = (out[s.key] as unknown[]).length;
  return out;
}

export function sampleProvenance(a: {
  generator: string;
  options: Record<string, unknown>;
  params: Record<string, unknown>;
  seed: number;
  batchSeed: number | string;
  maskMode: MaskMode;
  sourceImageId?: string;
  maskId?: string;
  regionSeed?: string;
  /** Where textures came from and the list the generator indexed (`params.texture.image_index`). */
  textureMode?: TextureMode;
  textures?: readonly TextureRef[];
  /** Feather σ of the region mask the sample was blended with (0 or absent: the binary mask). */
  featherSigma?: number;
}): SampleProvenance {
  // Which texture this sample used: the generator records an index into the list it was given.
  const drawn = a.params.texture as { image_index?: number } | undefined;
  const used =
    drawn && typeof drawn.image_index === 'number' && a.textures ? a.textures[drawn.image_index] : undefined;
  return {
    generator: a.generator,
    parameters: {
      options: a.options,
      drawn: a.params,
      batchSeed: a.batchSeed,
      maskSource: a.maskMode,
      ...(a.regionSeed ? { regionSeed: a.regionSeed } : {}),
      ...(a.textureMode ? { textureSource: a.textureMode } : {}),
      ...(a.textures?.length ? { textureImages: [...a.textures] } : {}),
      ...(used ? { texture: used } : {}),
      ...(a.featherSigma ? { featherSigma: a.featherSigma } : {}),
    },
    seed: a.seed,
    sourceImageId: a.sourceImageId,
    maskId: a.maskId,
    createdAt: Date.now(),
  };
}

/** A generation request the form cannot make: what is missing and where to fix it. */
export class GenerationInputError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('GenerationInputError', problem, fix);
  }
}

/**
 * The source images of a batch: the painter's image, the Data tab's selection (`selected`, already looked up),
 * or `sampledCount` images drawn with the batch seed from the dataset's real normals (all images when it has
 * none).
 * @throws GenerationInputError naming what is missing
 */
export function pickSources<T extends { id: string; label: string; provenance?: unknown }>(
  mode: SourceMode,
  a: { current: T | null; selected: readonly T[]; images: readonly T[]; sampledCount: number; seed: number },
): T[] {
  if (mode === 'current') {
    if (!a.current) throw new GenerationInputError('no image is open in the painter', 'pick an image above');
    return [a.current];
  }
  if (mode === 'selection') {
    if (!a.selected.length)
      throw new GenerationInputError('no images are selected', 'select images in the Data tab');
    return [...a.selected];
  }
  const normals = a.images.filter((i) => i.label === 'normal' && !i.provenance);
  const pool = normals.length ? normals : a.images;
  if (!pool.length) throw new GenerationInputError('the dataset has no images', 'import images first');
  const byId = new Map(pool.map((i) => [i.id, i]));
  return sampleIds(
    pool.map((i) => i.id),
    a.sampledCount,
    a.seed,
  ).map((id) => byId.get(id)!);
}

/** The seed of source i's random Perlin region (recorded in provenance, so the region can be drawn again). */
export function regionSeeds(batchSeed: number | string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${batchSeed}:region:${i}`);
}

/** Source i takes library mask i mod M: `n` indices into `m` masks. */
export function cycleIndices(n: number, m: number): number[] {
  if (m < 1) throw new InvalidArgumentError('library masks', 'at least one selected mask', m);
  return Array.from({ length: n }, (_, i) => i % m);
}

/** The toast after a batch: how many were staged, or why some found no room. */
export function batchSummary(
  made: number,
  count: number,
  failures: readonly { message: string }[],
): { level: 'info' | 'warn'; text: string } {
  if (failures.length)
    return {
      level: 'warn',
      text: `${failures.length} of ${count} samples found no room: ${failures[0].message}`,
    };
  return { level: 'info', text: `${made} samples are waiting in the staging strip.` };
}

/** The toast after a cancel: a cancelled batch keeps what it made, and says how many. */
export function cancelledSummary(made: number): string {
  return made === 0
    ? 'Generation cancelled before the first sample.'
    : `Generation cancelled; the ${made} sample${made === 1 ? '' : 's'} made so far ${made === 1 ? 'is' : 'are'} in the staging strip.`;
}

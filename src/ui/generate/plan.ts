/**
 * Pure helpers of the generation form: which images to use and the provenance of each sample, so a staged
 * sample records enough to regenerate it (`fn(source, {...options, region_mask}, seed)`).
 */
import type { SampleProvenance } from '../../core/dataset.ts';
import { Rng } from '../../core/rng.ts';
import type { OptionSpec } from '../../core/synth/options.ts';

export type SourceMode = 'current' | 'selection' | 'sampled';
export type MaskMode = 'painted' | 'library' | 'image-region' | 'random' | 'none';

/** `k` ids drawn without replacement from `ids` with a seeded shuffle (sorted first, so order in → same out). */
export function sampleIds(ids: readonly string[], k: number, seed: number | string): string[] {
  const sorted = [...ids].sort();
  return new Rng(`sources:${seed}`).sampleIndices(sorted.length, k).map((i) => sorted[i]);
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
}): SampleProvenance {
  return {
    generator: a.generator,
    parameters: {
      options: a.options,
      drawn: a.params,
      batchSeed: a.batchSeed,
      maskSource: a.maskMode,
      ...(a.regionSeed ? { regionSeed: a.regionSeed } : {}),
    },
    seed: a.seed,
    sourceImageId: a.sourceImageId,
    maskId: a.maskId,
    createdAt: Date.now(),
  };
}

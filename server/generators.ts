/**
 * The synthetic-defect generators the Node runner can use, adapted from `src/core/synth` (pure TS) to the
 * runner's `(image, seed) → { image, mask }`. Diffusion is only offered when a diffusion engine is wired in.
 */
import type { GeneratorFn } from '../src/core/experiments/index.ts';
import { blurDefect, cutPasteDefect, memsegDefect, randomWalkDefect } from '../src/core/synth/index.ts';

export function coreGenerators(
  options: Record<string, Record<string, unknown>> = {},
): Record<string, GeneratorFn> {
  return {
    memseg: (img, seed) => memsegDefect(img, options.memseg ?? {}, seed),
    'random-walk': (img, seed) => randomWalkDefect(img, options['random-walk'] ?? {}, seed),
    cutpaste: (img, seed) => cutPasteDefect(img, options.cutpaste ?? {}, seed),
    blur: (img, seed) => blurDefect(img, options.blur ?? {}, seed),
  };
}

/**
 * The generator registry: name → function, default options and option schema, so the generation UI, the worker
 * and the experiment runner list and call generators without knowing them. Schemas are plain data (they cross
 * the worker boundary); functions stay on the side that runs them.
 */
import { InvalidArgumentError } from '../errors.ts';
import { BLUR_SCHEMA, blurDefect } from './blur.ts';
import type { GeneratorFn } from './common.ts';
import { CUTPASTE_SCHEMA, cutPasteDefect } from './cutpaste.ts';
import { MEMSEG_SCHEMA, memsegDefect } from './memseg.ts';
import { defaultOptions, type GeneratorSchema } from './options.ts';
import { RANDOM_WALK_SCHEMA, randomWalkDefect } from './randomWalk.ts';
import { TRANSPLANT_SCHEMA, transplantDefect } from './transplant.ts';

export interface GeneratorEntry {
  schema: GeneratorSchema;
  fn: GeneratorFn;
}

const registry = new Map<string, GeneratorEntry>();

/** Adds (or replaces) a generator; other pieces (e.g. a diffusion inpainter) may register their own. */
export function registerGenerator(schema: GeneratorSchema, fn: GeneratorFn): void {
  if (!/^[a-z][a-z0-9_]*$/.test(schema.name))
    throw new InvalidArgumentError('generator name', 'snake_case ([a-z][a-z0-9_]*)', schema.name);
  registry.set(schema.name, { schema, fn });
}

registerGenerator(
  {
    name: 'memseg',
    title: 'MemSeg / DRAEM',
    description: 'Perlin-shaped region filled with a texture or a scrambled copy of the image, blended in.',
    options: MEMSEG_SCHEMA,
  },
  memsegDefect,
);
registerGenerator(
  {
    name: 'random_walk',
    title: 'Random walk (ISP-AD)',
    description: 'Pinholes, spots, fibres and scratches painted along a walk with momentum.',
    options: RANDOM_WALK_SCHEMA,
  },
  randomWalkDefect,
);
registerGenerator(
  {
    name: 'cutpaste',
    title: 'CutPaste',
    description: 'A jittered patch of the image (rectangle or thin rotated scar) pasted elsewhere.',
    options: CUTPASTE_SCHEMA,
  },
  cutPasteDefect,
);
registerGenerator(
  {
    name: 'blur',
    title: 'Blur (CSE)',
    description: 'Random anisotropic Gaussian blur inside a Perlin region.',
    options: BLUR_SCHEMA,
  },
  blurDefect,
);
registerGenerator(
  {
    name: 'transplant',
    title: 'Defect transplant',
    description: 'A real defect (image × mask) rotated, scaled, flipped and Poisson-blended into the image.',
    options: TRANSPLANT_SCHEMA,
  },
  transplantDefect,
);

/** Every registered generator's schema (serializable), in registration order. */
export function listGenerators(): GeneratorSchema[] {
  return [...registry.values()].map((e) => e.schema);
}

export function getGenerator(name: string): GeneratorEntry {
  const e = registry.get(name);
  if (!e) throw new InvalidArgumentError('generator', `one of ${[...registry.keys()].join(', ')}`, name);
  return e;
}

/** Default options of a generator, as a UI shows them before any edit. */
export function generatorDefaults(name: string): Record<string, unknown> {
  return defaultOptions(getGenerator(name).schema.options);
}

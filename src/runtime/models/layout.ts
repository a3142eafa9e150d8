/**
 * Checks a graph's declared inputs/outputs against what the diffusion pipeline will feed and read, before a
 * session is created: a UNet without 9 input channels (not an inpainting model), an SD text encoder where an SDXL
 * one is expected, missing `text_embeds`/`time_ids`… each becomes a `LayoutMismatchError` naming the file, the
 * expected signature and what the graph has, instead of an opaque onnxruntime failure at the first step.
 */
import { DefectLabError } from '../../core/errors.ts';
import type { ValueInfo } from '../../core/tensor.ts';
import type { ComponentName, ModelLayoutName } from './manifest.ts';

export class LayoutMismatchError extends DefectLabError {
  constructor(file: string, layout: string, problems: string[]) {
    super(
      'LayoutMismatchError',
      `${file} does not match the ${layout} layout: ${problems.join('; ')}`,
      'export the model with optimum (optimum-cli export onnx --task inpainting, see docs/models.md) or pick the manifest whose layout matches',
    );
  }
}

interface Want {
  name: string;
  types: readonly string[];
  rank?: number | readonly number[];
  /** Expected value of a fixed dimension (index → size), checked only when the graph states a number. */
  dims?: Record<number, number>;
}

const FLOAT = ['float32', 'float16'] as const;
const INTS = ['int32', 'int64'] as const;

function expectations(
  layout: ModelLayoutName,
  c: ComponentName,
): { inputs: Want[]; outputs: Want[]; prefixOut?: string } {
  const sdxl = layout === 'sdxl-inpaint';
  switch (c) {
    case 'text_encoder':
      return {
        inputs: [{ name: 'input_ids', types: INTS, rank: 2 }],
        outputs: sdxl ? [] : [{ name: 'last_hidden_state', types: FLOAT, rank: 3 }],
        prefixOut: sdxl ? 'hidden_states.' : undefined,
      };
    case 'text_encoder_2':
      return {
        inputs: [{ name: 'input_ids', types: INTS, rank: 2 }],
        outputs: [{ name: 'text_embeds', types: FLOAT, rank: 2 }],
        prefixOut: 'hidden_states.',
      };
    case 'unet':
      return {
        inputs: [
          { name: 'sample', types: FLOAT, rank: 4, dims: { 1: 9 } },
          { name: 'timestep', types: [...FLOAT, 'int64'], rank: [0, 1] },
          { name: 'encoder_hidden_states', types: FLOAT, rank: 3, ...(sdxl ? { dims: { 2: 2048 } } : {}) },
          ...(sdxl
            ? [
                { name: 'text_embeds', types: FLOAT, rank: 2 },
                { name: 'time_ids', types: FLOAT, rank: 2 },
              ]
            : []),
        ],
        outputs: [{ name: 'out_sample', types: FLOAT, rank: 4 }],
      };
    case 'vae_encoder':
      return {
        inputs: [{ name: 'sample', types: FLOAT, rank: 4, dims: { 1: 3 } }],
        outputs: [{ name: 'latent_sample', types: FLOAT, rank: 4 }],
      };
    case 'vae_decoder':
      return {
        inputs: [{ name: 'latent_sample', types: FLOAT, rank: 4 }],
        outputs: [{ name: 'sample', types: FLOAT, rank: 4, dims: { 1: 3 } }],
      };
  }
}

function check(list: readonly ValueInfo[], wants: Want[], kind: string, problems: string[]): void {
  for (const w of wants) {
    const v = list.find((x) => x.name === w.name);
    if (!v) {
      problems.push(`${kind} ${w.name} is missing (has ${list.map((x) => x.name).join(', ') || 'none'})`);
      continue;
    }
    if (!w.types.includes(v.type))
      problems.push(`${kind} ${w.name} is ${v.type}, expected ${w.types.join(' or ')}`);
    const ranks = w.rank === undefined ? null : Array.isArray(w.rank) ? w.rank : [w.rank];
    if (ranks && !ranks.includes(v.shape.length))
      problems.push(
        `${kind} ${w.name} has rank ${v.shape.length} [${v.shape.join(',')}], expected ${ranks.join(' or ')}`,
      );
    for (const [i, size] of Object.entries(w.dims ?? {})) {
      const d = v.shape[Number(i)];
      if (typeof d === 'number' && d >= 0 && d !== size)
        problems.push(`${kind} ${w.name} has ${d} at dimension ${i}, expected ${size}`);
    }
  }
}

/** Problems (empty = fits) of one component's graph signature under a layout. */
export function layoutProblems(
  layout: ModelLayoutName,
  component: ComponentName,
  io: { inputs: readonly ValueInfo[]; outputs: readonly ValueInfo[] },
): string[] {
  const e = expectations(layout, component);
  const problems: string[] = [];
  check(io.inputs, e.inputs, 'input', problems);
  check(io.outputs, e.outputs, 'output', problems);
  if (e.prefixOut && io.outputs.filter((o) => o.name.startsWith(e.prefixOut!)).length < 2)
    problems.push(
      `outputs ${e.prefixOut}* are missing (export with output_hidden_states so the penultimate layer exists)`,
    );
  return problems;
}

/** Throws `LayoutMismatchError` when a component's graph does not fit the layout. */
export function assertLayout(
  layout: ModelLayoutName,
  component: ComponentName,
  file: string,
  io: { inputs: readonly ValueInfo[]; outputs: readonly ValueInfo[] },
): void {
  const problems = layoutProblems(layout, component, io);
  if (problems.length) throw new LayoutMismatchError(file, layout, problems);
}

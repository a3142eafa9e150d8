/** Grid specification → the list of reproducible cell configurations. */
import { InvalidArgumentError } from '../errors.ts';
import { DIFFUSION_GUIDANCE, DIFFUSION_STEPS, DIFFUSION_STRENGTH } from '../diffusion/settings.ts';
import { checkNumber } from '../fields.ts';
import { hashString } from '../rng.ts';
import {
  BASELINE_HEADS,
  UNSUPERVISED_HEADS,
  GENERATOR_CHOICES,
  HEAD_CHOICES,
  type CellConfig,
  type DiffusionGenOptions,
  type GeneratorChoice,
  type HeadChoice,
  type StreamMode,
  type ThresholdPolicy,
} from './types.ts';

export interface GridSpec {
  generators: GeneratorChoice[];
  /** Numbers of synthetic defects per cell (N_aug). Ignored (0) for generator `none`. */
  nAug: number[];
  seeds: number[];
  heads: HeadChoice[];
  /** Few-shot settings to cross with: `[false]` zero-shot only, `[false, true]` both. Default `[false]`. */
  fewShot?: boolean[];
  stream?: StreamMode;
  realProbability?: number;
  epochs?: number;
  threshold?: ThresholdPolicy;
  valFraction?: number;
  inOut?: { in: string; out: string };
  /** Settings of the diffusion generator; required when `diffusion` or an In&Out with diffusion is in the grid. */
  diffusion?: DiffusionGenOptions;
  headOptions?: Partial<Record<HeadChoice, Record<string, unknown>>>;
  /** Add the k-NN and mean-distance baseline rows (default true: every table carries them). */
  baselines?: boolean;
  /** Further grid axes (each value a cell of its own; rows that differ on any axis stay apart in the table). */
  sweep?: GridSweep;
  /** Augment the real defects of few-shot cells of supervised heads (ISP-AD's real-defect augmentation). */
  augmentReal?: boolean;
}

/**
 * Sweep axes. Each applies only to the cells it changes, so a bce cell is not repeated for every CSE k:
 * `realProbability` to mixed-stream few-shot cells of supervised heads, `realFraction` (nested fractions of the
 * real defects, ISP-AD's 1/16 … 1) to few-shot cells of supervised heads, `strength` / `guidanceScale` / `steps` to cells that call diffusion, `inOut` pairs
 * to In&Out cells, `cseK` to CSE cells.
 */
export interface GridSweep {
  /** Not an axis: `GridSpec.augmentReal` rides along so it applies only where real defects train. */
  augmentReal?: boolean;
  realProbability?: number[];
  realFraction?: number[];
  strength?: number[];
  guidanceScale?: number[];
  steps?: number[];
  inOut?: { in: string; out: string }[];
  cseK?: number[];
}

/** The sweep's combinations, each a partial cell change (one empty combination without a sweep). */
function sweepVariants(sw: GridSweep | undefined): GridSweep[] {
  let out: GridSweep[] = [{}];
  if (!sw) return out;
  for (const key of Object.keys(sw).sort() as (keyof GridSweep)[]) {
    const values = sw[key] as unknown[] | undefined;
    if (!values?.length) continue;
    out = out.flatMap((v) => values.map((x) => ({ ...v, [key]: [x] })));
  }
  return out;
}

/** A cell with one sweep combination applied where it changes the cell. */
function applyVariant(c: CellConfig, v: GridSweep): CellConfig {
  const out: CellConfig = { ...c };
  const usesReal = c.fewShot && !UNSUPERVISED_HEADS.includes(c.head);
  if (v.realProbability && usesReal && c.stream === 'mixed') out.realProbability = v.realProbability[0];
  if (v.realFraction && usesReal && v.realFraction[0] !== 1) out.realFraction = v.realFraction[0];
  if (v.augmentReal && usesReal) out.augmentReal = true;
  if (v.inOut && c.generator === 'in-out') out.inOut = { ...v.inOut[0] };
  if (out.diffusion && (v.strength || v.guidanceScale || v.steps))
    out.diffusion = {
      ...out.diffusion,
      ...(v.strength ? { strength: v.strength[0] } : {}),
      ...(v.guidanceScale ? { guidanceScale: v.guidanceScale[0] } : {}),
      ...(v.steps ? { steps: v.steps[0] } : {}),
    };
  if (v.cseK && c.head === 'cse') out.headOptions = { ...c.headOptions, k: v.cseK[0] };
  return out;
}

/** Code-unit order (locale-independent, so every machine sorts pools alike). */
export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const DEFAULT_THRESHOLD: ThresholdPolicy = { mode: 'val-best-f1' };
export const DEFAULT_IN_OUT = { in: 'diffusion', out: 'memseg' } as const;
export const DIFFUSION_MASK_SOURCES: readonly DiffusionGenOptions['masks'][] = ['auto', 'dataset', 'perlin'];

/** Whether cells of this generator (with this In&Out pair) call the diffusion generator. */
export function usesDiffusion(
  generator: GeneratorChoice,
  inOut: { in: string; out: string } = DEFAULT_IN_OUT,
): boolean {
  return (
    generator === 'diffusion' ||
    (generator === 'in-out' && (inOut.in === 'diffusion' || inOut.out === 'diffusion'))
  );
}

/** Checks diffusion settings field by field (`field` prefixes the names in the message). */
export function validateDiffusionOptions(d: DiffusionGenOptions, field = 'diffusion'): void {
  if (!d || typeof d !== 'object')
    throw new InvalidArgumentError(field, 'an object with model, prompts, steps, …', d);
  if (typeof d.model !== 'string' || !d.model)
    throw new InvalidArgumentError(
      `${field}.model`,
      'a model id (a folder under models/tiny, or a cached model)',
      d.model,
    );
  if (
    !Array.isArray(d.prompts) ||
    !d.prompts.length ||
    d.prompts.some((p) => typeof p !== 'string' || !p.trim())
  )
    throw new InvalidArgumentError(`${field}.prompts`, 'a non-empty list of non-empty prompts', d.prompts);
  if (typeof d.negativePrompt !== 'string')
    throw new InvalidArgumentError(`${field}.negativePrompt`, 'a string (may be empty)', d.negativePrompt);
  // The limits are the diffusion settings schema's, the same the panels and the server routes use.
  checkNumber(DIFFUSION_STEPS, d.steps, `${field}.steps`);
  checkNumber(DIFFUSION_GUIDANCE, d.guidanceScale, `${field}.guidanceScale`);
  checkNumber(DIFFUSION_STRENGTH, d.strength, `${field}.strength`);
  if (!DIFFUSION_MASK_SOURCES.includes(d.masks))
    throw new InvalidArgumentError(`${field}.masks`, DIFFUSION_MASK_SOURCES.join(' | '), d.masks);
}

/** A stable id of a configuration: readable prefix + hash of the full config, so a changed option is a new cell. */
export function cellId(c: CellConfig): string {
  const h = hashString(stableStringify(c)).toString(16).padStart(8, '0');
  return `${c.generator}|n${c.nAug}|${c.head}|${c.fewShot ? 'few' : 'zero'}|s${c.seed}|${h}`;
}

/** JSON with sorted keys, so equal configs hash equally whatever their key order. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** Validates a spec with messages that name the field. */
export function validateGrid(spec: GridSpec): void {
  const nonEmpty = (name: string, a: unknown[]) => {
    if (!Array.isArray(a) || a.length === 0) throw new InvalidArgumentError(name, 'a non-empty list', a);
  };
  nonEmpty('generators', spec.generators);
  nonEmpty('seeds', spec.seeds);
  nonEmpty('heads', spec.heads);
  for (const g of spec.generators)
    if (!GENERATOR_CHOICES.includes(g))
      throw new InvalidArgumentError('generators[]', GENERATOR_CHOICES.join(' | '), g);
  for (const h of spec.heads)
    if (!HEAD_CHOICES.includes(h)) throw new InvalidArgumentError('heads[]', HEAD_CHOICES.join(' | '), h);
  if (spec.generators.some((g) => usesDiffusion(g, spec.inOut))) {
    if (!spec.diffusion)
      throw new InvalidArgumentError(
        'diffusion',
        'diffusion settings (at least a model id) because the grid uses the diffusion generator or In&Out',
        spec.diffusion,
      );
    validateDiffusionOptions(spec.diffusion);
  }
  for (const n of spec.nAug)
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('nAug[]', 'integers ≥ 0', n);
  for (const s of spec.seeds)
    if (!Number.isInteger(s)) throw new InvalidArgumentError('seeds[]', 'integers', s);
  const p = spec.realProbability ?? 1 / 32;
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError('realProbability', 'in [0, 1]', p);
  const vf = spec.valFraction ?? 0.2;
  if (!(vf >= 0 && vf < 1)) throw new InvalidArgumentError('valFraction', 'in [0, 1)', vf);
  const t = spec.threshold ?? DEFAULT_THRESHOLD;
  if (t.mode === 'val-fpr' && !(t.maxFpr >= 0 && t.maxFpr <= 1))
    throw new InvalidArgumentError('threshold.maxFpr', 'in [0, 1]', t.maxFpr);
  const sw = spec.sweep ?? {};
  for (const x of sw.realProbability ?? [])
    if (!(x >= 0 && x <= 1)) throw new InvalidArgumentError('sweep.realProbability[]', 'in [0, 1]', x);
  for (const x of sw.realFraction ?? [])
    if (!(x > 0 && x <= 1)) throw new InvalidArgumentError('sweep.realFraction[]', 'in (0, 1]', x);
  for (const x of sw.cseK ?? [])
    if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError('sweep.cseK[]', 'integers ≥ 1', x);
  if (spec.diffusion)
    for (const d of sweepVariants({
      strength: sw.strength,
      guidanceScale: sw.guidanceScale,
      steps: sw.steps,
    }))
      validateDiffusionOptions({
        ...spec.diffusion,
        ...(d.strength ? { strength: d.strength[0] } : {}),
        ...(d.guidanceScale ? { guidanceScale: d.guidanceScale[0] } : {}),
        ...(d.steps ? { steps: d.steps[0] } : {}),
      });
}

/**
 * Expands a spec into cells: generator × N_aug × few-shot × head × seed, plus one baseline cell per baseline
 * head and seed. Generator `none` has no synthetic defects, so it takes N_aug = 0 once. Duplicates (same id)
 * are dropped.
 */
export function expandGrid(spec: GridSpec, dataset: string, extractor: string): CellConfig[] {
  validateGrid(spec);
  const base = {
    dataset,
    extractor,
    stream: spec.stream ?? 'concat',
    realProbability: spec.realProbability ?? 1 / 32,
    epochs: spec.epochs,
    threshold: spec.threshold ?? DEFAULT_THRESHOLD,
    valFraction: spec.valFraction ?? 0.2,
    inOut: spec.inOut ?? { ...DEFAULT_IN_OUT },
  };
  const out: CellConfig[] = [];
  const seen = new Set<string>();
  const variants = sweepVariants(spec.sweep).map((v) => (spec.augmentReal ? { ...v, augmentReal: true } : v));
  const push = (cell: CellConfig) => {
    for (const v of variants) {
      const c = applyVariant(cell, v);
      const id = cellId(c);
      if (!seen.has(id)) {
        seen.add(id);
        out.push(c);
      }
    }
  };
  const trained = spec.heads.filter((h) => !BASELINE_HEADS.includes(h));
  for (const generator of spec.generators)
    for (const nAug of generator === 'none' ? [0] : spec.nAug.length ? spec.nAug : [0])
      for (const fewShot of spec.fewShot ?? [false])
        for (const head of trained)
          for (const seed of spec.seeds)
            push({
              ...base,
              generator,
              nAug,
              head,
              fewShot,
              seed,
              diffusion: usesDiffusion(generator, base.inOut) && nAug > 0 ? spec.diffusion : undefined,
              headOptions: spec.headOptions?.[head],
            });
  const baselines = new Set<HeadChoice>(spec.heads.filter((h) => BASELINE_HEADS.includes(h)));
  if (spec.baselines !== false) for (const b of BASELINE_HEADS) baselines.add(b);
  for (const head of baselines)
    for (const seed of spec.seeds)
      push({
        ...base,
        generator: 'none',
        nAug: 0,
        head,
        fewShot: false,
        seed,
        headOptions: spec.headOptions?.[head],
      });
  return out;
}

/**
 * The synthetic-defect generators the experiment runner uses (Node CLI and the experiments worker alike; nothing
 * here touches Node APIs), adapted to the runner's `(image, seed, ctx) → { image, mask }`:
 * - the core synth generators (`src/core/synth`, pure TS);
 * - `diffusion`, only when a `DiffusionModelSource` is wired in: the diffusion engine (`workers/diffusion.engine.ts`,
 *   core pipeline + onnxruntime) inpainting DIAG-style seeded random (normal image, prompt, mask) triplets, with
 *   the masks from the dataset (region masks, labelled training-defect masks) or random Perlin regions.
 */
import type { GenerateRequest } from '../core/diffusion/index.ts';
import { DefectLabError } from '../core/errors.ts';
import {
  MissingDependencyError,
  usesDiffusion,
  validateDiffusionOptions,
  type DiffusionGenOptions,
  type GeneratorFn,
  type GridSpec,
} from '../core/experiments/index.ts';
import type { RasterImage } from '../core/image.ts';
import type { CancelSignal } from '../core/progress.ts';
import { hashString } from '../core/rng.ts';
import {
  blurDefect,
  cutPasteDefect,
  memsegDefect,
  randomPerlinMask,
  randomWalkDefect,
  transplantDefect,
  getGenerator,
} from '../core/synth/index.ts';
// The pure diffusion planning the Paint tab uses too (DIAG preset, triplet draw, request building).
import {
  DEFAULT_SETTINGS,
  DIAG_PRESET,
  buildRequest,
  changedMask,
  planSamples,
  promptPool,
} from '../core/diffusion/plan.ts';
/**
 * What the diffusion generator needs of an inpainting engine (`workers/diffusion.engine.ts` is one, in-thread or
 * behind its worker client). Structural, so this layer does not import the workers that import it.
 */
export interface InpaintEngine<L> {
  load(req: L, opts?: { jobId?: string }): Promise<unknown>;
  generate(req: GenerateRequest, opts: { jobId: string }): Promise<{ image: RasterImage; mask: RasterImage }>;
  cancel(jobId: string): Promise<void> | void;
}

/**
 * Where the runner's diffusion generator gets models: a folder of exports (Node) or the Models tab's cache.
 * `L` is the engine's load request.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface DiffusionModelSource<L = any> {
  /** Models usable here. */
  list(): Promise<{ id: string; name: string }[]>;
  /** The engine's load request for a listed model id. */
  resolve(id: string): Promise<L>;
  engine: InpaintEngine<L>;
  /** What the user does to make a model available here (the fix of `NoDiffusionModelError`). */
  fix: string;
}

/** The grid asks for diffusion (or In&Out with diffusion) but no usable model is here. */
export class NoDiffusionModelError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('NoDiffusionModelError', problem, `${fix}, or drop diffusion and In&Out from the grid`);
  }
}

/** The grid's masks = 'dataset' but the dataset has no region mask and no labelled training defect. */
export class NoRegionMasksError extends DefectLabError {
  constructor(dataset: string) {
    super(
      'NoRegionMasksError',
      `dataset "${dataset}" has no region mask and no labelled training-defect mask for diffusion to inpaint in`,
      'paint or save region masks (Paint & generate tab), or set the diffusion masks to "perlin" or "auto"',
    );
  }
}

/** Diffusion settings with DIAG's defaults (prompts, negative prompt, 30 steps, guidance 20, strength 0.99). */
export function diffusionSettings(d: Partial<DiffusionGenOptions> = {}): DiffusionGenOptions {
  return {
    model: d.model ?? '',
    prompts: d.prompts ?? promptPool(DIAG_PRESET),
    negativePrompt: d.negativePrompt ?? DIAG_PRESET.negativePrompt,
    steps: d.steps ?? DIAG_PRESET.steps,
    guidanceScale: d.guidanceScale ?? DIAG_PRESET.guidanceScale,
    strength: d.strength ?? DIAG_PRESET.strength,
    masks: d.masks ?? 'auto',
    onlyMasked: d.onlyMasked ?? DIAG_PRESET.onlyMasked,
    padding: d.padding ?? DIAG_PRESET.padding,
  };
}

/**
 * Completes a grid's diffusion settings before it is expanded: DIAG defaults, the first available model when
 * none is named, and a named error when the grid needs diffusion but no model (or not the named one) is here.
 * Grids without diffusion come back unchanged.
 */
export async function prepareDiffusionGrid(
  spec: GridSpec,
  source: DiffusionModelSource | undefined,
  noSourceFix = 'load a diffusion model',
): Promise<GridSpec> {
  if (!spec.generators.some((g) => usesDiffusion(g, spec.inOut))) return spec;
  if (!source)
    throw new NoDiffusionModelError(
      'the grid uses the diffusion generator but no diffusion engine is wired in here',
      noSourceFix,
    );
  const available = await source.list();
  if (!available.length)
    throw new NoDiffusionModelError(
      'the grid uses the diffusion generator but no diffusion model is available',
      source.fix,
    );
  const d = diffusionSettings({ ...spec.diffusion, model: spec.diffusion?.model || available[0].id });
  if (!available.some((m) => m.id === d.model))
    throw new NoDiffusionModelError(
      `diffusion model "${d.model}" is not available here (available: ${available.map((m) => m.id).join(', ')})`,
      source.fix,
    );
  validateDiffusionOptions(d);
  return { ...spec, diffusion: d };
}

/** A random Perlin region of the image's size (`randomPerlinMask` returns the mask, or `{ mask, params }`). */
function perlinRegion(image: RasterImage, seed: number): RasterImage {
  const r = randomPerlinMask(
    image.width,
    image.height,
    {},
    hashString(`diffusion-mask:${seed}`),
  ) as unknown as RasterImage | { mask: RasterImage };
  return 'mask' in r ? r.mask : r;
}

function bridgeCancel(signal: CancelSignal | undefined, cancel: () => void): () => void {
  const s = signal as Partial<AbortSignal> | undefined;
  if (!s?.addEventListener) return () => {};
  s.addEventListener('abort', cancel);
  return () => s.removeEventListener?.('abort', cancel);
}

/**
 * The runner's diffusion generator. Per (canvas, seed) it draws DIAG's triplet with `planSamples('triplets')`:
 * a mask (from `ctx.regionMasks`, or a random Perlin region when the dataset has none or the settings say
 * `perlin`), a prompt from the pool and the noise seed; builds the request with the panel's `buildRequest`; and
 * inpaints with the engine, loading `diffusion.model` when it is not the loaded one. Calls are serialized: one
 * engine (one set of sessions) runs one generation at a time. The returned mask marks every pixel the paste-back
 * could change.
 */
export function diffusionGenerator(source: DiffusionModelSource): GeneratorFn {
  let loaded = '';
  let queue: Promise<unknown> = Promise.resolve();
  let job = 0;
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const p = queue.then(f, f);
    queue = p.catch(() => undefined);
    return p;
  };
  return async (image, seed, ctx) => {
    const d = ctx?.diffusion;
    if (!d)
      throw new MissingDependencyError(
        'the diffusion generator was called without diffusion settings',
        'give the grid a "diffusion" block (model, prompts, …)',
      );
    const masks: RasterImage[] = d.masks === 'perlin' ? [] : ((await ctx.regionMasks?.()) ?? []);
    if (d.masks === 'dataset' && !masks.length) throw new NoRegionMasksError('this dataset');
    const [plan] = planSamples(
      { images: 1, masks: Math.max(1, masks.length), prompts: d.prompts.length },
      1,
      seed,
      'triplets',
    );
    const mask = masks.length ? masks[plan.maskIndex] : perlinRegion(image, seed);
    const settings = {
      ...DEFAULT_SETTINGS,
      negativePrompt: d.negativePrompt,
      steps: d.steps,
      guidanceScale: d.guidanceScale,
      strength: d.strength,
      onlyMasked: d.onlyMasked ?? false,
      padding: d.padding ?? DEFAULT_SETTINGS.padding,
      previewEvery: 0,
    };
    const req: GenerateRequest = buildRequest(settings, image, mask, d.prompts[plan.promptIndex], plan.seed);
    return serial(async () => {
      if (loaded !== d.model) {
        loaded = '';
        await source.engine.load(await source.resolve(d.model));
        loaded = d.model;
      }
      const jobId = `experiment-diffusion-${++job}`;
      const unbridge = bridgeCancel(ctx.signal, () => source.engine.cancel(jobId));
      try {
        const r = await source.engine.generate(req, { jobId });
        return { image: r.image, mask: changedMask(r.mask) };
      } finally {
        unbridge();
      }
    });
  };
}

export function coreGenerators(
  options: Record<string, Record<string, unknown>> = {},
  extra: { diffusion?: DiffusionModelSource } = {},
): Record<string, GeneratorFn> {
  return {
    memseg: (img, seed) => memsegDefect(img, options.memseg ?? {}, seed),
    'random-walk': (img, seed) => randomWalkDefect(img, options['random-walk'] ?? {}, seed),
    cutpaste: (img, seed) => cutPasteDefect(img, options.cutpaste ?? {}, seed),
    blur: (img, seed) => blurDefect(img, options.blur ?? {}, seed),
    // Cuts from the dataset's real training defects with masks (the runner hands them over in ctx).
    transplant: async (img, seed, ctx) => {
      const d = (await ctx?.realDefects?.()) ?? [];
      return transplantDefect(
        img,
        { ...options.transplant, defects: d.map((x) => x.image), defect_masks: d.map((x) => x.mask) },
        seed,
      );
    },
    ...(extra.diffusion ? { diffusion: diffusionGenerator(extra.diffusion) } : {}),
  };
}

/**
 * The CSE head's on-the-fly defects as the paper draws them: structural (MemSeg's scrambled-image source),
 * textural (MemSeg's texture source) and blur, one of the three with probability 1/3 per synthetic pair
 * (the pair source draws uniformly). Synchronous: called once per synthetic pair.
 */
export function cseGenerators(
  options: Record<string, Record<string, unknown>> = {},
): ((image: RasterImage, seed: number) => { image: RasterImage; mask: RasterImage })[] {
  return cseGeneratorsByName(CSE_PAPER_GENERATORS, options);
}

/** The CSE paper's on-the-fly defect kinds, drawn with equal probability. */
export const CSE_PAPER_GENERATORS = ['structure', 'texture', 'blur'] as const;

/**
 * CSE generators by name: `structure` / `texture` are MemSeg with that source only, any other name is a core
 * synth generator (`memseg` with its own source mix, `blur`, `random-walk`, `cutpaste`, …).
 */
export function cseGeneratorsByName(
  names: readonly string[],
  options: Record<string, Record<string, unknown>> = {},
): ((image: RasterImage, seed: number) => { image: RasterImage; mask: RasterImage })[] {
  return names.map((n) => {
    if (n === 'structure')
      return (img: RasterImage, seed: number) => memsegDefect(img, { ...options.memseg, p_texture: 0 }, seed);
    if (n === 'texture')
      return (img: RasterImage, seed: number) => memsegDefect(img, { ...options.memseg, p_texture: 1 }, seed);
    const g = getGenerator(n).fn;
    return (img: RasterImage, seed: number) => g(img, options[n] ?? {}, seed);
  });
}

/**
 * What a server job does, whichever queue runs it (in-process or a BullMQ worker): `generate` (the core
 * generators' batch, as the synth worker runs it, or DIAG-style diffusion inpainting), `features` (a backbone's
 * pooled features) and `experiment` (a grid config, through the same `runGridConfig` as the CLI). A job's output
 * is a set of files that the results route zips; `manifest.json` holds the provenance.
 *
 * Data comes by upload (base64 images in the request) or as a dataset folder under `--datasets`; models are
 * relative to `--models` (see `confine.ts`).
 */
import { DefectLabError } from '../src/core/errors.ts';
import type { RasterImage } from '../src/core/image.ts';
import { toGray } from '../src/core/image.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import { throwIfCancelled } from '../src/core/progress.ts';
import { generateBatch } from '../src/core/synth/index.ts';
import { randomPerlinMask } from '../src/core/synth/regionMask.ts';
import { decodeImage, encodePng } from '../src/runtime/decode.ts';
import { confinedPath } from './confine.ts';
import type { GridConfig } from './grid-config.ts';
import type { DevicePref } from './options.ts';
import { preprocessingId, type PreprocessOptions } from '../src/core/preprocess.ts';
import type {
  CellResult,
  CellStore,
  ExperimentData,
  ExperimentImage,
} from '../src/core/experiments/index.ts';

export const JOB_KINDS = ['generate', 'features', 'experiment'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Generator names as the grid and the app spell them → the synth registry's names. */
export const GENERATE_GENERATORS: Record<string, string> = {
  memseg: 'memseg',
  'random-walk': 'random_walk',
  cutpaste: 'cutpaste',
  blur: 'blur',
  diffusion: 'diffusion',
};

export interface JobSpec {
  kind: JobKind;
  /** generate: which generator. */
  generator?: string;
  /** Uploaded images, base64 PNG/JPEG/BMP. */
  images?: string[];
  /** Uploaded region masks aligned with `images` (or one for all), base64 PNG; null = anywhere on that image. */
  masks?: (string | null)[];
  /** generate: feather σ per image (or one for all) inside the region masks, as the app's Generate tab sends. */
  feathers?: number[];
  /** A dataset folder under --datasets (its train normals are the sources / the images to embed). */
  dataset?: string;
  /** generate: samples to make. */
  n?: number;
  seed?: number;
  options?: Record<string, unknown>;
  /** generate with diffusion: model folder under --models and the inpainting settings. */
  diffusion?: {
    model?: string;
    prompt?: string;
    negativePrompt?: string;
    steps?: number;
    guidanceScale?: number;
    strength?: number;
    /** DIAG's crop around the mask (diffusers' padding_mask_crop), `padding` pixels around it. */
    onlyMasked?: boolean;
    padding?: number;
    /** Gaussian σ (source pixels) of the paste-back mask, as the Paint tab's "mask blur". */
    maskBlur?: number;
  };
  /** features: ONNX file under --models (default tiny-resnet/model.onnx). */
  model?: string;
  /** experiment: a grid config (paths: `data` under --datasets, `backbone` under --models). */
  config?: Record<string, unknown>;
  /**
   * experiment: the dataset as uploads instead of `config.data` (the app's IndexedDB dataset): each item names
   * its runner pool and indexes into `images` (and `masks` for its ground-truth mask); `regionMasks` index the
   * masks diffusion may inpaint in. Nothing touches the server's disk.
   */
  upload?: UploadedDataset;
  /** features: spatial maps too (`spatial.f32`), as the app's feature cache keeps them. */
  spatial?: boolean;
  /** features / experiment: the backbone's preprocessing (default: the model's own), as the app set it. */
  preprocess?: PreprocessOptions;
  /**
   * experiment: cells the client already holds for this grid (the app's stored RunRecords of the experiment id):
   * those `done` with a matching cell id are not run again (resume), as the local runner skips its stored ones.
   */
  resume?: CellResult[];
}

export const UPLOAD_POOLS = [
  'trainNormals',
  'realDefects',
  'acceptedSynthetic',
  'validation',
  'test',
] as const;

export interface UploadedItem {
  /** The runner's image id (the app sends the content hash, its feature-cache key). */
  id: string;
  pool: (typeof UPLOAD_POOLS)[number];
  label: 0 | 1;
  defectClass?: string;
  generator?: string;
  width?: number;
  height?: number;
  /** Index into `images`. */
  image: number;
  /** Index into `masks` of its ground-truth mask. */
  mask?: number;
}

export interface UploadedDataset {
  name: string;
  items: UploadedItem[];
  regionMasks?: number[];
}

export interface JobContext {
  id: string;
  datasets: string;
  models: string;
  device: DevicePref;
  signal: AbortSignal;
  onProgress: ProgressFn;
}

export interface JobOutput {
  /** Zip entries: path → bytes. */
  files: Record<string, Uint8Array>;
  /** A small JSON summary shown by GET /api/jobs/:id. */
  summary: Record<string, unknown>;
  /** Extra provenance merged into manifest.json (a generate job's per-sample seeds and sources). */
  manifest?: Record<string, unknown>;
}

export class JobSpecError extends DefectLabError {
  constructor(field: string, problem: string, fix: string) {
    super('JobSpecError', `${field} ${problem}`, fix);
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeBase64(field: string, s: string): Uint8Array {
  const t = s.replace(/\s+/g, '');
  if (!BASE64.test(t) || t.length % 4 === 1)
    throw new JobSpecError(field, 'is not valid base64', 'send the file bytes base64-encoded (RFC 4648)');
  return new Uint8Array(Buffer.from(t, 'base64'));
}

async function uploads(field: string, list: string[]): Promise<RasterImage[]> {
  const out: RasterImage[] = [];
  for (let i = 0; i < list.length; i++)
    out.push((await decodeImage(decodeBase64(`${field}[${i}]`, list[i]), `${field}[${i}]`)).raster);
  return out;
}

const nodeDevice = (d: DevicePref): 'cpu' | 'cuda' => (d === 'cpu' ? 'cpu' : 'cuda');

/** The job's source images and ids: uploads, or the train normals of a dataset folder under --datasets. */
async function sources(spec: JobSpec, ctx: JobContext): Promise<{ ids: string[]; images: RasterImage[] }> {
  if (spec.images?.length && spec.dataset)
    throw new JobSpecError('images', 'and dataset are both given', 'send either images or dataset, not both');
  if (spec.images?.length) {
    const images = await uploads('images', spec.images);
    return { ids: images.map((_, i) => `upload-${i}`), images };
  }
  if (spec.dataset) {
    const root = confinedPath(ctx.datasets, spec.dataset, 'dataset', '--datasets');
    const { loadDatasetFolder } = await import('./dataset-folder.ts');
    const data = loadDatasetFolder(root);
    const images: RasterImage[] = [];
    for (const im of data.trainNormals) {
      throwIfCancelled(ctx.signal, 'the job');
      images.push(await im.load());
    }
    return { ids: data.trainNormals.map((im) => im.id), images };
  }
  throw new JobSpecError(
    'images',
    'and dataset are both missing',
    'send "images": [base64 PNG, …] or "dataset": "a folder under --datasets"',
  );
}

/** Option values sent as `{ "$png": base64 }` (MemSeg's texture images from the app) become rasters. */
async function rasterOptions(o: Record<string, unknown>): Promise<Record<string, unknown>> {
  const isPng = (v: unknown): v is { $png: string } =>
    typeof v === 'object' && v !== null && typeof (v as { $png?: unknown }).$png === 'string';
  const one = async (k: string, v: unknown) =>
    isPng(v) ? (await decodeImage(decodeBase64(`options.${k}`, v.$png), `options.${k}`)).raster : v;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o))
    out[k] = Array.isArray(v) ? await Promise.all(v.map((x, i) => one(`${k}[${i}]`, x))) : await one(k, v);
  return out;
}

const pad = (i: number) => String(i).padStart(4, '0');
// Result PNGs use deflate level 1: encoding at level 6 took most of a MemSeg job's time (bench server) for ~10 %
// smaller files.

async function runGenerate(spec: JobSpec, ctx: JobContext): Promise<JobOutput> {
  const name = spec.generator ?? '';
  const registry = GENERATE_GENERATORS[name];
  if (!registry)
    throw new JobSpecError(
      'generator',
      `${JSON.stringify(name)} is not a generator`,
      `use one of ${Object.keys(GENERATE_GENERATORS).join(', ')}`,
    );
  const n = spec.n ?? 1;
  const seed = spec.seed ?? 0;
  const src = await sources(spec, ctx);
  const masks = spec.masks?.length
    ? await Promise.all(
        spec.masks.map(async (m, i) => (m === null ? null : toGray((await uploads(`masks[${i}]`, [m]))[0]))),
      )
    : null;
  if (masks && masks.length !== 1 && masks.length !== src.images.length)
    throw new JobSpecError(
      'masks',
      `has ${masks.length} entries for ${src.images.length} images`,
      'send one mask per image, or one for all',
    );
  const files: Record<string, Uint8Array> = {};
  const samples: Record<string, unknown>[] = [];
  if (registry === 'diffusion') {
    const d = spec.diffusion ?? {};
    const { getDiffusionEngine } = await import('./diffusion-jobs.ts');
    const engine = await getDiffusionEngine(ctx.models, d.model ?? 'tiny-sd-inpaint', nodeDevice(ctx.device));
    for (let i = 0; i < n; i++) {
      throwIfCancelled(ctx.signal, 'the job', `${i} of ${n} samples were made`);
      const k = i % src.images.length;
      const image = src.images[k];
      const mask =
        masks?.[masks.length === 1 ? 0 : k] ?? randomPerlinMask(image.width, image.height, {}, seed + i).mask;
      // Cancel reaches the running denoising loop through the engine's own job cancel.
      const stop = () => void engine.cancel(ctx.id);
      ctx.signal.addEventListener('abort', stop, { once: true });
      const r = await engine
        .generate(
          {
            image,
            mask,
            prompt: d.prompt ?? 'a scratch',
            negativePrompt: d.negativePrompt,
            steps: d.steps ?? 20,
            guidanceScale: d.guidanceScale ?? 7.5,
            strength: d.strength ?? 0.99,
            seed: seed + i,
            ...(d.onlyMasked ? { onlyMasked: { padding: d.padding ?? 32 } } : {}),
            ...(d.maskBlur !== undefined ? { maskBlur: d.maskBlur } : {}),
          },
          {
            jobId: ctx.id,
            // The denoising steps too (without the preview rasters), so a one-sample job's bar moves per step
            // as the Paint tab's does on the worker.
            onProgress: (p) =>
              p.stage === 'denoise' &&
              ctx.onProgress({ ...p, detail: undefined, message: `sample ${i + 1} of ${n}` }),
          },
        )
        .finally(() => ctx.signal.removeEventListener('abort', stop));
      files[`images/${pad(i)}.png`] = encodePng(r.image, 1);
      files[`masks/${pad(i)}.png`] = encodePng(r.mask, 1);
      // The final latents too: parity with the browser worker is checked on them (1e-3), not on 8-bit pixels.
      files[`latents/${pad(i)}.f32`] = new Uint8Array(r.latents.slice().buffer);
      files[`generated/${pad(i)}.png`] = encodePng(r.generated, 1);
      samples.push({
        generated: `generated/${pad(i)}.png`,
        // The pipeline's own parameters (prompt, seed, steps, …): the app's provenance of a diffusion sample.
        diffusionParams: r.params,
        ms: r.ms,
        latents: `latents/${pad(i)}.f32`,
        latentDims: r.latentDims,
        file: `images/${pad(i)}.png`,
        mask: `masks/${pad(i)}.png`,
        source: src.ids[k],
        seed: seed + i,
        params: { model: r.modelId, backend: r.backend },
      });
      ctx.onProgress({ stage: 'generate', done: i + 1, total: n, unit: 'items' });
    }
  } else {
    const options = await rasterOptions(spec.options ?? {});
    const r = await generateBatch(src.images, masks, registry, options, n, seed, {
      signal: ctx.signal,
      onProgress: ctx.onProgress,
      feathers: spec.feathers,
    });
    for (const s of r.samples) {
      files[`images/${pad(s.index)}.png`] = encodePng(s.image, 1);
      files[`masks/${pad(s.index)}.png`] = encodePng(s.mask, 1);
      samples.push({
        file: `images/${pad(s.index)}.png`,
        mask: `masks/${pad(s.index)}.png`,
        source: src.ids[s.sourceIndex],
        sourceIndex: s.sourceIndex,
        seed: s.seed,
        params: s.params,
      });
    }
    if (r.failures.length) files['failures.json'] = json(r.failures);
  }
  return { files, summary: { samples: samples.length, generator: name }, manifest: { samples } };
}

async function runFeatures(spec: JobSpec, ctx: JobContext): Promise<JobOutput> {
  const modelPath = confinedPath(ctx.models, spec.model ?? 'tiny-resnet/model.onnx', 'model', '--models');
  const src = await sources(spec, ctx);
  const { loadNodeExtractor } = await import('./features.ts');
  const extractor = await loadNodeExtractor(
    modelPath,
    spec.model ?? 'tiny-resnet/model.onnx',
    nodeDevice(ctx.device),
    checkedPreprocess(spec.preprocess),
  );
  try {
    const pooled: Float32Array[] = [];
    const spatial: { data: Float32Array; dims: readonly number[] }[] = [];
    const batch = 16;
    for (let i = 0; i < src.images.length; i += batch) {
      throwIfCancelled(ctx.signal, 'the job', `${i} of ${src.images.length} images were embedded`);
      const slice = src.images.slice(i, i + batch);
      if (spec.spatial) {
        const f = await extractor.extractBoth(slice, ctx.signal);
        pooled.push(...f.pooled);
        spatial.push(...f.spatial);
      } else pooled.push(...(await extractor.extract(slice, ctx.signal)));
      ctx.onProgress({
        stage: 'features',
        done: Math.min(i + batch, src.images.length),
        total: src.images.length,
        unit: 'items',
      });
    }
    const dim = pooled[0]?.length ?? 0;
    const flat = new Float32Array(pooled.length * dim);
    pooled.forEach((p, i) => flat.set(p, i * dim));
    const spatialDims = spatial[0]?.dims ?? null;
    const spatialFlat = new Float32Array(spatial.reduce((n, m) => n + m.data.length, 0));
    let at = 0;
    for (const m of spatial) {
      spatialFlat.set(m.data, at);
      at += m.data.length;
    }
    return {
      files: {
        'features.json': json({
          extractor: extractor.id,
          backend: extractor.backbone.backend,
          preprocessingId: extractor.backbone.preprocessingId,
          dim,
          ids: src.ids,
          pooled: pooled.map((p) => Array.from(p)),
          // [C, h, w] of every image's map in spatial.f32 (row-major, image after image); null without spatial.
          spatialDims,
        }),
        'features.f32': new Uint8Array(flat.buffer),
        ...(spec.spatial ? { 'spatial.f32': new Uint8Array(spatialFlat.buffer) } : {}),
      },
      summary: { images: pooled.length, dim, backend: extractor.backbone.backend },
    };
  } finally {
    await extractor.release();
  }
}

/**
 * An uploaded dataset as the runner's `ExperimentData`: the pools exactly as the client sent them (the app builds
 * them with `storeExperimentData`, so the server sees the grid the browser would run). Images are decoded when a
 * cell needs them, as a folder's are.
 */
export function uploadedData(spec: JobSpec): ExperimentData & { layout: string; rejected: string[] } {
  const up = spec.upload!;
  const images = spec.images ?? [];
  const masks = spec.masks ?? [];
  const at = <T>(list: T[], i: number, field: string): T => {
    if (!Number.isInteger(i) || i < 0 || i >= list.length)
      throw new JobSpecError(
        field,
        `points at entry ${i} of ${list.length}`,
        `index into "${field.split('.')[0]}"`,
      );
    return list[i];
  };
  const decodeAt = async (list: (string | null)[], i: number, field: string) => {
    const b = at(list, i, field);
    if (b === null) throw new JobSpecError(field, 'points at a null mask', 'point at an uploaded mask');
    return (await decodeImage(decodeBase64(field, b), field)).raster;
  };
  const pools: Record<string, ExperimentImage[]> = Object.fromEntries(UPLOAD_POOLS.map((p) => [p, []]));
  up.items.forEach((it, k) => {
    const where = `upload.items[${k}]`;
    at(images, it.image, `images (${where}.image)`);
    if (it.mask !== undefined) at(masks, it.mask, `masks (${where}.mask)`);
    pools[it.pool].push({
      id: it.id,
      label: it.label,
      ...(it.defectClass !== undefined ? { defectClass: it.defectClass } : {}),
      ...(it.generator !== undefined ? { generator: it.generator } : {}),
      ...(it.width && it.height ? { size: { width: it.width, height: it.height } } : {}),
      load: () => decodeAt(images, it.image, `images[${it.image}]`),
      loadMask: async () =>
        it.mask === undefined ? null : toGray(await decodeAt(masks, it.mask, `masks[${it.mask}]`)),
    });
  });
  const { trainNormals, realDefects, acceptedSynthetic, validation, test } = pools;
  if (trainNormals.length < 2)
    throw new JobSpecError(
      'upload.items',
      `has ${trainNormals.length} trainNormals (need ≥ 2)`,
      'label some train-split images normal',
    );
  if (!test.some((t) => t.label === 1) || !test.some((t) => t.label === 0))
    throw new JobSpecError(
      'upload.items',
      'has no test images of both classes',
      'label test images both ways',
    );
  const regions = up.regionMasks ?? [];
  return {
    name: up.name,
    trainNormals,
    realDefects,
    acceptedSynthetic,
    validation: validation.length ? validation : undefined,
    test,
    regionMasks: async () =>
      Promise.all(regions.map(async (i) => toGray(await decodeAt(masks, i, `masks[${i}]`)))),
    layout: 'upload',
    rejected: [],
  };
}

function checkedPreprocess(p: PreprocessOptions | undefined): PreprocessOptions | undefined {
  if (!p) return undefined;
  try {
    preprocessingId(p);
  } catch (e) {
    throw new JobSpecError('preprocess', (e as Error).message, "send the backbone info's preprocess object");
  }
  return p;
}

async function runExperiment(spec: JobSpec, ctx: JobContext): Promise<JobOutput> {
  if (!spec.config || typeof spec.config !== 'object')
    throw new JobSpecError('config', 'is missing', 'send "config": a grid config as for experiment --config');
  const { runGridConfig } = await import('./grid-config.ts');
  const config = await parseServedGrid(spec.config, ctx, 'config', !!spec.upload);
  // The client's finished cells answer the runner's resume check; new cells are only kept for this job.
  const held = new Map((spec.resume ?? []).filter((c) => c.status === 'done').map((c) => [c.id, c]));
  const store: CellStore = {
    get: async (id) => held.get(id),
    put: async (c) => void held.set(c.id, c),
    list: async () => [...held.values()],
  };
  const r = await runGridConfig(
    config,
    {
      store,
      ...(spec.upload ? { dataset: uploadedData(spec) } : {}),
      ...(spec.preprocess ? { preprocess: checkedPreprocess(spec.preprocess) } : {}),
      device: nodeDevice(ctx.device),
      diffusionDir: ctx.models,
      signal: ctx.signal,
      onProgress: ctx.onProgress,
    },
    'config',
  );
  const { cellsToCsv, parseResultFile, renderResult, rowsToCsv, toJson } =
    await import('../src/core/experiments/index.ts');
  const { machineLine } = await import('./realdata.ts');
  // The CLI's --out files, made by the same functions, so a server run reads like a local one.
  const text = toJson(
    r.cells,
    {
      config: 'POST /api/jobs',
      spec: r.spec,
      seconds: r.seconds,
      backend: r.backend,
      machine: machineLine(),
      warnings: r.warnings,
    },
    r.table,
  );
  const enc = (t: string) => new TextEncoder().encode(t);
  return {
    files: {
      'result.json': enc(text),
      'table.md': enc(`${renderResult(parseResultFile(text, 'result.json'))}\n`),
      'table.csv': enc(rowsToCsv(r.table)),
      'cells.csv': enc(cellsToCsv(r.cells)),
      // Whole cells, per-image scores too: what a client stores as the local runner would (the app's RunRecords).
      'cells.json': json(r.cells),
    },
    summary: {
      cells: r.cells.length,
      failed: r.cells.filter((c) => c.status === 'failed').length,
      resumed: r.resumed,
      seconds: r.seconds,
      backend: r.backend,
    },
  };
}

/**
 * A grid config from a request: `data` must name a folder under --datasets and `backbone` a file under --models
 * (the CLI resolves them against the config file instead). The schema is checked first, so a misspelt key is
 * named before anything touches the disk.
 */
export async function parseServedGrid(
  raw: Record<string, unknown>,
  ctx: Pick<JobContext, 'datasets' | 'models'>,
  source: string,
  /** The job uploads its dataset (`upload`): then `data` must be absent. */
  uploaded = false,
): Promise<GridConfig> {
  const { GridConfigError, parseGridConfig } = await import('./grid-config.ts');
  const { data, backbone, ...rest } = raw;
  const parsed = await parseGridConfig(rest, ctx.datasets || '.', source);
  if (uploaded && data !== undefined)
    throw new GridConfigError(
      source,
      'names a dataset folder and the job uploads one',
      'send either "config.data" or "upload", not both',
    );
  if (uploaded)
    return {
      ...parsed,
      data: undefined,
      ...(typeof backbone === 'string'
        ? { backbone: confinedPath(ctx.models, backbone, `${source}: /backbone`, '--models') }
        : {}),
    };
  if (data === undefined)
    throw new GridConfigError(
      source,
      'names no dataset',
      'add "data": "a dataset folder under the server\'s --datasets root" (GET /api/capabilities lists them)',
    );
  if (typeof data !== 'string')
    throw new GridConfigError(source, '/data must be string', 'name a dataset folder under --datasets');
  if (backbone !== undefined && typeof backbone !== 'string')
    throw new GridConfigError(source, '/backbone must be string', 'name an ONNX file under --models');
  return {
    ...parsed,
    data: confinedPath(ctx.datasets, data, `${source}: /data`, '--datasets'),
    ...(backbone ? { backbone: confinedPath(ctx.models, backbone, `${source}: /backbone`, '--models') } : {}),
  };
}

export function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x), 2),
  );
}

/** Runs one job to its files; `manifest.json` (provenance) is added by the caller that knows the queue. */
export async function runJobKind(spec: JobSpec, ctx: JobContext): Promise<JobOutput> {
  if (spec.kind === 'generate') return runGenerate(spec, ctx);
  if (spec.kind === 'features') return runFeatures(spec, ctx);
  if (spec.kind === 'experiment') return runExperiment(spec, ctx);
  throw new JobSpecError(
    'kind',
    `${JSON.stringify(spec.kind)} is unknown`,
    `use one of ${JOB_KINDS.join(', ')}`,
  );
}

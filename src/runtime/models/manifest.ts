/**
 * Model manifests: what a model is made of (components, files with byte sizes and sha256, dtypes, I/O names,
 * resolution, licence, source) — enough to show it, download it with one progress bar, verify it, and check its
 * graphs against the pipeline layout before any session is created. Pure: runs in Node, a worker or the page.
 */
import { DefectLabError } from '../../core/errors.ts';
import type { TensorType, ValueInfo } from '../../core/tensor.ts';

export const MANIFEST_FORMAT = 'defectlab-model/1';

export type ComponentName = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae_encoder' | 'vae_decoder';
export const COMPONENT_NAMES: readonly ComponentName[] = [
  'text_encoder',
  'text_encoder_2',
  'unet',
  'vae_encoder',
  'vae_decoder',
];

export type ModelLayoutName = 'sdxl-inpaint' | 'sd-inpaint';
export type ModelDtype = 'float32' | 'float16' | 'int8' | 'int4' | 'mixed';

export interface ManifestFile {
  /** Path relative to the model's base (as in the optimum export: `unet/model.onnx`). */
  path: string;
  bytes: number;
  /** Lowercase hex sha256 of the file. */
  sha256: string;
}

export interface ManifestComponent {
  /** The `.onnx` file (one of `files`). */
  file: string;
  dtype: ModelDtype;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** External-data files of this graph (models above 2 GB), also listed in `files`. */
  externalData?: string[];
}

/**
 * How a bundle was made by the bundle tool (`npm run models -- prepare`, models/bundle/): the tool's version and
 * options, what it started from, and per component what it did (kept fp32, which ops need the WebGPU self-check).
 */
export interface BundleInfo {
  tool: string;
  version: string;
  options: Record<string, unknown>;
  from: string;
  notes?: Partial<Record<ComponentName, string>>;
}

export interface ModelManifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  name: string;
  layout: ModelLayoutName;
  dtype: ModelDtype;
  /** Native generation size in pixels (square). */
  resolution: number;
  license: string;
  /** Where the weights come from (hub repo, export command). */
  source: string;
  /** Folder under the app's `/models/` (default `<id>/`). */
  serverPath?: string;
  /** Hugging Face repo holding the files in this layout (`<repo>/resolve/<revision>/<path>`). */
  hub?: { repo: string; revision?: string };
  /** Minimum WebGPU needs (from the largest tensor), shown before download. */
  gpu?: { largestTensorBytes: number; shaderF16: boolean };
  config: {
    vaeScalingFactor: number;
    latentChannels: number;
    vaeDownsample: number;
    maxTokens: number;
    padTokenId: number;
    padTokenId2?: number;
    scheduler: Record<string, unknown>;
  };
  tokenizer: { vocab: string; merges: string };
  tokenizer2?: { vocab: string; merges: string };
  components: Partial<Record<ComponentName, ManifestComponent>>;
  files: ManifestFile[];
  /** Present on bundles written by `npm run models -- prepare`. */
  bundle?: BundleInfo;
}

/** The manifest is malformed; the message names the field. */
export class ManifestError extends DefectLabError {
  constructor(where: string, problem: string) {
    super(
      'ManifestError',
      `${where}: ${problem}`,
      'fix the manifest (see docs/models.md for the format) or rebuild the tiny ones with npm run models:tiny',
    );
  }
}

const TENSOR_TYPES: readonly TensorType[] = ['float32', 'float16', 'int64', 'int32', 'uint8', 'int8', 'bool'];
const DTYPES: readonly ModelDtype[] = ['float32', 'float16', 'int8', 'int4', 'mixed'];

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Files a layout needs, by component. */
export function requiredComponents(layout: ModelLayoutName): ComponentName[] {
  return layout === 'sdxl-inpaint'
    ? ['text_encoder', 'text_encoder_2', 'unet', 'vae_encoder', 'vae_decoder']
    : ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'];
}

/**
 * Validates parsed JSON as a manifest: every field's type, sha256 format, positive sizes, components pointing
 * at listed files, safe relative paths (no `..`, no absolute URLs). Throws `ManifestError` naming the field.
 */
export function validateManifest(json: unknown, where = 'manifest.json'): ModelManifest {
  const fail = (field: string, problem: string): never => {
    throw new ManifestError(where, `${field} ${problem}`);
  };
  if (!isObj(json)) return fail('the document', 'must be a JSON object');
  const m = json;
  if (m.format !== MANIFEST_FORMAT)
    fail('format', `must be "${MANIFEST_FORMAT}", got ${JSON.stringify(m.format)}`);
  for (const k of ['id', 'name', 'license', 'source'] as const)
    if (typeof m[k] !== 'string' || !(m[k] as string).trim()) fail(k, 'must be a non-empty string');
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(m.id as string)) fail('id', 'may hold only letters, digits, . _ -');
  if (m.layout !== 'sdxl-inpaint' && m.layout !== 'sd-inpaint')
    fail('layout', `must be "sdxl-inpaint" or "sd-inpaint", got ${JSON.stringify(m.layout)}`);
  if (!DTYPES.includes(m.dtype as ModelDtype)) fail('dtype', `must be one of ${DTYPES.join(', ')}`);
  if (typeof m.resolution !== 'number' || m.resolution <= 0 || m.resolution % 8 !== 0)
    fail('resolution', 'must be a positive multiple of 8');
  if (
    m.serverPath !== undefined &&
    (typeof m.serverPath !== 'string' || !safePath(m.serverPath.replace(/\/$/, '')))
  )
    fail('serverPath', 'must be a relative folder path');
  if (m.hub !== undefined && (!isObj(m.hub) || typeof m.hub.repo !== 'string'))
    fail('hub', 'must be { repo: "owner/name", revision?: "main" }');

  if (
    m.bundle !== undefined &&
    (!isObj(m.bundle) ||
      typeof m.bundle.tool !== 'string' ||
      typeof m.bundle.version !== 'string' ||
      !isObj(m.bundle.options))
  )
    fail('bundle', 'must be { tool, version, options, from } as written by npm run models -- prepare');

  if (!isObj(m.config)) return fail('config', 'must be an object');
  for (const k of ['vaeScalingFactor', 'latentChannels', 'vaeDownsample', 'maxTokens', 'padTokenId'])
    if (typeof m.config[k] !== 'number') fail(`config.${k}`, 'must be a number');
  if (!isObj(m.config.scheduler)) fail('config.scheduler', 'must be a diffusers scheduler_config object');

  if (!Array.isArray(m.files) || m.files.length === 0) return fail('files', 'must be a non-empty array');
  const paths = new Set<string>();
  m.files.forEach((f, i) => {
    if (!isObj(f)) return fail(`files[${i}]`, 'must be an object');
    if (typeof f.path !== 'string' || !safePath(f.path)) fail(`files[${i}].path`, 'must be a relative path');
    if (paths.has(f.path as string)) fail(`files[${i}].path`, `${f.path} is listed twice`);
    paths.add(f.path as string);
    if (!Number.isSafeInteger(f.bytes) || (f.bytes as number) <= 0)
      fail(`files[${i}].bytes`, 'must be a positive integer');
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))
      fail(`files[${i}].sha256`, 'must be 64 lowercase hex digits');
  });

  for (const tk of ['tokenizer', 'tokenizer2'] as const) {
    const t = m[tk];
    if (t === undefined && tk === 'tokenizer2') continue;
    if (!isObj(t) || typeof t.vocab !== 'string' || typeof t.merges !== 'string')
      fail(tk, 'must be { vocab: "tokenizer/vocab.json", merges: "tokenizer/merges.txt" }');
    else
      for (const p of [t.vocab, t.merges] as string[])
        if (!paths.has(p)) fail(`${tk}`, `names ${p}, which is not in files`);
  }

  if (!isObj(m.components)) return fail('components', 'must be an object');
  for (const name of Object.keys(m.components))
    if (!COMPONENT_NAMES.includes(name as ComponentName))
      fail(`components.${name}`, 'is not a known component');
  for (const name of requiredComponents(m.layout as ModelLayoutName)) {
    const c = m.components[name];
    if (!isObj(c)) return fail(`components.${name}`, `is required by the ${m.layout} layout`);
    if (typeof c.file !== 'string' || !paths.has(c.file))
      fail(`components.${name}.file`, 'must name one of files');
    if (!DTYPES.includes(c.dtype as ModelDtype))
      fail(`components.${name}.dtype`, `must be one of ${DTYPES.join(', ')}`);
    for (const io of ['inputs', 'outputs'] as const) {
      const list = c[io];
      if (!Array.isArray(list) || list.length === 0)
        fail(`components.${name}.${io}`, 'must be a non-empty array');
      (list as unknown[]).forEach((v, i) => {
        if (
          !isObj(v) ||
          typeof v.name !== 'string' ||
          !TENSOR_TYPES.includes(v.type as TensorType) ||
          !Array.isArray(v.shape)
        )
          fail(`components.${name}.${io}[${i}]`, 'must be { name, type, shape }');
      });
    }
    if (c.externalData !== undefined)
      for (const p of c.externalData as unknown[])
        if (typeof p !== 'string' || !paths.has(p))
          fail(`components.${name}.externalData`, `names ${String(p)}, not in files`);
  }
  return m as unknown as ModelManifest;
}

/**
 * A manifest file's text → the validated manifest. Text that is not JSON (a cut download, a hand edit gone wrong)
 * is a `ManifestError` naming the file like any other malformed field, not a bare `SyntaxError`.
 */
export function parseManifestText(text: string, where = 'manifest.json'): ModelManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(where, `is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return validateManifest(json, where);
}

function safePath(p: string): boolean {
  return (
    p.length > 0 &&
    !p.startsWith('/') &&
    !/^[a-z]+:/i.test(p) &&
    !p.split('/').some((s) => s === '..' || s === '')
  );
}

/** Sum of the manifest's file sizes: the denominator of the download progress bar. */
export function totalBytes(m: ModelManifest): number {
  return m.files.reduce((a, f) => a + f.bytes, 0);
}

/** The base URL of a model on the app's own server (`/models/<serverPath>`). */
export function serverBase(m: ModelManifest, origin = ''): string {
  return `${origin}/models/${m.serverPath ?? `${m.id}/`}`;
}

/** The Hugging Face `resolve` base URL for a model, or a user-given hub base. */
export function hubBase(m: ModelManifest, base = 'https://huggingface.co'): string | null {
  if (!m.hub) return null;
  return `${base.replace(/\/$/, '')}/${m.hub.repo}/resolve/${m.hub.revision ?? 'main'}/`;
}

/**
 * What a workshop share link carries: the setup a host built, so every participant's app is set the same way.
 * Every section is optional (a link from the Paint tab alone has no training section) and plain JSON apart from
 * the masks, which travel as run lengths (`rle.ts`). Field names are the views' own, so applying a setup is a
 * copy, and `validateSetup` checks every field a view would use, naming it as `setup.<path>`.
 */
import { DefectLabError } from '../errors.ts';
import type { GridSpec } from '../experiments/grid.ts';
import { GENERATOR_CHOICES, HEAD_CHOICES, type ThresholdPolicy } from '../experiments/types.ts';
import type { RasterImage } from '../image.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The Paint & generate tab's generator settings. */
export interface SharedGenerate {
  generator: string;
  /** Options of the generator named here (a form's values are only meaningful for their own schema). */
  optionsFor?: string;
  options?: Record<string, Json>;
  sourceMode?: 'current' | 'selection' | 'sampled';
  sampledCount?: number;
  maskMode?: 'painted' | 'library' | 'image-region' | 'random' | 'none';
  count: number;
  seed: number;
  textureMode?: 'procedural' | 'dataset' | 'files';
  textureCount?: number;
}

/** The diffusion panel: prompt pool (one prompt a line in the panel), negative prompt, sampler settings, seed. */
export interface SharedDiffusion {
  model?: string;
  prompts: string[];
  negativePrompt: string;
  steps: number;
  guidanceScale: number;
  strength: number;
  seed: number;
  seedLocked?: boolean;
  mode: 'paired' | 'triplets';
  count: number;
  maskBlur?: number;
  onlyMasked?: boolean;
  padding?: number;
}

/** A mask-library entry; `feather` is the painter's feather σ saved with it. */
export interface SharedMask {
  name: string;
  feather?: number;
  mask: RasterImage;
}

/** A model the setup needs: what it is for, where to fetch it and how big it is (shown before confirming). */
export interface SharedModel {
  id: string;
  role: 'diffusion' | 'backbone';
  /** 'server' (the app's own /models/), 'hub' (a hub URL) or a full URL. */
  source: string;
  bytes?: number;
}

/** The Train & evaluate tab: backbone, its input, the head and its training settings, the threshold policy. */
export interface SharedTrain {
  backbone: string;
  /** Where the backbone runs ('auto' = the System panel's measured choice) and where the head trains. */
  device?: 'auto' | 'webgpu' | 'wasm';
  tfBackend?: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  /** Feature taps of the backbone (output names); empty = its default. */
  taps?: string[];
  resize?: string;
  width?: number;
  height?: number;
  head: string;
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  hidden?: number;
  seed?: number;
  generators?: string;
  stream?: 'concat' | 'mixed';
  threshold?: ThresholdPolicy;
}

/** A dataset bundle (a zip in the export format) the setup asks participants to download and import. */
export interface SharedDataset {
  url: string;
  sha256: string;
  size: number;
  name?: string;
}

export interface WorkshopSetup {
  title?: string;
  generate?: SharedGenerate;
  diffusion?: SharedDiffusion;
  masks?: SharedMask[];
  models?: SharedModel[];
  train?: SharedTrain;
  grid?: GridSpec;
  dataset?: SharedDataset;
}

/** A link's contents are well-formed bytes but not a setup this app can apply (a field of the wrong kind). */
export class ShareSetupError extends DefectLabError {
  constructor(field: string, problem: string) {
    super(
      'ShareSetupError',
      `the share link's ${field} ${problem}`,
      'ask the host for a new link (Share setup) from an up-to-date DefectLab; nothing was changed',
    );
  }
}

type Check = (v: unknown, field: string) => void;
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const str: Check = (v, f) => {
  if (typeof v !== 'string') throw new ShareSetupError(f, 'must be text');
};
const num: Check = (v, f) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ShareSetupError(f, 'must be a finite number');
};
const int: Check = (v, f) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ShareSetupError(f, 'must be an integer');
};
const bool: Check = (v, f) => {
  if (typeof v !== 'boolean') throw new ShareSetupError(f, 'must be true or false');
};
const oneOf =
  (...choices: string[]): Check =>
  (v, f) => {
    if (typeof v !== 'string' || !choices.includes(v))
      throw new ShareSetupError(f, `must be one of ${choices.join(', ')}`);
  };
const list =
  (item: Check): Check =>
  (v, f) => {
    if (!Array.isArray(v)) throw new ShareSetupError(f, 'must be a list');
    v.forEach((x, i) => item(x, `${f}[${i}]`));
  };
const object: Check = (v, f) => {
  if (!isObj(v)) throw new ShareSetupError(f, 'must be an object');
};

function fields(
  v: unknown,
  f: string,
  required: Record<string, Check>,
  optional: Record<string, Check> = {},
) {
  if (!isObj(v)) throw new ShareSetupError(f, 'must be an object');
  for (const [k, c] of Object.entries(required)) {
    if (!(k in v)) throw new ShareSetupError(`${f}.${k}`, 'is missing');
    c(v[k], `${f}.${k}`);
  }
  for (const [k, c] of Object.entries(optional)) if (v[k] !== undefined) c(v[k], `${f}.${k}`);
}

const threshold: Check = (v, f) => {
  fields(v, f, { mode: oneOf('val-best-f1', 'val-fpr', 'test-best-f1', 'test-fpr', 'given') });
  const t = v as Record<string, unknown>;
  if (t.mode === 'val-fpr' || t.mode === 'test-fpr') num(t.maxFpr, `${f}.maxFpr`);
  if (t.mode === 'given') {
    num(t.threshold, `${f}.threshold`);
    str(t.source, `${f}.source`);
  }
};

/**
 * Checks a decoded setup's JSON part (masks already decoded) field by field; throws `ShareSetupError` naming the
 * first bad field. Unknown top-level sections are ignored, so a newer minor addition does not break older apps.
 */
export function validateSetup(v: unknown): asserts v is WorkshopSetup {
  if (!isObj(v)) throw new ShareSetupError('setup', 'must be an object');
  const f = 'setup';
  if (v.title !== undefined) str(v.title, `${f}.title`);
  if (v.generate !== undefined)
    fields(
      v.generate,
      `${f}.generate`,
      { generator: str, count: int, seed: int },
      {
        optionsFor: str,
        options: object,
        sourceMode: oneOf('current', 'selection', 'sampled'),
        sampledCount: int,
        maskMode: oneOf('painted', 'library', 'image-region', 'random', 'none'),
        textureMode: oneOf('procedural', 'dataset', 'files'),
        textureCount: int,
      },
    );
  if (v.diffusion !== undefined)
    fields(
      v.diffusion,
      `${f}.diffusion`,
      {
        prompts: list(str),
        negativePrompt: str,
        steps: int,
        guidanceScale: num,
        strength: num,
        seed: int,
        mode: oneOf('paired', 'triplets'),
        count: int,
      },
      { model: str, seedLocked: bool, maskBlur: num, onlyMasked: bool, padding: int },
    );
  if (v.masks !== undefined) {
    if (!Array.isArray(v.masks)) throw new ShareSetupError(`${f}.masks`, 'must be a list');
    v.masks.forEach((m, i) => fields(m, `${f}.masks[${i}]`, { name: str, mask: object }, { feather: num }));
  }
  if (v.models !== undefined)
    list((m, mf) =>
      fields(m, mf, { id: str, role: oneOf('diffusion', 'backbone'), source: str }, { bytes: int }),
    )(v.models, `${f}.models`);
  if (v.train !== undefined)
    fields(
      v.train,
      `${f}.train`,
      { backbone: str, head: str },
      {
        device: oneOf('auto', 'webgpu', 'wasm'),
        tfBackend: oneOf('auto', 'webgpu', 'wasm', 'cpu'),
        taps: list(str),
        resize: str,
        width: int,
        height: int,
        epochs: int,
        learningRate: num,
        batchSize: int,
        hidden: int,
        seed: int,
        generators: str,
        stream: oneOf('concat', 'mixed'),
        threshold,
      },
    );
  if (v.grid !== undefined)
    fields(
      v.grid,
      `${f}.grid`,
      {
        generators: list(oneOf(...GENERATOR_CHOICES)),
        nAug: list(int),
        seeds: list(int),
        heads: list(oneOf(...HEAD_CHOICES)),
      },
      { fewShot: list(bool), stream: oneOf('concat', 'mixed'), realProbability: num, epochs: int, threshold },
    );
  if (v.dataset !== undefined) {
    fields(v.dataset, `${f}.dataset`, { url: str, sha256: str, size: int }, { name: str });
    const d = v.dataset as unknown as SharedDataset;
    if (!/^[0-9a-f]{64}$/.test(d.sha256))
      throw new ShareSetupError(`${f}.dataset.sha256`, 'must be 64 lower-case hex digits');
    if (!/^https?:\/\//.test(d.url) && !d.url.startsWith('/'))
      throw new ShareSetupError(`${f}.dataset.url`, 'must be an http(s) URL or a path on this app');
  }
}

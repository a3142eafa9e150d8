/**
 * `npm run cli -- experiment --config grid.json`: a user's grid over a dataset folder or manifest.
 *
 * The config is a `GridSpec` (src/core/experiments/grid.ts) plus where the data and the backbone are:
 *
 * ```json
 * { "data": "../shared/data/magnetic-tile-compact", "backbone": "../shared/models/mobilenetv2-12-int8.onnx",
 *   "generators": ["none", "memseg", "diffusion", "in-out"], "nAug": [20], "seeds": [0, 1], "heads": ["bce", "spatial"],
 *   "diffusion": { "model": "tiny-sd-inpaint", "steps": 30 } }
 * ```
 *
 * Paths are relative to the config file. The file is checked against `GRID_CONFIG_SCHEMA` with fastify's JSON
 * Schema validator (the one the HTTP API uses) and then by the core's `validateGrid`; any problem is a
 * `GridConfigError` naming the file, the field and the fix. Diffusion settings default to DIAG's.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import Fastify, { type FastifyRequest } from 'fastify';
import { DIFFUSION_GUIDANCE, DIFFUSION_STEPS, DIFFUSION_STRENGTH } from '../src/core/diffusion/settings.ts';
import { DefectLabError, errorInfo } from '../src/core/errors.ts';
import { BCE_FIELDS, HEAD_OPTION_FIELDS } from '../src/core/experiments/head-options.ts';
import { THRESHOLD_POLICY_JSON_SCHEMA } from '../src/core/experiments/threshold-policy.ts';
import { jsonSchemaOf, jsonSchemaOfField, numberField } from '../src/core/fields.ts';
import {
  DIFFUSION_MASK_SOURCES,
  GENERATOR_CHOICES,
  HEAD_CHOICES,
  TABLE_METRICS,
  expandGrid,
  runCells,
  toMarkdown,
  validateGrid,
  type CellStore,
  type ExperimentResult,
  type GridSpec,
  type TableMetric,
} from '../src/core/experiments/index.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import { identifyBackbone } from '../src/runtime/backbone.ts';
import { loadDatasetFolder, type FolderDataset } from './dataset-folder.ts';
import { TINY_MODELS_DIR, nodeDiffusionSource, type NodeDevice } from './diffusion.ts';
import { loadNodeExtractor, MOBILENET_PATH } from './features.ts';
import {
  coreGenerators,
  cseGenerators,
  diffusionSettings,
  prepareDiffusionGrid,
} from '../src/app/generators.ts';
import {
  bceTrainer,
  cellLogLine,
  cseFusionTaps,
  cseTrainer,
  spatialTrainer,
  SpatialMaps,
} from '../src/app/heads.ts';
import { maskedTrainer } from '../src/app/masked.ts';
import { patchcoreTrainer, tapDefaultsFor, TapMaps, tapSourceOf } from '../src/app/patchcore.ts';
import { nodePatchCoreRuntime } from '../src/runtime/heads/patchcore-node.ts';

export class GridConfigError extends DefectLabError {
  constructor(file: string, problem: string, fix: string) {
    super('GridConfigError', `${file}: ${problem}`, fix);
  }
}

const SCHEMA_FIX =
  'edit the file to match the grid config schema (server/README.md, "experiment --config"), e.g. {"data": "DIR", "generators": ["memseg"], "nAug": [20], "seeds": [0, 1], "heads": ["bce"]}';

const generatorName = {
  type: 'string',
  enum: [...GENERATOR_CHOICES.filter((g) => g !== 'none' && g !== 'in-out'), 'blur', 'cutpaste'],
};
// Upper bounds too: a request may carry any JSON number, and 1e300 is an "integer" to JSON Schema.
const intList = (minimum: number, maximum: number) => ({
  type: 'array',
  items: { type: 'integer', minimum, maximum },
});

/** JSON Schema of a grid config file (draft-07, as fastify's validator reads it). */
export const GRID_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['generators', 'seeds', 'heads'],
  properties: {
    data: { type: 'string', minLength: 1 },
    backbone: { type: 'string', minLength: 1 },
    // A paper preset's table: its title and the columns the paper prints (default: AP, AUROC, F1, MCC, FPR, val AP).
    title: { type: 'string', minLength: 1 },
    columns: { type: 'array', minItems: 1, items: { type: 'string', enum: [...TABLE_METRICS] } },
    // What the preset says about itself (the paper, what differs); carried into result.json, never read.
    about: { type: 'string' },
    generators: { type: 'array', minItems: 1, items: { type: 'string', enum: [...GENERATOR_CHOICES] } },
    nAug: intList(0, 100_000),
    seeds: { ...intList(-2147483648, 4294967295), minItems: 1 },
    heads: { type: 'array', minItems: 1, items: { type: 'string', enum: [...HEAD_CHOICES] } },
    fewShot: { type: 'array', minItems: 1, items: { type: 'boolean' } },
    stream: { type: 'string', enum: ['concat', 'mixed'] },
    realProbability: { type: 'number', minimum: 0, maximum: 1 },
    augmentReal: { type: 'boolean' },
    sweep: {
      type: 'object',
      additionalProperties: false,
      properties: {
        realProbability: { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 } },
        realFraction: { type: 'array', items: { type: 'number', exclusiveMinimum: 0, maximum: 1 } },
        strength: { type: 'array', items: jsonSchemaOfField(DIFFUSION_STRENGTH) },
        guidanceScale: { type: 'array', items: jsonSchemaOfField(DIFFUSION_GUIDANCE) },
        steps: { type: 'array', items: jsonSchemaOfField(DIFFUSION_STEPS) },
        inOut: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['in', 'out'],
            properties: { in: generatorName, out: generatorName },
          },
        },
        cseK: { type: 'array', items: { type: 'integer', minimum: 1 } },
      },
    },
    // Limits below come from the core schemas the panels draw their forms from.
    epochs: jsonSchemaOfField(numberField(BCE_FIELDS, 'epochs')),
    valFraction: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
    threshold: THRESHOLD_POLICY_JSON_SCHEMA,
    inOut: {
      type: 'object',
      additionalProperties: false,
      required: ['in', 'out'],
      properties: { in: generatorName, out: generatorName },
    },
    diffusion: {
      type: 'object',
      additionalProperties: false,
      properties: {
        model: { type: 'string', minLength: 1 },
        prompts: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        negativePrompt: { type: 'string' },
        steps: jsonSchemaOfField(DIFFUSION_STEPS),
        guidanceScale: jsonSchemaOfField(DIFFUSION_GUIDANCE),
        strength: jsonSchemaOfField(DIFFUSION_STRENGTH),
        masks: { type: 'string', enum: [...DIFFUSION_MASK_SOURCES] },
        onlyMasked: { type: 'boolean' },
        padding: { type: 'integer', minimum: 0, maximum: 4096 },
      },
    },
    headOptions: {
      type: 'object',
      additionalProperties: false,
      // Each head's own options, strictly: a misspelt option is an error, not a silent default.
      properties: Object.fromEntries(HEAD_CHOICES.map((h) => [h, jsonSchemaOf(HEAD_OPTION_FIELDS[h])])),
    },
    baselines: { type: 'boolean' },
  },
} as const;

export interface GridConfig extends GridSpec {
  /** Dataset folder or manifest.json, absolute (resolved against the config file). */
  data?: string;
  /** Backbone ONNX file, absolute. */
  backbone?: string;
  /** The table's title (a paper preset's table name). */
  title?: string;
  /** The metric columns of the table, in order (a paper's columns). */
  columns?: TableMetric[];
  about?: string;
}

let validator: ReturnType<typeof Fastify> | null = null;

interface AjvIssue {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** One line per schema problem, naming the field (JSON pointer) and, where ajv knows it, the bad key or value. */
function describeIssue(e: AjvIssue, config: unknown): string {
  const at = e.instancePath || '/';
  if (e.keyword === 'additionalProperties')
    return `${at} has an unknown key "${String(e.params.additionalProperty)}"`;
  if (e.keyword === 'enum') {
    const got = e.instancePath
      .split('/')
      .slice(1)
      .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
    return `${at} must be one of ${(e.params.allowedValues as unknown[]).join(' | ')} (got ${JSON.stringify(got)})`;
  }
  return `${at} ${e.message ?? 'is invalid'}`;
}

/** Checks a parsed config against the schema with fastify's validator (strict: no coercion, no defaults). */
async function schemaErrors(config: unknown): Promise<string | null> {
  if (!validator) {
    validator = Fastify({
      logger: false,
      ajv: {
        customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true },
      },
    });
    validator.post(
      '/',
      { schema: { body: GRID_CONFIG_SCHEMA }, attachValidation: true },
      async (req: FastifyRequest) => ({
        issues: (req.validationError as { validation?: AjvIssue[] } | undefined)?.validation ?? [],
      }),
    );
  }
  const r = await validator.inject({ method: 'POST', url: '/', payload: config as object });
  const issues = (r.json() as { issues: AjvIssue[] }).issues;
  return issues.length ? issues.map((e) => describeIssue(e, config)).join('; ') : null;
}

/** Reads, schema-checks and semantically checks a grid config file; paths become absolute. */
export async function loadGridConfig(file: string): Promise<GridConfig> {
  const abs = resolve(file);
  if (!existsSync(abs))
    throw new GridConfigError(abs, 'no such file', 'pass --config PATH of an existing grid JSON file');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(abs, 'utf8'));
  } catch (e) {
    throw new GridConfigError(abs, `is not valid JSON (${(e as Error).message})`, SCHEMA_FIX);
  }
  return parseGridConfig(raw, dirname(abs), abs);
}

/**
 * Schema-checks and semantically checks an already parsed config (a file's contents or an HTTP body);
 * relative paths resolve against `base`. `source` names where it came from in every error.
 */
export async function parseGridConfig(raw: unknown, base: string, source: string): Promise<GridConfig> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new GridConfigError(source, 'must hold one JSON object', SCHEMA_FIX);
  const problem = await schemaErrors(raw);
  if (problem) throw new GridConfigError(source, problem, SCHEMA_FIX);
  const c = raw as GridConfig;
  const config: GridConfig = {
    ...c,
    nAug: c.nAug ?? [],
    data: c.data ? resolve(base, c.data) : undefined,
    backbone: c.backbone ? resolve(base, c.backbone) : undefined,
  };
  try {
    // The model may be left to the run (first available); the other diffusion fields get DIAG's defaults.
    validateGrid({
      ...config,
      diffusion: diffusionSettings({
        ...config.diffusion,
        model: config.diffusion?.model ?? '(first available)',
      }),
    });
  } catch (e) {
    throw new GridConfigError(source, errorInfo(e).message, SCHEMA_FIX);
  }
  return config;
}

/** The manifest id of a known backbone file (by sha256), else `<folder>/<file>`: the extractor id cells record. */
async function backboneId(path: string): Promise<string> {
  const known = await identifyBackbone(new Uint8Array(readFileSync(path)));
  return known?.id ?? `${basename(dirname(path))}/${basename(path)}`;
}

export interface RunGridOptions {
  /** Overrides the config's `data`. */
  data?: string;
  /** A dataset already in memory (a server job's upload); wins over `data`. */
  dataset?: FolderDataset;
  /** The backbone's preprocessing (default: the model's own). */
  preprocess?: PreprocessOptions;
  /** Overrides the config's `backbone` (default: MobileNetV2-int8 in ../shared). */
  backbone?: string;
  /** Folder of diffusion model folders (default models/tiny). */
  diffusionDir?: string;
  /** 'cuda' asks for the CUDA execution provider (CPU with the reason when it is missing); default 'cpu'. */
  device?: NodeDevice;
  store?: CellStore;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  log?: (line: string) => void;
}

export interface GridRunResult extends ExperimentResult {
  markdown: string;
  spec: GridSpec;
  dataset: FolderDataset;
  seconds: number;
  backend: string;
}

/** Runs a loaded config: dataset folder, Node backbone, BCE/spatial/CSE heads, core + diffusion generators. */
export async function runGridConfig(
  config: GridConfig,
  o: RunGridOptions = {},
  configFile = 'the grid config',
): Promise<GridRunResult> {
  const t0 = performance.now();
  const dataPath = o.data ?? config.data;
  if (!dataPath && !o.dataset)
    throw new GridConfigError(
      configFile,
      'names no dataset',
      'add "data": "DIR or DIR/manifest.json" to the config, or pass --data',
    );
  const data = o.dataset ?? loadDatasetFolder(dataPath!);
  for (const r of data.rejected) o.log?.(`skipped ${r}`);
  const diffusion = nodeDiffusionSource(o.diffusionDir ?? TINY_MODELS_DIR, undefined, o.device);
  const { data: _d, backbone: _b, title: _t, columns: _c, about: _a, ...grid } = config;
  const spec = await prepareDiffusionGrid(grid, diffusion);
  const backbonePath = o.backbone ?? config.backbone ?? MOBILENET_PATH;
  if (!existsSync(backbonePath))
    throw new GridConfigError(
      configFile,
      `backbone ${backbonePath} does not exist`,
      'set "backbone" to an ONNX image classifier (relative to the config) or pass --model FILE',
    );
  const extractor = await loadNodeExtractor(
    backbonePath,
    await backboneId(backbonePath),
    o.device,
    o.preprocess,
  );
  if (extractor.backbone.session.fallbackReason)
    o.log?.(`backbone: ${extractor.backbone.session.fallbackReason}`);
  try {
    const maps = new SpatialMaps({
      preprocess: extractor.backbone.preprocess,
      spatial: async (images, signal) => (await extractor.extractBoth(images, signal)).spatial,
    });
    const taps = new TapMaps(tapSourceOf(extractor.backbone));
    const configs = expandGrid(spec, data.name, extractor.id);
    const result = await runCells(
      configs,
      data,
      {
        extractor,
        generators: coreGenerators({}, { diffusion }),
        trainers: {
          bce: bceTrainer(),
          spatial: spatialTrainer(maps),
          cse: cseTrainer(maps, {
            generators: cseGenerators(),
            taps: cseFusionTaps(extractor.backbone.taps, taps),
          }),
          patchcore: patchcoreTrainer(taps, tapDefaultsFor(extractor.backbone), nodePatchCoreRuntime()),
          masked: maskedTrainer(taps, tapDefaultsFor(extractor.backbone)),
        },
      },
      {
        store: o.store,
        signal: o.signal,
        onProgress: o.onProgress,
        onCell: (c, resumed) => o.log?.(cellLogLine(c, resumed)),
      },
    );
    return {
      ...result,
      markdown: `${config.title ? `### ${config.title}\n\n` : ''}${toMarkdown(
        result.table,
        config.columns ?? ['ap', 'auroc', 'f1', 'mcc', 'fpr', 'valAp'],
      )}`,
      spec,
      dataset: data,
      seconds: (performance.now() - t0) / 1000,
      backend: extractor.backbone.backend,
    };
  } finally {
    await extractor.release();
  }
}

/**
 * The DefectLab HTTP API (fastify, JSON schemas on every route), built without listening so tests use
 * `app.inject`. `main.ts` listens on localhost.
 *
 * - GET  /api/health                 liveness and versions
 * - GET  /api/capabilities           ORT flavour/providers, the CUDA → CPU fallback reason, generators, heads
 * - POST /api/metrics                scores + labels (+ threshold or policy) → AP, AUROC, P/R/F1/MCC/FPR, curves
 * - POST /api/synth/generate         PNG (base64) + generator + seed → defect PNG + mask PNG + params
 * - POST /api/experiments/run        the real magnetic-tile run (seeds, N_aug, epochs)
 * - POST /api/experiments/grid       a user's grid config (the CLI's `experiment --config` JSON) over a dataset folder
 * - POST /api/diffusion/generate     inpainting through the diffusion engine (503 with a fix when none is wired in)
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { DIFFUSION_GUIDANCE, DIFFUSION_STEPS, DIFFUSION_STRENGTH } from '../src/core/diffusion/settings.ts';
import { DefectLabError, errorInfo } from '../src/core/errors.ts';
import { BCE_FIELDS, CSE_FIELDS } from '../src/core/experiments/head-options.ts';
import { MAX_FPR } from '../src/core/experiments/threshold-policy.ts';
import { thresholdOnScores } from '../src/core/experiments/threshold.ts';
import { jsonSchemaOfField, numberField } from '../src/core/fields.ts';
import { averagePrecision, metricRow, precisionRecallCurve, rocCurve } from '../src/core/metrics/index.ts';
import { decodeImage, encodePng } from '../src/runtime/decode.ts';
import type { ExperimentResult } from '../src/core/experiments/index.ts';
import { coreGenerators } from '../src/app/generators.ts';
import type { GridConfig } from './grid-config.ts';
import { probeOrt, type OrtProbe } from './probe.ts';

export interface ServerDeps {
  /** Runs the experiment route (injected so tests can use a fast fake). */
  runExperiment?: (body: ExperimentBody) => Promise<unknown>;
  /** Runs a checked grid config (default: `runGridConfig`, the CLI's runner). */
  runGrid?: (config: GridConfig) => Promise<unknown>;
  /** Diffusion inpainting, when an engine is available. */
  diffusion?: (body: Record<string, unknown>) => Promise<unknown>;
  /** Where experiment runs put their sessions ('cuda': CUDA when present, else CPU with the reason). */
  device?: 'cpu' | 'cuda';
  /** Capability probe (defaults to creating a tiny ORT session on CPU and, if asked, CUDA). */
  probe?: () => Promise<OrtProbe>;
}

export interface ExperimentBody {
  seeds?: number[];
  nAug?: number;
  epochs?: number;
  cseEpochs?: number;
  skipCse?: boolean;
  dataDir?: string;
}

/** An experiment run as a reply: the tables and cells without their per-image scores. */
function experimentReply(r: ExperimentResult & { markdown: string; seconds: number; backend: string }) {
  return {
    markdown: r.markdown,
    table: r.table,
    warnings: r.warnings,
    seconds: r.seconds,
    backend: r.backend,
    cells: r.cells.map(({ scores: _s, ...cell }) => cell),
  };
}

/** NaN / ±Infinity (undefined metrics) as null: JSON has no such numbers. */
function jsonSafe(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x)));
}

const numberArray = { type: 'array', items: { type: 'number' } } as const;
const errorSchema = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' }, fix: { type: 'string' } },
} as const;

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

export function buildServer(deps: ServerDeps = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
  const generators = coreGenerators();
  let probe: Promise<OrtProbe> | null = null;

  app.setErrorHandler((err, _req, reply) => {
    const info = errorInfo(err);
    const status =
      (err as { validation?: unknown }).validation !== undefined
        ? 400
        : err instanceof DefectLabError
          ? 422
          : ((err as { statusCode?: number }).statusCode ?? 500);
    void reply.status(status).send({
      code: (err as { validation?: unknown }).validation ? 'ValidationError' : info.code,
      message: info.message,
      fix: info.fix || (status === 400 ? 'send a body that matches the route schema' : ''),
    });
  });

  app.get(
    '/api/health',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: { ok: { type: 'boolean' }, node: { type: 'string' }, uptime: { type: 'number' } },
          },
        },
      },
    },
    async () => ({
      ok: true,
      node: process.version,
      uptime: process.uptime(),
    }),
  );

  app.get('/api/capabilities', async () => {
    probe ??= (deps.probe ?? probeOrt)();
    const ort = await probe;
    return {
      ort,
      generators: Object.keys(generators),
      heads: ['bce', 'spatial', 'cse', 'knn', 'mean'],
      diffusion: Boolean(deps.diffusion),
    };
  });

  app.post<{
    Body: { scores: number[]; labels: number[]; threshold?: number; maxFpr?: number; curves?: boolean };
  }>(
    '/api/metrics',
    {
      schema: {
        body: {
          type: 'object',
          required: ['scores', 'labels'],
          properties: {
            scores: numberArray,
            labels: { type: 'array', items: { type: 'integer', enum: [0, 1] } },
            threshold: { type: 'number' },
            maxFpr: jsonSchemaOfField(MAX_FPR),
            curves: { type: 'boolean' },
          },
        },
        response: { 422: errorSchema, 400: errorSchema },
      },
    },
    async (req) => {
      const { scores, labels } = req.body;
      const choice = thresholdOnScores(scores, labels, req.body);
      const threshold = choice.threshold;
      const thresholdSource = choice.source;
      const row = metricRow(scores, labels, threshold);
      const out: Record<string, unknown> = {
        ...Object.fromEntries(Object.entries(row).map(([k, v]) => [k, finite(v)])),
        thresholdSource,
        warnings: choice.warnings,
        ap: finite(averagePrecision(scores, labels)),
      };
      if (req.body.curves) {
        const pr = precisionRecallCurve(scores, labels);
        const roc = rocCurve(scores, labels);
        out.pr = { precision: Array.from(pr.precision), recall: Array.from(pr.recall) };
        out.roc = { fpr: Array.from(roc.fpr, finite), tpr: Array.from(roc.tpr, finite) };
      }
      return out;
    },
  );

  app.post<{ Body: { image: string; generator: string; seed?: number; options?: Record<string, unknown> } }>(
    '/api/synth/generate',
    {
      schema: {
        body: {
          type: 'object',
          required: ['image', 'generator'],
          properties: {
            image: { type: 'string', description: 'base64 PNG/JPEG/BMP' },
            generator: { type: 'string', enum: Object.keys(generators) },
            seed: { type: 'integer' },
            options: { type: 'object' },
          },
        },
      },
    },
    async (req) => {
      const bytes = new Uint8Array(Buffer.from(req.body.image, 'base64'));
      const { raster } = await decodeImage(bytes, 'request image');
      const gens = coreGenerators({ [req.body.generator]: req.body.options ?? {} });
      const r = await gens[req.body.generator](raster, req.body.seed ?? 0);
      return {
        image: Buffer.from(encodePng(r.image)).toString('base64'),
        mask: Buffer.from(encodePng(r.mask)).toString('base64'),
        width: r.image.width,
        height: r.image.height,
        seed: req.body.seed ?? 0,
      };
    },
  );

  app.post<{ Body: ExperimentBody }>(
    '/api/experiments/run',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            seeds: { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 16 },
            nAug: { type: 'integer', minimum: 0, maximum: 2000 },
            epochs: jsonSchemaOfField(numberField(BCE_FIELDS, 'epochs')),
            cseEpochs: jsonSchemaOfField(numberField(CSE_FIELDS, 'epochs')),
            skipCse: { type: 'boolean' },
            dataDir: { type: 'string' },
          },
        },
      },
    },
    async (req) => {
      const run =
        deps.runExperiment ??
        (async (b: ExperimentBody) => {
          const { runRealData } = await import('./realdata.ts');
          return experimentReply(await runRealData({ ...b, device: deps.device }));
        });
      return jsonSafe(await run(req.body ?? {}));
    },
  );

  app.post<{ Body: Record<string, unknown> }>(
    '/api/experiments/grid',
    {
      // The route's own schema only asks for an object: fastify's default validator silently drops unknown keys,
      // and a misspelt grid field must be an error, so parseGridConfig checks GRID_CONFIG_SCHEMA strictly.
      schema: { body: { type: 'object' } },
    },
    async (req) => {
      const { parseGridConfig, runGridConfig } = await import('./grid-config.ts');
      const config = await parseGridConfig(req.body, process.cwd(), 'the request body');
      const run =
        deps.runGrid ??
        (async (c: GridConfig) => {
          return experimentReply(await runGridConfig(c, { device: deps.device }, 'the request body'));
        });
      return jsonSafe(await run(config));
    },
  );

  app.post<{ Body: Record<string, unknown> }>(
    '/api/diffusion/generate',
    {
      schema: {
        body: {
          type: 'object',
          required: ['image', 'mask', 'prompt'],
          properties: {
            model: { type: 'string' },
            image: { type: 'string', description: 'base64 PNG/JPEG/BMP' },
            mask: { type: 'string', description: 'base64 PNG, non-zero = repaint' },
            prompt: { type: 'string' },
            negativePrompt: { type: 'string' },
            // The diffusion settings schema's limits: the same the panels, the grid and the pipeline check.
            steps: jsonSchemaOfField(DIFFUSION_STEPS),
            guidanceScale: jsonSchemaOfField(DIFFUSION_GUIDANCE),
            strength: jsonSchemaOfField(DIFFUSION_STRENGTH),
            seed: { type: 'integer' },
            onlyMasked: { type: 'boolean', description: "DIAG's crop around the mask (padding_mask_crop)" },
            padding: { type: 'integer', minimum: 0, maximum: 4096 },
          },
        },
      },
    },
    async (req, reply) => {
      if (!deps.diffusion)
        return reply.status(503).send({
          code: 'DiffusionUnavailableError',
          message: 'DiffusionUnavailableError: no diffusion engine is wired into this server',
          fix: 'use the app for in-browser diffusion, or start the server with a diffusion engine',
        });
      return deps.diffusion(req.body);
    },
  );

  return app;
}

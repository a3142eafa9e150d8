/**
 * The DefectLab HTTP API (fastify, JSON schemas on every route), built without listening so tests use
 * `app.inject`; `main.ts` listens. Long work runs as jobs (`jobs.ts`: in-process queue, or BullMQ over Redis).
 *
 * - GET    /api/health                 liveness, version, queue depth (no token needed)
 * - GET    /api/capabilities           ORT providers that opened a session, the GPU, CUDA fallback reason, queue,
 *                                      datasets under --datasets, models under --models
 * - POST   /api/metrics                scores + labels (+ threshold or policy) → AP, AUROC, P/R/F1/MCC/FPR, curves
 * - POST   /api/synth/generate         one PNG (base64) + generator + seed → defect PNG + mask PNG
 * - POST   /api/jobs                   generate | features | experiment → 202 { id, state }
 * - GET    /api/jobs/:id               state, last progress, summary or error
 * - GET    /api/jobs/:id/events        server-sent events: `progress` (the workers' Progress) and `state`
 * - DELETE /api/jobs/:id               cancel (reaches the running cell / batch / denoising loop)
 * - GET    /api/jobs/:id/results       zip: images/, masks/, manifest.json (provenance) or result.json + tables
 * - POST   /api/experiments/run        the real magnetic-tile run (synchronous; kept for the CLI-era clients)
 * - POST   /api/experiments/grid       a grid config, synchronous (POST /api/jobs kind=experiment is the queued one)
 * - POST   /api/diffusion/generate     one inpainting, synchronous (503 with a fix when no engine is wired in)
 * - GET    /docs                       OpenAPI (from these schemas) with Swagger UI; /docs/json the document
 *
 * Security (see docs/server.md): bearer token (constant time) on every route but health and docs; Host header
 * checked on loopback (DNS rebinding); CORS only for --cors origins; helmet headers; per-token rate limit; body
 * limit → 413; data confined to --datasets / --models; every error is `{ code, message, fix }` without a stack
 * or a server path.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { DefectLabError, errorInfo } from '../src/core/errors.ts';
import { DIFFUSION_GUIDANCE, DIFFUSION_STEPS, DIFFUSION_STRENGTH } from '../src/core/diffusion/settings.ts';
import { BCE_FIELDS, CSE_FIELDS } from '../src/core/experiments/head-options.ts';
import { MAX_FPR } from '../src/core/experiments/threshold-policy.ts';
import { jsonSchemaOfField, numberField } from '../src/core/fields.ts';
import { averagePrecision, metricRow, precisionRecallCurve, rocCurve } from '../src/core/metrics/index.ts';
import { thresholdOnScores } from '../src/core/experiments/threshold.ts';
import { checkLimits, decodeImage, encodePng, readImageSize, sniffFormat } from '../src/runtime/decode.ts';
import type { ExperimentResult } from '../src/core/experiments/index.ts';
import { coreGenerators } from '../src/app/generators.ts';
import { ConfinementError, confinedPath, scrubPaths } from './confine.ts';
import { TINY_MODELS_DIR } from './diffusion.ts';
import type { GridConfig } from './grid-config.ts';
import {
  GENERATE_GENERATORS,
  JOB_KINDS,
  UPLOAD_POOLS,
  decodeBase64,
  parseServedGrid,
  uploadedData,
  type JobSpec,
} from './job-kinds.ts';
import { MemoryQueue, QueueFullError, TERMINAL, type JobEvent, type JobQueue } from './jobs.ts';
import { checkExposure, isLoopback, type ServerOptions } from './options.ts';
import { probeOrt, type OrtProbe } from './probe.ts';
import { SERVER_VERSION } from './version.ts';

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
  /** Flags (`options.ts`); missing ones take the defaults of `npm run server`. */
  options?: Partial<ServerOptions>;
  /** The job queue (default: the in-process queue with --concurrency / --max-queue). */
  queue?: JobQueue;
}

export interface ExperimentBody {
  seeds?: number[];
  nAug?: number;
  epochs?: number;
  cseEpochs?: number;
  skipCse?: boolean;
  dataDir?: string;
}

export const DEFAULT_OPTIONS: ServerOptions = {
  host: '127.0.0.1',
  port: 8787,
  token: '',
  cors: [],
  models: TINY_MODELS_DIR,
  datasets: '',
  device: 'auto',
  requireCuda: false,
  queue: 'memory',
  concurrency: 1,
  maxQueue: 100,
  bodyLimitBytes: 64 * 1024 * 1024,
  rateLimit: 600,
};

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
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 422: errorSchema };

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Fastify's own errors (FST_…) as the API's codes and fixes. */
const FASTIFY_ERRORS: Record<string, { code: string; fix: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'BodyTooLargeError',
    fix: 'send a smaller body (upload fewer or smaller images per job), or start the server with a larger --body-limit-mb',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UnsupportedMediaTypeError',
    fix: 'send the body as JSON with Content-Type: application/json',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'BadJsonError', fix: 'send a valid JSON body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'BadJsonError', fix: 'send a JSON body, or no Content-Type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'BadRequestError', fix: 'send a correct Content-Length' },
  FST_ERR_BAD_URL: { code: 'BadRequestError', fix: 'send a well-formed URL' },
  FST_ERR_ASYNC_CONSTRAINT: { code: 'BadRequestError', fix: 'send a well-formed request' },
};

class HttpError extends DefectLabError {
  constructor(
    readonly status: number,
    code: string,
    problem: string,
    fix: string,
  ) {
    super(code, problem, fix);
  }
}

/** Hash-then-compare: equal-length digests make `timingSafeEqual` applicable whatever the token lengths. */
function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : null;
}

const OPEN_ROUTES = ['/api/health', '/docs'];
const isOpen = (url: string) =>
  OPEN_ROUTES.some((r) => url === r || url.startsWith(`${r}/`) || url.startsWith(`${r}?`));

/** The GPU as the driver names it (nvidia-smi), or null where there is none. */
function gpuInfo(): Promise<{ name: string; memoryMiB: number }[] | null> {
  return new Promise((resolveGpu) => {
    execFile(
      'nvidia-smi',
      ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 3000 },
      (err, stdout) => {
        if (err) return resolveGpu(null);
        resolveGpu(
          stdout
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => {
              const [name, mem] = l.split(',').map((s) => s.trim());
              return { name, memoryMiB: Number(mem) };
            }),
        );
      },
    );
  });
}

function listDirs(root: string): string[] {
  if (!root) return [];
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

const JOB_ID = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9-]+$' } as const;
const b64List = (max: number) =>
  ({ type: 'array', maxItems: max, items: { type: 'string', minLength: 1 } }) as const;

/** POST /api/jobs: the union of the kinds' fields; per-kind rules are checked by `job-kinds.ts` (422). */
export const JOB_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { type: 'string', enum: [...JOB_KINDS] },
    generator: { type: 'string', enum: Object.keys(GENERATE_GENERATORS) },
    images: { ...b64List(1000), description: 'base64 PNG/JPEG/BMP' },
    masks: {
      type: 'array',
      maxItems: 1000,
      items: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'null' }] },
      description: 'base64 PNG region masks, one per image or one for all; null = anywhere on that image',
    },
    feathers: { type: 'array', maxItems: 1000, items: { type: 'number', minimum: 0, maximum: 256 } },
    dataset: { type: 'string', minLength: 1, maxLength: 512, description: 'a folder under --datasets' },
    n: { type: 'integer', minimum: 1, maximum: 10000 },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    options: { type: 'object' },
    diffusion: {
      type: 'object',
      additionalProperties: false,
      properties: {
        model: { type: 'string', minLength: 1, maxLength: 128 },
        prompt: { type: 'string', maxLength: 1000 },
        negativePrompt: { type: 'string', maxLength: 1000 },
        // The diffusion settings schema's limits: the same the panels, the grid and the pipeline check.
        steps: jsonSchemaOfField(DIFFUSION_STEPS),
        guidanceScale: jsonSchemaOfField(DIFFUSION_GUIDANCE),
        strength: jsonSchemaOfField(DIFFUSION_STRENGTH),
        onlyMasked: { type: 'boolean', description: "DIAG's crop around the mask (padding_mask_crop)" },
        padding: { type: 'integer', minimum: 0, maximum: 4096 },
        maskBlur: { type: 'number', minimum: 0, maximum: 256, description: 'paste-back mask blur σ' },
      },
    },
    model: { type: 'string', minLength: 1, maxLength: 512, description: 'an ONNX file under --models' },
    config: { type: 'object', description: 'a grid config (experiment --config); data under --datasets' },
    upload: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'items'],
      description:
        'experiment: the dataset as uploads (items index into images and masks) instead of config.data',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 256 },
        items: {
          type: 'array',
          maxItems: 1000,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'pool', 'label', 'image'],
            properties: {
              id: { type: 'string', minLength: 1, maxLength: 256 },
              pool: { type: 'string', enum: [...UPLOAD_POOLS] },
              label: { type: 'integer', enum: [0, 1] },
              defectClass: { type: 'string', maxLength: 256 },
              generator: { type: 'string', maxLength: 256 },
              width: { type: 'integer', minimum: 1, maximum: 1_000_000 },
              height: { type: 'integer', minimum: 1, maximum: 1_000_000 },
              image: { type: 'integer', minimum: 0, maximum: 999 },
              mask: { type: 'integer', minimum: 0, maximum: 999 },
            },
          },
        },
        regionMasks: { type: 'array', maxItems: 1000, items: { type: 'integer', minimum: 0, maximum: 999 } },
      },
    },
    spatial: { type: 'boolean', description: 'features: spatial maps too (spatial.f32)' },
    resume: {
      type: 'array',
      maxItems: 100000,
      description: "experiment: the client's finished cells of this grid (skipped: resume)",
      items: {
        type: 'object',
        required: ['id', 'status', 'config'],
        properties: {
          id: { type: 'string', minLength: 1, maxLength: 4096 },
          status: { type: 'string', enum: ['done', 'failed'] },
          config: { type: 'object' },
        },
      },
    },
    preprocess: {
      type: 'object',
      additionalProperties: false,
      required: ['width', 'height', 'resize', 'mean', 'std'],
      description: "features / experiment: the backbone's preprocessing (default: the model's own)",
      properties: {
        width: { type: 'integer', minimum: 1, maximum: 8192 },
        height: { type: 'integer', minimum: 1, maximum: 8192 },
        resize: { type: 'string', enum: ['stretch', 'letterbox', 'center-crop'] },
        mean: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number' } },
        std: { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number', exclusiveMinimum: 0 } },
        fill: { type: 'number', minimum: 0, maximum: 255 },
      },
    },
  },
} as const;

export function buildServer(deps: ServerDeps = {}): FastifyInstance {
  const o: ServerOptions = {
    ...DEFAULT_OPTIONS,
    ...(deps.device ? { device: deps.device } : {}),
    ...deps.options,
  };
  checkExposure(o);
  const queue: JobQueue =
    deps.queue ??
    new MemoryQueue({
      concurrency: Math.max(1, o.concurrency),
      maxQueue: o.maxQueue,
      datasets: o.datasets,
      models: o.models,
      device: o.device,
      runner: 'server',
    });
  const nodeDevice = o.device === 'cpu' ? 'cpu' : 'cuda';
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimitBytes,
    // Strict: a wrong type is a 400, not silently coerced; unknown keys stay (and are refused where the schema
    // says additionalProperties: false).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  const generators = coreGenerators();
  let probe: Promise<OrtProbe> | null = null;
  const roots = [
    { path: o.datasets, as: '<datasets>' },
    { path: o.models, as: '<models>' },
    { path: process.cwd(), as: '.' },
    { path: tmpdir(), as: '<tmp>' },
  ];

  const send = (reply: FastifyReply, status: number, info: { code: string; message: string; fix: string }) =>
    reply.status(status).send({
      code: info.code,
      message: scrubPaths(info.message, roots),
      fix: scrubPaths(info.fix, roots),
    });

  app.setErrorHandler((err, _req, reply) => {
    const e = err as {
      validation?: unknown;
      statusCode?: number;
      code?: string;
      message?: string;
      retryAfter?: number;
    };
    if (e.validation !== undefined)
      return send(reply, 400, {
        code: 'ValidationError',
        message: `ValidationError: ${e.message ?? 'the request does not match the route schema'}`,
        fix: 'send a body that matches the route schema (GET /docs)',
      });
    if (err instanceof QueueFullError) {
      void reply.header('Retry-After', String(err.retryAfter));
      return send(reply, 429, errorInfo(err));
    }
    if (err instanceof ConfinementError || err instanceof HttpError)
      return send(reply, err.status, errorInfo(err));
    if (err instanceof DefectLabError) return send(reply, 422, errorInfo(err));
    const known = e.code ? FASTIFY_ERRORS[e.code] : undefined;
    const status = e.statusCode ?? 500;
    if (status === 429)
      return send(reply, 429, {
        code: 'RateLimitError',
        message: `RateLimitError: ${e.message ?? 'too many requests'}`,
        fix: 'wait for the time in the Retry-After header, or ask the operator for a higher --rate-limit',
      });
    if (status >= 400 && status < 500)
      return send(reply, status, {
        code: known?.code ?? 'BadRequestError',
        message: `${known?.code ?? 'BadRequestError'}: ${e.message ?? 'bad request'}`,
        fix: known?.fix ?? 'check the request against GET /docs',
      });
    // A bug, not bad input: log it here, tell the client nothing about the internals.
    console.error(err);
    return send(reply, 500, {
      code: 'InternalError',
      message: 'InternalError: the server failed on this request',
      fix: 'retry; if it persists, report it with the request (the server log has the details)',
    });
  });

  app.setNotFoundHandler((req, reply) =>
    send(reply, 404, {
      code: 'NotFoundError',
      message: `NotFoundError: no route ${req.method} ${req.url.split('?')[0].slice(0, 200)}`,
      fix: 'see GET /docs for the routes',
    }),
  );

  // Host check first: on loopback a request naming another host is a DNS-rebinding page in a browser.
  app.addHook('onRequest', async (req, reply) => {
    if (isLoopback(o.host)) {
      const host = (req.headers.host ?? '').toLowerCase();
      const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
      if (!isLoopback(name))
        throw new HttpError(
          403,
          'HostNotAllowedError',
          `Host ${JSON.stringify(host.slice(0, 100))} is not this loopback server`,
          'connect to http://127.0.0.1:PORT or http://localhost:PORT (to serve a network, start with --host and --token)',
        );
    }
    const origin = req.headers.origin;
    // Set here as well as by @fastify/cors: errors thrown by this hook (401) come before the plugin's hook, and a
    // browser hides an answer without this header behind "Failed to fetch".
    if (typeof origin === 'string' && o.cors.includes(origin))
      void reply.header('Access-Control-Allow-Origin', origin).header('Vary', 'Origin');
    if (typeof origin === 'string' && !o.cors.includes(origin))
      throw new HttpError(
        403,
        'OriginNotAllowedError',
        `origin ${JSON.stringify(origin.slice(0, 100))} is not allowed`,
        'start the server with --cors ORIGIN (exact scheme://host:port) to let that page call it',
      );
    // A CORS preflight carries no credentials by design; the request it announces does.
    if (o.token && req.method !== 'OPTIONS' && !isOpen(req.url)) {
      const t = bearer(req);
      if (t === null || !tokenMatches(t, o.token))
        throw new HttpError(
          401,
          'UnauthorizedError',
          t === null ? 'this server needs a bearer token' : 'the bearer token is wrong',
          'send Authorization: Bearer <the server token> (the --token the server was started with)',
        );
    }
  });

  void app.register(helmet, {
    // Swagger UI's page needs its own scripts and styles; everything else is JSON.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", 'https:', "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        // Plain http on loopback: upgrading the page's requests to https would break /docs.
        upgradeInsecureRequests: null,
      },
    },
  });
  void app.register(cors, {
    origin: o.cors.length ? o.cors : false,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: ['Retry-After', 'Content-Disposition'],
  });
  void app.register(rateLimit, {
    max: o.rateLimit,
    timeWindow: 60_000,
    // Per token when one is sent (so clients behind one NAT do not share a budget), else per address.
    keyGenerator: (req) => {
      const t = bearer(req);
      return t ? `t:${createHash('sha256').update(t).digest('hex').slice(0, 32)}` : `ip:${req.ip}`;
    },
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      code: 'RateLimitError',
      message: `more than ${ctx.max} requests in ${ctx.after}`,
    }),
  });
  void app.register(swagger, {
    openapi: {
      info: { title: 'DefectLab server', version: SERVER_VERSION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  void app.register(swaggerUi, {
    routePrefix: '/docs',
    // swagger-ui's own static CSP minus upgrade-insecure-requests: the server speaks plain http on loopback.
    staticCSP:
      "default-src 'self'; base-uri 'self'; font-src 'self' data:; frame-ancestors 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' https: 'unsafe-inline'",
  });

  // Routes live in a plugin registered after swagger, so its onRoute hook sees every one of them.
  void app.register(async (api) => {
    api.get(
      '/api/health',
      {
        config: { rateLimit: false },
        schema: {
          response: {
            200: {
              type: 'object',
              properties: {
                ok: { type: 'boolean' },
                version: { type: 'string' },
                node: { type: 'string' },
                uptime: { type: 'number' },
                queue: {
                  type: 'object',
                  properties: {
                    mode: { type: 'string' },
                    waiting: { type: 'integer' },
                    running: { type: 'integer' },
                  },
                },
              },
            },
          },
        },
      },
      async () => ({
        ok: true,
        version: SERVER_VERSION,
        node: process.version,
        uptime: process.uptime(),
        queue: { mode: queue.mode, ...(await queue.depth().catch(() => ({ waiting: -1, running: -1 }))) },
      }),
    );

    api.get('/api/capabilities', async () => {
      probe ??= (deps.probe ?? probeOrt)();
      const [ort, gpu, depth] = await Promise.all([probe, gpuInfo(), queue.depth().catch(() => null)]);
      return {
        version: SERVER_VERSION,
        ort,
        gpu,
        device: o.device,
        generators: Object.keys(generators),
        jobGenerators: Object.keys(GENERATE_GENERATORS),
        jobKinds: JOB_KINDS,
        heads: ['bce', 'spatial', 'cse', 'knn', 'mean'],
        diffusion: Boolean(deps.diffusion),
        queue: { mode: queue.mode, ...depth, maxQueue: o.maxQueue },
        datasets: listDirs(o.datasets),
        models: listDirs(o.models),
      };
    });

    api.post<{
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
          response: errors,
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

    api.post<{
      Body: { image: string; generator: string; seed?: number; options?: Record<string, unknown> };
    }>(
      '/api/synth/generate',
      {
        schema: {
          body: {
            type: 'object',
            required: ['image', 'generator'],
            properties: {
              image: { type: 'string', description: 'base64 PNG/JPEG/BMP' },
              generator: { type: 'string', enum: Object.keys(generators) },
              seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
              options: { type: 'object' },
            },
          },
          response: errors,
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

    api.post<{ Body: JobSpec }>(
      '/api/jobs',
      { schema: { body: JOB_SCHEMA, response: { ...errors, 429: errorSchema } } },
      async (req, reply) => {
        await checkJob(req.body, o);
        return reply.status(202).send(await queue.add(req.body));
      },
    );

    const jobOr404 = async (id: string) => {
      const s = await queue.get(id);
      if (!s)
        throw new HttpError(
          404,
          'JobNotFoundError',
          `no job ${JSON.stringify(id)}`,
          'use the id POST /api/jobs answered (finished jobs are kept for a while, then forgotten)',
        );
      return s;
    };
    const idParams = { type: 'object', required: ['id'], properties: { id: JOB_ID } } as const;

    api.get<{ Params: { id: string } }>(
      '/api/jobs/:id',
      { schema: { params: idParams, response: errors } },
      (req) => jobOr404(req.params.id),
    );

    api.delete<{ Params: { id: string } }>(
      '/api/jobs/:id',
      { schema: { params: idParams, response: errors } },
      async (req) => {
        await jobOr404(req.params.id);
        return queue.cancel(req.params.id);
      },
    );

    api.get<{ Params: { id: string } }>(
      '/api/jobs/:id/results',
      { schema: { params: idParams, response: { ...errors, 409: errorSchema } } },
      async (req, reply) => {
        const s = await jobOr404(req.params.id);
        const zip = s.state === 'done' ? await queue.results(s.id) : null;
        if (!zip)
          throw new HttpError(
            409,
            'JobNotDoneError',
            `job ${s.id} is ${s.state}${s.error ? ` (${s.error.message})` : ''}: it has no results`,
            s.state === 'queued' || s.state === 'running'
              ? 'wait for the done state (GET /api/jobs/:id/events), then fetch the results'
              : 'submit the job again',
          );
        return reply
          .header('Content-Type', 'application/zip')
          .header('Content-Disposition', `attachment; filename="defectlab-${s.id}.zip"`)
          .send(Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength));
      },
    );

    api.get<{ Params: { id: string } }>(
      '/api/jobs/:id/events',
      { schema: { params: idParams, response: errors } },
      async (req, reply) => {
        const first = await jobOr404(req.params.id);
        // Headers the hooks set (CORS, helmet) go out with the stream: hijacking skips fastify's reply.
        const headers = {
          ...(reply.getHeaders() as Record<string, string>),
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache, no-transform',
          Connection: 'keep-alive',
          'X-Accel-Buffering': 'no',
        };
        reply.hijack();
        const raw = reply.raw;
        raw.writeHead(200, headers);
        const write = (e: JobEvent) => {
          const data = e.type === 'progress' ? e.progress : e.status;
          raw.write(`event: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`);
        };
        // A late subscriber sees where the job is: its state, then its last progress report.
        write({ type: 'state', status: first });
        if (first.progress) write({ type: 'progress', progress: first.progress });
        if (TERMINAL.has(first.state)) {
          if (first.progress) write({ type: 'state', status: first });
          return void raw.end();
        }
        let ended = false;
        const end = () => {
          if (ended) return;
          ended = true;
          clearInterval(beat);
          unsubscribe();
          raw.end();
        };
        const unsubscribe = queue.subscribe(first.id, (e) => {
          if (ended) return;
          write(e);
          if (e.type === 'state' && TERMINAL.has(e.status.state)) end();
        });
        // A comment every 15 s keeps proxies from closing a quiet stream.
        const beat = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
        req.raw.on('close', end);
        // The job may have finished between the first read and the subscription.
        const now = await queue.get(first.id);
        if (now && TERMINAL.has(now.state) && !ended) {
          write({ type: 'state', status: now });
          end();
        }
      },
    );

    api.post<{ Body: ExperimentBody }>(
      '/api/experiments/run',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              seeds: { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 16 },
              nAug: { type: 'integer', minimum: 0, maximum: 2000 },
              epochs: jsonSchemaOfField(numberField(BCE_FIELDS, 'epochs')),
              cseEpochs: jsonSchemaOfField(numberField(CSE_FIELDS, 'epochs')),
              skipCse: { type: 'boolean' },
              dataDir: { type: 'string', description: 'a dataset folder under --datasets' },
            },
          },
          response: errors,
        },
      },
      async (req) => {
        const body = { ...(req.body ?? {}) };
        if (body.dataDir !== undefined)
          body.dataDir = confinedPath(o.datasets, body.dataDir, 'dataDir', '--datasets');
        const run =
          deps.runExperiment ??
          (async (b: ExperimentBody) => {
            const { runRealData } = await import('./realdata.ts');
            return experimentReply(await runRealData({ ...b, device: nodeDevice }));
          });
        return jsonSafe(await run(body));
      },
    );

    api.post<{ Body: Record<string, unknown> }>(
      '/api/experiments/grid',
      {
        // The route's own schema only asks for an object: a misspelt grid field must be an error naming it, so
        // parseGridConfig checks GRID_CONFIG_SCHEMA strictly.
        schema: { body: { type: 'object' }, response: errors },
      },
      async (req) => {
        const config = await parseServedGrid(req.body, o, 'the request body');
        const run =
          deps.runGrid ??
          (async (c: GridConfig) => {
            const { runGridConfig } = await import('./grid-config.ts');
            return experimentReply(
              await runGridConfig(c, { device: nodeDevice, diffusionDir: o.models }, 'the request body'),
            );
          });
        return jsonSafe(await run(config));
      },
    );

    api.post<{ Body: Record<string, unknown> }>(
      '/api/diffusion/generate',
      {
        schema: {
          body: {
            type: 'object',
            required: ['image', 'mask', 'prompt'],
            properties: {
              model: { type: 'string', pattern: '^[\\w.-]+$', maxLength: 128 },
              image: { type: 'string', description: 'base64 PNG/JPEG/BMP' },
              mask: { type: 'string', description: 'base64 PNG, non-zero = repaint' },
              prompt: { type: 'string', maxLength: 1000 },
              negativePrompt: { type: 'string', maxLength: 1000 },
              // The diffusion settings schema's limits: the same the panels, the grid and the pipeline check.
              steps: jsonSchemaOfField(DIFFUSION_STEPS),
              guidanceScale: jsonSchemaOfField(DIFFUSION_GUIDANCE),
              strength: jsonSchemaOfField(DIFFUSION_STRENGTH),
              onlyMasked: { type: 'boolean', description: "DIAG's crop around the mask (padding_mask_crop)" },
              padding: { type: 'integer', minimum: 0, maximum: 4096 },
              seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
            },
          },
          response: { ...errors, 503: errorSchema },
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
  });

  app.addHook('onClose', async () => {
    if (!deps.queue) await queue.close();
  });

  return app;
}

function checkUpload(name: string, b64: string): void {
  const bytes = decodeBase64(name, b64);
  const format = sniffFormat(bytes);
  if (!format)
    throw new DefectLabError(
      'JobSpecError',
      `${name} is not a PNG, JPEG, WebP or BMP image`,
      'upload image files (base64 of the file bytes)',
    );
  const size = readImageSize(bytes, format, name);
  checkLimits(name, size.width, size.height);
  // A cut-short upload is the common failure (a partial read on the client): its end marker is missing.
  const n = bytes.length;
  const ends =
    format === 'png'
      ? n >= 12 && String.fromCharCode(...bytes.subarray(n - 8, n - 4)) === 'IEND'
      : format === 'jpeg'
        ? bytes[n - 2] === 0xff && bytes[n - 1] === 0xd9
        : true;
  if (!ends)
    throw new DefectLabError(
      'JobSpecError',
      `${name} is a truncated ${format.toUpperCase()} (its end marker is missing)`,
      'upload the whole file',
    );
}

/**
 * Per-kind required fields (the schema holds the union) and data confinement, before the job is queued: a bad
 * path is a 403/422 now, not a failed job later.
 */
async function checkJob(spec: JobSpec, o: ServerOptions): Promise<void> {
  const need = (field: keyof JobSpec, fix: string) => {
    if (spec[field] === undefined)
      throw new DefectLabError('JobSpecError', `a ${spec.kind} job needs "${field}"`, fix);
  };
  if (spec.kind === 'generate')
    need('generator', `add "generator": one of ${Object.keys(GENERATE_GENERATORS).join(', ')}`);
  if (spec.kind === 'experiment') need('config', 'add "config": a grid config as for experiment --config');
  if (spec.kind !== 'experiment' && !spec.images?.length && !spec.dataset)
    throw new DefectLabError(
      'JobSpecError',
      `a ${spec.kind} job needs "images" (base64 uploads) or "dataset" (a folder under --datasets)`,
      'add one of them',
    );
  // Uploads are checked now (base64, format, ≤ 64 MP from the header alone) so a bad file is a 422 at once.
  for (const field of ['images', 'masks'] as const)
    (spec[field] ?? []).forEach((b64, i) => b64 !== null && checkUpload(`${field}[${i}]`, b64));
  if (spec.dataset !== undefined) confinedPath(o.datasets, spec.dataset, 'dataset', '--datasets');
  if (spec.model !== undefined) confinedPath(o.models, spec.model, 'model', '--models');
  if (spec.diffusion?.model !== undefined)
    confinedPath(o.models, spec.diffusion.model, 'diffusion.model', '--models');
  if (spec.kind === 'generate' && spec.generator === 'diffusion' && spec.options !== undefined)
    throw new DefectLabError(
      'JobSpecError',
      'a diffusion job takes its settings in "diffusion", not "options"',
      'move them to "diffusion": { model, prompt, negativePrompt, steps, guidanceScale, strength }',
    );
  if (spec.resume !== undefined && spec.kind !== 'experiment')
    throw new DefectLabError(
      'JobSpecError',
      `a ${spec.kind} job takes no "resume"`,
      'send "resume" (finished cells) with an experiment job only',
    );
  if (spec.upload !== undefined) {
    if (spec.kind !== 'experiment')
      throw new DefectLabError(
        'JobSpecError',
        `a ${spec.kind} job takes no "upload"`,
        'send "images" (features, generate) or use an experiment job',
      );
    // Indexes, pools and class balance now, so a bad upload is a 422 before it is queued.
    uploadedData(spec);
  }
  if (spec.config) await parseServedGrid(spec.config, o, 'config', spec.upload !== undefined);
}

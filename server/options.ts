/**
 * The flags and environment of `npm run server` and `npm run worker`, parsed into one checked object. Flags win
 * over environment variables (`DL_HOST`, `DL_SERVER_PORT`, `DL_TOKEN`, `DL_CORS`, `DL_MODELS_DIR`,
 * `DL_DATASETS_DIR`, `DL_DEVICE`, `DL_REQUIRE_CUDA`, `DL_QUEUE`, `DL_CONCURRENCY`, `DL_MAX_QUEUE`,
 * `DL_BODY_LIMIT_MB`, `DL_RATE_LIMIT`): a container sets env, a person types flags.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DefectLabError } from '../src/core/errors.ts';
import { TINY_MODELS_DIR } from './diffusion.ts';

export class ServerConfigError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('ServerConfigError', problem, fix);
  }
}

export type DevicePref = 'cuda' | 'cpu' | 'auto';

export interface ServerOptions {
  host: string;
  port: number;
  /** Bearer token every /api route except health asks for ('' = none, loopback only). */
  token: string;
  /** Origins allowed by CORS (exact `scheme://host[:port]`); empty = no cross-origin access. */
  cors: string[];
  /** Folder of model folders (diffusion exports, backbones); model ids resolve only under it. */
  models: string;
  /** Folder whose sub-folders jobs may name as datasets; '' = jobs may only upload their images. */
  datasets: string;
  device: DevicePref;
  /** Exit at start when CUDA does not open a session (a GPU host that silently runs on CPU is a bug). */
  requireCuda: boolean;
  /** 'memory' (in-process) or a redis:// URL (BullMQ). */
  queue: string;
  /** Jobs run at once by this process (memory queue) or by this worker (redis). */
  concurrency: number;
  /** Jobs waiting before POST /api/jobs answers 429. */
  maxQueue: number;
  bodyLimitBytes: number;
  /** Requests per minute per token (or per client address without a token). */
  rateLimit: number;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const FLAGS: Record<string, { env: string; bool?: boolean }> = {
  host: { env: 'DL_HOST' },
  port: { env: 'DL_SERVER_PORT' },
  token: { env: 'DL_TOKEN' },
  cors: { env: 'DL_CORS' },
  models: { env: 'DL_MODELS_DIR' },
  datasets: { env: 'DL_DATASETS_DIR' },
  device: { env: 'DL_DEVICE' },
  'require-cuda': { env: 'DL_REQUIRE_CUDA', bool: true },
  queue: { env: 'DL_QUEUE' },
  concurrency: { env: 'DL_CONCURRENCY' },
  'max-queue': { env: 'DL_MAX_QUEUE' },
  'body-limit-mb': { env: 'DL_BODY_LIMIT_MB' },
  'rate-limit': { env: 'DL_RATE_LIMIT' },
};

export const USAGE = `usage: npm run server -- [--host 127.0.0.1] [--port 8787] [--token T] [--cors https://a.example,…]
  [--models DIR] [--datasets DIR] [--device cuda|cpu|auto] [--require-cuda] [--queue memory|redis://HOST:PORT]
  [--concurrency N] [--max-queue N] [--body-limit-mb N] [--rate-limit N]
       npm run worker -- --queue redis://HOST:PORT [--models DIR] [--datasets DIR] [--device …] [--concurrency N]
(see docs/server.md)`;

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ServerConfigError(
      `--${name} ${JSON.stringify(v)} is not an integer in [${min}, ${max}]`,
      `pass --${name} N with ${min} ≤ N ≤ ${max}`,
    );
  return n;
}

function folder(name: string, v: string): string {
  const abs = resolve(v);
  if (!existsSync(abs) || !statSync(abs).isDirectory())
    throw new ServerConfigError(`--${name} ${v} is not a folder`, `pass --${name} DIR of an existing folder`);
  return abs;
}

/** Parses argv (after the script name) and env; throws `ServerConfigError` naming the flag and the fix. */
export function parseServerOptions(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): ServerOptions {
  const raw: Record<string, string> = {};
  for (const [flag, { env: key }] of Object.entries(FLAGS)) if (env[key] !== undefined) raw[flag] = env[key];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new ServerConfigError(`unexpected argument ${JSON.stringify(a)}`, USAGE);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    const spec = FLAGS[name];
    if (!spec) throw new ServerConfigError(`unknown flag --${name}`, USAGE);
    if (spec.bool) raw[name] = inline ?? 'true';
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new ServerConfigError(`--${name} needs a value`, USAGE);
      raw[name] = v;
    }
  }
  const device = (raw.device ?? 'auto') as DevicePref;
  if (!['cuda', 'cpu', 'auto'].includes(device))
    throw new ServerConfigError(
      `--device ${JSON.stringify(device)} is unknown`,
      'pass --device cuda, cpu or auto',
    );
  const queue = raw.queue ?? 'memory';
  if (queue !== 'memory' && !/^rediss?:\/\/[^\s/]+(\/\d+)?$/.test(queue))
    throw new ServerConfigError(
      `--queue ${JSON.stringify(queue)} is neither "memory" nor a redis:// URL`,
      'pass --queue memory (in-process, the default) or --queue redis://HOST:PORT',
    );
  const cors = (raw.cors ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of cors)
    if (!/^https?:\/\/[^/\s]+$/.test(o))
      throw new ServerConfigError(
        `--cors origin ${JSON.stringify(o)} is not scheme://host[:port]`,
        'list exact origins, comma-separated, e.g. --cors https://lab.example,http://localhost:5173',
      );
  const opts: ServerOptions = {
    host: raw.host ?? '127.0.0.1',
    port: int('port', raw.port ?? '8787', 0, 65535),
    token: raw.token ?? '',
    cors,
    models: folder('models', raw.models ?? TINY_MODELS_DIR),
    datasets: raw.datasets ? folder('datasets', raw.datasets) : '',
    device,
    requireCuda: raw['require-cuda'] === 'true' || raw['require-cuda'] === '1',
    queue,
    concurrency: int('concurrency', raw.concurrency ?? '1', 0, 64),
    maxQueue: int('max-queue', raw['max-queue'] ?? '100', 1, 100_000),
    bodyLimitBytes: int('body-limit-mb', raw['body-limit-mb'] ?? '64', 1, 4096) * 1024 * 1024,
    rateLimit: int('rate-limit', raw['rate-limit'] ?? '600', 1, 1_000_000),
  };
  checkExposure(opts);
  return opts;
}

/** Off loopback anyone on the network can reach the server: a token is required, and must not be guessable. */
export function checkExposure(o: Pick<ServerOptions, 'host' | 'token'>): void {
  if (isLoopback(o.host)) return;
  if (!o.token)
    throw new ServerConfigError(
      `--host ${o.host} is not loopback and no --token is set: anyone on the network could run jobs`,
      'pass --token $(openssl rand -hex 32) (or DL_TOKEN), or listen on --host 127.0.0.1',
    );
  if (o.token.length < 16)
    throw new ServerConfigError(
      `--token is ${o.token.length} characters; off loopback it must be at least 16`,
      'use a random token, e.g. --token $(openssl rand -hex 32)',
    );
}

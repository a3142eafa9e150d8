/**
 * `npm run server -- [flags]`: the DefectLab HTTP API (flags and env in `options.ts`, docs in docs/server.md).
 * Defaults: 127.0.0.1:8787, in-process job queue, models from models/tiny, no datasets root (uploads only).
 * Off loopback it refuses to start without --token. With --queue redis://… jobs go to BullMQ and
 * `npm run worker` processes run them.
 */
import './register.ts';
import { errorInfo } from '../src/core/errors.ts';
import { buildServer } from './app.ts';
import { diffusionHandler, localModels, nodeDiffusionEngine } from './diffusion.ts';
import type { JobQueue } from './jobs.ts';
import { checkCuda } from './main-checks.ts';
import { parseServerOptions } from './options.ts';

function fail(e: unknown, code: number): never {
  const info = errorInfo(e);
  console.error(`${info.message}${info.fix && !info.message.includes('fix:') ? ` — fix: ${info.fix}` : ''}`);
  process.exit(code);
}

async function start(): Promise<void> {
  let o;
  let cuda = '';
  try {
    o = parseServerOptions(process.argv.slice(2));
    cuda = await checkCuda(o);
  } catch (e) {
    fail(e, 2);
  }
  let queue: JobQueue | undefined;
  if (o.queue !== 'memory') {
    const { RedisQueue } = await import('./queue-redis.ts');
    const q = new RedisQueue(o.queue, { maxQueue: o.maxQueue });
    await q
      .ready()
      .catch((e: unknown) =>
        fail(
          new Error(
            `could not reach ${o.queue}: ${errorInfo(e).message} — fix: start Redis (redis-server) or pass the right --queue URL`,
          ),
          1,
        ),
      );
    queue = q;
  }
  const nodeDevice = o.device === 'cpu' ? 'cpu' : 'cuda';
  const app = buildServer({
    options: o,
    queue,
    diffusion: diffusionHandler(nodeDiffusionEngine(), localModels(o.models, nodeDevice)),
  });
  try {
    const addr = await app.listen({ host: o.host, port: o.port });
    console.log(
      `DefectLab API ${addr} (OpenAPI at ${addr}/docs; queue ${o.queue === 'memory' ? 'in-process' : o.queue.replace(/\/\/[^@]*@/, '//')}${cuda ? `; device ${cuda}` : ''}${o.token ? '; bearer token required' : ''})`,
    );
  } catch (e) {
    fail(
      new Error(
        `could not listen on ${o.host}:${o.port}: ${errorInfo(e).message} — fix: pass --port with a free port`,
      ),
      1,
    );
  }
  const stop = () =>
    void app
      .close()
      .then(() => queue?.close())
      .then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void start();

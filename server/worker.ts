/**
 * `npm run worker -- --queue redis://HOST:PORT [--models DIR] [--datasets DIR] [--device cuda|cpu|auto]
 * [--require-cuda] [--concurrency N]`: takes jobs from the server's BullMQ queue and runs them here (one worker
 * per GPU, on any machine that reaches the Redis). The dataset and model roots must hold the same folders as the
 * server's (a shared mount), since jobs name data relative to them. Env: `DL_LOCK_MS` (job lock, default 30 s:
 * a killed worker's job is retried after about that long), `DL_STALLED_MS` (stalled-job check interval).
 */
import './register.ts';
import { errorInfo } from '../src/core/errors.ts';
import { checkCuda } from './main-checks.ts';
import { USAGE, parseServerOptions } from './options.ts';

async function start(): Promise<void> {
  let o;
  try {
    o = parseServerOptions(process.argv.slice(2));
    if (o.queue === 'memory')
      throw Object.assign(new Error('ServerConfigError: a worker needs --queue redis://HOST:PORT'), {
        fix: USAGE,
      });
    await checkCuda(o);
  } catch (e) {
    const info = errorInfo(e);
    console.error(
      `${info.message}${info.fix && !info.message.includes('fix:') ? ` — fix: ${info.fix}` : ''}`,
    );
    process.exit(2);
  }
  const { startRedisWorker } = await import('./queue-redis.ts');
  const w = await startRedisWorker({
    url: o.queue,
    concurrency: Math.max(1, o.concurrency),
    datasets: o.datasets,
    models: o.models,
    device: o.device,
    lockMs: process.env.DL_LOCK_MS ? Number(process.env.DL_LOCK_MS) : undefined,
    stalledMs: process.env.DL_STALLED_MS ? Number(process.env.DL_STALLED_MS) : undefined,
    log: (l) => console.log(l),
  });
  console.log(
    `DefectLab ${w.runner} ready on ${o.queue.replace(/\/\/[^@]*@/, '//')} (concurrency ${o.concurrency || 1})`,
  );
  const stop = () => {
    console.log('finishing the running jobs, then exiting');
    void w.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void start();

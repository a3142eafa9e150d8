/**
 * Shared by the server tests: a real listening server on 127.0.0.1, a dataset folder, SSE reading, Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { encodePng } from '../../src/runtime/decode.ts';

export const TINY_MODELS = join(import.meta.dirname, '../../models/tiny');

/** Listens on 127.0.0.1 on a free port; returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 });
}

export function tile(seed: string, w = 64, h = 64, channels: 1 | 3 = 1): RasterImage {
  const rng = new Rng(seed);
  const img = createRaster(w, h, channels);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 90 + rng.int(0, 60);
  return img;
}

export const b64 = (img: RasterImage) => Buffer.from(encodePng(img)).toString('base64');

/** A manifest-layout dataset (10 train normals, 4 few-shot defects, 6 + 6 test) in `<root>/<name>`. */
export function datasetFolder(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'img'), { recursive: true });
  const rng = new Rng(name);
  const items: Record<string, unknown>[] = [];
  const add = (id: string, split: string, defect: boolean) => {
    const img = createRaster(48, 48, 1);
    const mask = createRaster(48, 48, 1);
    for (let i = 0; i < img.data.length; i++) img.data[i] = 100 + rng.int(0, 40);
    if (defect) {
      const x0 = rng.int(4, 36);
      const y0 = rng.int(4, 30);
      for (let y = y0; y < y0 + 14; y++)
        for (let x = x0; x < x0 + 4; x++) {
          img.data[y * 48 + x] = 15;
          mask.data[y * 48 + x] = 255;
        }
    }
    writeFileSync(join(dir, 'img', `${id}.png`), encodePng(img));
    const item: Record<string, unknown> = {
      file: `img/${id}.png`,
      label: defect ? 'defect' : 'normal',
      split,
    };
    if (defect) {
      writeFileSync(join(dir, 'img', `${id}_mask.png`), encodePng(mask));
      Object.assign(item, { mask: `img/${id}_mask.png`, defect_class: 'scratch' });
    }
    items.push(item);
  };
  for (let i = 0; i < 10; i++) add(`n${i}`, 'train', false);
  for (let i = 0; i < 4; i++) add(`f${i}`, 'fewshot', true);
  for (let i = 0; i < 6; i++) add(`t${i}`, 'test', false);
  for (let i = 0; i < 6; i++) add(`d${i}`, 'test', true);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ dataset: name, items }));
  return dir;
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads a job's event stream until a terminal `state` event (or the stream ends); `onEvent` sees each. */
export async function readEvents(
  url: string,
  headers: Record<string, string> = {},
  onEvent?: (e: SseEvent) => void | Promise<void>,
): Promise<SseEvent[]> {
  const r = await fetch(url, { headers });
  if (!r.ok || !r.body) throw new Error(`events: HTTP ${r.status} ${await r.text()}`);
  const out: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (block.startsWith(':')) continue;
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as unknown;
      const e = { event, data };
      out.push(e);
      await onEvent?.(e);
    }
  }
  return out;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Debian's redis-server on 127.0.0.1 on a free port, no persistence; `stop()` ends it. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = tempRoot('dl-redis-');
  const p: ChildProcess = spawn(
    '/usr/bin/redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const t = setTimeout(() => reject(new Error(`redis-server did not start: ${log}`)), 10_000);
    p.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      if (/Ready to accept connections/i.test(log)) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${log}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (p.exitCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      }),
  };
}

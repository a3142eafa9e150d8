/**
 * The server as a compute backend, through a real listening server on 127.0.0.1: jobs (generate, features,
 * experiment) with server-sent progress, zipped results and cancel; data confinement; security (token, Host,
 * CORS, 413, 64 MP, 429 for a full queue and for the rate limit); flags.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { MemoryQueue, type JobStatus } from '../../server/jobs.ts';
import { parseServerOptions } from '../../server/options.ts';
import { loadNodeExtractor } from '../../server/features.ts';
import { localModels, nodeDiffusionEngine } from '../../server/diffusion.ts';
import { createRaster } from '../../src/core/image.ts';
import { parseResultFile, renderResult } from '../../src/core/experiments/index.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { createSynthEngine } from '../../workers/synth.engine.ts';
import { TINY_MODELS, b64, datasetFolder, listen, readEvents, tempRoot, tile } from './server-fixtures.ts';

const json = { 'content-type': 'application/json' };

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, unknown> };
}

/** No stack frame, no absolute path of this machine in a client-facing string. */
function expectClean(body: Record<string, unknown>, ...roots: string[]) {
  expect(Object.keys(body).sort()).toEqual(['code', 'fix', 'message']);
  const text = `${String(body.message)} ${String(body.fix)}`;
  expect(text).not.toMatch(/\n\s+at /);
  for (const r of [process.cwd(), ...roots]) expect(text).not.toContain(r);
  expect(text).not.toMatch(/\/(tmp|home|root|work|etc)\//);
}

describe('jobs through a listening server', () => {
  const datasets = tempRoot('dl-datasets-');
  const outside = tempRoot('dl-outside-');
  let base = '';
  const app = buildServer({ options: { datasets, models: TINY_MODELS, device: 'cpu' } });

  beforeAll(async () => {
    datasetFolder(datasets, 'tiles');
    datasetFolder(outside, 'secret');
    symlinkSync(join(outside, 'secret'), join(datasets, 'linked-out'));
    base = await listen(app);
  });
  afterAll(() => app.close());

  it('generate: progress events in the workers’ shape, a zip with manifest.json, MemSeg pixels equal to the synth worker’s', async () => {
    const images = [tile('a'), tile('b')];
    const r = await post(base, '/api/jobs', {
      kind: 'generate',
      generator: 'memseg',
      images: images.map(b64),
      n: 4,
      seed: 7,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const id = String(r.body.id);
    const events = await readEvents(`${base}/api/jobs/${id}/events`);
    const progress = events
      .filter((e) => e.event === 'progress')
      .map((e) => e.data as Record<string, unknown>);
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) {
      expect(typeof p.stage).toBe('string');
      expect(p.total).toBe(4);
      expect(p.done).toBeGreaterThanOrEqual(0);
    }
    const last = events.at(-1)!;
    expect(last.event).toBe('state');
    expect((last.data as JobStatus).state).toBe('done');
    const status = (await (await fetch(`${base}/api/jobs/${id}`)).json()) as JobStatus;
    expect(status).toMatchObject({ id, kind: 'generate', state: 'done', attempts: 1 });

    const zipR = await fetch(`${base}/api/jobs/${id}/results`);
    expect(zipR.headers.get('content-type')).toBe('application/zip');
    const files = unzipSync(new Uint8Array(await zipR.arrayBuffer()));
    const manifest = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as {
      job: string;
      backend: string;
      request: Record<string, unknown>;
      samples: { file: string; mask: string; seed: number; source: string }[];
    };
    expect(manifest.job).toBe(id);
    expect(manifest.backend).toBe('server');
    expect(manifest.request).toMatchObject({
      kind: 'generate',
      generator: 'memseg',
      n: 4,
      seed: 7,
      images: '2 uploaded',
    });
    expect(manifest.samples.length).toBe(4);

    // The browser's synth worker engine, in-thread, on the same images and seed: identical pixels and masks.
    const worker = await createSynthEngine().generateBatch({ generator: 'memseg', images, n: 4, seed: 7 });
    for (const [i, s] of manifest.samples.entries()) {
      const img = (await decodeImage(files[s.file], s.file)).raster;
      const mask = (await decodeImage(files[s.mask], s.mask)).raster;
      expect(s.seed).toBe(worker.samples[i].seed);
      expect(Buffer.compare(Buffer.from(img.data), Buffer.from(worker.samples[i].image.data))).toBe(0);
      expect(Buffer.compare(Buffer.from(mask.data), Buffer.from(worker.samples[i].mask.data))).toBe(0);
    }
  });

  it('features: the pooled features of a dataset folder under --datasets, equal to the Node backbone’s', async () => {
    const r = await post(base, '/api/jobs', {
      kind: 'features',
      dataset: 'tiles',
      model: 'tiny-resnet/model.onnx',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const events = await readEvents(`${base}/api/jobs/${String(r.body.id)}/events`);
    expect((events.at(-1)!.data as JobStatus).state).toBe('done');
    const files = unzipSync(
      new Uint8Array(await (await fetch(`${base}/api/jobs/${String(r.body.id)}/results`)).arrayBuffer()),
    );
    const f = JSON.parse(new TextDecoder().decode(files['features.json'])) as {
      dim: number;
      ids: string[];
      pooled: number[][];
    };
    expect(f.ids.length).toBe(10);
    expect(f.dim).toBeGreaterThan(0);
    const raw = new Float32Array(files['features.f32'].slice().buffer);
    expect(raw.length).toBe(10 * f.dim);
    // Reference: the extractor loaded directly on the first train normal (float32, same session: ≤ 1e-6).
    const ex = await loadNodeExtractor(join(TINY_MODELS, 'tiny-resnet/model.onnx'), 'ref', 'cpu');
    const first = (
      await decodeImage(
        new Uint8Array(
          await import('node:fs').then((fs) => fs.readFileSync(join(datasets, 'tiles', f.ids[0]))),
        ),
        'x',
      )
    ).raster;
    const [ref] = await ex.extract([first]);
    await ex.release();
    for (let k = 0; k < f.dim; k++) expect(Math.abs(f.pooled[0][k] - ref[k])).toBeLessThanOrEqual(1e-6);
    expect(Array.from(raw.slice(0, f.dim))).toEqual(f.pooled[0].map((v) => Math.fround(v)));
  });

  it(
    'experiment: a grid config over a dataset under --datasets gives result.json and its table.md',
    { timeout: 120_000 },
    async () => {
      const r = await post(base, '/api/jobs', {
        kind: 'experiment',
        config: {
          data: 'tiles',
          backbone: 'tiny-resnet/model.onnx',
          generators: ['memseg'],
          nAug: [4],
          seeds: [0],
          heads: ['bce'],
          epochs: 2,
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const events = await readEvents(`${base}/api/jobs/${String(r.body.id)}/events`);
      expect((events.at(-1)!.data as JobStatus).state, JSON.stringify(events.at(-1))).toBe('done');
      expect(events.some((e) => e.event === 'progress')).toBe(true);
      const files = unzipSync(
        new Uint8Array(await (await fetch(`${base}/api/jobs/${String(r.body.id)}/results`)).arrayBuffer()),
      );
      const text = new TextDecoder().decode(files['result.json']);
      const result = parseResultFile(text, 'result.json');
      expect(result.cells.some((c) => c.config.generator === 'memseg' && c.status === 'done')).toBe(true);
      expect(new TextDecoder().decode(files['table.md'])).toBe(`${renderResult(result)}\n`);
      expect(files['manifest.json']).toBeDefined();
    },
  );

  it(
    'generate with diffusion: tiny SD-inpaint latents equal the diffusion engine’s in-thread run; pixels outside the mask kept',
    { timeout: 120_000 },
    async () => {
      const image = tile('diff', 64, 64, 3);
      const mask = createRaster(64, 64, 1);
      for (let y = 16; y < 48; y++) for (let x = 20; x < 44; x++) mask.data[y * 64 + x] = 255;
      const d = { model: 'tiny-sd-inpaint', prompt: 'a scratch', steps: 3, guidanceScale: 2, strength: 1 };
      const r = await post(base, '/api/jobs', {
        kind: 'generate',
        generator: 'diffusion',
        images: [b64(image)],
        masks: [b64(mask)],
        n: 1,
        seed: 5,
        diffusion: d,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const events = await readEvents(`${base}/api/jobs/${String(r.body.id)}/events`);
      expect((events.at(-1)!.data as JobStatus).state, JSON.stringify(events.at(-1))).toBe('done');
      const files = unzipSync(
        new Uint8Array(await (await fetch(`${base}/api/jobs/${String(r.body.id)}/results`)).arrayBuffer()),
      );
      const m = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as {
        samples: { file: string; latents: string; latentDims: number[]; seed: number }[];
      };
      const s = m.samples[0];
      const latents = new Float32Array(files[s.latents].slice().buffer);
      expect(latents.length).toBe(s.latentDims.reduce((a, b) => a * b, 1));
      // Reference: the diffusion engine (the one the browser's diffusion worker runs; tests/e2e/diffusion-parity
      // holds it to 1e-3 of onnxruntime-web) called in-thread on onnxruntime-node with the same request.
      const engine = nodeDiffusionEngine();
      await engine.load(await localModels(TINY_MODELS, 'cpu')('tiny-sd-inpaint'));
      const ref = await engine.generate({
        image,
        mask,
        prompt: d.prompt,
        steps: d.steps,
        guidanceScale: d.guidanceScale,
        strength: d.strength,
        seed: s.seed,
      });
      let max = 0;
      for (let i = 0; i < latents.length; i++) max = Math.max(max, Math.abs(latents[i] - ref.latents[i]));
      expect(max).toBeLessThanOrEqual(1e-3);
      expect(latents.some((v) => v !== 0)).toBe(true);
      const out = (await decodeImage(files[s.file], s.file)).raster;
      for (let i = 0; i < 64 * 64; i++)
        if (mask.data[i] === 0 && ref.mask.data[i] === 0)
          for (let c = 0; c < 3; c++) expect(out.data[i * 3 + c]).toBe(image.data[i * 3 + c]);
    },
  );

  it('cancel reaches the running batch: state cancelled, fewer samples than asked, no results (409)', async () => {
    const r = await post(base, '/api/jobs', {
      kind: 'generate',
      generator: 'memseg',
      images: [b64(tile('c', 160, 160))],
      n: 5000,
      seed: 1,
    });
    const id = String(r.body.id);
    let cancelled = false;
    const events = await readEvents(`${base}/api/jobs/${id}/events`, {}, async (e) => {
      if (e.event === 'progress' && !cancelled) {
        cancelled = true;
        const d = await fetch(`${base}/api/jobs/${id}`, { method: 'DELETE' });
        expect(d.status).toBe(200);
      }
    });
    const last = events.at(-1)!.data as JobStatus;
    expect(last.state).toBe('cancelled');
    expect(last.error?.code).toBe('CancelledError');
    const progress = events.filter((e) => e.event === 'progress').at(-1)!.data as {
      done: number;
      total: number;
    };
    expect(progress.done).toBeLessThan(5000);
    const res = await fetch(`${base}/api/jobs/${id}/results`);
    expect(res.status).toBe(409);
    expectClean((await res.json()) as Record<string, unknown>);
  });

  it(
    'cancel reaches the running experiment: the grid stops between its steps and the job is cancelled',
    { timeout: 120_000 },
    async () => {
      const r = await post(base, '/api/jobs', {
        kind: 'experiment',
        config: {
          data: 'tiles',
          backbone: 'tiny-resnet/model.onnx',
          generators: ['memseg', 'random-walk'],
          nAug: [4, 8],
          seeds: [0, 1, 2],
          heads: ['bce'],
          epochs: 2,
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      const id = String(r.body.id);
      let sent = false;
      const events = await readEvents(`${base}/api/jobs/${id}/events`, {}, async (e) => {
        if (e.event === 'progress' && !sent) {
          sent = true;
          expect((await fetch(`${base}/api/jobs/${id}`, { method: 'DELETE' })).status).toBe(200);
        }
      });
      const last = events.at(-1)!.data as JobStatus;
      expect(last.state).toBe('cancelled');
      expect(last.error?.code).toBe('CancelledError');
      const progress = events.filter((e) => e.event === 'progress').at(-1)!.data as {
        done: number;
        total: number;
      };
      expect(progress.done).toBeLessThan(progress.total);
    },
  );

  it('confinement: absolute paths and .. are 422, a symlink out is 403, each naming the rule without server paths', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ kind: 'features', dataset: '/etc' }, 422, /absolute paths are refused/],
      [{ kind: 'features', dataset: '/root' }, 422, /absolute paths are refused/],
      [{ kind: 'features', dataset: '../etc' }, 422, /"\.\." segments are refused/],
      [{ kind: 'features', dataset: 'tiles/../../x' }, 422, /"\.\." segments are refused/],
      [{ kind: 'features', dataset: 'linked-out' }, 403, /outside the --datasets root/],
      [{ kind: 'features', dataset: 'tiles', model: '/etc/passwd' }, 422, /absolute paths/],
      [{ kind: 'features', dataset: 'tiles', model: '../../package.json' }, 422, /\.\./],
      [
        { kind: 'generate', generator: 'diffusion', dataset: 'tiles', diffusion: { model: '../x' } },
        422,
        /\.\./,
      ],
      [{ kind: 'features', dataset: 'nope' }, 404, /does not exist/],
    ];
    for (const [body, status, rule] of cases) {
      const r = await post(base, '/api/jobs', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.code).toBe('ConfinementError');
      expect(String(r.body.message)).toMatch(rule);
      expectClean(r.body, datasets, outside, TINY_MODELS);
    }
    // The reported bug: a grid naming /etc or /root is refused before anything is read (no 500, no path).
    for (const data of ['/etc', '/root', '../../..']) {
      const g = await post(base, '/api/experiments/grid', {
        data,
        generators: ['memseg'],
        seeds: [0],
        heads: ['bce'],
      });
      expect(g.status, data).toBe(422);
      expectClean(g.body, datasets);
      const j = await post(base, '/api/jobs', {
        kind: 'experiment',
        config: { data, generators: ['memseg'], seeds: [0], heads: ['bce'] },
      });
      expect(j.status, data).toBe(422);
    }
    const linked = await post(base, '/api/experiments/grid', {
      data: 'linked-out',
      generators: ['memseg'],
      seeds: [0],
      heads: ['bce'],
    });
    expect(linked.status).toBe(403);
    expect(String(linked.body.message)).not.toContain('secret');
  });

  it('images over 64 MP are 422 from the header alone; a missing job is 404', async () => {
    // A PNG header claiming 9000 × 8000 (72 MP): refused without decoding.
    const png = Buffer.from(b64(tile('d', 8, 8)), 'base64');
    png.writeUInt32BE(9000, 16);
    png.writeUInt32BE(8000, 20);
    const r = await post(base, '/api/jobs', {
      kind: 'generate',
      generator: 'blur',
      images: [png.toString('base64')],
    });
    expect(r.status).toBe(422);
    expect(String(r.body.message)).toMatch(/72\.0 MP.*64 MP/);
    const s = await post(base, '/api/synth/generate', { image: png.toString('base64'), generator: 'memseg' });
    expect(s.status).toBe(422);
    const missing = await fetch(`${base}/api/jobs/00000000-0000-0000-0000-000000000000`);
    expect(missing.status).toBe(404);
    expectClean((await missing.json()) as Record<string, unknown>);
  });

  it('OpenAPI at /docs lists the job routes; /api/health has the version and the queue', async () => {
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as {
      info: { version: string };
      paths: Record<string, unknown>;
    };
    for (const p of [
      '/api/jobs',
      '/api/jobs/{id}',
      '/api/jobs/{id}/events',
      '/api/jobs/{id}/results',
      '/api/capabilities',
    ])
      expect(Object.keys(doc.paths)).toContain(p);
    const pkg = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync('package.json', 'utf8'))) as {
      version: string;
    };
    expect(doc.info.version).toBe(pkg.version);
    const ui = await fetch(`${base}/docs/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
    // Plain http on loopback: the docs page must not ask the browser to upgrade its requests to https.
    expect(ui.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(ui.headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
    const h = (await (await fetch(`${base}/api/health`)).json()) as Record<string, unknown>;
    expect(h).toMatchObject({ ok: true, version: pkg.version, queue: { mode: 'memory' } });
    const caps = (await (await fetch(`${base}/api/capabilities`)).json()) as Record<string, unknown>;
    // The symlink out of the root is not offered (and would be refused).
    expect(caps.datasets).toEqual(['tiles']);
    expect(caps.models).toContain('tiny-resnet');
    expect((caps.ort as { providers: string[] }).providers).toContain('cpu');
    expect('gpu' in caps).toBe(true);
  });
});

describe('security', () => {
  it('refuses to start off loopback without a (long enough) token', () => {
    expect(() => parseServerOptions(['--host', '0.0.0.0'], {})).toThrow(
      /not loopback and no --token.*fix: pass --token/,
    );
    expect(() => parseServerOptions(['--host', '0.0.0.0', '--token', 'short'], {})).toThrow(/at least 16/);
    expect(() => buildServer({ options: { host: '10.0.0.5' } })).toThrow(/ServerConfigError/);
    const o = parseServerOptions(
      [
        '--host',
        '0.0.0.0',
        '--token',
        'x'.repeat(32),
        '--queue',
        'redis://10.0.0.2:6379',
        '--concurrency',
        '2',
      ],
      {},
    );
    expect(o).toMatchObject({ host: '0.0.0.0', queue: 'redis://10.0.0.2:6379', concurrency: 2 });
    expect(() => parseServerOptions(['--queue', 'kafka://x'], {})).toThrow(/--queue/);
    expect(() => parseServerOptions(['--device', 'tpu'], {})).toThrow(/--device/);
    expect(() => parseServerOptions(['--port', '99999'], {})).toThrow(/--port/);
    expect(() => parseServerOptions(['--nope'], {})).toThrow(/unknown flag --nope/);
    expect(() => parseServerOptions(['--cors', 'lab.example'], {})).toThrow(/scheme:\/\/host/);
    // Env as a container sets it; flags win.
    expect(
      parseServerOptions(['--port', '9000'], { DL_SERVER_PORT: '8000', DL_MAX_QUEUE: '7' }),
    ).toMatchObject({ port: 9000, maxQueue: 7 });
  });

  it('bearer token on every route but health and docs; a wrong one is 401 like a missing one', async () => {
    const token = 't'.repeat(40);
    const app = buildServer({ options: { token } });
    const base = await listen(app);
    try {
      expect((await fetch(`${base}/api/health`)).status).toBe(200);
      const none = await fetch(`${base}/api/capabilities`);
      expect(none.status).toBe(401);
      expectClean((await none.json()) as Record<string, unknown>);
      expect(
        (await fetch(`${base}/api/capabilities`, { headers: { authorization: `Bearer ${token}x` } })).status,
      ).toBe(401);
      expect((await fetch(`${base}/api/jobs/x`, { headers: { authorization: 'Basic abc' } })).status).toBe(
        401,
      );
      expect(
        (await fetch(`${base}/api/capabilities`, { headers: { authorization: `Bearer ${token}` } })).status,
      ).toBe(200);
      expect((await fetch(`${base}/docs/json`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('Host header checked on loopback (DNS rebinding); CORS only for --cors origins; helmet headers', async () => {
    const token = 'c'.repeat(32);
    const app = buildServer({ options: { cors: ['http://lab.example:5173'], token } });
    const base = await listen(app);
    const port = new URL(base).port;
    try {
      const { request } = await import('node:http');
      const get = (headers: Record<string, string>, method = 'GET') =>
        new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
          const q = request(
            {
              host: '127.0.0.1',
              port,
              path: '/api/capabilities',
              method,
              headers: { authorization: `Bearer ${token}`, ...headers },
            },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
            },
          );
          q.on('error', reject);
          q.end();
        });
      const rebound = await get({ host: `attacker.example:${port}` });
      expect(rebound.status).toBe(403);
      expect(JSON.parse(rebound.body).code).toBe('HostNotAllowedError');
      expect((await get({ host: `localhost:${port}` })).status).toBe(200);
      const pre = await get(
        {
          host: `127.0.0.1:${port}`,
          origin: 'http://lab.example:5173',
          'access-control-request-method': 'POST',
        },
        'OPTIONS',
      );
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe('http://lab.example:5173');
      // A 401 to an allowed origin is readable by its page (else the browser reports "Failed to fetch").
      const denied = await get({
        host: `127.0.0.1:${port}`,
        origin: 'http://lab.example:5173',
        authorization: 'Bearer no',
      });
      expect(denied.status).toBe(401);
      expect(denied.headers['access-control-allow-origin']).toBe('http://lab.example:5173');
      const other = await get({ host: `127.0.0.1:${port}`, origin: 'http://evil.example' });
      expect(other.status).toBe(403);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      const ok = await get({ host: `127.0.0.1:${port}` });
      expect(ok.headers['x-content-type-options']).toBe('nosniff');
      expect(ok.headers['content-security-policy']).toMatch(/default-src 'self'/);
    } finally {
      await app.close();
    }
  });

  it('413 past the body limit; 429 with Retry-After for a full queue and past the rate limit', async () => {
    // A queue whose jobs run until cancelled, so it fills.
    const queue = new MemoryQueue(
      { concurrency: 1, maxQueue: 1, datasets: '', models: TINY_MODELS, device: 'cpu', runner: 'test' },
      (_id, _spec, _o, signal) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(new Error('stopped'))),
        ),
    );
    const app = buildServer({ options: { bodyLimitBytes: 1024 * 1024, rateLimit: 8 }, queue });
    const base = await listen(app);
    try {
      const big = await post(base, '/api/jobs', {
        kind: 'generate',
        generator: 'memseg',
        images: ['A'.repeat(2 * 1024 * 1024)],
      });
      expect(big.status).toBe(413);
      expect(big.body.code).toBe('BodyTooLargeError');
      const job = { kind: 'generate', generator: 'memseg', images: [b64(tile('q', 16, 16))] };
      expect((await post(base, '/api/jobs', job)).status).toBe(202);
      await new Promise((r) => setTimeout(r, 20));
      expect((await post(base, '/api/jobs', job)).status).toBe(202);
      const full = await post(base, '/api/jobs', job);
      expect(full.status).toBe(429);
      expect(full.body.code).toBe('QueueFullError');
      expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
      let limited: Awaited<ReturnType<typeof post>> | null = null;
      for (let i = 0; i < 10 && !limited; i++) {
        const r = await post(base, '/api/metrics', { scores: [0.1, 0.9], labels: [0, 1] });
        if (r.status === 429) limited = r;
      }
      expect(limited?.body.code).toBe('RateLimitError');
      expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
      expectClean(limited!.body);
      // Health is exempt, so a monitor keeps working while a client is throttled.
      expect((await fetch(`${base}/api/health`)).status).toBe(200);
    } finally {
      await queue.close();
      await app.close();
    }
  });
});

/**
 * 1,000 generated malformed requests (fixed seed) against a real listening server on 127.0.0.1: wrong types,
 * missing fields, huge numbers, bad base64, truncated PNGs, wrong content types, traversal paths, oversized
 * bodies, broken JSON, bad ids. Every answer is a 4xx with `{ code, message, fix }`, none names a server path or
 * carries a stack, and /api/health still answers afterwards.
 */
import { symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { diffusionHandler, localModels, nodeDiffusionEngine } from '../../server/diffusion.ts';
import { Rng } from '../../src/core/rng.ts';
import { TINY_MODELS, b64, datasetFolder, listen, tempRoot, tile } from './server-fixtures.ts';

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  what: string;
}

const BODY_LIMIT = 256 * 1024;

const TRAVERSALS = [
  '/etc',
  '/root',
  '../etc',
  '../../../../etc/passwd',
  'tiles/../../x',
  '..',
  '~/x',
  'C:\\Windows',
  '\\\\server\\share',
  'tiles\u0000.png',
  'a'.repeat(600),
  'nope/../../..',
  'linked-out',
];

function send(base: string, r: Req): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const q = request(
      {
        host: u.hostname,
        port: u.port,
        method: r.method,
        path: r.path,
        headers: { ...r.headers, ...(r.body ? { 'content-length': String(r.body.length) } : {}) },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    // The server may answer 413 and close before the whole body is written.
    q.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'EPIPE' || e.code === 'ECONNRESET' ? resolve({ status: 413, body: '' }) : reject(e),
    );
    if (r.body) q.write(r.body);
    q.end();
  });
}

/** The malformed-request generator: each case is malformed by construction (never a valid request). */
function cases(seed: string, n: number): Req[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)];
  const png = Buffer.from(b64(tile('fuzz', 24, 24)), 'base64');
  const truncated = () => png.subarray(0, rng.int(8, png.length - 13)).toString('base64');
  const badB64 = () => pick(['@@@@', 'not base64!', '====', 'A', '%%%%AAAA', '\u00e9\u00e9\u00e9\u00e9']);
  const huge = () => pick([1e308, -1e308, 2 ** 53 + 1, 1e21, -1, 0, 1.5, -2147483649, 4294967296]);
  const wrongType = () => pick<unknown>([null, true, 'x', [], {}, ['a', 'b'], -0.5, '1', [null]]);
  const traversal = () => pick(TRAVERSALS);
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const J = { 'content-type': 'application/json' };
  const makers: (() => Omit<Req, 'what'> & { what?: string })[] = [
    // POST /api/jobs
    () => ({ method: 'POST', path: '/api/jobs', headers: J, body: json({}) }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: pick(['train', '', 'GENERATE', 'x'.repeat(50)]) }),
    }),
    () => ({ method: 'POST', path: '/api/jobs', headers: J, body: json({ kind: wrongType() }) }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', images: [png.toString('base64')] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'generate',
        generator: pick(['gan', 'memseg ', 'diffusion2']),
        images: [png.toString('base64')],
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'generate',
        generator: 'memseg',
        images: [png.toString('base64')],
        n: huge() === 0 ? 0 : pick([0, 10001, 1e308, -5, 2.5]),
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'generate',
        generator: 'memseg',
        images: [png.toString('base64')],
        seed: pick([-1, 1.5, 4294967296, 1e308]),
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', generator: 'memseg', images: [badB64()] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', generator: 'memseg', images: [truncated()] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', generator: 'memseg', images: wrongType() }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', generator: 'memseg' }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', generator: 'memseg', dataset: traversal() }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'features', dataset: traversal() }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'features', dataset: 'tiles', model: traversal() }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'generate',
        generator: 'diffusion',
        dataset: 'tiles',
        diffusion: { model: traversal() },
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'generate',
        generator: 'diffusion',
        dataset: 'tiles',
        diffusion: { steps: huge() > 200 ? huge() : 1e9 },
      }),
    }),
    () => ({ method: 'POST', path: '/api/jobs', headers: J, body: json({ kind: 'experiment' }) }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'experiment',
        config: { data: traversal(), generators: ['memseg'], seeds: [0], heads: ['bce'] },
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'experiment',
        config: { data: 'tiles', generators: wrongType(), seeds: [0], heads: ['bce'] },
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'experiment',
        config: {
          data: 'tiles',
          generators: ['memseg'],
          seeds: [huge() > 1e20 ? 1e300 : 0.5],
          heads: ['bce'],
        },
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({
        kind: 'experiment',
        config: { data: 'tiles', backbone: traversal(), generators: ['memseg'], seeds: [0], heads: ['bce'] },
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: json({ kind: 'generate', generator: 'memseg', images: [png.toString('base64')], extra: 1 }),
    }),
    // Wrong content types and broken bodies.
    () => ({
      method: 'POST',
      path: pick(['/api/jobs', '/api/metrics', '/api/synth/generate']),
      headers: {
        'content-type': pick([
          'text/plain',
          'application/xml',
          'multipart/form-data; boundary=x',
          'image/png',
          'application/x-www-form-urlencoded',
        ]),
      },
      body: Buffer.from('kind=generate'),
    }),
    () => ({
      method: 'POST',
      path: pick(['/api/jobs', '/api/metrics', '/api/experiments/grid']),
      headers: J,
      body: Buffer.from(
        pick(['{', '{"kind":', '[1,2', '{"a":1}}', 'null', '"str"', '\u0000', '{"kind":"generate",}']),
      ),
    }),
    () => ({
      method: 'POST',
      path: '/api/jobs',
      headers: J,
      body: Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    }),
    // Oversized bodies.
    () => ({
      method: 'POST',
      path: pick(['/api/jobs', '/api/metrics', '/api/synth/generate']),
      headers: J,
      body: json({
        kind: 'generate',
        generator: 'memseg',
        images: ['A'.repeat(BODY_LIMIT + rng.int(1, 4096))],
      }),
    }),
    // The synchronous routes.
    () => ({
      method: 'POST',
      path: '/api/metrics',
      headers: J,
      body: json({ scores: wrongType(), labels: [0, 1] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/metrics',
      headers: J,
      body: json({ scores: [0.1, 0.2], labels: [pick([2, -1, 0.5, 'a'])] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/metrics',
      headers: J,
      body: json({ scores: [0.1, 0.2, 0.3], labels: [0, 1] }),
    }),
    () => ({ method: 'POST', path: '/api/metrics', headers: J, body: json({ labels: [0, 1] }) }),
    () => ({
      method: 'POST',
      path: '/api/metrics',
      headers: J,
      body: json({ scores: [0.1, 0.2], labels: [0, 1], maxFpr: pick([1.5, 1e308, -1e308, -0.1, 2]) }),
    }),
    () => ({
      method: 'POST',
      path: '/api/synth/generate',
      headers: J,
      body: json({ image: pick([badB64(), truncated(), '']), generator: 'memseg' }),
    }),
    () => ({
      method: 'POST',
      path: '/api/synth/generate',
      headers: J,
      body: json({ image: png.toString('base64'), generator: 'memseg', seed: pick([-1, 1e308, 'x', 1.5]) }),
    }),
    () => ({
      method: 'POST',
      path: '/api/synth/generate',
      headers: J,
      body: json({ image: png.toString('base64'), generator: pick(['gan', 7, null]) }),
    }),
    () => ({
      method: 'POST',
      path: '/api/experiments/grid',
      headers: J,
      body: json({ data: traversal(), generators: ['memseg'], seeds: [0], heads: ['bce'] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/experiments/grid',
      headers: J,
      body: json({ data: 'tiles', generators: ['memseg'], seeds: [0], heads: ['bce'], epoch: 3 }),
    }),
    () => ({
      method: 'POST',
      path: '/api/experiments/grid',
      headers: J,
      body: json({ data: 'tiles', generators: ['memseg'], seeds: [0], heads: [wrongType()] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/experiments/grid',
      headers: J,
      body: json({ data: wrongType(), generators: ['memseg'], seeds: [0], heads: ['bce'] }),
    }),
    () => ({
      method: 'POST',
      path: '/api/experiments/run',
      headers: J,
      body: json({ dataDir: traversal() }),
    }),
    () => ({
      method: 'POST',
      path: '/api/experiments/run',
      headers: J,
      body: json({ seeds: wrongType(), epochs: huge() }),
    }),
    () => ({
      method: 'POST',
      path: '/api/diffusion/generate',
      headers: J,
      body: json({
        image: pick([badB64(), truncated()]),
        mask: png.toString('base64'),
        prompt: 'a crack',
        steps: 1,
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/diffusion/generate',
      headers: J,
      body: json({
        image: png.toString('base64'),
        mask: png.toString('base64'),
        prompt: 'x',
        model: traversal(),
      }),
    }),
    () => ({
      method: 'POST',
      path: '/api/diffusion/generate',
      headers: J,
      body: json({ image: png.toString('base64'), prompt: wrongType() }),
    }),
    // Foreign Host headers (DNS rebinding) and foreign origins.
    () => ({
      method: 'GET',
      path: '/api/capabilities',
      headers: pick([
        { host: 'attacker.example' },
        { host: '10.0.0.1:8787' },
        { origin: 'http://evil.example' },
      ]),
    }),
    // Bad ids and unknown routes.
    () => ({
      method: pick(['GET', 'DELETE']),
      path: `/api/jobs/${encodeURIComponent(pick(['../../etc/passwd', 'x'.repeat(100), '%00', 'ab cd', '<script>', '00000000-0000-0000-0000-000000000000']))}`,
      headers: {},
    }),
    () => ({
      method: 'GET',
      path: `/api/jobs/${pick(['nope', '00000000-0000-0000-0000-000000000000', '..%2f..%2fetc'])}/${pick(['results', 'events'])}`,
      headers: {},
    }),
    () => ({
      method: pick(['GET', 'PUT', 'PATCH']),
      path: pick(['/api/../../etc/passwd', '/api/nope', '/%2e%2e/%2e%2e/etc/passwd', '/api/jobs/x/y/z']),
      headers: {},
    }),
    () => ({ method: 'PUT', path: '/api/jobs', headers: J, body: json({ kind: 'generate' }) }),
  ];
  return Array.from({ length: n }, (_, i) => {
    const k = rng.int(0, makers.length - 1);
    const r = makers[k]();
    return {
      ...r,
      what: `#${i} maker ${k}: ${r.method} ${r.path} ${r.body?.subarray(0, 120).toString() ?? ''}`,
    };
  });
}

describe('1,000 malformed requests', () => {
  const datasets = tempRoot('dl-fuzz-');
  let base = '';
  const app = buildServer({
    options: {
      datasets,
      models: TINY_MODELS,
      device: 'cpu',
      bodyLimitBytes: BODY_LIMIT,
      rateLimit: 1_000_000,
    },
    diffusion: diffusionHandler(nodeDiffusionEngine(), localModels(TINY_MODELS, 'cpu')),
  });
  beforeAll(async () => {
    datasetFolder(datasets, 'tiles');
    const outside = tempRoot('dl-fuzz-outside-');
    datasetFolder(outside, 'secret');
    symlinkSync(join(outside, 'secret'), join(datasets, 'linked-out'));
    base = await listen(app);
  });
  afterAll(() => app.close());

  it(
    'answer 4xx with { code, message, fix }, never 5xx, never a server path; health answers after',
    { timeout: 120_000 },
    async () => {
      const all = cases('server-fuzz-12', 1000);
      const statuses = new Map<number, number>();
      const problems: string[] = [];
      for (const r of all) {
        const res = await send(base, r);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status < 400 || res.status >= 500) {
          problems.push(`${res.status} ${r.what} → ${res.body.slice(0, 200)}`);
          continue;
        }
        if (!res.body) continue; // 413 answered before the body was sent
        let b: Record<string, unknown>;
        try {
          b = JSON.parse(res.body) as Record<string, unknown>;
        } catch {
          problems.push(`not JSON: ${r.what} → ${res.body.slice(0, 200)}`);
          continue;
        }
        if (Object.keys(b).sort().join() !== 'code,fix,message')
          problems.push(`shape ${r.what} → ${res.body.slice(0, 200)}`);
        // What the client sent may be echoed (its own traversal string); the server's folders may not.
        let text = `${String(b.message)} ${String(b.fix)}`;
        for (const t of TRAVERSALS) text = text.split(t).join('');
        text = text.split(r.path).join('');
        if (
          text.includes(datasets) ||
          text.includes(TINY_MODELS) ||
          text.includes(process.cwd()) ||
          /\/(tmp|home|root|work|usr|etc)\/|\n\s+at /.test(text)
        )
          problems.push(`leaks a path: ${r.what} → ${text.slice(0, 300)}`);
      }
      expect(problems, problems.slice(0, 10).join('\n')).toEqual([]);
      // The generator covers many answers, not one: 400s (schema), 404s, 413s, 415s, 422s (semantics, confinement), 403s.
      for (const s of [400, 403, 404, 413, 415, 422])
        expect(statuses.get(s) ?? 0, `status ${s}`).toBeGreaterThan(0);
      const h = await fetch(`${base}/api/health`);
      expect(h.status).toBe(200);
      expect(((await h.json()) as { ok: boolean }).ok).toBe(true);
    },
  );
});

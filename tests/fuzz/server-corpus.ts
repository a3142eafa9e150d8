/**
 * The server's malformed requests (issue #15 item 2; the first server fuzz test's generator, moved here so every
 * entry point's corpus lives in tests/fuzz): wrong types, missing fields, huge numbers, bad base64, truncated PNGs,
 * wrong content types, traversal paths, oversized bodies, broken JSON, bad ids, foreign Host headers. Each case is
 * malformed by construction (never a valid request). Case `i` is drawn from its own stream
 * (`${FUZZ_SEED}/server/${i}`), so `serverCase(i)` replays it alone.
 */
import { request } from 'node:http';
import { Rng } from '../../src/core/rng.ts';
import { b64, tile } from '../unit/server-fixtures.ts';
import { FUZZ_SEED, type FuzzCase } from './corpus.ts';

export interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  what: string;
}

/** The body limit the fuzzed server runs with (the oversized cases pass it). */
export const BODY_LIMIT = 256 * 1024;

export const TRAVERSALS = [
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

/** Sends one request; a 413 answered before the body was written reads as 413 with no body. */
export function send(base: string, r: Req): Promise<{ status: number; body: string }> {
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

/** Case `index` of the server corpus. */
export function serverCase(index: number, seed = FUZZ_SEED): FuzzCase<Req> {
  const rng = new Rng(`${seed}/server/${index}`);
  // Rng.int's upper bound is exclusive: the first version drew (0, length - 1) and never sent the last choice.
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length)];
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
  // Makers in turn (their draws random): every kind of request is sent even by the 200-case CI corpus.
  const k = index % makers.length;
  const r = makers[k]();
  const what = `maker ${k}: ${r.method} ${r.path} ${r.body?.subarray(0, 120).toString() ?? ''}`;
  return { entry: 'server', index, what, input: { ...r, what } };
}

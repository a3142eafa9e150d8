/**
 * The app's server client (`src/app/server-client.ts`) against a real listening server: health check with
 * version and queue, a generate job with progress and its unpacked results (pixels equal to the synth worker's),
 * Stop → the job is cancelled on the server, and the clear errors for a wrong token and an unreachable server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import {
  ServerAuthError,
  ServerClient,
  ServerRequestError,
  ServerUnreachableError,
} from '../../src/app/server-client.ts';
import type { Progress } from '../../src/core/progress.ts';
import { createRaster } from '../../src/core/image.ts';
import type { BatchSample } from '../../src/core/synth/index.ts';
import { ServerSynth } from '../../src/app/server-synth.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { createSynthEngine } from '../../workers/synth.engine.ts';
import { TINY_MODELS, b64, freePort, listen, tile } from './server-fixtures.ts';

describe('the app’s server client', () => {
  const token = 'k'.repeat(32);
  const app = buildServer({ options: { token, models: TINY_MODELS, device: 'cpu' } });
  let url = '';
  beforeAll(async () => {
    url = await listen(app);
  });
  afterAll(() => app.close());

  it('health check shows version, devices and queue; a job runs with progress and unpacked results', async () => {
    const client = new ServerClient({ url, token });
    const { health, capabilities } = await client.check();
    expect(health.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(health.queue.mode).toBe('memory');
    expect(capabilities.ort.providers).toContain('cpu');
    const images = [tile('client', 48, 48)];
    const progress: Progress[] = [];
    const r = await client.run(
      { kind: 'generate', generator: 'random-walk', images: images.map(b64), n: 3, seed: 11 },
      { onProgress: (p) => progress.push(p) },
    );
    expect(r.status.state).toBe('done');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)!.total).toBe(3);
    const samples = r.manifest.samples as { file: string; seed: number }[];
    const worker = await createSynthEngine().generateBatch({
      generator: 'random_walk',
      images,
      n: 3,
      seed: 11,
    });
    for (const [i, s] of samples.entries()) {
      const img = (await decodeImage(r.files[s.file], s.file)).raster;
      expect(Buffer.compare(Buffer.from(img.data), Buffer.from(worker.samples[i].image.data))).toBe(0);
    }
  });

  it('Stop cancels the job on the server; bad input comes back as the server’s own error', async () => {
    const client = new ServerClient({ url, token });
    const stop = new AbortController();
    const run = client.run(
      { kind: 'generate', generator: 'memseg', images: [b64(tile('stop', 160, 160))], n: 5000, seed: 1 },
      { onProgress: (p) => p.done > 0 && stop.abort(), signal: stop.signal },
    );
    await expect(run).rejects.toThrow(/CancelledError: the server job was cancelled/);
    const bad = client.submit({ kind: 'features', dataset: '/etc' });
    await expect(bad).rejects.toBeInstanceOf(ServerRequestError);
    await expect(bad).rejects.toThrow(
      /ConfinementError: dataset: this server has no --datasets root.*— fix: upload/,
    );
  });

  it('ServerSynth is the synth worker’s generateBatch as a server job: same samples, masks, seeds and params', async () => {
    const synth = new ServerSynth(new ServerClient({ url, token }));
    const images = [tile('s1', 64, 64, 3), tile('s2', 64, 64, 3)];
    const region = createRaster(64, 64, 1);
    for (let y = 10; y < 50; y++) for (let x = 8; x < 40; x++) region.data[y * 64 + x] = 255;
    const req = {
      generator: 'memseg',
      images,
      masks: [region, null],
      options: {},
      n: 5,
      seed: 21,
      feathers: [3, 0],
    };
    const progress: Progress[] = [];
    const staged: BatchSample[] = [];
    const r = await synth.generateBatch(req, {
      jobId: 'j1',
      onProgress: (p) => progress.push(p),
      onSamples: (s) => void staged.push(...s),
    });
    expect(r.samples).toEqual([]);
    expect(progress.at(-1)?.total).toBe(5);
    const ref = await createSynthEngine().generateBatch(req);
    expect(staged.length).toBe(ref.samples.length);
    for (const [i, s] of staged.entries()) {
      const w = ref.samples[i];
      expect([s.index, s.sourceIndex, s.seed, s.generator]).toEqual([
        w.index,
        w.sourceIndex,
        w.seed,
        w.generator,
      ]);
      expect(Buffer.compare(Buffer.from(s.image.data), Buffer.from(w.image.data))).toBe(0);
      expect(Buffer.compare(Buffer.from(s.mask.data), Buffer.from(w.mask.data))).toBe(0);
      const { backend, serverJob, ...params } = s.params;
      expect(backend).toBe('server');
      expect(typeof serverJob).toBe('string');
      expect(JSON.parse(JSON.stringify(params))).toEqual(JSON.parse(JSON.stringify(w.params)));
    }
    // cancel(jobId), as the Stop button calls it on the worker client, cancels the server job.
    const long = synth.generateBatch(
      { generator: 'memseg', images: [tile('s3', 160, 160)], n: 5000, seed: 2 },
      { jobId: 'j2', onProgress: (p) => p.done > 0 && synth.cancel('j2') },
    );
    await expect(long).rejects.toThrow(/CancelledError/);
    await expect(synth.generateBatch({ generator: 'diffusion', images, n: 1, seed: 0 })).rejects.toThrow(
      /fix: switch System → Compute/,
    );
    // Texture images in the options (the app's MemSeg texture sources) reach the server as PNGs: same pixels.
    const textures = [tile('tex1', 32, 32, 3), tile('tex2', 32, 32, 3)];
    const texReq = {
      generator: 'memseg',
      images: [images[0]],
      options: { textures, p_texture: 1 },
      n: 2,
      seed: 4,
    };
    const viaServer = await synth.generateBatch(texReq);
    const local = await createSynthEngine().generateBatch(texReq);
    for (const [i, s] of viaServer.samples.entries())
      expect(Buffer.compare(Buffer.from(s.image.data), Buffer.from(local.samples[i].image.data))).toBe(0);
  });

  it('a wrong or missing token and an unreachable server are clear messages with a fix', async () => {
    await expect(new ServerClient({ url, token: 'wrong' }).check()).rejects.toBeInstanceOf(ServerAuthError);
    await expect(new ServerClient({ url, token: '' }).check()).rejects.toThrow(
      /needs a token — fix: paste the token/,
    );
    const dead = `http://127.0.0.1:${await freePort()}`;
    await expect(new ServerClient({ url: dead, token }).check()).rejects.toBeInstanceOf(
      ServerUnreachableError,
    );
    await expect(new ServerClient({ url: dead, token }).check()).rejects.toThrow(
      /did not answer.*— fix: start it \(npm run server\)/,
    );
  });
});

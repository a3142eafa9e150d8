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

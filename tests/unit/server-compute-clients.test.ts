/**
 * The server-backed clients of System → Compute "Server" (`src/app/server-experiments.ts`, `server-features.ts`,
 * `server-diffusion.ts`) against a real listening server on 127.0.0.1 (tiny models), with the app's store in
 * fake-indexeddb and the in-thread experiments engine as the "local" client they sit on:
 * - they have the worker clients' interfaces (checked by TypeScript below: assigned to `ExperimentsApi` and
 *   `DiffusionEngineApi`);
 * - dataset features are computed by a server `features` job and land in the store's feature cache under the
 *   browser's own keys, saying `backend: "server <url> (cpu)"`, equal to the local engine's (same ORT CPU:
 *   tolerance 1e-5); a second call finds them cached and sends no job;
 * - a grid over the IndexedDB dataset runs as an `experiment` job over uploaded pools; its cells are stored as
 *   the local runner stores them (RunRecords, backend in the config) and their metrics equal the local run's
 *   (tolerance 1e-6); Stop cancels the server job and stores nothing;
 * - a diffusion sample is one `generate` job: latents within 1e-3 of the local engine's, per-step progress;
 * - server unreachable or token wrong: a clear message and nothing stored changes.
 */
import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { nodeDiffusionEngine, localModels } from '../../server/diffusion.ts';
import { MemoryQueue, executeJob } from '../../server/jobs.ts';
import { ServerClient } from '../../src/app/server-client.ts';
import { ServerDiffusion } from '../../src/app/server-diffusion.ts';
import { ServerExperiments } from '../../src/app/server-experiments.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import type { Progress } from '../../src/core/progress.ts';
import { Rng } from '../../src/core/rng.ts';
import { openStore } from '../../src/runtime/db/store.ts';
import type { DefectLabStore } from '../../src/runtime/db/types.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import type { DiffusionEngineApi } from '../../workers/diffusion.engine.ts';
import { ExperimentsEngine, type ExperimentsApi } from '../../workers/experiments.engine.ts';
import { TINY_MODELS, freePort, listen } from './server-fixtures.ts';

function tile(seed: number, defect: boolean): RasterImage {
  const rng = new Rng(seed);
  const img = createRaster(48, 48, 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 110 + rng.normal() * 6;
  if (defect) for (let y = 12; y < 36; y++) for (let x = 22; x < 26; x++) img.data[y * 48 + x] = 20;
  return img;
}

function record(name: string, img: RasterImage, label: 'normal' | 'defect', split: 'train' | 'test') {
  const png = encodePng(img);
  return {
    name,
    blob: new Blob([png], { type: 'image/png' }),
    mime: 'image/png',
    width: img.width,
    height: img.height,
    channels: img.channels,
    sha256: createHash('sha256').update(png).digest('hex'),
    thumbnail: new Blob([png], { type: 'image/png' }),
    label,
    split,
    defectClass: label === 'defect' ? 'crack' : undefined,
  };
}

/** Everything the store holds that a run could change: features, runs (as JSON). */
async function snapshot(store: DefectLabStore, datasetId: string, keys: { sha256: string }[]) {
  const feats = await Promise.all(
    keys.map((k) => store.getFeatures({ backbone: 'tiny-resnet', sha256: k.sha256, preprocessing: PRE })),
  );
  return JSON.stringify({
    feats: feats.map((f) => (f ? [f.backend, Array.from(f.pooled)] : null)),
    runs: (await store.listRuns(datasetId)).map((r) => r.id).sort(),
  });
}
let PRE = '';

describe('server-backed clients (features, grids, diffusion) against a real server', () => {
  const token = 't'.repeat(32);
  const ran: string[] = [];
  const queue = new MemoryQueue(
    { concurrency: 1, maxQueue: 20, datasets: '', models: TINY_MODELS, device: 'cpu', runner: 'test' },
    (id, spec, ...rest) => {
      ran.push(spec.kind);
      return executeJob(id, spec, ...rest);
    },
  );
  const app = buildServer({ queue, options: { token, models: TINY_MODELS, device: 'cpu' } });
  let url = '';
  let store: DefectLabStore;
  let datasetId = '';
  let engine: ExperimentsEngine;
  let records: { sha256: string }[] = [];

  beforeAll(async () => {
    url = await listen(app);
    store = await openStore('server-compute-clients-test');
    const ds = await store.createDataset({ name: 'tiles', source: 'test' });
    datasetId = ds.id;
    const list = [
      ...Array.from({ length: 8 }, (_, i) => record(`n${i}.png`, tile(i, false), 'normal', 'train')),
      ...Array.from({ length: 5 }, (_, i) => record(`tn${i}.png`, tile(100 + i, false), 'normal', 'test')),
      ...Array.from({ length: 5 }, (_, i) => record(`td${i}.png`, tile(200 + i, true), 'defect', 'test')),
    ];
    await store.addImages(ds.id, list);
    records = list;
    engine = new ExperimentsEngine({
      ort: nodeBackend,
      store: async () => store,
      decode: decodeImage,
      autoDevice: async () => 'cpu' as const,
    });
    const info = await engine.loadBackbone({
      manifestId: 'tiny-resnet',
      bytes: new Uint8Array(readFileSync(join(TINY_MODELS, 'tiny-resnet/model.onnx'))),
      device: 'cpu',
    });
    PRE = info.preprocessingId;
  }, 60_000);
  afterAll(() => app.close());

  const over = (t = token, at = url) =>
    ServerExperiments.over(engine, new ServerClient({ url: at, token: t }), async () => store, decodeImage);

  it('extractDataset runs on the server and fills the browser’s feature cache (backend recorded)', async () => {
    // The same interface as the worker client: the Experiments panel takes either.
    const api: ExperimentsApi = over();
    const progress: Progress[] = [];
    const f = await api.extractDataset(datasetId, undefined, 'f1', (p) => progress.push(p));
    expect(ran).toEqual(['features']);
    expect(f.images.length).toBe(18);
    expect(f.cached).toBe(0);
    expect(progress.at(-1)).toMatchObject({ stage: 'features', done: 18, total: 18 });
    const local = await engine.extractImages(
      await Promise.all(
        f.images.map(async (m) => {
          const r = (await store.getImage(m.id))!;
          return (await decodeImage(new Uint8Array(await r.blob.arrayBuffer()), r.name)).raster;
        }),
      ),
    );
    for (const [i, m] of f.images.entries()) {
      const stored = await store.getFeatures({
        backbone: 'tiny-resnet',
        sha256: m.sha256,
        preprocessing: PRE,
      });
      expect(stored?.backend).toBe(`server ${url} (cpu)`);
      expect(stored?.spatial?.dims).toEqual([...local.spatial[i].dims]);
      for (let k = 0; k < local.pooled[i].length; k++)
        expect(Math.abs(f.pooled[i][k] - local.pooled[i][k])).toBeLessThan(1e-5);
      for (let k = 0; k < local.spatial[i].data.length; k += 7)
        expect(Math.abs(stored!.spatial!.data[k] - local.spatial[i].data[k])).toBeLessThan(1e-5);
    }
    // Cached now: no second job.
    const again = await api.extractDataset(datasetId);
    expect(again.cached).toBe(18);
    expect(ran).toEqual(['features']);
  });

  it('a grid over the IndexedDB dataset runs as a server job; cells stored as local ones, metrics equal', async () => {
    ran.length = 0;
    const api: ExperimentsApi = over();
    const spec = {
      generators: ['memseg' as const],
      nAug: [6],
      seeds: [0],
      heads: ['bce' as const],
      epochs: 3,
    };
    const progress: Progress[] = [];
    const remote = await api.runExperiment(
      { datasetId, experimentId: 'srv', spec, tfBackend: 'cpu' },
      'g1',
      (p) => progress.push(p),
    );
    expect(ran).toEqual(['experiment']);
    expect(progress.some((p) => p.stage === 'cells')).toBe(true);
    expect(remote.tfBackend).toBe(`server ${url}`);
    // The grid's diffusion models are the server's --models folders that are not backbones.
    const offered = (await api.diffusionModels()).models.map((m) => m.id);
    expect(offered).toContain('tiny-sd-inpaint');
    expect(offered).not.toContain('tiny-resnet');
    const local = await engine.runExperiment({ datasetId, experimentId: 'loc', spec, tfBackend: 'cpu' });
    expect(remote.cells.length).toBe(local.cells.length);
    expect(remote.table.map((r) => r.label)).toEqual(local.table.map((r) => r.label));
    for (const [i, c] of remote.cells.entries()) {
      expect(c.status, c.error).toBe('done');
      for (const k of ['ap', 'auroc', 'f1'] as const)
        expect(Math.abs((c.metrics?.[k] ?? NaN) - (local.cells[i].metrics?.[k] ?? NaN))).toBeLessThan(1e-6);
    }
    // Stored as the local runner stores them: the engine lists them for a resume; each says where it ran.
    expect((await engine.storedCells(datasetId, 'srv')).length).toBe(remote.cells.length);
    const runs = (await store.listRuns(datasetId)).filter((r) => r.id.startsWith('srv/'));
    expect(runs.length).toBe(remote.cells.length);
    for (const r of runs) expect(r.config.backend).toBe(`server ${url}`);
    expect((runs[0].result as { scores?: number[] }).scores?.length).toBe(10);
    // Same experiment id again = resume, as on the worker: the server skips every stored cell.
    const again = await api.runExperiment({ datasetId, experimentId: 'srv', spec, tfBackend: 'cpu' });
    expect(again.resumed).toBe(remote.cells.length);
    expect(again.cells.map((c) => c.metrics?.ap)).toEqual(remote.cells.map((c) => c.metrics?.ap));
    expect((await store.listRuns(datasetId)).filter((r) => r.id.startsWith('srv/')).length).toBe(runs.length);

    // Stop: the server job is cancelled and nothing is stored for that experiment.
    const stopping = api.runExperiment(
      { datasetId, experimentId: 'stopped', spec: { ...spec, nAug: [400], seeds: [0, 1, 2, 3] } },
      'g2',
      (p) => p.done >= 0 && void api.cancel('g2'),
    );
    await expect(stopping).rejects.toThrow(/CancelledError/);
    expect((await store.listRuns(datasetId)).filter((r) => r.id.startsWith('stopped/'))).toEqual([]);
  }, 240_000);

  it('server unreachable or token wrong: a clear message, nothing stored changes', async () => {
    const before = await snapshot(store, datasetId, records);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const spec = { generators: ['none' as const], nAug: [0], seeds: [0], heads: ['bce' as const] };
    await expect(over(token, dead).runExperiment({ datasetId, experimentId: 'dead', spec })).rejects.toThrow(
      /did not answer.*— fix: start it \(npm run server\)/,
    );
    await expect(over('wrong').runExperiment({ datasetId, experimentId: 'auth', spec })).rejects.toThrow(
      /refused the token — fix: paste the token/,
    );
    await store.clearFeatures('tiny-resnet');
    const cleared = await snapshot(store, datasetId, records);
    await expect(over('wrong').extractDataset(datasetId)).rejects.toThrow(/refused the token/);
    expect(await snapshot(store, datasetId, records)).toBe(cleared);
    expect(cleared).not.toBe(before); // the snapshot does see feature changes
    // A model the server lacks is named with the fix.
    const info = (await engine.backboneInfo())!;
    const other = ServerExperiments.over(
      { backboneInfo: async () => ({ ...info, id: 'resnet50-hf' }), cancel: () => {} },
      new ServerClient({ url, token }),
      async () => store,
      decodeImage,
    );
    await expect(other.extractDataset(datasetId)).rejects.toThrow(
      /no backbone folder "resnet50-hf".*— fix: put the backbone's ONNX file at <--models>\/resnet50-hf\/model.onnx/,
    );
  });

  it('a bad upload is a 4xx naming the field and the fix, before anything is queued', async () => {
    const png = Buffer.from(encodePng(tile(1, false))).toString('base64');
    const item = (pool: string, label: number, image: number) => ({
      id: `i${image}-${pool}`,
      pool,
      label,
      image,
    });
    const good = [
      item('trainNormals', 0, 0),
      item('trainNormals', 0, 1),
      item('test', 0, 2),
      item('test', 1, 3),
    ];
    const config = { generators: ['memseg'], nAug: [2], seeds: [0], heads: ['bce'] };
    const post = async (body: Record<string, unknown>) => {
      const r = await fetch(`${url}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: (await r.json()) as { code: string; message: string; fix: string } };
    };
    const before = ran.length;
    const images = [png, png, png, png];
    const cases: [Record<string, unknown>, number, RegExp][] = [
      // an index past the uploads
      [
        { kind: 'experiment', config, images, upload: { name: 'x', items: [...good, item('test', 1, 9)] } },
        422,
        /points at entry 9 of 4/,
      ],
      // too few train normals
      [
        { kind: 'experiment', config, images, upload: { name: 'x', items: good.slice(1) } },
        422,
        /has 1 trainNormals/,
      ],
      // a pool that is not one
      [
        { kind: 'experiment', config, images, upload: { name: 'x', items: [{ ...good[0], pool: 'train' }] } },
        400,
        /pool/,
      ],
      // both a dataset folder and an upload
      [
        {
          kind: 'experiment',
          config: { ...config, data: 'somewhere' },
          images,
          upload: { name: 'x', items: good },
        },
        422,
        /either "config.data" or "upload"/,
      ],
      // an upload on a features job
      [{ kind: 'features', images, upload: { name: 'x', items: good } }, 422, /takes no "upload"/],
      // a bad preprocessing
      [
        {
          kind: 'features',
          images,
          preprocess: { width: 0, height: 8, resize: 'stretch', mean: [0, 0, 0], std: [1, 1, 1] },
        },
        400,
        /width/,
      ],
    ];
    for (const [body, status, message] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(`${r.body.message} ${r.body.fix}`).toMatch(message);
      expect(r.body.fix.length).toBeGreaterThan(5);
      expect(JSON.stringify(r.body)).not.toMatch(/\/work\/|\/tmp\//);
    }
    expect(ran.length).toBe(before);
  });

  it('ServerDiffusion is the diffusion worker’s API as one generate job per sample (latents within 1e-3)', async () => {
    ran.length = 0;
    const server: Pick<DiffusionEngineApi, 'generate' | 'cancel' | 'unload'> = new ServerDiffusion(
      new ServerClient({ url, token }),
    );
    const sd = server as ServerDiffusion;
    const manifest = JSON.parse(readFileSync(join(TINY_MODELS, 'tiny-sd-inpaint/manifest.json'), 'utf8')) as {
      id: string;
      layout: string;
      resolution: number;
    };
    await expect(sd.load({ manifest: { ...manifest, id: 'no-such-model' } })).rejects.toThrow(
      /has no diffusion model folder "no-such-model" under its --models.*— fix: /,
    );
    const info = await sd.load({ manifest });
    expect(info.modelId).toBe('tiny-sd-inpaint');
    const image = createRaster(64, 64, 3);
    const rng = new Rng('diff');
    for (let i = 0; i < image.data.length; i++) image.data[i] = rng.int(60, 200);
    const mask = createRaster(64, 64, 1);
    for (let y = 16; y < 40; y++) for (let x = 20; x < 44; x++) mask.data[y * 64 + x] = 255;
    const req = {
      image,
      mask,
      prompt: 'a scratch',
      steps: 3,
      guidanceScale: 7.5,
      strength: 0.99,
      seed: 7,
      maskBlur: 2,
    };
    const steps: Progress[] = [];
    const r = await sd.generate(req, {
      jobId: 'd1',
      onProgress: (p) => p.stage === 'denoise' && steps.push(p),
    });
    expect(ran).toEqual(['generate']);
    expect(steps.length).toBeGreaterThan(0);
    expect(r.serverBackend).toBe(`server ${url} (cpu)`);
    expect(r.params.seed).toBe(7);
    expect(r.params.prompt).toBe('a scratch');
    const localEngine = nodeDiffusionEngine();
    await localEngine.load(await localModels(TINY_MODELS, 'cpu')('tiny-sd-inpaint'));
    const ref = await localEngine.generate(req);
    expect(r.latentDims).toEqual(ref.latentDims);
    let worst = 0;
    for (let i = 0; i < ref.latents.length; i++)
      worst = Math.max(worst, Math.abs(r.latents[i] - ref.latents[i]));
    expect(worst).toBeLessThan(1e-3);
    expect([r.image.width, r.image.height, r.generated.width]).toEqual([64, 64, ref.generated.width]);
    await localEngine.unload();
  }, 120_000);
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { tf, initTf, loadTfLayers } from '../../src/runtime/tf.ts';
import { BceHead, trainBceHead } from '../../src/runtime/heads/bce.ts';
import { trainSpatialHead } from '../../src/runtime/heads/spatial.ts';
import { trainCseHead } from '../../src/runtime/heads/cse.ts';
import { type ExportedFile, EXPORT_FILES, exportHeadFiles } from '../../src/runtime/heads/export.ts';

/**
 * The exported files are a real tfjs layers model: they are served over HTTP and loaded with tfjs-layers'
 * own `loadLayersModel` (the loader any tfjs user calls; it parses model.json and fetches weights.bin through
 * the weightsManifest path), and the loaded model must give the app head's scores.
 *
 * Tolerance: 1e-5 absolute. Standardization is folded into the first layer's weights on export, which is exact in
 * real arithmetic but reorders float32 operations; sigmoid outputs in [0, 1] and cosine distances in [0, 2]
 * differ by up to ≈ 1e-6 (observed), 1e-5 leaves headroom while still catching any wrong weight or layout (a
 * head of another seed differs by > 1e-3, checked below).
 */
const TOL = 1e-5;

let server: Server;
let base = '';
const served = new Map<string, Uint8Array>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': req.url?.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    });
    res.end(Buffer.from(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Serves one export under /<dir>/ and loads it with tfjs-layers (the real package, through the tfjs door). */
async function load(dir: string, files: ExportedFile[]) {
  for (const f of files) served.set(`/${dir}/${f.name}`, f.data);
  const tfl = await loadTfLayers();
  const model = await tfl.loadLayersModel(`${base}/${dir}/${EXPORT_FILES.model}`);
  const meta = JSON.parse(new TextDecoder().decode(files.find((f) => f.name === 'metadata.json')!.data));
  return { model, meta };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Feature maps `[C, H, W]` with a bright location in channel 1 for defects. */
function maps(n: number, C: number, H: number, W: number, seed: number) {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const data = rng.normalArray(C * H * W).map((v) => v * 0.5 + 2);
    if (i % 2) data[1 * H * W + rng.int(0, H * W)] += 5;
    return { data, dims: [C, H, W] as const };
  });
}

function nchw(ms: { data: Float32Array; dims: readonly [number, number, number] }[]): tf.Tensor4D {
  const [C, H, W] = ms[0].dims;
  const buf = new Float32Array(ms.length * C * H * W);
  ms.forEach((m, i) => buf.set(m.data, i * C * H * W));
  return tf.tensor4d(buf, [ms.length, C, H, W]);
}

describe('head export (tfjs layers-model)', () => {
  it('BCE heads (linear and hidden layer) load with loadLayersModel and give the same scores', async () => {
    await initTf('cpu');
    const rng = new Rng(3);
    const x = Array.from({ length: 60 }, (_, i) =>
      rng.normalArray(12).map((v, j) => v * (j + 1) + 3 + (i % 3 === 0 && j < 3 ? 2 : 0)),
    );
    const y = x.map((_, i) => (i % 3 === 0 ? 1 : 0));
    for (const hidden of [0, 6]) {
      const { head } = await trainBceHead(x, y, { epochs: 5, hidden, learningRate: 1e-2, seed: 1 });
      const files = await exportHeadFiles(await head.toArtifacts(), {
        backbone: 'test',
        threshold: 0.5,
      });
      expect(files.map((f) => f.name)).toEqual(['model.json', 'weights.bin', 'metadata.json']);
      const json = JSON.parse(new TextDecoder().decode(files[0].data));
      expect(json.format).toBe('layers-model');
      expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);
      const { model, meta } = await load(`bce-${hidden}`, files);
      expect(meta).toMatchObject({ kind: 'bce', backbone: 'test', threshold: 0.5 });
      expect(meta.model.input).toEqual({ shape: [12], layout: 'ND', features: 'pooled' });
      const want = await head.predict(x);
      const got = model.predict(
        tf.tensor2d(
          x.flatMap((r) => Array.from(r)),
          [60, 12],
        ),
      ) as tf.Tensor;
      expect(got.shape).toEqual([60, 1]);
      expect(maxAbsDiff(await got.data(), want)).toBeLessThan(TOL);
      // The check can fail: a head trained with another seed scores differently.
      const other = await trainBceHead(x, y, { epochs: 5, hidden, learningRate: 1e-2, seed: 2 });
      expect(maxAbsDiff(await got.data(), await other.head.predict(x))).toBeGreaterThan(1e-3);
      other.head.dispose();
      head.dispose();
      model.dispose();
    }
  });

  it('the spatial head exports score and heat map outputs equal to the app head', async () => {
    await initTf('cpu');
    const ms = maps(40, 6, 3, 4, 7);
    const { head } = await trainSpatialHead(
      ms,
      ms.map((_, i) => i % 2),
      { epochs: 5, learningRate: 1e-2, seed: 1 },
    );
    const files = await exportHeadFiles(await head.toArtifacts(), { backbone: 'test' });
    const { model, meta } = await load('spatial', files);
    expect(meta.model.outputs.map((o: { name: string }) => o.name)).toEqual(['score', 'heatmap']);
    const want = await head.predict(ms);
    const [score, heat] = model.predict(nchw(ms)) as tf.Tensor[];
    expect(heat.shape).toEqual([40, 3, 4]);
    expect(maxAbsDiff(await score.data(), want.scores)).toBeLessThan(TOL);
    const flat = new Float32Array(40 * 12);
    want.heatmaps.forEach((m, i) => flat.set(m, i * 12));
    expect(maxAbsDiff(await heat.data(), flat)).toBeLessThan(TOL);
    head.dispose();
    model.dispose();
  });

  it('the CSE head exports its embedder; metadata centroids + the stated rule give the app scores', async () => {
    await initTf('cpu');
    // 4×4 maps with the default 2×2 average pool: the export pools as the head does (a 2×2 score grid).
    const ms = maps(8, 6, 4, 4, 11);
    const source = async (r: Rng) => {
      const a = ms[r.int(0, ms.length)];
      const other = { data: a.data.map((v, i) => (i % 16 === 5 ? v + 3 : v)), dims: a.dims };
      const defect = new Float32Array(16);
      defect[5] = 1;
      return { anchor: a, other, defect };
    };
    const { head } = await trainCseHead(ms, source, {
      epochs: 3,
      stepsPerEpoch: 3,
      pairsPerStep: 2,
      hidden: 8,
      embedDim: 5,
      k: 2,
      seed: 4,
    });
    expect(head.grid).toEqual([2, 2]);
    const files = await exportHeadFiles(await head.toArtifacts(), { backbone: 'test' });
    const { model, meta } = await load('cse', files);
    const centroids: number[][] = meta.model.centroids;
    expect(centroids.length).toBe(2);
    const test = maps(6, 6, 4, 4, 12);
    const want = await head.predict(test);
    const emb = (model.predict(nchw(test)) as tf.Tensor).arraySync() as number[][][][]; // [N, H', W', E]
    expect(meta.model.input.shape).toEqual([6, 4, 4]);
    expect(meta.model.outputs[0].shape).toEqual([2, 2, 5]);
    const scores: number[] = [];
    const heat: number[] = [];
    emb.forEach((e) => {
      let best = -Infinity;
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 2; x++) {
          const v = e[y][x];
          const n = Math.hypot(...v);
          const d = Math.min(...centroids.map((c) => 1 - v.reduce((s, vi, j) => s + vi * c[j], 0) / n));
          heat.push(d);
          best = Math.max(best, d);
        }
      scores.push(best);
    });
    expect(maxAbsDiff(scores, want.scores)).toBeLessThan(TOL);
    const flat = new Float32Array(6 * 4);
    want.heatmaps.forEach((m, i) => flat.set(m, i * 4));
    expect(maxAbsDiff(heat, flat)).toBeLessThan(TOL);
    head.dispose();
    model.dispose();
  });

  it('stored artifacts round-trip to a head with identical scores', async () => {
    await initTf('cpu');
    const rng = new Rng(5);
    const x = Array.from({ length: 20 }, () => rng.normalArray(4));
    const { head } = await trainBceHead(
      x,
      x.map((_, i) => i % 2),
      { epochs: 2, hidden: 3 },
    );
    const back = BceHead.fromArtifacts(await head.toArtifacts());
    expect(Array.from(await back.predict(x))).toEqual(Array.from(await head.predict(x)));
    head.dispose();
    back.dispose();
  });
});

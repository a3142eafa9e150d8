import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rocAuc } from '../../src/core/metrics/index.ts';
import { Rng } from '../../src/core/rng.ts';
import { blurDefect } from '../../src/core/synth/blur.ts';
import { proceduralTexture } from '../../src/core/synth/textures.ts';
import { type RasterImage, crop } from '../../src/core/image.ts';
import { Backbone, findBackbone, manifestLoadOptions } from '../../src/runtime/backbone.ts';
import { CseHead, cseOptions, sphericalKMeans, trainCseHead } from '../../src/runtime/heads/cse.ts';
import { makeCsePairSource, maskToGrid } from '../../src/runtime/heads/stream.ts';
import { imagenetPreprocess } from '../../src/core/preprocess.ts';
import { initTf, tf } from '../../src/runtime/tf.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';

const MODEL = resolve(import.meta.dirname, '../../../shared/models/mobilenetv2-12-int8.onnx');
const SIZE = 224;

/**
 * One procedural surface (a 640×640 weave) and random 224×224 crops of it, like photos of one product: normal
 * variation is position, not texture parameters, so a blur defect is the odd one out.
 */
const surface = proceduralTexture('weave', 640, 640, 1, new Rng('surface'));
function textures(n: number, seed: number): RasterImage[] {
  const rng = new Rng(seed);
  const at = () => rng.int(0, 640 - SIZE);
  return Array.from({ length: n }, () => crop(surface, { x: at(), y: at(), width: SIZE, height: SIZE }));
}

describe('CSE head', () => {
  it('separates blur-defected from clean procedural textures (AUROC > 0.9) without any real defect', async () => {
    await initTf('wasm');
    const bb = await Backbone.load(new Uint8Array(readFileSync(MODEL)), {
      ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!),
      // The finer stride-16 map (96×14×14): a blur is a local texture change, which the app's default 1280×7×7
      // map (one location per 32 px) hardly sees — measured 0.87 there with k = 1 or k = 8.
      spatialTensor: { tensor: '426_quantized', scale: '426_scale', zeroPoint: '426_zero_point' },
      ort: nodeBackend,
    });
    const extract = async (imgs: RasterImage[]) => (await bb.extract(imgs, { batchSize: 8 })).spatial;
    const normals = textures(16, 1);
    const normalMaps = await extract(normals);
    const blur = (img: RasterImage, seed: number) =>
      blurDefect(img, { sigma: [3, 6], perlin_scale: [0, 3] }, seed);
    const pairs = makeCsePairSource({
      normals,
      normalMaps,
      extract,
      generators: [blur],
      preprocess: bb.preprocess,
    });
    const epochsSeen: number[] = [];
    const { head, history } = await trainCseHead(
      normalMaps,
      pairs,
      // k = 8, not the default k = 1: a weave has several normal local appearances (crossings, threads, gaps)
      // and one centroid (the mean direction) cannot hold them all, so normal locations stay far from it.
      // Measured on this exact setup (seed 2, MobileNetV2-int8 features exact to the ONNX definition, same held-out
      // set): k = 1 gives AUROC 0.78 with this schedule; k = 8 gives 1.00. Texture-like surfaces need k > 1.
      { epochs: 10, stepsPerEpoch: 4, pairsPerStep: 6, seed: 2, k: 8 },
      { onEpoch: (r) => epochsSeen.push(r.epoch) },
    );
    expect(epochsSeen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(history[0].parts?.reconstruction).toBeGreaterThan(0);
    // Held-out test: new clean textures and blur defects made from other new textures (other seeds).
    const clean = textures(12, 100);
    const defected = textures(12, 200).map((t, i) => blur(t, 1000 + i).image);
    const { scores, heatmaps } = await head.predict(await extract([...clean, ...defected]));
    const labels = [...clean.map(() => 0), ...defected.map(() => 1)];
    const auroc = rocAuc(scores, labels);
    expect(auroc).toBeGreaterThan(0.9);
    // The default 2×2 average pool after the embedder (the paper's): the 14×14 map scores on a 7×7 grid.
    expect(head.grid).toEqual([7, 7]);
    expect(heatmaps[0].length).toBe(7 * 7);
    // Saved and restored heads score the same.
    const back = CseHead.fromArtifacts(await head.toArtifacts());
    const again = await back.predict(await extract(clean.slice(0, 2)));
    expect(Array.from(again.scores)).toEqual(Array.from(scores.slice(0, 2)));
    head.dispose();
    back.dispose();
    await bb.release();
  }, 600_000);

  it('same seed → same weights (pairs, init and k-means seeded)', async () => {
    await initTf('cpu');
    const rng = new Rng(4);
    const maps = Array.from({ length: 6 }, () => ({
      data: rng.normalArray(8 * 3 * 3),
      dims: [8, 3, 3] as const,
    }));
    const source = async (r: Rng) => {
      const a = maps[r.int(0, 6)];
      const other = { data: a.data.map((v, i) => (i % 9 === 4 ? v + 3 : v)), dims: a.dims };
      const defect = new Float32Array(9);
      defect[4] = 1;
      return { anchor: a, other, defect };
    };
    const opts = { epochs: 2, stepsPerEpoch: 3, pairsPerStep: 2, hidden: 8, embedDim: 4, k: 2, seed: 9 };
    const a = await trainCseHead(maps, source, opts);
    const b = await trainCseHead(maps, source, opts);
    const wa = await a.head.weights();
    const wb = await b.head.weights();
    for (const k of Object.keys(wa)) expect(Array.from(wb[k])).toEqual(Array.from(wa[k]));
    expect(a.head.centroids.map((c) => Array.from(c))).toEqual(b.head.centroids.map((c) => Array.from(c)));
    a.head.dispose();
    b.head.dispose();
  });

  it('spherical k-means finds two opposite clusters and k = 1 is the mean direction', () => {
    const rows = new Float32Array([1, 0, 0.99, 0.141, -1, 0, -0.99, -0.141]);
    const c2 = sphericalKMeans(rows, 2, 2, new Rng(1));
    const xs = c2.map((c) => Math.sign(c[0])).sort();
    expect(xs).toEqual([-1, 1]);
    const c1 = sphericalKMeans(new Float32Array([1, 0, 0, 1]), 2, 1, new Rng(1));
    expect(c1[0][0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(c1[0][1]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('maps a pixel mask to feature-grid cells after the same preprocessing', () => {
    const mask = { width: 8, height: 8, channels: 1 as const, data: new Uint8ClampedArray(64) };
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) mask.data[y * 8 + x] = 255; // top-left quarter
    const g = maskToGrid(mask, imagenetPreprocess(8, 8), 2, 2);
    expect(Array.from(g)).toEqual([1, 0, 0, 0]);
  });
});

describe('CSE head memory', () => {
  it('create + dispose leaves no tfjs tensor behind (the long-run faults spec found 9 per training)', async () => {
    await initTf('cpu');
    const before = tf.memory().numTensors;
    const o = cseOptions({ hidden: 8, embedDim: 4 });
    for (let i = 0; i < 3; i++) {
      const head = CseHead.create([6, 2, 2], o, new Float32Array(6), new Float32Array(6).fill(1), new Rng(i));
      head.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { averagePrecision, rocAuc } from '../../src/core/metrics/index.ts';
import { trainSpatialHead } from '../../src/runtime/heads/spatial.ts';
import { composeTrainingSet } from '../../src/runtime/heads/stream.ts';
import { initTf } from '../../src/runtime/tf.ts';
import { BceHead, trainBceHead } from '../../src/runtime/heads/bce.ts';
import { exportHeadFiles, importHeadFiles } from '../../src/runtime/heads/common.ts';

/**
 * Linearly separable data: x ~ N(0, I_D) pushed to distance ≥ 1 from the plane along a random unit direction u, label = side of the
 * hyperplane u·x = 0 (so a linear head can reach AP 1; AP > 0.99 leaves room for a few ties near the plane).
 */
function separable(n: number, d: number, seed: number) {
  const rng = new Rng(seed);
  const u = rng.normalArray(d);
  const norm = Math.hypot(...u);
  u.forEach((v, i) => (u[i] = v / norm));
  const x: Float32Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 3 === 0 ? 1 : 0; // 1:2 imbalance exercises class weighting
    const v = rng.normalArray(d);
    let proj = 0;
    for (let j = 0; j < d; j++) proj += v[j] * u[j];
    const shift = (label ? 1 : -1) * (1 + Math.abs(proj)) - proj;
    for (let j = 0; j < d; j++) v[j] += shift * u[j] + 3; // + 3: features need standardizing, like ReLU outputs
    x.push(v);
    y.push(label);
  }
  return { x, y };
}

describe('BCE head', () => {
  it('reaches AP > 0.99 on held-out linearly separable features with the default hyper-parameters', async () => {
    await initTf('cpu');
    // One draw, so train and test share the separating direction.
    const all = separable(600, 32, 1);
    const train = { x: all.x.slice(0, 400), y: all.y.slice(0, 400) };
    const test = { x: all.x.slice(400), y: all.y.slice(400) };
    const epochs: number[] = [];
    const { head, history } = await trainBceHead(
      train.x,
      train.y,
      { seed: 3 },
      { onEpoch: (r) => epochs.push(r.loss) },
    );
    const ap = averagePrecision(await head.predict(test.x), test.y);
    expect(ap).toBeGreaterThan(0.99);
    expect(history.length).toBe(epochs.length);
    expect(epochs.at(-1)!).toBeLessThan(epochs[0]);
    head.dispose();
  });

  it('same seed → same weights; another seed → other weights (hidden layer)', async () => {
    await initTf('cpu');
    const d = separable(80, 16, 5);
    const opts = { seed: 11, hidden: 8, epochs: 5, learningRate: 1e-3 };
    const a = await trainBceHead(d.x, d.y, opts);
    const b = await trainBceHead(d.x, d.y, opts);
    const c = await trainBceHead(d.x, d.y, { ...opts, seed: 12 });
    const wa = await a.head.weights();
    const wb = await b.head.weights();
    const wc = await c.head.weights();
    for (const k of Object.keys(wa)) expect(Array.from(wb[k])).toEqual(Array.from(wa[k]));
    expect(Array.from(wc.w1)).not.toEqual(Array.from(wa.w1));
    [a, b, c].forEach((r) => r.head.dispose());
  });

  it('round-trips through exported model.json + weights.bin with identical scores', async () => {
    await initTf('cpu');
    const d = separable(60, 8, 9);
    const { head } = await trainBceHead(d.x, d.y, { epochs: 3, hidden: 4 });
    const files = exportHeadFiles(await head.toArtifacts(), { backbone: 'x', threshold: 0.5 });
    expect(files.map((f) => f.name)).toEqual(['head.model.json', 'head.weights.bin', 'head.metadata.json']);
    const json = new TextDecoder().decode(files[0].data);
    expect(JSON.parse(json).weightsManifest[0].paths).toEqual(['head.weights.bin']);
    const back = BceHead.fromArtifacts(importHeadFiles(json, files[1].data));
    expect(Array.from(await back.predict(d.x))).toEqual(Array.from(await head.predict(d.x)));
    head.dispose();
    back.dispose();
  });

  it('names the problem when a class is missing', async () => {
    await initTf('cpu');
    const x = [new Float32Array([1, 2]), new Float32Array([2, 3]), new Float32Array([3, 4])];
    await expect(trainBceHead(x, [0, 0, 0])).rejects.toThrow(/both classes.*fix:/);
  });
});

describe('spatial head', () => {
  it('learns a local defect: AUROC > 0.95 on held-out maps and the heat map peaks at the defect', async () => {
    await initTf('wasm');
    const rng = new Rng(21);
    const C = 8;
    const make = (defect: boolean) => {
      const data = rng.normalArray(C * 16); // [8, 4, 4]
      let where = -1;
      if (defect) {
        where = rng.int(0, 16);
        data[2 * 16 + where] += 4; // channel 2 lights up at one location
      }
      return { map: { data, dims: [C, 4, 4] as const }, where };
    };
    const train = Array.from({ length: 120 }, (_, i) => make(i % 2 === 1));
    const test = Array.from({ length: 60 }, (_, i) => make(i % 2 === 1));
    const { head } = await trainSpatialHead(
      train.map((t) => t.map),
      train.map((t) => (t.where >= 0 ? 1 : 0)),
      { epochs: 30, learningRate: 1e-2, seed: 1 },
    );
    const { scores, heatmaps } = await head.predict(test.map((t) => t.map));
    const labels = test.map((t) => (t.where >= 0 ? 1 : 0));
    expect(rocAuc(scores, labels)).toBeGreaterThan(0.95);
    const peaks = test
      .filter((t) => t.where >= 0)
      .map((t, i) => {
        const m = heatmaps[2 * i + 1];
        return m.indexOf(Math.max(...m)) === t.where;
      });
    expect(peaks.filter(Boolean).length / peaks.length).toBeGreaterThan(0.9);
    head.dispose();
  });
});

describe('training streams', () => {
  it('concat keeps every row; ISP-AD mixed supervision balances normal/synthetic and injects real with p = 1/32', () => {
    const pools = {
      normal: Array.from({ length: 100 }, (_, i) => `n${i}`),
      synthetic: Array.from({ length: 100 }, (_, i) => `s${i}`),
      real: Array.from({ length: 10 }, (_, i) => `r${i}`),
    };
    const c = composeTrainingSet(pools, { mode: 'concat' }, new Rng(1));
    expect(c.rows.length).toBe(210);
    expect(c.labels.filter((l) => l === 1).length).toBe(110);
    const m = composeTrainingSet(pools, { mode: 'mixed', length: 6400 }, new Rng(2));
    const count = (s: string) => m.sources.filter((x) => x === s).length;
    // Binomial(6400, 1/32): mean 200, sd ≈ 14; ±60 is over 4 sd.
    expect(Math.abs(count('real') - 200)).toBeLessThan(60);
    expect(Math.abs(count('normal') - count('synthetic'))).toBeLessThanOrEqual(1);
    m.rows.forEach((r, i) => expect(m.labels[i]).toBe(r.startsWith('n') ? 0 : 1));
    const none = composeTrainingSet(pools, { mode: 'mixed', length: 640, realProbability: 0 }, new Rng(3));
    expect(none.sources.includes('real')).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { averagePrecision, rocAuc } from '../../src/core/metrics/index.ts';
import { trainSpatialHead } from '../../src/runtime/heads/spatial.ts';
import { composeTrainingSet } from '../../src/runtime/heads/stream.ts';
import { initTf } from '../../src/runtime/tf.ts';
import { trainBceHead } from '../../src/runtime/heads/bce.ts';
import { fitBinary, stratifiedSplit, supervisedOptions } from '../../src/runtime/heads/common.ts';
import { tf } from '../../src/runtime/tf.ts';

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

  it('class weighting: the fitted head balances the classes; without it, it matches the base rate', async () => {
    await initTf('cpu');
    // Overlapping classes at 1:9. At the optimum of a logistic regression the bias gradient is zero, so the mean
    // predicted probability equals the (weighted) mean label: 0.1 unweighted; with weights n / (2·n_class) the
    // class means of p average to 0.5. Both are properties of the loss, not of this code.
    const rng = new Rng(8);
    const x: Float32Array[] = [];
    const y: number[] = [];
    for (let i = 0; i < 400; i++) {
      const label = i % 10 === 0 ? 1 : 0;
      x.push(rng.normalArray(4).map((v, j) => v + (j === 0 ? label : 0)));
      y.push(label);
    }
    // Full batches: the loss normalizes by the batch's weight sum, so only a full batch is the exact weighted mean.
    const opts = { epochs: 500, batchSize: 400, learningRate: 0.05, validationFraction: 0, seed: 1 };
    const meanOf = (p: Float32Array, cls: number) => {
      const v = Array.from(p).filter((_, i) => y[i] === cls);
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    const weighted = await trainBceHead(x, y, { ...opts, classWeighting: true });
    const pw = await weighted.head.predict(x);
    expect(Math.abs(0.5 * (meanOf(pw, 0) + meanOf(pw, 1)) - 0.5)).toBeLessThan(0.005);
    const plain = await trainBceHead(x, y, { ...opts, classWeighting: false });
    const pp = await plain.head.predict(x);
    const meanAll = Array.from(pp).reduce((a, b) => a + b, 0) / pp.length;
    expect(Math.abs(meanAll - 0.1)).toBeLessThan(0.005);
    // The weighted head flags far more defects at p ≥ 0.5 (it is not taught "always normal").
    const hits = (p: Float32Array) => Array.from(p).filter((v, i) => y[i] === 1 && v >= 0.5).length;
    expect(hits(pw)).toBeGreaterThan(hits(pp) + 10);
    weighted.head.dispose();
    plain.head.dispose();
  });

  it('early stopping: stops `patience` epochs after the best validation loss and restores those weights', async () => {
    await initTf('cpu');
    // Random labels and more features than a validation set can support: the training loss keeps falling while
    // the validation loss turns up, so the loop must stop early.
    const rng = new Rng(13);
    const n = 80;
    const d = 40;
    const x = Array.from({ length: n }, () => rng.normalArray(d));
    const labels = Array.from({ length: n }, (_, i) => (rng.next() < 0.5 || i < 2 ? 1 : 0));
    labels[2] = 0;
    const o = supervisedOptions({ epochs: 300, learningRate: 0.05, batchSize: 16, patience: 4 });
    const data = tf.tensor2d(
      x.flatMap((r) => Array.from(r)),
      [n, d],
    );
    const w = tf.variable(tf.zeros([d, 1]));
    const b = tf.variable(tf.zeros([1]));
    const forward = (t: tf.Tensor) =>
      tf.reshape(tf.add(tf.matMul(t as tf.Tensor2D, w), b), [-1]) as tf.Tensor1D;
    const fit = await fitBinary({
      labels,
      batch: (idx) => tf.gather(data, Int32Array.from(idx)),
      forward,
      variables: [w, b],
      options: o,
      rng: new Rng('early'),
    });
    expect(fit.stopped).toBe('early');
    expect(fit.history.length).toBeLessThan(o.epochs);
    const val = fit.history.map((h) => h.valLoss!);
    const best = val.indexOf(Math.min(...val));
    expect(best).toBe(val.length - 1 - o.patience);
    expect(val.at(-1)!).toBeGreaterThan(val[best]);
    // The same seeded Rng draws the same stratified split first, so the validation rows are known here.
    const { train, val: vIdx } = stratifiedSplit(labels, o.validationFraction, new Rng('early'));
    const npos = train.filter((i) => labels[i] === 1).length;
    const wPos = train.length / (2 * npos);
    const wNeg = train.length / (2 * (train.length - npos));
    const z = await forward(tf.gather(data, Int32Array.from(vIdx))).data();
    let num = 0;
    let den = 0;
    vIdx.forEach((i, k) => {
      const wt = labels[i] ? wPos : wNeg;
      num += wt * (Math.max(z[k], 0) - z[k] * labels[i] + Math.log1p(Math.exp(-Math.abs(z[k]))));
      den += wt;
    });
    // The restored weights are the best epoch's: their validation loss is the minimum, not the last one.
    expect(num / den).toBeCloseTo(val[best], 5);
    [data, w, b].forEach((t) => t.dispose());
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

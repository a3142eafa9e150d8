/**
 * PatchCore against brute force on small random data: every step written out here the slow, obvious way in
 * float64 (3×3 clipped neighbourhood means, bilinear resize by its definition, nearest neighbour by scanning the
 * whole bank, a 2-D (not separable) Gaussian with reflected borders, the paper's reweighting). Tolerance: 1e-5
 * relative on scores and patch distances (the head keeps features in float32; the brute force does not).
 * The coreset is checked by its purpose: a smaller covering radius than random subsets of the same size.
 */
import { describe, expect, it } from 'vitest';
import { benchmarkPatchCoreScoring } from '../../src/app/patchcore.ts';
import { greedyCoreset, principalBound, randomProjection } from '../../src/core/patchcore/coreset.ts';
import { type TapMap, patchFeatures } from '../../src/core/patchcore/features.ts';
import { anomalyMap, gaussianBlur, upsampleBilinear } from '../../src/core/patchcore/score.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  PatchCoreHead,
  type PatchCoreRuntime,
  patchCoreOptions,
  projectRows,
  trainPatchCore,
} from '../../src/runtime/heads/patchcore.ts';
import { nodePatchCoreRuntime } from '../../src/runtime/heads/patchcore-node.ts';
import { initTf } from '../../src/runtime/tf.ts';

function randomMap(rng: Rng, C: number, h: number, w: number): TapMap {
  const data = new Float32Array(C * h * w);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() + (i % 7) * 0.1;
  return { data, dims: [C, h, w] };
}

/** Brute-force locally aware patch features `[h·w][D]` (float64 rows). */
function bruteFeatures(maps: TapMap[]): { rows: number[][]; h: number; w: number } {
  const [h, w] = maps.reduce<[number, number]>(
    (g, m) => (m.dims[1] * m.dims[2] > g[0] * g[1] ? [m.dims[1], m.dims[2]] : g),
    [0, 0],
  );
  const rows: number[][] = Array.from({ length: h * w }, () => []);
  for (const m of maps) {
    const [C, mh, mw] = m.dims;
    const at = (c: number, i: number, j: number) => m.data[c * mh * mw + i * mw + j];
    const avg = (c: number, i: number, j: number) => {
      let s = 0;
      let n = 0;
      for (let di = -1; di <= 1; di++)
        for (let dj = -1; dj <= 1; dj++)
          if (i + di >= 0 && i + di < mh && j + dj >= 0 && j + dj < mw) {
            s += at(c, i + di, j + dj);
            n++;
          }
      return s / n;
    };
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < C; c++) {
          // torch bilinear, align_corners=False: source coordinate (dst + ½)·scale − ½, clamped.
          const fy = Math.min(Math.max(((y + 0.5) * mh) / h - 0.5, 0), mh - 1);
          const fx = Math.min(Math.max(((x + 0.5) * mw) / w - 0.5, 0), mw - 1);
          const y0 = Math.floor(fy);
          const x0 = Math.floor(fx);
          const y1 = Math.min(y0 + 1, mh - 1);
          const x1 = Math.min(x0 + 1, mw - 1);
          const v =
            avg(c, y0, x0) * (1 - (fy - y0)) * (1 - (fx - x0)) +
            avg(c, y0, x1) * (1 - (fy - y0)) * (fx - x0) +
            avg(c, y1, x0) * (fy - y0) * (1 - (fx - x0)) +
            avg(c, y1, x1) * (fy - y0) * (fx - x0);
          rows[y * w + x].push(v);
        }
  }
  return { rows, h, w };
}

const dist = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += (a[k] - b[k]) ** 2;
  return Math.sqrt(s);
};

/** Brute-force image score: map max after upsampling + 2-D Gaussian, and the paper's reweighted s*. */
function bruteScore(maps: TapMap[], bank: number[][], H: number, W: number, sigma: number, b: number) {
  const { rows, h, w } = bruteFeatures(maps);
  const nn = rows.map((r) => {
    let best = 0;
    for (let m = 1; m < bank.length; m++) if (dist(r, bank[m]) < dist(r, bank[best])) best = m;
    return { m: best, d: dist(r, bank[best]) };
  });
  const up: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const fy = Math.min(Math.max(((y + 0.5) * h) / H - 0.5, 0), h - 1);
      const fx = Math.min(Math.max(((x + 0.5) * w) / W - 0.5, 0), w - 1);
      const y0 = Math.floor(fy);
      const x0 = Math.floor(fx);
      const y1 = Math.min(y0 + 1, h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const g = (i: number, j: number) => nn[i * w + j].d;
      up.push(
        g(y0, x0) * (1 - (fy - y0)) * (1 - (fx - x0)) +
          g(y0, x1) * (1 - (fy - y0)) * (fx - x0) +
          g(y1, x0) * (fy - y0) * (1 - (fx - x0)) +
          g(y1, x1) * (fy - y0) * (fx - x0),
      );
    }
  const r = Math.floor(4 * sigma + 0.5);
  const refl = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  let z = 0;
  for (let dy = -r; dy <= r; dy++)
    for (let dx = -r; dx <= r; dx++) z += Math.exp(-(dy * dy + dx * dx) / (2 * sigma ** 2));
  let mapMax = -Infinity;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let dy = -r; dy <= r; dy++)
        for (let dx = -r; dx <= r; dx++)
          s +=
            (Math.exp(-(dy * dy + dx * dx) / (2 * sigma ** 2)) / z) *
            up[refl(y + dy, H) * W + refl(x + dx, W)];
      mapMax = Math.max(mapMax, s);
    }
  let worst = 0;
  for (let p = 1; p < nn.length; p++) if (nn[p].d > nn[worst].d) worst = p;
  const mStar = nn[worst].m;
  const byDist = bank.map((v, m) => ({ m, d: dist(bank[mStar], v) })).sort((a, c) => a.d - c.d || a.m - c.m);
  const support = [mStar, ...byDist.map((e) => e.m).filter((m) => m !== mStar)].slice(0, b);
  const ds = support.map((m) => dist(rows[worst], bank[m]));
  const soft = Math.exp(ds[0]) / ds.reduce((s, d) => s + Math.exp(d), 0);
  return { mapMax, reweighted: (1 - soft) * nn[worst].d, patch: nn.map((e) => e.d) };
}

const close = (got: number, want: number, rel = 1e-5) =>
  expect(Math.abs(got - want)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want)));

describe('PatchCore head vs brute force (small random data)', () => {
  // The Node entry points' runtime (onnxruntime-node search, threaded coreset) must give the tfjs path's
  // scores: the same brute-force reference and tolerance for both.
  const runtimes: [string, () => PatchCoreRuntime][] = [
    ['tfjs', () => ({})],
    ['onnxruntime-node', () => nodePatchCoreRuntime()],
  ];
  it.each(runtimes)(
    'patch features, nearest-neighbour distances, smoothed-map maximum and reweighted score are the brute-force ones (%s search)',
    async (_, makeRuntime) => {
      await initTf('cpu');
      const runtime = makeRuntime();
      const rng = new Rng('patchcore-brute');
      // Two taps on different grids (8×8 and 4×4), like stride 8 and 16.
      const image = () => [randomMap(rng, 4, 8, 8), randomMap(rng, 6, 4, 4)];
      const normals = Array.from({ length: 5 }, image);
      const queries = Array.from({ length: 3 }, image);
      for (let c = 0; c < 4; c++) queries[2][0].data[c * 64 + 20] += 40; // one anomalous cell
      for (const coresetRatio of [1, 0.3]) {
        const { head, patches, bankSize } = await trainPatchCore(
          normals.map((maps) => ({ maps, frame: { width: 32, height: 24 } })),
          { taps: ['a', 'b'], coresetRatio, projectionDim: 4, neighbours: 3, sigma: 2 },
          { runtime },
        );
        expect(patches).toBe(5 * 64);
        expect(bankSize).toBe(coresetRatio === 1 ? 320 : 96);
        const bankRows = Array.from({ length: bankSize }, (_, m) =>
          Array.from(head.bank.subarray(m * 10, (m + 1) * 10)),
        );
        // Every bank row is a real normal patch feature (float32 of the brute-force feature).
        const normalRows = normals.flatMap((m) => bruteFeatures(m).rows);
        for (const r of bankRows.slice(0, 10))
          expect(Math.min(...normalRows.map((n) => dist(n, r)))).toBeLessThan(1e-5);
        const p = await head.predict(queries.map((maps) => ({ maps })));
        const rwHead = PatchCoreHead.fromBank(
          head.bank,
          head.dim,
          patchCoreOptions({ ...head.options, imageScore: 'reweighted' }),
          head.frame,
          runtime,
        );
        const rw = await rwHead.predict(queries.map((maps) => ({ maps })));
        rwHead.dispose();
        for (let i = 0; i < queries.length; i++) {
          const want = bruteScore(queries[i], bankRows, 24, 32, 2, 3);
          want.patch.forEach((d, k) => close(p.patchScores[i][k], d));
          close(p.scores[i], want.mapMax);
          close(p.reweighted[i], want.reweighted);
          close(rw.scores[i], want.reweighted);
          expect(p.heatmaps[i].length).toBe(24 * 32);
        }
        // The anomalous query scores highest.
        expect(argmaxOf(p.scores)).toBe(2);
        // Stored and restored: same scores.
        const back = PatchCoreHead.fromArtifacts(await head.toArtifacts(), runtime);
        const q = await back.predict(queries.map((maps) => ({ maps })));
        expect(Array.from(q.scores)).toEqual(Array.from(p.scores));
        back.dispose();
        head.dispose();
      }
    },
  );

  it.each(['cpu', 'wasm'] as const)(
    'the tfjs fused matMul search (%s) finds the same neighbours as a scan on a 2000-row bank',
    async (backend) => {
      await initTf(backend);
      const rng = new Rng('nn');
      const D = 24;
      const bank = rng.normalArray(2000 * D);
      const head = PatchCoreHead.fromBank(bank, D, patchCoreOptions({ taps: ['x'] }), [8, 8]);
      const q = rng.normalArray(300 * D);
      const { index, dist: got } = await head.nearest(q, 300);
      for (let r = 0; r < 300; r++) {
        let best = Infinity;
        for (let m = 0; m < 2000; m++)
          best = Math.min(best, dist(q.subarray(r * D, (r + 1) * D), bank.subarray(m * D, (m + 1) * D)));
        close(got[r], best);
        close(dist(q.subarray(r * D, (r + 1) * D), bank.subarray(index[r] * D, (index[r] + 1) * D)), best);
      }
      head.dispose();
    },
  );

  it('names bad input: wrong channel count, empty taps, ratio out of range', async () => {
    await initTf('cpu');
    const rng = new Rng('bad');
    const { head } = await trainPatchCore([{ maps: [randomMap(rng, 4, 4, 4)] }], { taps: ['s8'] });
    await expect(head.predict([{ maps: [randomMap(rng, 5, 4, 4)] }])).rejects.toThrow(
      /patchcore input must be maps of the taps s8 \(4 channels\), got "5 channels".*fix:/,
    );
    expect(() => patchCoreOptions({ taps: [] })).toThrow(/patchcore.taps/);
    expect(() => patchCoreOptions({ coresetRatio: 0 })).toThrow(/patchcore.coresetRatio must be in \(0, 1\]/);
    head.dispose();
  });
});

function argmaxOf(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Covering radius: the largest distance from any point to its nearest centre (full-dimensional features). */
function coveringRadius(x: Float32Array, N: number, D: number, centres: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < N; i++) {
    let best = Infinity;
    for (let k = 0; k < centres.length; k++) {
      const c = centres[k];
      best = Math.min(best, dist(x.subarray(i * D, (i + 1) * D), x.subarray(c * D, (c + 1) * D)));
    }
    worst = Math.max(worst, best);
  }
  return worst;
}

describe('benchmarkPatchCoreScoring (the bench figure of Node and the train worker)', () => {
  it('scores on the chosen backend and reports the shapes it measured', async () => {
    await initTf('wasm');
    const r = await benchmarkPatchCoreScoring({ bankRows: 300, runs: 1 });
    expect(r).toMatchObject({ tfBackend: 'wasm', bankRows: 300, dim: 256, patches: 196, runs: 1 });
    expect(r.predictMs).toBeGreaterThan(0);
    expect(r.nearestMs).toBeGreaterThan(0);
  });
});

describe('anomaly map as A · M · Bᵀ', () => {
  it('equals bilinear upsampling then the separable reflected Gaussian (1e-6 of the map range)', () => {
    const rng = new Rng('map');
    // 14² → 224² with σ = 4 (the default), a non-square grid and frame, a frame smaller than the kernel
    // (reflection wraps more than once), a 1-cell axis, and σ = 0 (upsampling only).
    for (const [h, w, H, W, sigma] of [
      [14, 14, 224, 224, 4],
      [5, 7, 24, 40, 2],
      [3, 4, 6, 9, 4],
      [1, 6, 8, 30, 1.5],
      [6, 6, 48, 48, 0],
    ]) {
      const m = Float32Array.from({ length: h * w }, () => Math.abs(rng.normal()) * 3);
      const up = upsampleBilinear(m, h, w, H, W);
      const want = sigma > 0 ? gaussianBlur(up, H, W, sigma) : up;
      const got = anomalyMap(m, h, w, H, W, sigma);
      expect(got.length).toBe(H * W);
      for (let i = 0; i < want.length; i++)
        expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-6 * 3 * 4);
    }
    expect(() => anomalyMap(new Float32Array(5), 2, 3, 8, 8)).toThrow(/patch distances must be 2×3 values/);
  });
});

describe('greedy coreset (random projection) covers better than random subsampling', () => {
  it('covering radius of a 2 % coreset of 3000 clustered 256-d patches is below every one of 10 random subsets', () => {
    const rng = new Rng('coreset');
    const N = 3000;
    const D = 256;
    const centres = Array.from({ length: 12 }, () => rng.normalArray(D));
    const x = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      // Unequal clusters plus a few outliers: random subsets miss small clusters, k-centre does not.
      const c = i < 2000 ? 0 : i < 2990 ? 1 + (i % 10) : 11;
      const spread = c === 11 ? 3 : 0.3;
      for (let k = 0; k < D; k++) x[i * D + k] = centres[c][k] * 4 + rng.normal() * spread;
    }
    const n = 60;
    const greedy = greedyCoreset(x, N, D, n, { projectionDim: 128, seed: 1 });
    expect(new Set(greedy).size).toBe(n);
    const rg = coveringRadius(x, N, D, greedy);
    for (let s = 0; s < 10; s++) {
      const idx = new Rng(`random-subset:${s}`).shuffle(Array.from({ length: N }, (_, i) => i)).slice(0, n);
      expect(rg).toBeLessThan(coveringRadius(x, N, D, idx));
    }
    // Same seed, same coreset.
    expect(Array.from(greedyCoreset(x, N, D, n, { projectionDim: 128, seed: 1 }))).toEqual(
      Array.from(greedy),
    );
  });

  it('the tfjs projection equals the core one (same matrix; float32 sums, 1e-4 relative)', async () => {
    await initTf('cpu');
    const x = new Rng('proj').normalArray(500 * 200);
    const a = randomProjection(x, 500, 200, 64, 3);
    const b = await projectRows(x, 500, 200, 64, 3);
    expect(a.dim).toBe(64);
    for (let i = 0; i < a.data.length; i++) close(b[i], a.data[i], 1e-4);
  });

  it('without projection it is the exact greedy k-centre (each pick is the farthest point at that step)', () => {
    const rng = new Rng('exact');
    const N = 400;
    const D = 8;
    const x = rng.normalArray(N * D);
    const sel = greedyCoreset(x, N, D, 20, { projectionDim: 64 });
    for (let k = 1; k < 20; k++) {
      const prev = Array.from(sel.subarray(0, k));
      let far = -1;
      let farD = -1;
      for (let i = 0; i < N; i++) {
        const d = Math.min(
          ...prev.map((c) => dist(x.subarray(i * D, (i + 1) * D), x.subarray(c * D, (c + 1) * D))),
        );
        if (d > farD) {
          farD = d;
          far = i;
        }
      }
      expect(sel[k]).toBe(far);
    }
  });

  it('with projection and early-stopped distances it picks exactly what a plain float64 scan of every row picks (ties included)', () => {
    const rng = new Rng('plain-scan');
    const N = 1500;
    const D = 160;
    const centres = Array.from({ length: 6 }, () => rng.normalArray(D));
    const x = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      // Every 50th row repeats row 0 (ties at distance 0 once row 0 is a centre).
      const src = i % 50 === 0 ? 0 : i;
      for (let k = 0; k < D; k++)
        x[i * D + k] = src === i ? centres[i % 6][k] * 3 + rng.normal() * 0.5 : x[k];
    }
    const n = 120;
    const sel = greedyCoreset(x, N, D, n, { projectionDim: 32, seed: 2 });
    // The plain scan: same projection and first pick, every distance in full, first index on ties.
    const p = randomProjection(x, N, D, 32, 2);
    const d = p.dim;
    const minD = new Float64Array(N).fill(Infinity);
    const want = [sel[0]];
    for (let k = 1; k < n; k++) {
      const c = want[k - 1];
      minD[c] = -1;
      let best = -1;
      for (let i = 0; i < N; i++) {
        if (minD[i] < 0) continue;
        let s = 0;
        for (let j = 0; j < d; j++) s += (p.data[i * d + j] - p.data[c * d + j]) ** 2;
        minD[i] = Math.min(minD[i], s);
        if (best < 0 || minD[i] > minD[best]) best = i;
      }
      want.push(best);
    }
    expect(Array.from(sel)).toEqual(want);
  });

  it('the principal-subspace bound never exceeds a distance, is tight enough to matter, and keeps the picks', () => {
    const rng = new Rng('bound');
    const N = 2000;
    const D = 64;
    // Low-rank rows plus noise, as CNN patch features: most variance in a few directions.
    const basis = Array.from({ length: 6 }, () => rng.normalArray(D));
    const x = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      const w = Array.from({ length: 6 }, () => rng.normal() * 3);
      for (let k = 0; k < D; k++)
        x[i * D + k] = w.reduce((s, c, b) => s + c * basis[b][k], 0) + rng.normal() * 0.2;
    }
    const pb = principalBound(x, N, D);
    expect(pb.r).toBe(16);
    let tight = 0;
    for (let t = 0; t < 500; t++) {
      const [i, j] = [rng.int(0, N), rng.int(0, N)];
      let b = 0;
      for (let c = 0; c < pb.r; c++) b += (pb.z[i * pb.r + c] - pb.z[j * pb.r + c]) ** 2;
      const full = dist(x.subarray(i * D, (i + 1) * D), x.subarray(j * D, (j + 1) * D)) ** 2;
      expect(b).toBeLessThanOrEqual(full * (1 + 1e-9) + 1e-12);
      if (b >= 0.8 * full) tight++;
    }
    expect(tight).toBeGreaterThan(400);
    // The picks on these rows (where the bound prunes most rows) are the exact k-centre's, step by step.
    const sel = greedyCoreset(x, N, D, 30, { projectionDim: D });
    const minD = new Float64Array(N).fill(Infinity);
    for (let k = 1; k < 30; k++) {
      const c = sel[k - 1];
      let far = -1;
      for (let i = 0; i < N; i++) {
        minD[i] = Math.min(minD[i], dist(x.subarray(i * D, (i + 1) * D), x.subarray(c * D, (c + 1) * D)));
        if (!sel.subarray(0, k).includes(i) && (far < 0 || minD[i] > minD[far])) far = i;
      }
      expect(sel[k]).toBe(far);
    }
  });

  it('patchFeatures on one tap with patch size 1 is the map transposed to [h·w, C]', () => {
    const rng = new Rng('t');
    const m = randomMap(rng, 3, 2, 5);
    const f = patchFeatures([m], { patchSize: 1 });
    expect([f.rows, f.dim, f.h, f.w]).toEqual([10, 3, 2, 5]);
    for (let p = 0; p < 10; p++)
      for (let c = 0; c < 3; c++) expect(f.data[p * 3 + c]).toBe(m.data[c * 10 + p]);
  });
});

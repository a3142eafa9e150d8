/**
 * The CSE paper's recipe as head options (Thomine & Snoussi; the authors' code github.com/SimonThomine/CSE):
 * reconstruction on the defect-free image only, two-map fusion, average pool after the embedder, Adam with the
 * one-cycle schedule, the best-validation checkpoint — each with the paper's value as the default.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cseFusionTaps, cseTrainer, SpatialMaps, type SpatialSource } from '../../src/app/heads.ts';
import { TapMaps, type TapSource } from '../../src/app/patchcore.ts';
import type { HeadSample } from '../../src/core/experiments/index.ts';
import { CSE_DEFAULTS as SCHEMA_DEFAULTS } from '../../src/core/experiments/head-options.ts';
import { createRaster } from '../../src/core/image.ts';
import { imagenetPreprocess } from '../../src/core/preprocess.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  CSE_DEFAULTS,
  CseHead,
  type CsePair,
  fuseMaps,
  oneCycleLr,
  poolDefects,
  poolGrid,
  trainCseHead,
} from '../../src/runtime/heads/cse.ts';
import type { FeatureMap } from '../../src/runtime/heads/spatial.ts';
import { initTf, tf } from '../../src/runtime/tf.ts';
import { parseGridConfig } from '../../server/grid-config.ts';

const map = (rng: Rng, c: number, h: number, w: number, scale = 1): FeatureMap => ({
  data: rng.normalArray(c * h * w).map((v) => v * scale),
  dims: [c, h, w],
});

beforeAll(async () => {
  await initTf('cpu');
});

describe('CSE recipe defaults', () => {
  it("are the paper's: lr 4e-4 one-cycle, fusion, 2×2 pool, reconstruction on the normal image, checkpoint", () => {
    for (const d of [CSE_DEFAULTS, SCHEMA_DEFAULTS]) {
      expect(d.learningRate).toBe(4e-4);
      expect(d.schedule).toBe('one-cycle');
      expect(d.fusion).toBe(true);
      expect(d.pool).toBe(2);
      expect(d.reconstruction).toBe('normal');
      expect(d.bestCheckpoint).toBe(true);
      expect(d.validationFraction).toBe(0.2);
    }
  });
});

describe('CSE reconstruction loss', () => {
  it('covers the defect-free anchors only, with BatchNorm statistics over both images', async () => {
    const rng = new Rng('recon');
    const anchor = map(rng, 6, 3, 3);
    // The other image is far off the normals' statistics: its reconstruction error dwarfs the anchor's.
    const other = map(rng, 6, 3, 3, 20);
    const pair: CsePair = { anchor, other, defect: new Float32Array(9) };
    const run = async (reconstruction: 'normal' | 'both') =>
      trainCseHead([anchor, map(rng, 6, 3, 3)], async () => pair, {
        epochs: 1,
        stepsPerEpoch: 1,
        pairsPerStep: 1,
        hidden: 8,
        embedDim: 4,
        // A vanishing step: the weights after the step are the ones the reported loss was computed with.
        learningRate: 1e-12,
        schedule: 'constant',
        pool: 1,
        reconstruction,
        seed: 3,
      });
    for (const which of ['normal', 'both'] as const) {
      const { head, history } = await run(which);
      const [exNormal, exBoth] = tf.tidy(() => {
        const xa = head.locations([anchor]);
        const x = tf.concat([xa, head.locations([other])], 0) as tf.Tensor2D;
        const { e } = head.embed(x, true);
        const rec = tf.matMul(e, head.fixed.wd);
        const n = xa.shape[0];
        return [
          tf.mean(tf.square(tf.sub(tf.slice(rec, [0, 0], [n, -1]), xa))).dataSync()[0],
          tf.mean(tf.square(tf.sub(rec, x))).dataSync()[0],
        ];
      });
      const got = history[0].parts!.reconstruction;
      // Float32 sums of a few hundred terms: relative 1e-4.
      expect(Math.abs(got - (which === 'normal' ? exNormal : exBoth))).toBeLessThan(1e-4 * got);
      expect(exBoth).toBeGreaterThan(10 * exNormal);
      head.dispose();
    }
  });
});

describe('CSE two-map fusion', () => {
  it('concatenates the fine map with the coarse map bilinearly upsampled with aligned corners', () => {
    const fine: FeatureMap = { data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), dims: [1, 3, 3] };
    const coarse: FeatureMap = { data: Float32Array.from([0, 1, 2, 3, 10, 10, 10, 10]), dims: [2, 2, 2] };
    const f = fuseMaps(fine, coarse);
    expect(f.dims).toEqual([3, 3, 3]);
    expect(Array.from(f.data.subarray(0, 9))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // align_corners = True: corners map onto corners, the centre is the mean of the four.
    expect(Array.from(f.data.subarray(9, 18))).toEqual([0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3]);
    expect(Array.from(f.data.subarray(18, 27))).toEqual(new Array(9).fill(10));
  });

  it('is used by the CSE trainer when the backbone has taps s16 + s32, and recorded with the head', async () => {
    const pre = imagenetPreprocess(16, 16);
    const images = Array.from({ length: 5 }, (_, i) => {
      const r = createRaster(16, 16, 3);
      const g = new Rng(`img${i}`);
      for (let k = 0; k < r.data.length; k++) r.data[k] = g.int(0, 256);
      return r;
    });
    // Maps made from the pixels (so synthetic defects change them): fine 3×4×4, coarse 5×2×2.
    const feats = (img: (typeof images)[number], c: number, s: number): FeatureMap => {
      const n = 16 / s;
      const d = new Float32Array(c * n * n);
      for (let k = 0; k < d.length; k++) d[k] = img.data[(k * 7) % img.data.length] / 255 + k * 1e-3;
      return { data: d, dims: [c, n, n] };
    };
    const spatial: SpatialSource = {
      preprocess: pre,
      spatial: async (imgs) => imgs.map((im) => feats(im, 7, 8)),
    };
    let tapCalls = 0;
    const tapSource: TapSource = {
      preprocess: pre,
      taps: async (imgs, names) => {
        tapCalls++;
        return imgs.map((im) =>
          Object.fromEntries(names.map((t) => [t, t === 's16' ? feats(im, 3, 4) : feats(im, 5, 8)])),
        );
      },
    };
    const rows: HeadSample[] = images.map((im, i) => ({
      id: `img:${i}`,
      features: new Float32Array(1),
      label: 0,
      source: 'normal',
      load: async () => im,
    }));
    const flip = (im: (typeof images)[number]) => {
      const out = createRaster(16, 16, 3);
      out.data.set(im.data.map((v) => 255 - v));
      const mask = createRaster(16, 16, 1);
      mask.data.fill(255, 0, 64);
      return { image: out, mask };
    };
    const cse = { stepsPerEpoch: 2, pairsPerStep: 2, hidden: 4, embedDim: 3, epochs: 2 };
    const taps = new TapMaps(tapSource);
    expect(cseFusionTaps(['s8', 's16', 's32'], taps)).toBe(taps);
    expect(cseFusionTaps(['spatial'], taps)).toBeUndefined();
    const fused = await cseTrainer(new SpatialMaps(spatial), { generators: [flip], cse, taps }).train(rows, {
      seed: 1,
    });
    const art = await (fused as unknown as { artifacts(): Promise<{ config: unknown }> }).artifacts();
    const cfg = art.config as { dims: number[]; options: { fusion: boolean } };
    expect(cfg.options.fusion).toBe(true);
    expect(cfg.dims).toEqual([3 + 5, 4, 4]);
    expect(tapCalls).toBeGreaterThan(0);
    fused.dispose?.();
    // Without taps: the one spatial map, and the head says so.
    const single = await cseTrainer(new SpatialMaps(spatial), { generators: [flip], cse }).train(rows, {
      seed: 1,
    });
    const cfg1 = (await (single as unknown as { artifacts(): Promise<{ config: unknown }> }).artifacts())
      .config as { dims: number[]; options: { fusion: boolean } };
    expect(cfg1.options.fusion).toBe(false);
    expect(cfg1.dims).toEqual([7, 2, 2]);
    single.dispose?.();
  });
});

describe('CSE average pool', () => {
  it('follows PyTorch AvgPool2d(p, stride p) sizes and pools defect labels by "any"', () => {
    expect(poolGrid(14, 14, 2)).toEqual({ h: 7, w: 7, k: 2 });
    expect(poolGrid(7, 7, 2)).toEqual({ h: 3, w: 3, k: 2 });
    expect(poolGrid(1, 1, 2)).toEqual({ h: 1, w: 1, k: 1 });
    const d = new Float32Array(16);
    d[5] = 1; // (1, 1): the top-left 2×2 cell
    expect(Array.from(poolDefects(d, 1, 4, 4, 2))).toEqual([1, 0, 0, 0]);
  });

  it('scores on the pooled grid, each pooled embedding the mean of its window', async () => {
    const rng = new Rng('pool');
    const maps = [map(rng, 5, 4, 4), map(rng, 5, 4, 4)];
    const pair: CsePair = { anchor: maps[0], other: maps[1], defect: new Float32Array(16) };
    const base = { epochs: 1, stepsPerEpoch: 1, pairsPerStep: 1, hidden: 6, embedDim: 3, seed: 1 };
    const { head } = await trainCseHead(maps, async () => pair, { ...base, pool: 2 });
    expect(head.grid).toEqual([2, 2]);
    const { heatmaps } = await head.predict([maps[0]]);
    expect(heatmaps[0].length).toBe(4);
    const pooled = await head.embedMaps([maps[0]]);
    const raw = tf.tidy(() => head.embed(head.locations([maps[0]]), false).e.arraySync() as number[][]);
    const windows: [number, number[]][] = [
      [0, [0, 1, 4, 5]],
      [3, [10, 11, 14, 15]],
    ];
    for (const [cell, locs] of windows) {
      const mean = [0, 1, 2].map((j) => locs.reduce((s, l) => s + raw[l][j], 0) / 4);
      const n = Math.hypot(...mean);
      for (let j = 0; j < 3; j++) expect(pooled[cell * 3 + j]).toBeCloseTo(mean[j] / n, 5);
    }
    // A restored head pools the same; a head saved before pooling existed (no `pool`) keeps its grid.
    const art = await head.toArtifacts();
    const back = CseHead.fromArtifacts(art);
    expect(back.grid).toEqual([2, 2]);
    const legacy = structuredClone(art);
    const opts = (legacy.config as { options: Record<string, unknown> }).options;
    for (const k of ['pool', 'fusion', 'schedule', 'reconstruction', 'bestCheckpoint']) delete opts[k];
    const old = CseHead.fromArtifacts(legacy);
    expect(old.grid).toEqual([4, 4]);
    expect(old.options.fusion).toBe(false);
    for (const h of [head, back, old]) h.dispose();
  });
});

describe('CSE one-cycle schedule', () => {
  it("matches PyTorch's OneCycleLR(max_lr=4e-4, total_steps=20) step by step", () => {
    // Printed by torch 1.13 (Debian python3-torch): lr of each optimizer step, scheduler stepped after it.
    const torch = [
      1.6e-5, 5.266873708001011e-5, 1.486687370800101e-4, 2.673312629199899e-4, 3.633312629199899e-4, 4e-4,
      3.9498560249403496e-4, 3.801938528053895e-4, 3.5636647102842004e-4, 3.2469826157990525e-4,
      2.8677720071652033e-4, 2.445048087745157e-4, 2.000008e-4, 1.554967912254843e-4, 1.1322439928347969e-4,
      7.53033384200948e-5, 4.363512897158001e-5, 1.9807747194610514e-5, 5.015997505965022e-6, 1.6e-9,
    ];
    torch.forEach((v, k) => expect(oneCycleLr(k, 20, 4e-4)).toBeCloseTo(v, 15));
  });

  it('drives the Adam steps of the trainer (one step of a one-cycle run = a constant run at its lr)', async () => {
    const rng = new Rng('sched');
    const maps = [map(rng, 4, 2, 2), map(rng, 4, 2, 2)];
    const defect = Float32Array.from([1, 0, 0, 0]);
    const pair: CsePair = { anchor: maps[0], other: maps[1], defect };
    const base = { epochs: 1, stepsPerEpoch: 1, pairsPerStep: 1, hidden: 4, embedDim: 3, seed: 5, pool: 1 };
    const a = await trainCseHead(maps, async () => pair, {
      ...base,
      learningRate: 0.1,
      schedule: 'one-cycle',
    });
    const b = await trainCseHead(maps, async () => pair, {
      ...base,
      learningRate: oneCycleLr(0, 1, 0.1),
      schedule: 'constant',
    });
    const c = await trainCseHead(maps, async () => pair, {
      ...base,
      learningRate: 0.1,
      schedule: 'constant',
    });
    const [wa, wb, wc] = await Promise.all([a, b, c].map((r) => r.head.weights()));
    expect(Array.from(wa.w1)).toEqual(Array.from(wb.w1));
    expect(Array.from(wa.w1)).not.toEqual(Array.from(wc.w1));
    for (const r of [a, b, c]) r.head.dispose();
  });
});

describe('CSE best-validation checkpoint', () => {
  it('keeps the weights of the epoch with the lowest validation loss', async () => {
    const rng = new Rng('ckpt');
    const maps = Array.from({ length: 4 }, () => map(rng, 4, 3, 3));
    const bump = (m: FeatureMap): FeatureMap => ({
      data: m.data.map((v, i) => (i % 9 === 4 ? v + 4 : v)),
      dims: m.dims,
    });
    const defect = new Float32Array(9);
    defect[4] = 1;
    // Training pushes the bumped centre away; validation calls the same bump normal, so it gets worse.
    const train = async (r: Rng) => {
      const a = maps[r.int(0, 4)];
      return { anchor: a, other: bump(a), defect };
    };
    const validation = async (r: Rng) => {
      const a = maps[r.int(0, 4)];
      return { anchor: a, other: bump(a), defect: new Float32Array(9) };
    };
    const base = {
      stepsPerEpoch: 3,
      pairsPerStep: 2,
      hidden: 6,
      embedDim: 3,
      seed: 2,
      pool: 1,
      lambda: 0,
      learningRate: 0.05,
      schedule: 'constant' as const,
    };
    const best = await trainCseHead(maps, train, { ...base, epochs: 6 }, {}, { validation });
    const vals = best.history.map((h) => h.valLoss!);
    expect(vals.every((v) => Number.isFinite(v))).toBe(true);
    expect(best.bestEpoch).toBe(vals.indexOf(Math.min(...vals)) + 1);
    expect(best.bestEpoch).toBeLessThan(6);
    // The same run stopped at the best epoch holds the same weights (constant lr: the first epochs agree).
    const short = await trainCseHead(maps, train, { ...base, epochs: best.bestEpoch }, {}, { validation });
    const last = await trainCseHead(
      maps,
      train,
      { ...base, epochs: 6, bestCheckpoint: false },
      {},
      { validation },
    );
    expect(last.bestEpoch).toBe(6);
    const [wBest, wShort, wLast] = await Promise.all([best, short, last].map((r) => r.head.weights()));
    for (const k of Object.keys(wBest)) expect(Array.from(wBest[k])).toEqual(Array.from(wShort[k]));
    expect(Array.from(wBest.w1)).not.toEqual(Array.from(wLast.w1));
    for (const r of [best, short, last]) r.head.dispose();
  });
});

describe('CSE recipe options reach the head', () => {
  it("from the grid config (schema-checked, bad values named) and through the trainer's cell options", async () => {
    const spec = (cse: Record<string, unknown>) => ({
      generators: ['none'],
      nAug: [0],
      seeds: [0],
      heads: ['cse'],
      headOptions: { cse },
    });
    const recipe = {
      pool: 3,
      fusion: false,
      schedule: 'constant',
      reconstruction: 'both',
      bestCheckpoint: false,
      validationFraction: 0.1,
    };
    const c = await parseGridConfig(spec(recipe), '/tmp', 'cse.json');
    expect(c.headOptions?.cse).toEqual(recipe);
    await expect(parseGridConfig(spec({ pool: 0 }), '/tmp', 'cse.json')).rejects.toThrow(/pool/);
    await expect(parseGridConfig(spec({ schedule: 'step' }), '/tmp', 'cse.json')).rejects.toThrow(/schedule/);
    await expect(parseGridConfig(spec({ reconstruction: 'x' }), '/tmp', 'cse.json')).rejects.toThrow(
      /reconstruction/,
    );

    // A cell's head options (`extra`, what the runner passes from `headOptions`) set the head's recipe.
    const pre = imagenetPreprocess(8, 8);
    const img = createRaster(8, 8, 3);
    const rows: HeadSample[] = [0, 1, 2].map((i) => ({
      id: `img:${i}`,
      features: new Float32Array(1),
      label: 0,
      source: 'normal',
      load: async () => img,
    }));
    const rng = new Rng('extra');
    const spatial: SpatialSource = {
      preprocess: pre,
      spatial: async (ims) => ims.map(() => map(rng, 3, 4, 4)),
    };
    const gen = (im: typeof img) => ({ image: im, mask: createRaster(8, 8, 1) });
    const trained = await cseTrainer(new SpatialMaps(spatial), {
      generators: [gen],
      cse: { stepsPerEpoch: 1, pairsPerStep: 1, hidden: 3, embedDim: 2, epochs: 1 },
    }).train(rows, { seed: 0, extra: { pool: 1, reconstruction: 'both', schedule: 'constant' } });
    const cfg = (await (trained as unknown as { artifacts(): Promise<{ config: unknown }> }).artifacts())
      .config as { options: Record<string, unknown> };
    expect(cfg.options).toMatchObject({
      pool: 1,
      reconstruction: 'both',
      schedule: 'constant',
      fusion: false,
    });
    trained.dispose?.();
  });
});

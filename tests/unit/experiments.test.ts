import { describe, expect, it } from 'vitest';
import {
  MemoryCellStore,
  RunRecordCellStore,
  chooseThreshold,
  syntheticOnlyWarning,
  aggregate,
  cellsToCsv,
  confusionCells,
  panelThreshold,
  scoreHistogram,
  expandGrid,
  knnScores,
  meanDistanceScores,
  meanStd,
  mixedSupervisionStream,
  rowsToCsv,
  realSubset,
  runCells,
  runExperiment,
  toJson,
  toMarkdown,
  type CellResult,
  type ExperimentData,
  type ExperimentEnv,
  type ExperimentImage,
  type GeneratorFn,
  type GridSpec,
  type HeadTrainer,
  fmtClass,
} from '../../src/core/experiments/index.ts';
import { CancelledError } from '../../src/core/errors.ts';
import { averagePrecision, thresholdAtFpr } from '../../src/core/metrics/index.ts';
import { coreGenerators } from '../../src/app/generators.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';

// Fakes. Images are 8×8 gray texture; a "defect" is a bright 3×3 blob. Features: [mean, max, std] of the pixels,
// so defects are separable by the max feature and a working pipeline must reach a high AP.
function texture(seed: string, blob: boolean, cls?: string): RasterImage {
  const rng = new Rng(seed);
  const img = createRaster(8, 8, 1);
  for (let i = 0; i < 64; i++) img.data[i] = 100 + rng.normal() * 8;
  if (blob) {
    const x = rng.int(0, 6);
    const y = rng.int(0, 6);
    const v = cls === 'faint' ? 150 : 230;
    for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) img.data[(y + dy) * 8 + x + dx] = v;
  }
  return img;
}

function item(id: string, label: 0 | 1, cls?: string): ExperimentImage {
  return { id, label, defectClass: cls, load: async () => texture(id, label === 1, cls) };
}

function dataset(): ExperimentData {
  return {
    name: 'fake',
    trainNormals: Array.from({ length: 30 }, (_, i) => item(`n${i}`, 0)),
    realDefects: Array.from({ length: 4 }, (_, i) => item(`f${i}`, 1, 'strong')),
    test: [
      ...Array.from({ length: 20 }, (_, i) => item(`tn${i}`, 0)),
      ...Array.from({ length: 6 }, (_, i) => item(`ts${i}`, 1, 'strong')),
      ...Array.from({ length: 6 }, (_, i) => item(`tf${i}`, 1, 'faint')),
    ],
  };
}

function features(img: RasterImage): Float32Array {
  let s = 0;
  let mx = 0;
  for (const v of img.data) {
    s += v;
    mx = Math.max(mx, v);
  }
  const mean = s / img.data.length;
  let ss = 0;
  for (const v of img.data) ss += (v - mean) ** 2;
  return Float32Array.from([mean, mx, Math.sqrt(ss / img.data.length)]);
}

function env(counter = { extracted: 0, trained: 0, generated: 0 }): ExperimentEnv {
  // Supervised fake head: projection on the difference of class means (a linear discriminant).
  const lda: HeadTrainer = {
    kind: 'bce',
    async train(rows, o) {
      counter.trained++;
      const d = rows[0].features.length;
      const mu = [new Float64Array(d), new Float64Array(d)];
      const n = [0, 0];
      for (const r of rows) {
        n[r.label]++;
        for (let j = 0; j < d; j++) mu[r.label][j] += r.features[j];
      }
      const w = Array.from({ length: d }, (_, j) => mu[1][j] / n[1] - mu[0][j] / n[0]);
      const jitter = new Rng(o.seed).next() * 1e-6; // seed-dependent, to tell seeds apart
      return {
        score: async (q) => Float32Array.from(q, (r) => r.features.reduce((a, v, j) => a + v * w[j], jitter)),
      };
    },
  };
  return {
    extractor: {
      id: 'fake-stats',
      async extract(images) {
        counter.extracted += images.length;
        return images.map(features);
      },
    },
    trainers: { bce: lda },
    generators: {
      memseg: (image, seed) => {
        counter.generated++;
        const out = { ...image, data: new Uint8ClampedArray(image.data) };
        const mask = createRaster(8, 8, 1);
        const rng = new Rng(seed);
        const x = rng.int(0, 6);
        const y = rng.int(0, 6);
        for (let dy = 0; dy < 3; dy++)
          for (let dx = 0; dx < 3; dx++) {
            out.data[(y + dy) * 8 + x + dx] = 220;
            mask.data[(y + dy) * 8 + x + dx] = 255;
          }
        return { image: out, mask };
      },
    },
  };
}

const spec: GridSpec = { generators: ['none', 'memseg'], nAug: [10, 20], seeds: [0, 1], heads: ['bce'] };

describe('grid', () => {
  it('expands generator × N_aug × seeds × head, none once, plus baselines per seed', () => {
    const cells = expandGrid(spec, 'fake', 'x');
    // none: 1 × 2 seeds; memseg: 2 N_aug × 2 seeds; baselines k-NN and mean × 2 seeds.
    expect(cells.length).toBe(2 + 4 + 4);
    expect(cells.filter((c) => c.head === 'knn').length).toBe(2);
    expect(new Set(cells.map((c) => JSON.stringify(c))).size).toBe(cells.length);
  });
  it('names the bad field', () => {
    expect(() => expandGrid({ ...spec, generators: ['gan' as never] }, 'f', 'x')).toThrow(/generators/);
    expect(() => expandGrid({ ...spec, seeds: [] }, 'f', 'x')).toThrow(/seeds.*non-empty/);
    expect(() => expandGrid({ ...spec, heads: ['svm' as never] }, 'f', 'x')).toThrow(/heads\[\].*spatial/);
    // Diffusion (alone or in In&Out) needs its settings; they name the bad field.
    expect(() => expandGrid({ ...spec, generators: ['in-out'] }, 'f', 'x')).toThrow(/diffusion must be/);
    const diffusion = {
      model: 'm',
      prompts: ['a crack'],
      negativePrompt: '',
      steps: 30,
      guidanceScale: 20,
      strength: 0.99,
      masks: 'auto' as const,
    };
    expect(() =>
      expandGrid({ ...spec, generators: ['diffusion'], diffusion: { ...diffusion, strength: 0 } }, 'f', 'x'),
    ).toThrow(/diffusion\.strength/);
    const cells = expandGrid({ ...spec, generators: ['none', 'memseg', 'in-out'], diffusion }, 'f', 'x');
    // Only the cells that call diffusion carry (and hash) its settings.
    expect(cells.filter((c) => c.diffusion).map((c) => c.generator)).toEqual([
      'in-out',
      'in-out',
      'in-out',
      'in-out',
    ]);
    expect(cells.find((c) => c.generator === 'memseg')?.diffusion).toBeUndefined();
  });
});

describe('baselines', () => {
  it('k-NN and mean cosine distances by hand', () => {
    const normals = [Float32Array.from([1, 0]), Float32Array.from([0, 1])];
    const q = [Float32Array.from([1, 0]), Float32Array.from([1, 1]), Float32Array.from([-1, 0])];
    const knn = knnScores(normals, q);
    expect(knn[0]).toBeCloseTo(0, 6);
    expect(knn[1]).toBeCloseTo(1 - Math.SQRT1_2, 6);
    expect(knn[2]).toBeCloseTo(1, 6); // nearest is (0, 1) at 90°
    const mean = meanDistanceScores(normals, q);
    // mean normal (0.5, 0.5) points along (1, 1)
    expect(mean[0]).toBeCloseTo(1 - Math.SQRT1_2, 6);
    expect(mean[1]).toBeCloseTo(0, 6);
    expect(mean[2]).toBeCloseTo(1 + Math.SQRT1_2, 6);
    // k = 2 averages the two nearest: (1 − 1 + 1 − 0)/2 for the first query... (0 + 1)/2
    expect(knnScores(normals, q, 2)[0]).toBeCloseTo(0.5, 6);
  });
});

describe('ISP-AD mixed supervision stream', () => {
  it('injects real defects with p = 1/32 and keeps normal/synthetic balanced', () => {
    const draws = mixedSupervisionStream({ normal: 50, synthetic: 40, real: 5 }, 32000, new Rng(3));
    const real = draws.filter((d) => d.source === 'real').length;
    // Binomial(32000, 1/32): mean 1000, sd ≈ 31; 5 sd bounds.
    expect(Math.abs(real - 1000)).toBeLessThan(5 * 31);
    const nn = draws.filter((d) => d.source === 'normal').length;
    const ns = draws.filter((d) => d.source === 'synthetic').length;
    expect(Math.abs(nn - ns)).toBeLessThanOrEqual(1);
    expect(
      draws.every((d) => d.index >= 0 && d.index < { normal: 50, synthetic: 40, real: 5 }[d.source]),
    ).toBe(true);
  });
  it('p = 0 never draws a real defect; same seed, same stream', () => {
    const a = mixedSupervisionStream({ normal: 5, synthetic: 5, real: 5 }, 500, new Rng(1), 0);
    expect(a.some((d) => d.source === 'real')).toBe(false);
    const b = mixedSupervisionStream({ normal: 5, synthetic: 5, real: 5 }, 500, new Rng(1), 0);
    expect(b).toEqual(a);
  });
});

describe('table', () => {
  it('mean ± sample std (n − 1)', () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1, n: 3 });
    expect(meanStd([5]).std).toBeNaN();
    expect(meanStd([NaN, 4, 6]).mean).toBe(5);
  });
});

describe('sweeps (grid axes) and nested real fractions', () => {
  it('each sweep axis multiplies only the cells it changes; the table keeps every swept row apart', async () => {
    const sw: GridSpec = {
      generators: ['memseg'],
      nAug: [10],
      seeds: [0],
      heads: ['bce', 'cse'],
      fewShot: [true],
      stream: 'mixed',
      baselines: false,
      sweep: { cseK: [1, 4], realProbability: [0, 0.5], realFraction: [0.25, 1] },
    };
    const cells = expandGrid(sw, 'fake', 'x');
    // bce: realProbability × realFraction = 4; cse (normals only: real-defect axes do not change it) × cseK = 2.
    expect(cells.filter((c) => c.head === 'bce')).toHaveLength(4);
    expect(cells.filter((c) => c.head === 'cse')).toHaveLength(2);
    expect(new Set(cells.filter((c) => c.head === 'cse').map((c) => c.headOptions?.k))).toEqual(
      new Set([1, 4]),
    );
    expect(cells.filter((c) => c.head === 'bce').every((c) => c.headOptions?.k === undefined)).toBe(true);
    // Zero-shot or concat cells are not repeated for axes that do not change them.
    const zero = expandGrid({ ...sw, fewShot: [false], stream: 'concat', heads: ['bce'] }, 'fake', 'x');
    expect(zero).toHaveLength(1);
    // Rows differing only in a swept axis stay apart, labelled with what differs.
    const r = await runCells(
      cells.filter((c) => c.head === 'bce'),
      dataset(),
      env(),
    );
    expect(r.table).toHaveLength(4);
    expect(new Set(r.table.map((t) => t.label)).size).toBe(4);
    expect(r.table.map((t) => t.label).join('\n')).toMatch(/realProbability=0\.5/);
    expect(r.table.map((t) => t.label).join('\n')).toMatch(/realFraction=0\.25/);
  });

  it('real fractions are nested per seed and use ⌈f·n⌉ defects', () => {
    const d = { ...dataset(), realDefects: Array.from({ length: 16 }, (_, i) => item(`r${i}`, 1)) };
    const base = expandGrid(
      { ...spec, generators: ['memseg'], nAug: [4], seeds: [3], fewShot: [true] },
      'fake',
      'x',
    )[0];
    const ids = (f: number) => realSubset(d, { ...base, realFraction: f }).map((i) => i.id);
    const fr = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1].map(ids);
    expect(fr.map((x) => x.length)).toEqual([1, 2, 4, 8, 16]);
    for (let i = 1; i < fr.length; i++) for (const id of fr[i - 1]) expect(fr[i]).toContain(id);
    // Another seed draws another order.
    expect(realSubset(d, { ...base, seed: 4, realFraction: 0.25 }).map((i) => i.id)).not.toEqual(fr[2]);
    expect(() => expandGrid({ ...spec, sweep: { realFraction: [0] } }, 'fake', 'x')).toThrow(/realFraction/);
  });
});

describe('transplant in the runner', () => {
  it('cuts from the real training defects that have masks, never from test defects', async () => {
    const d = dataset();
    // 32×32 tiles: the real defects carry masks of their 3×3 blob; one has no mask and is never a source.
    const tile = (seed: string, blob: boolean) => {
      const img = createRaster(32, 32, 1);
      const mask = createRaster(32, 32, 1);
      const rng = new Rng(seed);
      for (let i = 0; i < img.data.length; i++) img.data[i] = 100 + rng.normal() * 4;
      if (blob)
        for (let y = 12; y < 18; y++)
          for (let x = 12; x < 18; x++) {
            img.data[y * 32 + x] = 240;
            mask.data[y * 32 + x] = 255;
          }
      return { img, mask };
    };
    d.trainNormals = Array.from({ length: 10 }, (_, i) => ({
      id: `n${i}`,
      label: 0 as const,
      load: async () => tile(`n${i}`, false).img,
    }));
    let testMaskReads = 0;
    d.realDefects = [
      ...Array.from({ length: 2 }, (_, i) => ({
        id: `r${i}`,
        label: 1 as const,
        load: async () => tile(`r${i}`, true).img,
        loadMask: async () => tile(`r${i}`, true).mask,
      })),
      { id: 'r-nomask', label: 1 as const, load: async () => tile('x', true).img },
    ];
    d.test = d.test.map((t) => ({
      ...t,
      loadMask: async () => {
        testMaskReads++;
        return null;
      },
    }));
    const made: number[] = [];
    const gens = coreGenerators();
    const e = env();
    e.generators = {
      transplant: async (img, seed, ctx) => {
        made.push((await ctx!.realDefects!()).length);
        return gens.transplant(img, seed, ctx);
      },
    };
    const r = await runCells(
      expandGrid(
        {
          generators: ['transplant'],
          nAug: [4],
          seeds: [0],
          heads: ['bce'],
          fewShot: [true],
          baselines: false,
        },
        d.name,
        'x',
      ),
      d,
      e,
    );
    expect(r.cells[0].status, r.cells[0].error).toBe('done');
    // 4 training + 1 validation transplant, each handed the 2 masked real defects as sources.
    expect(made).toEqual([2, 2, 2, 2, 2]);
    expect(r.cells[0].counts?.train).toEqual({ normal: 8, synthetic: 4, real: 3 });
    expect(testMaskReads).toBe(0);
  });
});

describe('runner with fakes', () => {
  it('runs the grid: memseg cells learn, baselines are rows, none+bce fails with a fix', async () => {
    const counter = { extracted: 0, trained: 0, generated: 0 };
    const r = await runExperiment(spec, dataset(), env(counter));
    expect(r.cells.length).toBe(10);
    const failed = r.cells.filter((c) => c.status === 'failed');
    expect(failed.map((c) => c.config.generator)).toEqual(['none', 'none']);
    expect(failed[0].error).toMatch(/needs defects.*fix/);
    const memseg = r.table.find((row) => row.generator === 'memseg' && row.nAug === 20);
    expect(memseg?.stats.ap.n).toBe(2);
    expect(memseg?.stats.ap.mean).toBeGreaterThan(0.9);
    expect(memseg?.thresholdSource).toBe('val:synthetic');
    // The synthetic-only warning quotes each cell's own validation and test AP.
    const cell = r.cells.find(
      (c) => c.config.generator === 'memseg' && c.config.head === 'bce' && c.config.nAug === 20,
    )!;
    expect(cell.warnings).toContain(syntheticOnlyWarning(cell.metrics!.valAp, cell.metrics!.ap));
    expect(cell.warnings.join()).toContain(`validation AP ${cell.metrics!.valAp.toFixed(3)}`);
    expect(cell.warnings.join()).toContain(`test AP ${cell.metrics!.ap.toFixed(3)}`);
    expect(
      r.table
        .filter((row) => row.baseline)
        .map((row) => row.head)
        .sort(),
    ).toEqual(['knn', 'mean']);
    // Per-class metrics for the classes the test images name.
    expect(Object.keys(memseg?.perClass ?? {})).toEqual(['faint', 'strong']);
    // Features are cached across cells: each distinct image is extracted once
    // (30 normals + 32 test + synthetic images of seed 0 and 1: at most 20 for training and, made in addition on
    // the held-out normals, 20 × 0.2 = 4 for validation, each).
    expect(counter.extracted).toBeLessThanOrEqual(30 + 32 + 2 * (20 + 4));
    // N_aug means N_aug: all 20 synthetic defects train, validation has its own 4.
    expect(cell.counts?.train.synthetic).toBe(20);
    expect(cell.counts?.val.synthetic).toBe(4);
    expect(toMarkdown(r.table)).toMatch(/baseline: k-NN/);
  });

  it('In&Out alternates its pair (even N_aug = 50/50); a missing generator fails the run once, with the fix', async () => {
    const e = env();
    const calls: Record<string, number> = {};
    const count =
      (name: string, g: GeneratorFn): GeneratorFn =>
      (img, seed, ctx) => {
        calls[name] = (calls[name] ?? 0) + 1;
        return g(img, seed, ctx);
      };
    e.generators = { memseg: count('memseg', e.generators.memseg), blob: count('blob', e.generators.memseg) };
    const r = await runExperiment(
      { ...spec, generators: ['in-out'], nAug: [10], seeds: [0], inOut: { in: 'blob', out: 'memseg' } },
      dataset(),
      e,
    );
    const cell = r.cells.find((c) => c.config.generator === 'in-out');
    expect(cell?.status).toBe('done');
    expect(cell?.synthetic).toEqual({ blob: 5, memseg: 5 });
    // 10 training defects, 5 of each, plus 10 × 0.2 = 2 validation defects on held-out normals, alternating too.
    expect(cell?.counts?.train.synthetic).toBe(10);
    expect(cell?.counts?.val.synthetic).toBe(2);
    expect(calls).toEqual({ blob: 6, memseg: 6 });
    await expect(
      runExperiment({ ...spec, generators: ['random-walk'], nAug: [10], seeds: [0] }, dataset(), env()),
    ).rejects.toThrow(/MissingDependencyError: generator "random-walk" is not available here — fix:/);
  });

  it('per-class metrics reach the Markdown table and both CSV exports', async () => {
    const r = await runExperiment(
      { ...spec, generators: ['memseg'], nAug: [20], seeds: [0, 1] },
      dataset(),
      env(),
    );
    const md = toMarkdown(r.table);
    expect(md).toMatch(/\| setting \| faint \(n = 6\) \| strong \(n = 6\) \|/);
    const row = r.table.find((t) => t.generator === 'memseg');
    expect(row?.perClass.strong.n).toBe(6);
    // The strong class is easy for this head: its AP and recall show up in every export.
    expect(md).toContain(
      `| ${row?.label} | ${fmtClass(row?.perClass.faint)} | ${fmtClass(row?.perClass.strong)} |`,
    );
    expect(toMarkdown(r.table, ['ap'], { perClass: false })).not.toMatch(/strong/);
    const [head, ...lines] = rowsToCsv(r.table).trim().split('\n');
    const cols = head.split(',');
    const i = cols.indexOf('class:strong:ap_mean');
    expect(i).toBeGreaterThan(0);
    expect(cols).toContain('class:faint:recall_std');
    const memsegLine = lines.find((l) => l.includes(',memseg,'))!.split(',');
    expect(Number(memsegLine[i])).toBeCloseTo(row!.perClass.strong.ap.mean, 12);
    const cellHead = cellsToCsv(r.cells).split('\n')[0].split(',');
    expect(cellHead).toEqual(expect.arrayContaining(['class:faint:ap', 'class:strong:recall', 'config']));
  });

  it('resumes: done cells are skipped, and a cancelled run continues where it stopped', async () => {
    const store = new MemoryCellStore();
    const counter = { extracted: 0, trained: 0, generated: 0 };
    const ctl = new AbortController();
    let seen = 0;
    await expect(
      runExperiment(spec, dataset(), env(counter), {
        store,
        signal: ctl.signal,
        onCell: () => {
          if (++seen === 4) ctl.abort();
        },
      }),
    ).rejects.toThrow(CancelledError);
    expect((await store.list()).length).toBe(4);
    const c2 = { extracted: 0, trained: 0, generated: 0 };
    const r = await runExperiment(spec, dataset(), env(c2), { store });
    expect(r.resumed).toBe(2); // the 4 stored cells include 2 failed none+bce cells, which are retried
    expect(r.cells.length).toBe(10);
    const c3 = { extracted: 0, trained: 0, generated: 0 };
    const again = await runExperiment(spec, dataset(), env(c3), { store });
    expect(again.resumed).toBe(8);
    expect(c3.trained).toBe(0);
  });

  it('a cell re-runs from its exported config with identical results', async () => {
    const r = await runExperiment(
      { ...spec, generators: ['memseg'], nAug: [10], seeds: [4] },
      dataset(),
      env(),
    );
    const exported = JSON.parse(toJson(r.cells)) as { cells: CellResult[] };
    const cell = exported.cells.find((c) => c.config.head === 'bce') as CellResult;
    const again = await runCells([cell.config], dataset(), env());
    expect(again.cells[0].id).toBe(cell.id);
    expect(again.cells[0].metrics).toEqual(r.cells.find((c) => c.id === cell.id)?.metrics);
  });

  it('labels thresholds: real validation, FPR target, and test tuning only when asked', async () => {
    const d = dataset();
    d.validation = [
      item('vn0', 0),
      item('vn1', 0),
      item('vn2', 0),
      item('vd0', 1, 'strong'),
      item('vd1', 1, 'faint'),
    ];
    const real = await runExperiment({ ...spec, generators: ['memseg'], nAug: [10], seeds: [0] }, d, env());
    const bce = real.cells.find((c) => c.config.head === 'bce');
    expect(bce?.thresholdSource).toBe('val:real');
    expect(bce?.warnings.join()).not.toMatch(/synthetic defects only/);
    const tuned = await runExperiment(
      { ...spec, generators: ['memseg'], nAug: [10], seeds: [0], threshold: { mode: 'test-best-f1' } },
      dataset(),
      env(),
    );
    expect(tuned.cells.every((c) => c.thresholdSource === 'test (tuned on test)')).toBe(true);
    const fprRun = await runExperiment(
      {
        ...spec,
        generators: ['memseg'],
        nAug: [10],
        seeds: [0],
        threshold: { mode: 'val-fpr', maxFpr: 0.1 },
      },
      dataset(),
      env(),
    );
    expect(fprRun.cells[0].thresholdSource).toBe('val:normals@fpr≤0.1');
    // Baselines have no validation defect: they fall back to an FPR target on validation normals.
    expect(real.cells.find((c) => c.config.head === 'knn')?.thresholdSource).toBe('val:real');
    const base = await runExperiment(
      { ...spec, generators: ['memseg'], nAug: [10], seeds: [0] },
      dataset(),
      env(),
    );
    expect(base.cells.find((c) => c.config.head === 'knn')?.thresholdSource).toMatch(
      /^val:(synthetic|normals)/,
    );
  });

  it('mixed stream and few-shot cells run; CSV/JSON exports parse', async () => {
    const r = await runExperiment(
      {
        ...spec,
        generators: ['memseg'],
        nAug: [10],
        seeds: [0, 1],
        fewShot: [true],
        stream: 'mixed',
        realProbability: 0.25,
      },
      dataset(),
      env(),
    );
    expect(r.cells.filter((c) => c.status === 'done').length).toBe(6);
    const rows = aggregate(r.cells);
    const csv = rowsToCsv(rows).trim().split('\n');
    expect(csv.length).toBe(rows.length + 1);
    expect(csv[0]).toMatch(/^setting,generator,n_aug,head,few_shot,seeds,threshold_source,ap_mean,ap_std/);
    expect(cellsToCsv(r.cells).trim().split('\n').length).toBe(7);
    const json = JSON.parse(toJson(r.cells)) as { table: unknown[]; cells: unknown[] };
    expect(json.cells.length).toBe(6);
  });

  it('stores cells as RunRecords in the app store', async () => {
    const runs = new Map<
      string,
      { id: string; kind: string; result?: unknown; config: Record<string, unknown> }
    >();
    const fakeStore = {
      async putRun(r: { id: string; kind: string; result?: unknown; config: Record<string, unknown> }) {
        runs.set(r.id, structuredClone(r));
      },
      async getRun(id: string) {
        return runs.get(id);
      },
      async listRuns() {
        return [...runs.values()];
      },
    };
    const store = new RunRecordCellStore(fakeStore, 'ds1', 'exp1');
    await runExperiment({ ...spec, generators: ['memseg'], nAug: [10], seeds: [0] }, dataset(), env(), {
      store,
    });
    expect((await store.list()).length).toBe(3);
    expect([...runs.keys()].every((k) => k.startsWith('exp1/'))).toBe(true);
    const c = { extracted: 0, trained: 0, generated: 0 };
    const r = await runExperiment(
      { ...spec, generators: ['memseg'], nAug: [10], seeds: [0] },
      dataset(),
      env(c),
      { store },
    );
    expect(r.resumed).toBe(3);
    expect(c.trained).toBe(0);
  });
});

describe('evaluation panel logic', () => {
  const scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
  const labels = [0, 0, 1, 1, 0, 1];
  it('confusion cells list the images in them', () => {
    expect(confusionCells(scores, labels, 0.35)).toEqual({ tp: [2, 3, 5], fp: [1], tn: [0, 4], fn: [] });
  });
  it('histogram counts every score once per class', () => {
    const h = scoreHistogram(scores, labels, 4);
    expect(h.edges.length).toBe(5);
    expect(h.normal.reduce((a, b) => a + b, 0)).toBe(3);
    expect(h.defect.reduce((a, b) => a + b, 0)).toBe(3);
    expect(h.defect[3]).toBe(2); // 0.8 and 0.9 in the top bin [0.7, 0.9]
  });
  it('too few validation normals for the FPR target: a finite threshold just above them, with a warning', () => {
    const c = chooseThreshold(
      { mode: 'val-best-f1' },
      { scores: [0.4], labels: [0], defectSources: [] },
      { scores: [0.1, 0.9], labels: [0, 1] },
    );
    expect(c.source).toBe('val:normals@fpr≤0.05');
    expect(Number.isFinite(c.threshold)).toBe(true);
    expect(c.threshold).toBeGreaterThan(0.4);
    expect(c.threshold).toBeLessThan(0.4 + 1e-5);
    expect(c.warnings.join()).toMatch(/only 1 validation normal/);
    // With enough normals the kernel's own FPR threshold is used unchanged.
    const many = Array.from({ length: 40 }, (_, i) => i / 40);
    const d = chooseThreshold(
      { mode: 'val-fpr', maxFpr: 0.05 },
      { scores: many, labels: many.map(() => 0), defectSources: [] },
      { scores: [0.1, 0.9], labels: [0, 1] },
    );
    expect(d.threshold).toBe(
      thresholdAtFpr(
        many,
        many.map(() => 0),
        0.05,
      ),
    );
    expect(d.warnings).toEqual([]);
  });
  it('labels each threshold mode; test tuning and synthetic-only validation warn', () => {
    const test = { scores, labels };
    expect(panelThreshold('test-best-f1', { test }).source).toBe('test (tuned on test)');
    expect(panelThreshold('test-best-f1', { test }).warnings.length).toBe(1);
    const val = { scores: [0.1, 0.9], labels: [0, 1], synthetic: true };
    const v = panelThreshold('val-best-f1', { test, val });
    expect(v).toMatchObject({ threshold: 0.9, source: 'val:synthetic' });
    // Validation AP 1 (two rows, ranked right) and this test set's own AP.
    expect(v.warnings).toEqual([syntheticOnlyWarning(1, averagePrecision(scores, labels))]);
    expect(panelThreshold('manual', { test, manual: 0.5 }).threshold).toBe(0.5);
    expect(panelThreshold('val-fpr', { test }).threshold).toBeNaN();
  });
});

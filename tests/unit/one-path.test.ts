/**
 * One train-and-evaluate path: the same cell (dataset, features, generator, N_aug, head, few-shot, seed, epochs)
 * gives the same AP through every entry point a user has —
 * - the Train tab (the train engine, as its worker runs it), on the folder imported by the app's importer;
 * - the experiment grid of the app (the experiments engine), on the same import;
 * - the CLI (`experiment --config`), on the folder itself;
 * - `POST /api/experiments/grid`, on the folder itself.
 * The tiny ResNet-shaped backbone on onnxruntime-node CPU computes the features everywhere; tolerance 1e-9 (the
 * same float32 features and the same seeded training give bit-identical scores).
 */
import 'fake-indexeddb/auto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { main } from '../../server/cli.ts';
import type { CellResult } from '../../src/core/experiments/index.ts';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { openStore } from '../../src/runtime/db/store.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { ExperimentsEngine } from '../../workers/experiments.engine.ts';
import { ImportEngine } from '../../workers/import.engine.ts';
import { TrainEngine } from '../../workers/train.engine.ts';

const BACKBONE = join(import.meta.dirname, '../../models/tiny/tiny-resnet/model.onnx');

/** A manifest-layout folder: 10 train normals, 4 few-shot real defects, 6 + 6 test images, masks for defects. */
function parityFolder(): string {
  const root = mkdtempSync(join(tmpdir(), 'dl-one-path-'));
  mkdirSync(join(root, 'img'));
  const rng = new Rng('one-path');
  const tile = (defect: boolean) => {
    const img = createRaster(48, 48, 1);
    const mask = createRaster(48, 48, 1);
    for (let i = 0; i < img.data.length; i++) img.data[i] = 100 + rng.int(0, 40);
    if (defect) {
      const x0 = rng.int(4, 36);
      const y0 = rng.int(4, 30);
      for (let y = y0; y < y0 + 14; y++)
        for (let x = x0; x < x0 + 4; x++) {
          img.data[y * 48 + x] = 15;
          mask.data[y * 48 + x] = 255;
        }
    }
    return { img, mask };
  };
  const items: Record<string, unknown>[] = [];
  const add = (name: string, split: string, defect: boolean, cls?: string) => {
    const t = tile(defect);
    writeFileSync(join(root, 'img', `${name}.png`), encodePng(t.img));
    const item: Record<string, unknown> = {
      file: `img/${name}.png`,
      label: defect ? 'defect' : 'normal',
      split,
    };
    if (defect) {
      writeFileSync(join(root, 'img', `${name}_mask.png`), encodePng(t.mask));
      item.mask = `img/${name}_mask.png`;
      item.defect_class = cls;
    }
    items.push(item);
  };
  for (let i = 0; i < 10; i++) add(`n${i}`, 'train', false);
  for (let i = 0; i < 4; i++) add(`f${i}`, 'fewshot', true, 'scratch');
  for (let i = 0; i < 6; i++) add(`t${i}`, 'test', false);
  for (let i = 0; i < 6; i++) add(`d${i}`, 'test', true, i % 2 ? 'scratch' : 'dent');
  writeFileSync(join(root, 'manifest.json'), JSON.stringify({ dataset: 'parity', items }));
  return root;
}

function filesOf(root: string): { path: string; data: Uint8Array }[] {
  const out: { path: string; data: Uint8Array }[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: relative(root, p), data: new Uint8Array(readFileSync(p)) });
    }
  };
  walk(root);
  return out;
}

const GRID = {
  generators: ['memseg'],
  nAug: [6],
  seeds: [1],
  heads: ['bce', 'patchcore'],
  fewShot: [true],
  epochs: 3,
};
const isCell = (c: CellResult) => c.config.generator === 'memseg' && c.config.head === 'bce';
const isPatchcore = (c: CellResult) => c.config.head === 'patchcore';

describe('one train-and-evaluate path', () => {
  it(
    'the Train tab, the app grid, the CLI and POST /api/experiments/grid give the same cell the same AP',
    { timeout: 300_000 },
    async () => {
      const folder = parityFolder();

      // The app: the folder imported by the importer, then the Train tab's engine and the grid's engine.
      const store = await openStore(`one-path-${Math.random()}`);
      const { dataset, report } = await new ImportEngine(store).importIntoNewDataset(null, {
        entries: filesOf(folder),
      });
      expect(report.added).toBe(26);
      expect(dataset.name).toBe('parity');
      const deps = { ort: nodeBackend, store: async () => store, decode: decodeImage };
      const bytes = new Uint8Array(readFileSync(BACKBONE));
      const train = new TrainEngine(deps);
      await train.loadBackbone({ bytes, name: 'model.onnx', device: 'cpu' });
      const trained = await train.train({
        datasetId: dataset.id,
        head: 'bce',
        tfBackend: 'wasm',
        supervised: { epochs: 3, seed: 1 },
        generate: { generator: 'memseg', nAug: 6 },
        save: false,
      });
      const tab = trained.evaluation!;
      // PatchCore's cell through the Train tab too (its memory bank: the tiny backbone's spatial map).
      const pcTab = (
        await train.train({
          datasetId: dataset.id,
          head: 'patchcore',
          tfBackend: 'wasm',
          patchcore: { seed: 1 },
          generate: { generator: 'memseg', nAug: 6 },
          save: false,
        })
      ).evaluation!;
      expect(tab.cell.config).toMatchObject({ generator: 'memseg', nAug: 6, fewShot: true, seed: 1 });

      const grid = new ExperimentsEngine(deps);
      await grid.loadBackbone({ bytes, name: 'model.onnx', device: 'cpu' });
      const app = await grid.runExperiment({
        datasetId: dataset.id,
        experimentId: 'one-path',
        spec: GRID as never,
      });
      const appCell = app.cells.find(isCell)!;

      // The CLI and the server, on the folder itself.
      const dir = mkdtempSync(join(tmpdir(), 'dl-one-path-cli-'));
      const config = { data: folder, backbone: BACKBONE, ...GRID };
      writeFileSync(join(dir, 'grid.json'), JSON.stringify(config));
      const log = console.log;
      console.log = () => {};
      let code: number;
      try {
        code = await main(['experiment', '--config', join(dir, 'grid.json'), '--out', join(dir, 'out')]);
      } finally {
        console.log = log;
      }
      expect(code).toBe(0);
      const cli = JSON.parse(readFileSync(join(dir, 'out', 'result.json'), 'utf8')) as {
        cells: CellResult[];
      };
      const cliCell = cli.cells.find(isCell)!;
      // The server reads only under its --datasets and --models roots: the same folder and backbone, named
      // relative to them.
      const server = buildServer({
        device: 'cpu',
        options: { datasets: dirname(folder), models: dirname(dirname(BACKBONE)) },
      });
      const r = await server.inject({
        method: 'POST',
        url: '/api/experiments/grid',
        payload: { ...config, data: basename(folder), backbone: 'tiny-resnet/model.onnx' },
      });
      expect(r.statusCode, r.body).toBe(200);
      const serverCells = (r.json() as { cells: CellResult[] }).cells;
      const serverCell = serverCells.find(isCell)!;

      const ap = tab.metrics.ap;
      expect(Number.isFinite(ap)).toBe(true);
      for (const [where, cell] of [
        ['app grid', appCell],
        ['CLI', cliCell],
        ['server', serverCell],
      ] as const) {
        expect(cell.status, where).toBe('done');
        expect(Math.abs(cell.metrics!.ap - ap), where).toBeLessThanOrEqual(1e-9);
        expect(Math.abs(cell.metrics!.auroc - tab.metrics.auroc), where).toBeLessThanOrEqual(1e-9);
        expect(cell.thresholdSource, where).toBe(tab.thresholdSource);
        expect(Math.abs(cell.metrics!.threshold - tab.threshold), where).toBeLessThanOrEqual(1e-9);
        expect(cell.counts, where).toEqual(tab.cell.counts);
      }
      // PatchCore: the same AP everywhere too.
      for (const [where, cell] of [
        ['app grid', app.cells.find(isPatchcore)!],
        ['CLI', cli.cells.find(isPatchcore)!],
        ['server', serverCells.find(isPatchcore)!],
      ] as const) {
        expect(cell.status, `${where}: ${cell.error}`).toBe('done');
        expect(Math.abs(cell.metrics!.ap - pcTab.metrics.ap), where).toBeLessThanOrEqual(1e-9);
      }
      // Every entry point ran the same cell: 8 train normals + all 6 synthetic + 4 real; 2 normals held out, with
      // round(6 × 0.2) = 1 validation defect made on them.
      expect(tab.cell.counts).toEqual({
        train: { normal: 8, synthetic: 6, real: 4 },
        val: { normal: 2, synthetic: 1, real: 0 },
        test: { normal: 6, defect: 6 },
      });
      // The Train tab's baselines are the grid's baseline cells of the same seed.
      const knn = app.cells.find((c) => c.config.head === 'knn')!;
      expect(tab.baselines.find((b) => b.kind === 'knn')!.metrics.ap).toBeCloseTo(knn.metrics!.ap, 9);
      await server.close();
    },
  );
});

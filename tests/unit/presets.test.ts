/**
 * The paper presets of docs/experiments.md (docs/presets/*.json): each passes the grid config schema, and each
 * runs end to end through the CLI's runner on a small real subset of ../shared/data/magnetic-tile-compact with the
 * tiny ResNet-shaped backbone and the tiny SD-inpaint model — one seed, N_aug = 4, few epochs and steps (shape
 * and columns of the table are asserted, not its numbers: the presets' own numbers need the full runs).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandGrid } from '../../src/core/experiments/index.ts';
import { loadGridConfig, runGridConfig, type GridConfig } from '../../server/grid-config.ts';

const PRESETS = join(import.meta.dirname, '../../docs/presets');
const MT = join(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');
const TINY_RESNET = join(import.meta.dirname, '../../models/tiny/tiny-resnet/model.onnx');

interface Item {
  file: string;
  split: string;
  label: number;
  mask?: string | null;
  defect_class?: string;
}

/** 6 train normals, 4 few-shot defects, 4 + 4 test images (two defect classes), masks with them. */
function subset(): string {
  const m = JSON.parse(readFileSync(join(MT, 'manifest.json'), 'utf8')) as { items: Item[] };
  const take = (split: string, label: number, n: number) =>
    m.items.filter((i) => i.split === split && i.label === label).slice(0, n);
  const items = [
    ...take('train', 0, 6),
    ...take('fewshot', 1, 4),
    ...take('test', 0, 4),
    ...take('test', 1, 4),
  ];
  const root = mkdtempSync(join(tmpdir(), 'dl-presets-'));
  mkdirSync(join(root, 'images'));
  mkdirSync(join(root, 'masks'));
  for (const i of items) {
    copyFileSync(join(MT, i.file), join(root, i.file));
    if (i.mask) copyFileSync(join(MT, i.mask), join(root, i.mask));
  }
  writeFileSync(join(root, 'manifest.json'), JSON.stringify({ ...m, items }));
  return root;
}

/** The preset made small: one seed, 4 synthetic defects, 2 epochs, 2 diffusion steps on the tiny model. */
function small(c: GridConfig): GridConfig {
  return {
    ...c,
    seeds: [0],
    nAug: c.nAug.map(() => 4).slice(0, 1),
    epochs: 2,
    headOptions: { cse: { epochs: 1, stepsPerEpoch: 2, pairsPerStep: 2 } },
    ...(c.diffusion ? { diffusion: { ...c.diffusion, model: 'tiny-sd-inpaint', steps: 2 } } : {}),
  };
}

const HEADERS: Record<string, string> = {
  ap: 'AP',
  auroc: 'AUROC',
  precision: 'P',
  recall: 'R',
  f1: 'F1',
  tp: 'TP',
  fp: 'FP',
  tn: 'TN',
  fn: 'FN',
  mcc: 'MCC',
  fpr: 'FPR',
  pixelAuroc: 'pixel AUROC',
  auPro: 'AUPRO@0.3',
};

describe('paper presets (docs/presets)', () => {
  const files = readdirSync(PRESETS).filter((f) => f.endsWith('.json'));
  it('there is one per paper table the runner can express', () => {
    expect(files.sort()).toEqual([
      'cse-table4.json',
      'diag-table1.json',
      'diag-table2.json',
      'inout-table1.json',
      'inout-table2.json',
      'ispad-table2.json',
    ]);
  });

  const data = subset();
  for (const f of files)
    it(
      `${f}: checked by the schema and runs on tiny models and compact tiles`,
      { timeout: 300_000 },
      async () => {
        const config = await loadGridConfig(join(PRESETS, f));
        expect(config.title).toBeTruthy();
        expect(config.columns?.length).toBeGreaterThan(0);
        const c = small(config);
        const r = await runGridConfig(c, { data, backbone: TINY_RESNET, device: 'cpu' }, f);
        const failed = r.cells.filter((x) => x.status === 'failed');
        expect(failed.map((x) => `${x.id}: ${x.error}`)).toEqual([]);
        // One row per configuration (the seed axis is aggregated), sweeps included, baselines added.
        const { data: _d, backbone: _b, title: _t, columns: _c, about: _a, ...spec } = c;
        const configs = expandGrid(r.spec, r.dataset.name, r.cells[0].config.extractor);
        expect(r.cells.length).toBe(configs.length);
        expect(r.table.length).toBe(configs.length);
        expect(Object.keys(spec)).toContain('heads');
        // The paper's columns, in its order, under its title.
        expect(r.markdown.split('\n')[0]).toBe(`### ${config.title}`);
        const header = r.markdown.split('\n').find((l) => l.startsWith('| setting'))!;
        const cols = header.split('|').map((s) => s.trim());
        expect(cols.slice(3, 3 + config.columns!.length)).toEqual(config.columns!.map((m) => HEADERS[m]));
      },
    );
});

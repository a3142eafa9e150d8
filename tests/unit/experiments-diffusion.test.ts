/**
 * The runner's diffusion generator end to end in Node: a grid config (`experiment --config`) over a tiny dataset
 * folder, the tiny SD-inpaint model of `npm run models:tiny` on onnxruntime-node, the tiny ResNet backbone and the
 * BCE head. Diffusion and In&Out 50/50 cells complete, In&Out cells hold exactly half diffusion and half MemSeg
 * defects, a cell re-runs from its stored config with identical metrics, and the tiny SDXL-inpaint works too.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCells, type CellResult } from '../../src/core/experiments/index.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { encodePng } from '../../src/runtime/decode.ts';
import { loadDatasetFolder } from '../../server/dataset-folder.ts';
import { TINY_MODELS_DIR, nodeDiffusionSource } from '../../server/diffusion.ts';
import { loadNodeExtractor } from '../../server/features.ts';
import { coreGenerators, type DiffusionModelSource } from '../../src/app/generators.ts';
import { loadGridConfig, runGridConfig } from '../../server/grid-config.ts';
import { bceTrainer } from '../../src/app/heads.ts';

const TINY_RESNET = join(TINY_MODELS_DIR, 'tiny-resnet/model.onnx');

function tile(seed: number, defect: boolean): { img: RasterImage; mask: RasterImage } {
  const rng = new Rng(seed);
  const img = createRaster(48, 48, 1);
  const mask = createRaster(48, 48, 1);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 120 + rng.normal() * 10;
  if (defect) {
    const x0 = rng.int(8, 36);
    for (let y = 10; y < 38; y++)
      for (let x = x0; x < x0 + 3; x++) {
        img.data[y * 48 + x] = 30;
        mask.data[y * 48 + x] = 255;
      }
  }
  return { img, mask };
}

/** A manifest dataset: 8 train normals, 2 labelled training defects (the masks diffusion may use), 6 + 6 test. */
function datasetFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dl-diffusion-grid-'));
  mkdirSync(join(dir, 'images'));
  mkdirSync(join(dir, 'masks'));
  const items: Record<string, unknown>[] = [];
  const add = (name: string, seed: number, defect: boolean, split: string) => {
    const t = tile(seed, defect);
    writeFileSync(join(dir, 'images', name), encodePng(t.img));
    if (defect) writeFileSync(join(dir, 'masks', name), encodePng(t.mask));
    items.push({
      file: `images/${name}`,
      label: defect ? 1 : 0,
      split,
      mask: defect ? `masks/${name}` : null,
      defect_class: defect ? 'scratch' : undefined,
    });
  };
  for (let i = 0; i < 8; i++) add(`n${i}.png`, i, false, 'train');
  for (let i = 0; i < 2; i++) add(`f${i}.png`, 50 + i, true, 'fewshot');
  for (let i = 0; i < 6; i++) add(`tn${i}.png`, 100 + i, false, 'test');
  for (let i = 0; i < 6; i++) add(`td${i}.png`, 200 + i, true, 'test');
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ dataset: 'tiny-tiles', items }));
  return dir;
}

/** Counts generations per model id on the way to the real engine. */
function countingSource(inner: DiffusionModelSource, calls: Map<string, number>): DiffusionModelSource {
  let current = '';
  return {
    ...inner,
    resolve: async (id) => {
      current = id;
      return inner.resolve(id);
    },
    engine: {
      load: (r, o) => inner.engine.load(r, o),
      cancel: (j) => inner.engine.cancel(j),
      generate: async (r, o) => {
        calls.set(current, (calls.get(current) ?? 0) + 1);
        return inner.engine.generate(r, o);
      },
    },
  };
}

describe('diffusion and In&Out cells (tiny models, Node)', () => {
  it(
    'complete; In&Out is exactly 50/50; a cell re-runs from its stored config',
    { timeout: 300_000 },
    async () => {
      const dir = datasetFolder();
      const configFile = join(dir, 'grid.json');
      writeFileSync(
        configFile,
        JSON.stringify({
          data: '.',
          backbone: TINY_RESNET,
          generators: ['diffusion', 'in-out'],
          nAug: [4],
          seeds: [0, 1],
          heads: ['bce'],
          epochs: 5,
          valFraction: 0.25,
          diffusion: { model: 'tiny-sd-inpaint', steps: 2, masks: 'dataset' },
        }),
      );
      const config = await loadGridConfig(configFile);
      const r = await runGridConfig(config, {}, configFile);
      // 2 generators × 2 seeds + k-NN and mean baselines × 2 seeds.
      expect(r.cells.length).toBe(8);
      for (const c of r.cells) expect(c.status, `${c.id}: ${c.error}`).toBe('done');
      // DIAG defaults fill what the config left out, and every diffusion cell stores them.
      expect(r.spec.diffusion).toMatchObject({
        model: 'tiny-sd-inpaint',
        steps: 2,
        guidanceScale: 20,
        strength: 0.99,
      });
      const inOut = r.cells.filter((c) => c.config.generator === 'in-out');
      expect(inOut.length).toBe(2);
      for (const c of inOut) {
        expect(c.synthetic).toEqual({ diffusion: 2, memseg: 2 });
        expect(c.config.diffusion?.prompts.length).toBeGreaterThan(0);
      }
      for (const c of r.cells.filter((x) => x.config.generator === 'diffusion'))
        expect(c.synthetic).toEqual({ diffusion: 4 });
      expect(r.markdown).toMatch(/in-out ×4 · bce/);
      expect(r.markdown).toMatch(/scratch/); // the per-class table

      // Re-run one In&Out cell from its stored (JSON round-tripped) config in a fresh environment.
      const stored = JSON.parse(JSON.stringify(inOut[0])) as CellResult;
      const calls = new Map<string, number>();
      const source = countingSource(nodeDiffusionSource(), calls);
      const extractor = await loadNodeExtractor(TINY_RESNET, stored.config.extractor);
      try {
        const env = {
          extractor,
          generators: coreGenerators({}, { diffusion: source }),
          trainers: { bce: bceTrainer() },
        };
        const again = await runCells([stored.config], loadDatasetFolder(dir), env);
        expect(again.cells[0].id).toBe(stored.id);
        expect(again.cells[0].metrics).toEqual(stored.metrics);
        expect(again.cells[0].scores).toEqual(inOut[0].scores);
        // Exactly the cell's diffusion half went through the engine: 2 of its 4 training defects, plus the first
        // of its round(4 × 0.2) = 1 validation defect (In&Out alternates there too, starting with "in").
        expect(Object.fromEntries(calls)).toEqual({ 'tiny-sd-inpaint': 3 });

        // The tiny SDXL-inpaint (two text encoders, added conditioning) runs the same cell.
        const sdxl = {
          ...stored.config,
          generator: 'diffusion' as const,
          diffusion: { ...stored.config.diffusion!, model: 'tiny-sdxl-inpaint', masks: 'perlin' as const },
        };
        const x = await runCells([sdxl], loadDatasetFolder(dir), env);
        expect(x.cells[0].status, x.cells[0].error).toBe('done');
        // 4 training defects and 1 validation defect (round(4 × 0.2)), all diffusion in this cell.
        expect(calls.get('tiny-sdxl-inpaint')).toBe(5);
      } finally {
        await extractor.release();
      }
    },
  );
});

describe('no diffusion model', () => {
  it('a grid that needs diffusion fails once with NoDiffusionModelError and the fix', async () => {
    const { prepareDiffusionGrid, NoDiffusionModelError } = await import('../../src/app/generators.ts');
    const empty = mkdtempSync(join(tmpdir(), 'dl-no-models-'));
    const spec = {
      generators: ['memseg', 'in-out'] as const,
      nAug: [4],
      seeds: [0],
      heads: ['bce'] as const,
    };
    const grid = { ...spec, generators: [...spec.generators], heads: [...spec.heads] };
    const err = await prepareDiffusionGrid(grid, nodeDiffusionSource(empty)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoDiffusionModelError);
    expect((err as Error).message).toMatch(
      /no diffusion model is available — fix: run npm run models:tiny.*drop diffusion and In&Out/,
    );
    const wrong = await prepareDiffusionGrid(
      { ...grid, diffusion: { model: 'sdxl-base' } as never },
      nodeDiffusionSource(),
    ).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(
      /"sdxl-base" is not available here \(available: .*tiny-sd-inpaint/,
    );
    // Without diffusion in the grid nothing is asked of the source.
    const plain = { ...grid, generators: ['memseg' as const] };
    expect(await prepareDiffusionGrid(plain, undefined)).toBe(plain);
  });
});

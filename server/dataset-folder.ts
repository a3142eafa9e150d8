/**
 * A dataset folder for the CLI's `experiment --config`: a folder (or its `manifest.json`) planned by the app's own
 * import planner (`src/core/import/plan.ts`: a `manifest.json`, the MVTec layout, or plain files), so the CLI
 * reads exactly what the Data tab would import. Images are decoded lazily, when a cell needs features that are
 * not cached. Splits as in the app: train normals train, train defects (manifest `fewshot`) are the few-shot
 * real defects, `val` with both classes is the validation set, `test` is scored.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { byText, type ExperimentData, type ExperimentImage } from '../src/core/experiments/index.ts';
import { toGray, type RasterImage } from '../src/core/image.ts';
import { planImport, type PlanEntry, type PlannedItem } from '../src/core/import/plan.ts';
import { decodeImage } from '../src/runtime/decode.ts';

import { DatasetNotFoundError } from './data.ts';

function walk(root: string, dir = root, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(root, p, out);
    else out.push(relative(root, p).split(sep).join('/'));
  }
  return out;
}

async function decodeFile(path: string): Promise<RasterImage> {
  return (await decodeImage(new Uint8Array(await readFile(path)), path)).raster;
}

export interface FolderDataset extends ExperimentData {
  /** Layout the planner found, and files it refused (with why). */
  layout: string;
  rejected: string[];
}

/** Loads a dataset folder, or the folder of a given `manifest.json`. */
export function loadDatasetFolder(path: string): FolderDataset {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new DatasetNotFoundError(abs, 'no such file or folder');
  const root = statSync(abs).isDirectory() ? abs : dirname(abs);
  const files = walk(root);
  const entries: PlanEntry[] = files.map((f) => ({
    path: f,
    ...(basename(f) === 'manifest.json' ? { bytes: new Uint8Array(readFileSync(join(root, f))) } : {}),
  }));
  const plan = planImport(entries);
  const toImage = (it: PlannedItem): ExperimentImage => ({
    id: it.file,
    label: it.label === 'defect' ? 1 : 0,
    defectClass: it.label === 'defect' ? it.defectClass : undefined,
    load: () => decodeFile(join(root, it.file)),
    loadMask: async () => (it.maskFile ? toGray(await decodeFile(join(root, it.maskFile))) : null),
  });
  // The app's canonical pool order (name, then file), so this folder and its import give the same cells.
  const labelled = plan.items
    .filter((i) => i.label !== 'unlabeled' && !i.provenance)
    .sort((a, b) => byText(a.name, b.name) || byText(a.file, b.file));
  const trainNormals = labelled.filter((i) => i.split === 'train' && i.label === 'normal');
  const trainDefects = labelled.filter((i) => i.split === 'train' && i.label === 'defect');
  const val = labelled.filter((i) => i.split === 'val');
  const test = labelled.filter((i) => i.split === 'test');
  if (trainNormals.length < 2)
    throw new DatasetNotFoundError(
      root,
      `has ${trainNormals.length} train-split normal images (layout ${plan.layout}; need ≥ 2)`,
    );
  if (!test.some((t) => t.label === 'defect') || !test.some((t) => t.label === 'normal'))
    throw new DatasetNotFoundError(
      root,
      `its test split needs normal and defect images (layout ${plan.layout})`,
    );
  return {
    name: plan.meta?.name ?? basename(root),
    trainNormals: trainNormals.map(toImage),
    realDefects: trainDefects.map(toImage),
    validation:
      val.some((v) => v.label === 'defect') && val.some((v) => v.label === 'normal')
        ? val.map(toImage)
        : undefined,
    test: test.map(toImage),
    // Diffusion may inpaint where the training defects are (never where the test defects are).
    regionMasks: async () =>
      Promise.all(
        trainDefects
          .filter((i) => i.maskFile)
          .map(async (i) => toGray(await decodeFile(join(root, i.maskFile!)))),
      ),
    layout: plan.layout,
    rejected: plan.rejected.map((r) => r.message),
  };
}

/**
 * Datasets for the Node runner. `loadManifestDataset` reads a folder with a `manifest.json` in the
 * magnetic-tile-compact layout (items with file, label, split ∈ train/test/fewshot, mask, defect_class) and
 * returns lazy `ExperimentImage`s; files are decoded only when a cell needs features that are not cached.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DefectLabError } from '../src/core/errors.ts';
import type { ExperimentData, ExperimentImage } from '../src/core/experiments/index.ts';
import { toGray, type RasterImage } from '../src/core/image.ts';
import { decodeImage } from '../src/runtime/decode.ts';

export class DatasetNotFoundError extends DefectLabError {
  constructor(path: string, problem: string) {
    super(
      'DatasetNotFoundError',
      `${path}: ${problem}`,
      'point --data at a folder holding manifest.json (e.g. ../shared/data/magnetic-tile-compact)',
    );
  }
}

interface ManifestItem {
  file: string;
  label: number;
  split: string;
  mask: string | null;
  defect_class?: string;
  group?: string;
}

/** Default location of the real magnetic-tile data, read in place from the repository's sibling `shared/`. */
export const MAGNETIC_TILE_DIR = resolve(import.meta.dirname, '../../shared/data/magnetic-tile-compact');

async function decodeFile(path: string): Promise<RasterImage> {
  const bytes = new Uint8Array(await readFile(path));
  return (await decodeImage(bytes, path)).raster;
}

export function loadManifestDataset(dir = MAGNETIC_TILE_DIR, name = 'magnetic-tile-compact'): ExperimentData {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new DatasetNotFoundError(manifestPath, 'no such file');
  let items: ManifestItem[];
  try {
    items = (JSON.parse(readFileSync(manifestPath, 'utf8')) as { items: ManifestItem[] }).items;
  } catch (e) {
    throw new DatasetNotFoundError(manifestPath, `not a readable manifest (${(e as Error).message})`);
  }
  if (!Array.isArray(items)) throw new DatasetNotFoundError(manifestPath, 'has no "items" list');
  const toImage = (it: ManifestItem): ExperimentImage => ({
    id: it.file,
    label: it.label ? 1 : 0,
    defectClass: it.label ? it.defect_class : undefined,
    load: () => decodeFile(join(dir, it.file)),
    loadMask: async () => (it.mask ? toGray(await decodeFile(join(dir, it.mask))) : null),
  });
  const pick = (split: string, label: number) =>
    items.filter((i) => i.split === split && (i.label ? 1 : 0) === label).map(toImage);
  const test = items.filter((i) => i.split === 'test').map(toImage);
  return { name, trainNormals: pick('train', 0), realDefects: pick('fewshot', 1), test };
}

/**
 * Export layout (pure): where each image and mask of a dataset goes in an MVTec-style archive, and the
 * `manifest.json` that records everything the folders cannot (original names, groups, provenance, unlabeled
 * images, non-test defects). Importing the archive reads the manifest first, so export → import is lossless.
 *
 *   train/good/<file>                 normal, train         test/good/<file>       normal, test
 *   test/<defect class>/<file>        defect, test          validation/<class>/…   val split
 *   train/<defect class>/<file>       defect, train (e.g. few-shot defects)
 *   unlabeled/<split>/<file>          unlabeled
 *   ground_truth/<class>/<stem>_mask.png   the binary mask of a defect image
 */
import { zipSync, type Zippable } from 'fflate';
import type { DatasetRecord, ImageRecord, Label, SampleProvenance, Split } from '../dataset.ts';
import { extension, stem } from '../import/paths.ts';

/** One image as the exporter needs it (bytes already read from the store). */
export interface ExportItem {
  name: string;
  mime: string;
  bytes: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  sha256: string;
  label: Label;
  split: Split;
  defectClass?: string;
  group?: string;
  provenance?: SampleProvenance;
  createdAt?: number;
  /** Binary mask PNG bytes. */
  mask?: Uint8Array;
}

export interface ManifestItemOut {
  file: string;
  /** Original name in DefectLab (restored on import). */
  name: string;
  /** 0 normal, 1 defect, null unlabeled (the magnetic-tile manifest's convention). */
  label: 0 | 1 | null;
  label_name: Label;
  split: Split;
  mask: string | null;
  defect_class: string | null;
  group: string | null;
  width: number;
  height: number;
  channels: number;
  sha256: string;
  mime: string;
  provenance: SampleProvenance | null;
}

export interface ExportManifest {
  dataset: string;
  description: string | null;
  source: string;
  format: string;
  exporter: string;
  exported_at: string;
  counts: Record<string, number>;
  items: ManifestItemOut[];
}

export interface ExportLayout {
  /** Archive path → bytes, `manifest.json` included. */
  files: Map<string, Uint8Array>;
  manifest: ExportManifest;
}

const EXT_OF_MIME: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/bmp': 'bmp',
};

const SPLIT_DIR: Record<Split, string> = { train: 'train', val: 'validation', test: 'test' };

/** A path segment safe on every OS and in every unzipper. */
export function safeSegment(s: string): string {
  const cleaned = Array.from(s, (ch) => (ch.charCodeAt(0) < 32 ? '_' : ch))
    .join('')
    .replace(/[\\/:*?"<>|]+/g, '_')
    .replace(/^\.+/, '_')
    .trim();
  return cleaned.slice(0, 120) || '_';
}

/** Lays out a dataset for export. `now` is injectable so tests get a stable manifest. */
export function exportLayout(
  dataset: Pick<DatasetRecord, 'name' | 'source' | 'description'>,
  items: readonly ExportItem[],
  now: Date = new Date(),
): ExportLayout {
  const files = new Map<string, Uint8Array>();
  const usedStems = new Set<string>();
  const counts: Record<string, number> = {};
  const out: ManifestItemOut[] = [];
  for (const it of items) {
    const ext = EXT_OF_MIME[it.mime] ?? (extension(it.name) || 'bin');
    // Stems are unique across the whole archive, so masks in ground_truth/<class>/ never collide either.
    const base = safeSegment(stem(it.name.split('/').join('__')));
    let s = base;
    for (let k = 2; usedStems.has(s.toLowerCase()); k++) s = `${base}-${k}`;
    usedStems.add(s.toLowerCase());
    const cls = safeSegment(it.defectClass || 'defect');
    const dir =
      it.label === 'unlabeled'
        ? `unlabeled/${it.split}`
        : `${SPLIT_DIR[it.split]}/${it.label === 'normal' ? 'good' : cls}`;
    const file = `${dir}/${s}.${ext}`;
    files.set(file, it.bytes);
    let mask: string | null = null;
    if (it.mask) {
      mask = `ground_truth/${it.label === 'normal' ? 'good' : cls}/${s}_mask.png`;
      files.set(mask, it.mask);
    }
    const key = `${it.split}/${it.label}`;
    counts[key] = (counts[key] ?? 0) + 1;
    out.push({
      file,
      name: it.name,
      label: it.label === 'normal' ? 0 : it.label === 'defect' ? 1 : null,
      label_name: it.label,
      split: it.split,
      mask,
      defect_class: it.defectClass ?? null,
      group: it.group ?? null,
      width: it.width,
      height: it.height,
      channels: it.channels,
      sha256: it.sha256,
      mime: it.mime,
      provenance: it.provenance ?? null,
    });
  }
  const manifest: ExportManifest = {
    dataset: dataset.name,
    description: dataset.description ?? null,
    source: dataset.source,
    format:
      'DefectLab export: MVTec layout (train/good, test/<defect>, ground_truth/<defect>/*_mask.png); ' +
      'this manifest lists every image with label, split, mask, defect class, group and provenance',
    exporter: 'DefectLab',
    exported_at: now.toISOString(),
    counts,
    items: out,
  };
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
  return { files, manifest };
}

/** The export fields of a stored image (bytes and mask bytes are read by the caller). */
export function exportFieldsOf(r: ImageRecord): Omit<ExportItem, 'bytes' | 'mask'> {
  return {
    name: r.name,
    mime: r.mime,
    width: r.width,
    height: r.height,
    channels: r.channels,
    sha256: r.sha256,
    label: r.label,
    split: r.split,
    ...(r.defectClass ? { defectClass: r.defectClass } : {}),
    ...(r.group ? { group: r.group } : {}),
    ...(r.provenance ? { provenance: r.provenance } : {}),
    createdAt: r.createdAt,
  };
}

/**
 * Zips a layout. Images and masks are already compressed (PNG/JPEG/WebP), so they are stored (level 0) — about
 * as small and much faster; text (the manifest) and BMPs are deflated.
 */
export function zipLayout(layout: ExportLayout): Uint8Array {
  const z: Zippable = {};
  for (const [path, bytes] of layout.files) {
    const ext = extension(path);
    const level = ext === 'json' || ext === 'bmp' ? 6 : 0;
    z[path] = [bytes, { level }];
  }
  return zipSync(z);
}

/**
 * Import planning: from a list of entries (picked files, a folder picked with webkitdirectory, or an unpacked
 * zip) decide the layout and produce a plan — which file becomes which image, with what label, split, defect
 * class, group and mask. Pure: no decoding, no storage ("data in, plans out"); the import engine executes it.
 *
 * Layouts, tried in this order:
 * 1. `manifest` — a `manifest.json` (the shallowest one) in the format of the magnetic-tile reference set and of
 *    DefectLab's own export: `{ items: [{ file, label | label_name, split, mask, defect_class, group, … }] }`,
 *    paths relative to the manifest's folder.
 * 2. `mvtec` — `<root>/train/good/*`, `<root>/test/<defect>/*`, `<root>/ground_truth/<defect>/<stem>_mask.png`
 *    (also `validation/<class>/*`); several roots (MVTec categories) may sit side by side.
 * 3. `plain` — every file is an unlabeled training image.
 */
import type { Label, SampleProvenance, Split } from '../dataset.ts';
import { ImportError, rejected, type Rejected } from './errors.ts';
import {
  basename,
  dirname,
  isJunkPath,
  joinPath,
  looksLikeImage,
  normalizePath,
  stem,
  traversalReason,
} from './paths.ts';

/** One input file: its path relative to what the user picked (folder or archive) and its bytes. */
export interface ImportEntry {
  path: string;
  bytes: Uint8Array;
}

/** What planning needs of an entry: its path, and the bytes of `manifest.json` files (others may omit them). */
export interface PlanEntry {
  path: string;
  bytes?: Uint8Array;
}

export type ImportLayout = 'manifest' | 'mvtec' | 'plain';

/** One image to import. `file` and `maskFile` are entry paths. */
export interface PlannedItem {
  file: string;
  /** Name to store (original name from a DefectLab export manifest, else the entry path). */
  name: string;
  label: Label;
  split: Split;
  defectClass?: string;
  group?: string;
  maskFile?: string;
  provenance?: SampleProvenance;
}

export interface ImportPlan {
  layout: ImportLayout;
  items: PlannedItem[];
  /** Entries refused while planning (missing files, unlisted images, unmatched masks, bad manifest rows). */
  rejected: Rejected[];
  /** Non-image side files that are not part of the layout (README, LICENSE); skipped without complaint. */
  ignored: string[];
  /** From the manifest: dataset name and a description (citation, licence, source). */
  meta?: { name?: string; description?: string };
}

const MANIFEST = 'manifest.json';

/** Plans an import. Entries' paths may use '\\' or './'; they are normalized (traversal is the unzipper's job). */
export function planImport(input: readonly PlanEntry[]): ImportPlan {
  const rejectedItems: Rejected[] = [];
  const entries = new Map<string, PlanEntry>();
  for (const e of input) {
    const reason = traversalReason(e.path);
    if (reason) {
      rejectedItems.push(
        rejected(
          new ImportError(
            e.path,
            'path-traversal',
            `unsafe path (${reason})`,
            'import files with relative paths only',
          ),
        ),
      );
      continue;
    }
    const path = normalizePath(e.path);
    if (!isJunkPath(path)) entries.set(path, { path, bytes: e.bytes });
  }

  const manifests = [...entries.keys()]
    .filter((p) => basename(p) === MANIFEST)
    .sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1));
  if (manifests.length > 0) {
    const m = planManifest(manifests[0], entries);
    if (m.plan) return { ...m.plan, rejected: [...rejectedItems, ...m.plan.rejected] };
    rejectedItems.push(m.rejected as Rejected);
    entries.delete(manifests[0]);
  }
  const mvtec = planMvtec(entries);
  if (mvtec) return { ...mvtec, rejected: [...rejectedItems, ...mvtec.rejected] };
  return {
    layout: 'plain',
    items: [...entries.keys()].map((p) => ({ file: p, name: p, label: 'unlabeled', split: 'train' })),
    rejected: rejectedItems,
    ignored: [],
  };
}

// ---- manifest

interface ManifestItem {
  file?: unknown;
  name?: unknown;
  label?: unknown;
  label_name?: unknown;
  split?: unknown;
  mask?: unknown;
  defect_class?: unknown;
  group?: unknown;
  provenance?: unknown;
}

const SPLIT_ALIASES: Record<string, Split> = {
  train: 'train',
  training: 'train',
  // Few-shot defects are training material ("never evaluate on them").
  fewshot: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  test: 'test',
  testing: 'test',
};

const LABEL_ALIASES: Record<string, Label> = {
  normal: 'normal',
  good: 'normal',
  ok: 'normal',
  defect: 'defect',
  anomaly: 'defect',
  anomalous: 'defect',
  bad: 'defect',
  ng: 'defect',
  unlabeled: 'unlabeled',
  unlabelled: 'unlabeled',
  unknown: 'unlabeled',
};

function planManifest(
  manifestPath: string,
  entries: Map<string, PlanEntry>,
): { plan?: ImportPlan; rejected?: Rejected } {
  const bad = (reason: string) => ({
    rejected: rejected(
      new ImportError(
        manifestPath,
        'manifest-invalid',
        reason,
        'fix manifest.json (it needs an "items" array of { file, label, split, mask }) or remove it to import the files by folder layout',
      ),
    ),
  });
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(entries.get(manifestPath)!.bytes ?? new Uint8Array()));
  } catch (e) {
    return bad(`not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const items = (doc as { items?: unknown })?.items;
  if (!Array.isArray(items)) return bad('no "items" array');

  const root = dirname(manifestPath);
  const plan: ImportPlan = { layout: 'manifest', items: [], rejected: [], ignored: [] };
  const used = new Set<string>([manifestPath]);
  const reject = (file: string, kind: Rejected['kind'], reason: string, fix: string) =>
    plan.rejected.push(rejected(new ImportError(file, kind, reason, fix)));

  items.forEach((raw: ManifestItem, i) => {
    const where = `${manifestPath} item ${i}`;
    if (!raw || typeof raw !== 'object' || typeof raw.file !== 'string' || raw.file === '') {
      reject(where, 'manifest-invalid', 'item has no "file" string', 'give every item a "file" path');
      return;
    }
    const traversal = traversalReason(raw.file);
    if (traversal) {
      reject(
        raw.file,
        'path-traversal',
        `manifest names an unsafe path (${traversal})`,
        'use paths relative to manifest.json',
      );
      return;
    }
    const file = joinPath(root, raw.file);
    if (!entries.has(file)) {
      reject(
        file,
        'missing-file',
        `listed in ${manifestPath} but not among the imported files`,
        'add the file to the folder/archive or remove it from manifest.json',
      );
      return;
    }
    if (used.has(file)) {
      reject(file, 'manifest-invalid', `listed twice in ${manifestPath}`, 'list each file once');
      return;
    }
    const label = manifestLabel(raw);
    if (!label) {
      reject(
        file,
        'manifest-invalid',
        `unknown label ${JSON.stringify(raw.label_name ?? raw.label)}`,
        'use normal / defect / unlabeled (or 0 / 1)',
      );
      return;
    }
    const splitName =
      raw.split === undefined || raw.split === null ? 'train' : String(raw.split).toLowerCase();
    const split = SPLIT_ALIASES[splitName];
    if (!split) {
      reject(
        file,
        'manifest-invalid',
        `unknown split ${JSON.stringify(raw.split)}`,
        'use train / val / test (or fewshot)',
      );
      return;
    }
    let maskFile: string | undefined;
    if (typeof raw.mask === 'string' && raw.mask !== '') {
      const mt = traversalReason(raw.mask);
      if (mt) {
        reject(
          raw.mask,
          'path-traversal',
          `manifest names an unsafe mask path (${mt})`,
          'use paths relative to manifest.json',
        );
        return;
      }
      maskFile = joinPath(root, raw.mask);
      if (!entries.has(maskFile)) {
        reject(
          maskFile,
          'missing-file',
          `mask of ${file} is listed in ${manifestPath} but not among the imported files`,
          'add the mask file or set "mask": null in manifest.json',
        );
        return;
      }
      used.add(maskFile);
    }
    used.add(file);
    const item: PlannedItem = {
      file,
      name: typeof raw.name === 'string' && raw.name ? raw.name : file,
      label,
      split,
    };
    if (typeof raw.defect_class === 'string' && raw.defect_class) item.defectClass = raw.defect_class;
    if (raw.group !== undefined && raw.group !== null && raw.group !== '') item.group = String(raw.group);
    if (maskFile) item.maskFile = maskFile;
    if (raw.provenance && typeof raw.provenance === 'object')
      item.provenance = raw.provenance as SampleProvenance;
    plan.items.push(item);
  });

  for (const path of entries.keys()) {
    if (used.has(path)) continue;
    if (looksLikeImage(path))
      reject(
        path,
        'not-in-layout',
        `not listed in ${manifestPath}`,
        'add it to manifest.json or import it separately',
      );
    else plan.ignored.push(path);
  }
  const d = doc as Record<string, unknown>;
  const name = typeof d.dataset === 'string' ? d.dataset : undefined;
  const description = ['description', 'citation', 'license', 'source_repo']
    .filter((k) => typeof d[k] === 'string' && d[k])
    .map((k) => `${k}: ${d[k] as string}`)
    .join('\n');
  plan.meta = { ...(name ? { name } : {}), ...(description ? { description } : {}) };
  return { plan };
}

function manifestLabel(raw: ManifestItem): Label | null {
  if (typeof raw.label_name === 'string') return LABEL_ALIASES[raw.label_name.toLowerCase()] ?? null;
  if (raw.label === undefined || raw.label === null) return 'unlabeled';
  if (typeof raw.label === 'string') return LABEL_ALIASES[raw.label.toLowerCase()] ?? null;
  if (raw.label === 0 || raw.label === false) return 'normal';
  if (raw.label === 1 || raw.label === true) return 'defect';
  if (raw.label === -1) return 'unlabeled';
  return null;
}

// ---- MVTec

const MVTEC_IMAGE = /^(?:(.*)\/)?(train|test|validation)\/([^/]+)\/([^/]+)$/;
const MVTEC_MASK = /^(?:(.*)\/)?ground_truth\/([^/]+)\/([^/]+)$/;
const MVTEC_SPLIT: Record<string, Split> = { train: 'train', test: 'test', validation: 'val' };

function planMvtec(entries: Map<string, PlanEntry>): ImportPlan | null {
  const isMvtec = [...entries.keys()].some((p) => {
    const m = MVTEC_IMAGE.exec(p);
    return !!m && m[3] === 'good';
  });
  if (!isMvtec) return null;
  const plan: ImportPlan = { layout: 'mvtec', items: [], rejected: [], ignored: [] };
  const masks = new Map<string, string>();
  const maskUsed = new Set<string>();
  for (const p of entries.keys()) {
    const m = MVTEC_MASK.exec(p);
    if (m && looksLikeImage(p)) masks.set(`${m[1] ?? ''}|${m[2]}|${stem(m[3]).replace(/_mask$/, '')}`, p);
  }
  for (const p of entries.keys()) {
    if (MVTEC_MASK.test(p) && masks.has(maskKeyOf(p))) continue;
    const m = MVTEC_IMAGE.exec(p);
    if (!m || !looksLikeImage(p)) {
      if (looksLikeImage(p))
        plan.rejected.push(
          rejected(
            new ImportError(
              p,
              'not-in-layout',
              'outside the MVTec layout (train/good, test/<defect>, ground_truth/<defect>)',
              'move it into the layout or import it separately',
            ),
          ),
        );
      else plan.ignored.push(p);
      continue;
    }
    const [, root = '', splitDir, cls, file] = m;
    const good = cls === 'good';
    const item: PlannedItem = {
      file: p,
      name: p,
      label: good ? 'normal' : 'defect',
      split: MVTEC_SPLIT[splitDir],
    };
    if (!good) {
      item.defectClass = cls;
      const mask = masks.get(`${root}|${cls}|${stem(file)}`);
      if (mask) {
        item.maskFile = mask;
        maskUsed.add(mask);
      }
    }
    plan.items.push(item);
  }
  for (const mask of masks.values()) {
    if (maskUsed.has(mask)) continue;
    const m = MVTEC_MASK.exec(mask)!;
    const root = m[1] ? `${m[1]}/` : '';
    plan.rejected.push(
      rejected(
        new ImportError(
          mask,
          'not-in-layout',
          `mask has no image ${root}test/${m[2]}/${stem(m[3]).replace(/_mask$/, '')}.*`,
          'add the image or remove the mask',
        ),
      ),
    );
  }
  return plan;
}

function maskKeyOf(p: string): string {
  const m = MVTEC_MASK.exec(p)!;
  return `${m[1] ?? ''}|${m[2]}|${stem(m[3]).replace(/_mask$/, '')}`;
}

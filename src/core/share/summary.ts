/**
 * What opening a share link will do, in words, for the confirm dialog: what it sets in which tab, and which models
 * it needs (with sizes) — the participant decides before anything is changed or downloaded.
 */
import type { WorkshopSetup } from './setup.ts';

export interface SetupSummary {
  /** One line per thing the link sets, e.g. `Paint & generate: memseg, 8 samples, seed 7`. */
  lines: string[];
  downloads: { id: string; role: string; source: string; bytes?: number }[];
  /** Sum of the known model sizes (bytes), plus the dataset bundle's. */
  downloadBytes: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

export function summarizeSetup(s: WorkshopSetup): SetupSummary {
  const lines: string[] = [];
  if (s.generate) {
    const g = s.generate;
    const opts =
      g.options && g.optionsFor === g.generator ? `, ${plural(Object.keys(g.options).length, 'option')}` : '';
    lines.push(`Paint & generate: ${g.generator}, ${plural(g.count, 'sample')}, seed ${g.seed}${opts}`);
  }
  if (s.diffusion) {
    const d = s.diffusion;
    lines.push(
      `Diffusion: ${plural(d.prompts.length, 'prompt')} (${d.prompts.map((p) => `“${p}”`).join(', ')}), ` +
        `${d.steps} steps, guidance ${d.guidanceScale}, strength ${d.strength}, seed ${d.seed}`,
    );
  }
  if (s.masks?.length)
    lines.push(
      `Mask library: adds ${plural(s.masks.length, 'mask')} (${s.masks.map((m) => `${m.name} ${m.mask.width}×${m.mask.height}`).join(', ')})`,
    );
  if (s.train)
    lines.push(
      `Train & evaluate: backbone ${s.train.backbone}, head ${s.train.head}` +
        (s.train.epochs !== undefined ? `, ${s.train.epochs} epochs` : '') +
        (s.train.threshold ? `, threshold ${s.train.threshold.mode}` : ''),
    );
  if (s.grid)
    lines.push(
      `Experiment grid: ${s.grid.generators.length} generators × ${s.grid.nAug.length} N_aug × ` +
        `${s.grid.seeds.length} seeds × ${s.grid.heads.length} heads`,
    );
  const downloads = (s.models ?? []).map((m) => ({ ...m }));
  let downloadBytes = downloads.reduce((t, m) => t + (m.bytes ?? 0), 0);
  if (s.dataset) {
    lines.push(
      `Dataset: downloads ${s.dataset.name ?? s.dataset.url} (${formatBytes(s.dataset.size)}), checks its sha256`,
    );
    downloadBytes += s.dataset.size;
  }
  return { lines, downloads, downloadBytes };
}

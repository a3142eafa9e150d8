/** Aggregation of cells over seeds (mean ± sample std) and CSV/JSON export. */
import type { CellResult, GeneratorChoice, HeadChoice } from './types.ts';

export const TABLE_METRICS = ['ap', 'auroc', 'f1', 'precision', 'recall', 'mcc', 'fpr', 'valAp'] as const;
export type TableMetric = (typeof TABLE_METRICS)[number];

export interface Stat {
  mean: number;
  /** Sample standard deviation (n − 1 denominator); NaN for a single seed. */
  std: number;
  n: number;
}

export interface TableRow {
  /** Human label, e.g. "memseg ×100 + few-shot · bce" or "baseline: k-NN". */
  label: string;
  generator: GeneratorChoice;
  nAug: number;
  head: HeadChoice;
  fewShot: boolean;
  baseline: boolean;
  seeds: number[];
  /** Distinct threshold sources of the row's cells (normally one). */
  thresholdSource: string;
  stats: Record<TableMetric, Stat>;
  /** Per defect class: AP and recall at the cell's threshold over seeds; `n` = test defects of the class. */
  perClass: Record<string, { ap: Stat; recall: Stat; n: number }>;
  failed: number;
}

/** Mean and sample std of the finite values (NaN-only input → NaN mean). */
export function meanStd(values: readonly number[]): Stat {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: NaN, n };
  const ss = v.reduce((a, b) => a + (b - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

export function rowLabel(c: {
  generator: string;
  nAug: number;
  head: string;
  fewShot: boolean;
  stream?: string;
}): string {
  if (c.head === 'knn') return 'baseline: k-NN cosine distance';
  if (c.head === 'mean') return 'baseline: cosine distance to mean normal';
  const gen = c.generator === 'none' ? 'no synthetic' : `${c.generator} ×${c.nAug}`;
  const few = c.fewShot ? ` + few-shot${c.stream === 'mixed' ? ' (mixed p)' : ''}` : '';
  return `${gen}${few} · ${c.head}`;
}

/** Groups cells by everything but the seed and aggregates each metric over seeds. Row order follows first appearance. */
export function aggregate(cells: readonly CellResult[]): TableRow[] {
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    const k = c.config;
    const key = [k.generator, k.nAug, k.head, k.fewShot, k.stream, k.threshold.mode].join('|');
    const g = groups.get(key);
    if (g) g.push(c);
    else groups.set(key, [c]);
  }
  const rows: TableRow[] = [];
  for (const g of groups.values()) {
    const cfg = g[0].config;
    const done = g.filter((c) => c.status === 'done' && c.metrics);
    const stats = {} as Record<TableMetric, Stat>;
    for (const m of TABLE_METRICS) stats[m] = meanStd(done.map((c) => c.metrics?.[m] ?? NaN));
    const classes = new Set<string>();
    for (const c of done) for (const k of Object.keys(c.perClass ?? {})) classes.add(k);
    const perClass: TableRow['perClass'] = {};
    for (const k of [...classes].sort())
      perClass[k] = {
        ap: meanStd(done.map((c) => c.perClass?.[k]?.ap ?? NaN)),
        recall: meanStd(done.map((c) => c.perClass?.[k]?.recall ?? NaN)),
        n: Math.max(0, ...done.map((c) => c.perClass?.[k]?.n ?? 0)),
      };
    rows.push({
      label: rowLabel(cfg),
      generator: cfg.generator,
      nAug: cfg.nAug,
      head: cfg.head,
      fewShot: cfg.fewShot,
      baseline: cfg.head === 'knn' || cfg.head === 'mean',
      seeds: g.map((c) => c.config.seed),
      thresholdSource: [...new Set(done.map((c) => c.thresholdSource ?? '?'))].join(', '),
      stats,
      perClass,
      failed: g.length - done.length,
    });
  }
  return rows;
}

export function fmtStat(s: Stat, digits = 3): string {
  if (!Number.isFinite(s.mean)) return '—';
  return Number.isFinite(s.std)
    ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`
    : s.mean.toFixed(digits);
}

/** Defect classes named by any row, sorted. */
export function tableClasses(rows: readonly { perClass?: Record<string, unknown> }[]): string[] {
  const set = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.perClass ?? {})) set.add(k);
  return [...set].sort();
}

/** "AP mean ± std · R mean ± std" of one row and class, "—" when the class has no result. */
export function fmtClass(c: { ap: Stat; recall: Stat } | undefined, digits = 3): string {
  if (!c || !Number.isFinite(c.ap.mean)) return '—';
  return `${fmtStat(c.ap, digits)} · R ${fmtStat(c.recall, 2)}`;
}

/**
 * Markdown: the results table (the README/docs table), then, when the test set names defect classes, the
 * per-class table (each class's defects against all test normals: AP, and recall R at the cell's threshold).
 */
export function toMarkdown(
  rows: readonly TableRow[],
  metrics: readonly TableMetric[] = ['ap', 'auroc', 'f1', 'mcc', 'valAp'],
  o: { perClass?: boolean } = {},
): string {
  const head = [
    'setting',
    'seeds',
    ...metrics.map((m) => (m === 'valAp' ? 'val AP' : m.toUpperCase())),
    'threshold from',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`];
  for (const r of rows)
    lines.push(
      `| ${r.label} | ${r.seeds.length - r.failed}${r.failed ? ` (+${r.failed} failed)` : ''} | ${metrics
        .map((m) => fmtStat(r.stats[m]))
        .join(' | ')} | ${r.thresholdSource} |`,
    );
  const classes = o.perClass === false ? [] : tableClasses(rows);
  if (classes.length) {
    const n = (k: string) => Math.max(0, ...rows.map((r) => r.perClass[k]?.n ?? 0));
    const ch = ['setting', ...classes.map((k) => `${k} (n = ${n(k)})`)];
    lines.push(
      '',
      'Per defect class: AP of the class against all test normals · R = its recall at the threshold above.',
      '',
      `| ${ch.join(' | ')} |`,
      `|${ch.map(() => ' --- ').join('|')}|`,
    );
    for (const r of rows)
      lines.push(`| ${r.label} | ${classes.map((k) => fmtClass(r.perClass[k])).join(' | ')} |`);
  }
  return lines.join('\n');
}

function csvField(v: unknown): string {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v ?? '');
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * One line per row: mean and std columns per metric (std is the sample std over seeds), then per defect class
 * `class:<name>:ap_mean`, `…:ap_std`, `…:recall_mean`, `…:recall_std`, `…:n`.
 */
export function rowsToCsv(rows: readonly TableRow[]): string {
  const header = ['setting', 'generator', 'n_aug', 'head', 'few_shot', 'seeds', 'threshold_source'];
  for (const m of TABLE_METRICS) header.push(`${m}_mean`, `${m}_std`);
  const classes = tableClasses(rows);
  for (const k of classes)
    for (const f of ['ap_mean', 'ap_std', 'recall_mean', 'recall_std', 'n']) header.push(`class:${k}:${f}`);
  const lines = [header.map(csvField).join(',')];
  for (const r of rows) {
    const f: unknown[] = [
      r.label,
      r.generator,
      r.nAug,
      r.head,
      r.fewShot,
      r.seeds.join(' '),
      r.thresholdSource,
    ];
    for (const m of TABLE_METRICS) f.push(r.stats[m].mean, r.stats[m].std);
    for (const k of classes) {
      const c = r.perClass[k];
      f.push(c?.ap.mean, c?.ap.std, c?.recall.mean, c?.recall.std, c?.n);
    }
    lines.push(f.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}

/** One line per cell, with its full config as JSON so each line can be re-run. */
export function cellsToCsv(cells: readonly CellResult[]): string {
  const header = [
    'id',
    'status',
    'generator',
    'n_aug',
    'head',
    'few_shot',
    'seed',
    'threshold_source',
    'threshold',
  ];
  const metrics = ['ap', 'auroc', 'precision', 'recall', 'f1', 'mcc', 'fpr', 'valAp'] as const;
  header.push(...metrics);
  const classes = tableClasses(cells);
  for (const k of classes) header.push(`class:${k}:ap`, `class:${k}:recall`);
  header.push('config');
  const lines = [header.map(csvField).join(',')];
  for (const c of cells) {
    const k = c.config;
    const f: unknown[] = [
      c.id,
      c.status,
      k.generator,
      k.nAug,
      k.head,
      k.fewShot,
      k.seed,
      c.thresholdSource,
      c.metrics?.threshold,
    ];
    for (const m of metrics) f.push(c.metrics?.[m]);
    for (const cls of classes) f.push(c.perClass?.[cls]?.ap, c.perClass?.[cls]?.recall);
    f.push(JSON.stringify(k));
    lines.push(f.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}

/** The JSON export: the table, every cell (config + metrics, scores dropped) and the warnings. */
export function toJson(cells: readonly CellResult[], extra: Record<string, unknown> = {}): string {
  const slim = cells.map(({ scores: _scores, ...rest }) => rest);
  return JSON.stringify(
    { ...extra, table: aggregate(cells), cells: slim },
    (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  );
}

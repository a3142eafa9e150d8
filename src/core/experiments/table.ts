/**
 * Aggregation of cells over seeds (mean ± sample std), CSV/JSON export, and the Markdown the docs embed: a run's
 * `result.json` renders to the same bytes wherever it is rendered (CLI `--out`, `npm run docs:tables`, the docs
 * test), so README.md and docs/results.md can only show what a committed run printed.
 */
import { DefectLabError } from '../errors.ts';
import { stableStringify } from './grid.ts';
import type { CellConfig, CellCounts, CellResult, GeneratorChoice, HeadChoice } from './types.ts';

/**
 * Every metric a table can show (the papers' columns): image-level AP, AUROC, F1, P, R, MCC, FPR and the confusion
 * counts at the threshold (ISP-AD), validation AP, and for heads with heat maps pixel-level AUPRO and AUROC.
 */
export const TABLE_METRICS = [
  'ap',
  'auroc',
  'f1',
  'precision',
  'recall',
  'mcc',
  'fpr',
  'valAp',
  'tp',
  'fp',
  'tn',
  'fn',
  'auPro',
  'pixelAuroc',
] as const;
const COUNT_METRICS: readonly TableMetric[] = ['tp', 'fp', 'tn', 'fn'];
const METRIC_HEADERS: Partial<Record<TableMetric, string>> = {
  valAp: 'val AP',
  auPro: 'AUPRO@0.3',
  pixelAuroc: 'pixel AUROC',
  precision: 'P',
  recall: 'R',
};
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
  /** Per defect class: AP, AUROC and recall at the cell's threshold over seeds; `n` = test defects of the class. */
  perClass: Record<string, ClassStats>;
  failed: number;
  /** Images the row's cells trained on, validated on and were tested on (the first done cell's; seeds agree). */
  counts?: CellCounts;
}

export interface ClassStats {
  ap: Stat;
  auroc: Stat;
  recall: Stat;
  n: number;
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

/**
 * The table row a cell belongs to: everything but the seed, so cells that differ on any axis (real-defect
 * probability, diffusion strength / guidance / steps, the In&Out pair, head options, threshold, …) stay apart.
 */
export function rowKey(k: CellConfig): string {
  const { seed: _seed, ...rest } = k;
  return stableStringify(rest);
}

/** Settings that differ between rows with the same label, as "key=value" (so the table can tell them apart). */
function distinguishing(configs: readonly CellConfig[]): ((c: CellConfig) => string) | null {
  const flat = (c: CellConfig): Record<string, string> => {
    const out: Record<string, string> = {};
    const walk = (v: unknown, path: string) => {
      if (v && typeof v === 'object' && !Array.isArray(v))
        for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
      else out[path] = JSON.stringify(v);
    };
    const { seed: _s, dataset: _d, extractor: _e, ...rest } = c;
    walk(rest, '');
    return out;
  };
  const flats = configs.map(flat);
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].filter(
    (k) => new Set(flats.map((f) => f[k])).size > 1,
  );
  if (!keys.length) return null;
  return (c) => {
    const f = flat(c);
    return keys
      .filter((k) => f[k] !== undefined)
      .map((k) => `${k}=${f[k].replace(/^"|"$/g, '')}`)
      .join(', ');
  };
}

/** Groups cells by everything but the seed and aggregates each metric over seeds. Row order follows first appearance. */
export function aggregate(cells: readonly CellResult[]): TableRow[] {
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    const key = rowKey(c.config);
    const g = groups.get(key);
    if (g) g.push(c);
    else groups.set(key, [c]);
  }
  const rows: TableRow[] = [];
  // Rows whose labels collide (a sweep over an axis the label does not name) get their differing settings.
  const byLabel = new Map<string, CellConfig[]>();
  for (const g of groups.values()) {
    const l = rowLabel(g[0].config);
    byLabel.set(l, [...(byLabel.get(l) ?? []), g[0].config]);
  }
  for (const g of groups.values()) {
    const cfg = g[0].config;
    const same = byLabel.get(rowLabel(cfg)) ?? [];
    const extra = same.length > 1 ? distinguishing(same)?.(cfg) : '';
    const done = g.filter((c) => c.status === 'done' && c.metrics);
    const stats = {} as Record<TableMetric, Stat>;
    for (const m of TABLE_METRICS) stats[m] = meanStd(done.map((c) => c.metrics?.[m] ?? NaN));
    const classes = new Set<string>();
    for (const c of done) for (const k of Object.keys(c.perClass ?? {})) classes.add(k);
    const perClass: TableRow['perClass'] = {};
    for (const k of [...classes].sort())
      perClass[k] = {
        ap: meanStd(done.map((c) => c.perClass?.[k]?.ap ?? NaN)),
        auroc: meanStd(done.map((c) => c.perClass?.[k]?.auroc ?? NaN)),
        recall: meanStd(done.map((c) => c.perClass?.[k]?.recall ?? NaN)),
        n: Math.max(0, ...done.map((c) => c.perClass?.[k]?.n ?? 0)),
      };
    rows.push({
      label: extra ? `${rowLabel(cfg)} [${extra}]` : rowLabel(cfg),
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
      ...(done[0]?.counts ? { counts: done[0].counts } : {}),
    });
  }
  return rows;
}

/** `mean ± std`; a missing value (NaN, or null once a table went through JSON) prints "—". */
export function fmtStat(s: Stat | undefined, digits = 3): string {
  if (!s || !Number.isFinite(s.mean)) return '—';
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

/**
 * "AP mean ± std · AUROC mean ± std · R mean ± std" of one row and class, "—" when the class has no result.
 * Tables written before per-class AUROC existed have no `auroc`: it prints "—" rather than failing.
 */
export function fmtClass(c: ClassStats | undefined, digits = 3): string {
  if (!c || !Number.isFinite(c.ap.mean)) return '—';
  return `AP ${fmtStat(c.ap, digits)} · AUROC ${fmtStat(c.auroc, digits)} · R ${fmtStat(c.recall, 2)}`;
}

/**
 * Markdown: the results table, then, when the test set names defect classes, the per-class table (each class's
 * defects against all test normals: AP, AUROC, and recall R at the cell's threshold). The docs embed
 * `renderResult`, which adds the run's provenance and warnings to these tables.
 */
export function toMarkdown(
  rows: readonly TableRow[],
  metrics: readonly TableMetric[] = ['ap', 'auroc', 'f1', 'mcc', 'valAp'],
  o: { perClass?: boolean } = {},
): string {
  const withCounts = rows.some((r) => r.counts);
  const head = [
    'setting',
    'seeds',
    ...metrics.map((m) => METRIC_HEADERS[m] ?? m.toUpperCase()),
    'threshold from',
    ...(withCounts ? ['trained on (N + S + R)', 'validated on (N + S + R)'] : []),
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`];
  const nsr = (x: { normal: number; synthetic: number; real: number } | undefined) =>
    x ? `${x.normal} + ${x.synthetic} + ${x.real}` : '—';
  for (const r of rows)
    lines.push(
      `| ${r.label} | ${r.seeds.length - r.failed}${r.failed ? ` (+${r.failed} failed)` : ''} | ${metrics
        .map((m) => fmtStat(r.stats[m], COUNT_METRICS.includes(m) ? 1 : 3))
        .join(' | ')} | ${r.thresholdSource} |${
        withCounts ? ` ${nsr(r.counts?.train)} | ${nsr(r.counts?.val)} |` : ''
      }`,
    );
  const perClass = o.perClass === false ? '' : perClassMarkdown(rows);
  if (perClass) lines.push('', perClass);
  return lines.join('\n');
}

/**
 * The per-class table, '' when no row names a defect class. The header gives each class's test-defect count; a
 * row whose cells saw a different count (a failed or partial cell) says so in its own cell.
 */
export function perClassMarkdown(rows: readonly TableRow[]): string {
  const classes = tableClasses(rows);
  if (!classes.length) return '';
  const n = (k: string) => Math.max(0, ...rows.map((r) => r.perClass[k]?.n ?? 0));
  const ch = ['setting', ...classes.map((k) => `${k} (n = ${n(k)})`)];
  const cell = (r: TableRow, k: string) => {
    const c = r.perClass[k];
    const own = c && c.n !== n(k) ? ` (n = ${c.n})` : '';
    return `${fmtClass(c)}${own}`;
  };
  const lines = [
    'Per defect class: AP and AUROC of the class against all test normals · R = its recall at the threshold above.',
    '',
    `| ${ch.join(' | ')} |`,
    `|${ch.map(() => ' --- ').join('|')}|`,
  ];
  for (const r of rows) lines.push(`| ${r.label} | ${classes.map((k) => cell(r, k)).join(' | ')} |`);
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

/**
 * The JSON export (`result.json`): `extra` (command, provenance, warnings), the table, every cell (config +
 * metrics, scores dropped). Pass `table` when its rows carry labels of their own (the magnetic-tile run's
 * "(a) zero-shot …"): re-aggregating the cells would give the default labels.
 */
export function toJson(
  cells: readonly CellResult[],
  extra: Record<string, unknown> = {},
  table: readonly TableRow[] = aggregate(cells),
): string {
  const slim = cells.map(({ scores: _scores, ...rest }) => rest);
  return JSON.stringify(
    { ...extra, table, cells: slim },
    (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
    2,
  );
}

/**
 * What `result.json` holds: `toJson`'s table and cells plus the run's provenance. After JSON, non-finite numbers
 * are null; the formatters print them as "—".
 */
export interface ResultFile {
  /** The command that made the run (the magnetic-tile run). */
  command?: string;
  /** The grid config file of an `experiment --config` run. */
  config?: string;
  /** Wall time of the run, seconds. */
  seconds?: number;
  /** Where the backbone ran (`cpu`, `cuda`, …). */
  backend?: string;
  /** CPU count and model, Node version. */
  machine?: string;
  warnings?: string[];
  /** Sentences the run computed from its own rows (targets met or not), printed under the table. */
  findings?: string[];
  /** A paper preset's table title and the columns it prints (default `RESULT_METRICS`). */
  title?: string;
  columns?: TableMetric[];
  table: TableRow[];
  cells: CellResult[];
}

/** The main table's columns in the docs and the CLI. */
export const RESULT_METRICS: readonly TableMetric[] = ['ap', 'auroc', 'f1', 'mcc', 'fpr', 'valAp'];

/** `main` = provenance, main table and warnings; `per-class` = the per-class table; `all` = both. */
export const RESULT_PARTS = ['all', 'main', 'per-class'] as const;
export type ResultPart = (typeof RESULT_PARTS)[number];

/** A result.json that cannot be rendered: names the file and what is wrong with it. */
export class ResultFileError extends DefectLabError {
  constructor(file: string, problem: string) {
    super(
      'ResultFileError',
      `${file}: ${problem}`,
      `write it with npm run experiment:mt -- --out DIR (DIR/result.json) or npm run cli -- experiment --config GRID.json --out DIR`,
    );
  }
}

/** Parses and checks the fields `renderResult` reads; `file` names the file in errors. */
export function parseResultFile(text: string, file: string): ResultFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ResultFileError(file, `not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ResultFileError(file, 'not a JSON object');
  const o = v as Record<string, unknown>;
  if (!Array.isArray(o.table)) throw new ResultFileError(file, '"table" is missing or not an array');
  if (!Array.isArray(o.cells)) throw new ResultFileError(file, '"cells" is missing or not an array');
  o.table.forEach((r: unknown, i) => {
    const row = r as Partial<TableRow> | null;
    if (typeof row?.label !== 'string' || typeof row.stats !== 'object' || !Array.isArray(row.seeds))
      throw new ResultFileError(file, `table[${i}] needs "label", "seeds" and "stats"`);
  });
  o.cells.forEach((c: unknown, i) => {
    const cell = c as Partial<CellResult> | null;
    if (typeof cell?.config !== 'object' || typeof cell.status !== 'string')
      throw new ResultFileError(file, `cells[${i}] needs "config" and "status"`);
  });
  return o as unknown as ResultFile;
}

function seedList(seeds: readonly number[]): string {
  return [...new Set(seeds)].sort((a, b) => a - b).join(', ');
}

/** The run's provenance as a Markdown list: command, data, features, where and when it ran. */
function provenance(r: ResultFile): string[] {
  const lines: string[] = [];
  if (r.command) lines.push(`- Command: \`${r.command}\``);
  if (r.config) lines.push(`- Grid config: \`${r.config}\``);
  const first = r.cells[0]?.config;
  const done = r.cells.find((c) => c.status === 'done' && c.metrics)?.metrics;
  const data: string[] = [];
  if (first) data.push(`\`${first.dataset}\``);
  if (done)
    data.push(
      `test set ${done.tp + done.fn + done.fp + done.tn} images (${done.fp + done.tn} normal, ${done.tp + done.fn} defective)`,
    );
  data.push(`seeds ${seedList(r.cells.map((c) => c.config.seed))}`);
  lines.push(`- Data: ${data.join('; ')}`);
  const extractors = [...new Set(r.cells.map((c) => c.config.extractor))];
  if (extractors.length)
    lines.push(
      `- Features: ${extractors.map((e) => `\`${e}\``).join(', ')}${r.backend ? ` on \`${r.backend}\`` : ''}`,
    );
  lines.push(...settingLines(r));
  const failed = r.cells.filter((c) => c.status !== 'done').length;
  const finished = Math.max(0, ...r.cells.map((c) => c.finishedAt ?? 0));
  let run = `${r.cells.length} cells (${failed} failed)`;
  if (typeof r.seconds === 'number') run += ` in ${Math.round(r.seconds)} s`;
  if (r.machine) run += ` on ${r.machine}`;
  if (finished > 0) run += `; finished ${new Date(finished).toISOString().slice(0, 10)}`;
  lines.push(`- Run: ${run}`);
  return lines;
}

/** The settings of a cell that its row label does not already say; `undefined` = the head's default. */
const SETTINGS: [string, (k: CellConfig) => string | undefined][] = [
  [
    'threshold policy',
    (k) => (k.threshold.mode === 'val-fpr' ? `val-fpr ≤ ${k.threshold.maxFpr}` : k.threshold.mode),
  ],
  ['validation fraction', (k) => String(k.valFraction)],
  ['stream', (k) => (k.stream === 'mixed' ? `mixed, p = ${k.realProbability}` : k.stream)],
  ['epochs', (k) => (k.epochs === undefined ? undefined : String(k.epochs))],
  ['head options', (k) => (k.headOptions ? JSON.stringify(k.headOptions) : undefined)],
  ['In&Out', (k) => (k.generator === 'in-out' ? `${k.inOut.in} + ${k.inOut.out}` : undefined)],
  [
    'diffusion',
    (k) =>
      k.diffusion
        ? `${k.diffusion.model}, ${k.diffusion.steps} steps, guidance ${k.diffusion.guidanceScale}, strength ${k.diffusion.strength}, masks ${k.diffusion.masks}`
        : undefined,
  ],
];

/**
 * One line per setting: its value when every cell shares it, else the value of each row (rows without it use
 * the head's default). Settings no cell sets are left out.
 */
function settingLines(r: ResultFile): string[] {
  const rows = new Map<string, { label: string; config: CellConfig }>();
  for (const c of r.cells) {
    const k = rowKey(c.config);
    if (!rows.has(k))
      rows.set(k, { label: r.table[rows.size]?.label ?? rowLabel(c.config), config: c.config });
  }
  const parts: string[] = [];
  for (const [name, get] of SETTINGS) {
    const values = [...rows.values()].map((row) => ({ label: row.label, value: get(row.config) }));
    const distinct = new Set(values.map((v) => v.value));
    if (distinct.size === 1 && values[0]?.value === undefined) continue;
    if (distinct.size === 1) parts.push(`${name} ${values[0].value}`);
    else
      parts.push(
        `${name}: ${values
          .filter((v) => v.value !== undefined)
          .map((v) => `${v.label} ${v.value}`)
          .join(', ')} (the others: the head's default)`,
      );
  }
  return parts.length ? [`- Settings: ${parts.join('; ')}`] : [];
}

/**
 * Each distinct warning (and failure) as the cells carry it, with the row and seeds that carry it, in order of
 * first appearance. Cells are grouped into rows as `aggregate` does.
 */
function warningLines(r: ResultFile): string[] {
  // Rows are in first-appearance order of their cells (as `aggregate` builds them), so the i-th row key is the
  // table's i-th row: its label may be the run's own ("(a) zero-shot …").
  const labels = new Map<string, string>();
  for (const c of r.cells) {
    const k = rowKey(c.config);
    if (!labels.has(k)) labels.set(k, r.table[labels.size]?.label ?? rowLabel(c.config));
  }
  const byText = new Map<string, { label: string; text: string; seeds: number[] }>();
  for (const c of r.cells) {
    const label = labels.get(rowKey(c.config)) ?? rowLabel(c.config);
    const texts = [...(c.warnings ?? []), ...(c.error ? [`failed: ${c.error}`] : [])];
    for (const text of texts) {
      const key = `${label}\u0000${text}`;
      const w = byText.get(key);
      if (w) w.seeds.push(c.config.seed);
      else byText.set(key, { label, text, seeds: [c.config.seed] });
    }
  }
  return [...byText.values()].map((w) => `- ${w.label}, seeds ${seedList(w.seeds)}: ${w.text}`);
}

/**
 * The Markdown of a run that the docs embed unchanged (between `<!-- results:NAME[:PART]:begin/end -->` markers,
 * see `server/docs-tables.ts`) and that `--out DIR` writes to `DIR/table.md`. Only what the file holds is printed.
 */
export function renderResult(r: ResultFile, part: ResultPart = 'all'): string {
  const main = () => {
    const lines = [
      ...(r.title ? [`### ${r.title}`, ''] : []),
      ...provenance(r),
      '',
      'Test-set metrics, mean ± sample std (n − 1) over seeds; F1, MCC and FPR at the threshold of the "threshold from" column. N + S + R = normals + synthetic + real defects a cell trained or validated on.',
      '',
      toMarkdown(r.table, r.columns?.length ? r.columns : RESULT_METRICS, { perClass: false }),
    ];
    if (r.findings?.length) lines.push('', 'What the rows say:', '', ...r.findings.map((f) => `- ${f}`));
    const warnings = warningLines(r);
    if (warnings.length) lines.push('', 'Warnings the cells carry:', '', ...warnings);
    return lines.join('\n');
  };
  if (part === 'main') return main();
  const perClass = perClassMarkdown(r.table) || 'No test image names a defect class.';
  if (part === 'per-class') return perClass;
  return `${main()}\n\n${perClass}`;
}

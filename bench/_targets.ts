/**
 * The open speed targets (issues 13 and 16) read off saved `npm run bench` JSON, one column per run, so the
 * bench README's target table is written by code and can be checked against the runs it came from:
 *
 *   npm run bench features metrics heads import synth patchcore > bench/runs/quiet-1.json
 *   npx tsx bench/_targets.ts --table bench/runs/quiet-*.json            print the Markdown table
 *   npx tsx bench/_targets.ts --out bench/README.md bench/runs/quiet-*.json   rewrite its generated block
 *
 * `tests/unit/bench-targets.test.ts` fails when the block in bench/README.md is not the render of the committed
 * runs. A figure a run did not measure prints "—" and counts as not met.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface BenchRun {
  machine?: { cpus?: number; cpuModel?: string; loadavgStart?: number[]; loadavgEnd?: number[] };
  results: Record<string, unknown>;
}

export interface Target {
  issue: number;
  /** The bench key, as the issue names it. */
  key: string;
  what: string;
  /** `≤` or `≥` the bound. */
  op: '≤' | '≥';
  bound: number;
  unit: '×' | 'ms' | 's';
  read: (r: Record<string, unknown>) => number | null;
}

function at(o: unknown, ...path: string[]): number | null {
  let v: unknown = o;
  for (const p of path) {
    if (!v || typeof v !== 'object') return null;
    v = (v as Record<string, unknown>)[p];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

const minOf = (...v: (number | null)[]): number | null => {
  const n = v.filter((x): x is number => x !== null);
  return n.length === v.length && n.length > 0 ? Math.min(...n) : null;
};

export const TARGETS: Target[] = [
  {
    issue: 13,
    key: 'patchcore.nodeOrtPredictMs',
    what: 'PatchCore: score one 224² image, 10k-patch bank, Node (onnxruntime-node search)',
    op: '≤',
    bound: 20,
    unit: 'ms',
    read: (r) => at(r, 'patchcore', 'nodeOrtPredictMs'),
  },
  {
    issue: 13,
    key: 'patchcore.browserPredictMs',
    what: 'PatchCore: the same in the browser worker (WASM)',
    op: '≤',
    bound: 100,
    unit: 'ms',
    read: (r) => at(r, 'patchcore', 'browserPredictMs'),
  },
  {
    issue: 13,
    key: 'patchcore.nodeCoreset100kMs',
    what: 'PatchCore: coreset of 100k patches, Node (projection + threaded greedy)',
    op: '≤',
    bound: 10_000,
    unit: 'ms',
    read: (r) => at(r, 'patchcore', 'nodeCoreset100kMs'),
  },
  {
    issue: 16,
    key: 'features.mobilenetv2-12-int8.wasmToNode',
    what: 'MobileNetV2-int8 features, browser WASM / onnxruntime-node CPU',
    op: '≥',
    bound: 0.5,
    unit: '×',
    read: (r) => at(r, 'features', 'mobilenetv2-12-int8', 'wasmToNode'),
  },
  {
    issue: 16,
    key: 'heads.bceEpochToTorch',
    what: 'linear BCE epoch / PyTorch (one thread)',
    op: '≤',
    bound: 1.5,
    unit: '×',
    read: (r) => at(r, 'heads', 'bceEpochToTorch'),
  },
  {
    issue: 16,
    key: 'heads.bceEpochToTorch_hidden128',
    what: 'MLP (hidden 128) BCE epoch / PyTorch (one thread)',
    op: '≤',
    bound: 1.5,
    unit: '×',
    read: (r) => at(r, 'heads', 'bceEpochToTorch_hidden128'),
  },
  {
    issue: 16,
    key: 'metrics.sklearn.averagePrecisionToSklearn',
    what: 'AP on 10⁶ scores / scikit-learn',
    op: '≤',
    bound: 0.7,
    unit: '×',
    read: (r) => at(r, 'metrics', 'sklearn', 'averagePrecisionToSklearn'),
  },
  {
    issue: 16,
    key: 'metrics.sklearn.rocAucToSklearn',
    what: 'AUROC on 10⁶ scores / scikit-learn',
    op: '≤',
    bound: 0.7,
    unit: '×',
    read: (r) => at(r, 'metrics', 'sklearn', 'rocAucToSklearn'),
  },
  {
    issue: 16,
    key: 'import.browserSeconds',
    what: 'import 2,331 KSDD2-size PNGs in the app',
    op: '≤',
    bound: 20,
    unit: 's',
    read: (r) => at(r, 'import', 'browserSeconds'),
  },
  {
    issue: 16,
    key: 'synth.memseg_*.workerRatio',
    what: 'MemSeg in the synth worker / NumPy (lower of the two sizes)',
    op: '≥',
    bound: 3,
    unit: '×',
    read: (r) =>
      minOf(at(r, 'synth', 'memseg_256x256', 'workerRatio'), at(r, 'synth', 'memseg_632x224', 'workerRatio')),
  },
];

function fmt(v: number | null, unit: Target['unit']): string {
  if (v === null) return '—';
  if (unit === 'ms') return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ms`;
  if (unit === 's') return `${v.toFixed(1)} s`;
  return `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}×`;
}

const met = (t: Target, v: number | null) => v !== null && (t.op === '≤' ? v <= t.bound : v >= t.bound);

const load = (l?: number[]) => (l && l.length ? l[0].toFixed(1) : '?');

/** The Markdown table: one row per target, one column per run, and whether every run met it. */
export function renderTargets(runs: { name: string; run: BenchRun }[]): string {
  const head = ['issue', 'target', 'bound', ...runs.map((r) => r.name), 'met in every run'];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...TARGETS.map((t) => {
      const vals = runs.map((r) => t.read(r.run.results));
      const cells = vals.map((v) => `${fmt(v, t.unit)}${met(t, v) ? '' : ' ✗'}`);
      const all = vals.every((v) => met(t, v));
      return `| #${t.issue} | ${t.what} (\`${t.key}\`) | ${t.op} ${fmt(t.bound, t.unit)} | ${cells.join(' | ')} | ${all ? 'yes' : 'no'} |`;
    }),
  ];
  const machines = runs.map(
    (r) =>
      `${r.name}: ${r.run.machine?.cpus ?? '?'} × ${r.run.machine?.cpuModel ?? '?'}, load average ${load(r.run.machine?.loadavgStart)} at the start, ${load(r.run.machine?.loadavgEnd)} at the end`,
  );
  return [...lines, '', ...machines.map((m) => `- ${m}`)].join('\n') + '\n';
}

export const BEGIN = '<!-- bench:targets:begin -->';
export const END = '<!-- bench:targets:end -->';

/** `text` with its generated block replaced by `body`; throws naming the fix when the markers are missing. */
export function rewriteTargetsBlock(text: string, body: string, file: string): string {
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  if (i < 0 || j < i)
    throw new Error(
      `${file}: no ${BEGIN} … ${END} block — fix: add the two marker lines where the table goes`,
    );
  return `${text.slice(0, i + BEGIN.length)}\n${body}${text.slice(j)}`;
}

export function loadRuns(files: string[]): { name: string; run: BenchRun }[] {
  return files.map((f) => {
    const run = JSON.parse(readFileSync(f, 'utf8')) as BenchRun;
    if (!run || typeof run !== 'object' || !run.results)
      throw new Error(`${f}: not the JSON of npm run bench (no "results") — fix: save the bench's stdout`);
    return { name: basename(f, '.json'), run };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args[0] === '--table') process.stdout.write(renderTargets(loadRuns(args.slice(1))));
  else if (args[0] === '--out' && args[1]) {
    const file = args[1];
    writeFileSync(
      file,
      rewriteTargetsBlock(readFileSync(file, 'utf8'), renderTargets(loadRuns(args.slice(2))), file),
    );
  } else {
    console.error('usage: npx tsx bench/_targets.ts --table RUN.json… | --out bench/README.md RUN.json…');
    process.exit(2);
  }
}

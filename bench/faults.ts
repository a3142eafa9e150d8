/**
 * `npm run bench faults`: the figures of the README's reliability section (issue #15).
 *
 * 1. The full fuzz corpus of every entry point (1,000 cases each, or `DL_FUZZ_N`), with the same runners and
 *    checks as `tests/fuzz/fuzz.test.ts`, printing per entry point the cases fuzzed, how many were accepted (still
 *    usable input) and refused (named error with a fix), the crashes, the unhandled rejections, whether the data
 *    stored before came back unchanged (store digest), and the errors that answered. A crash, an unhandled
 *    rejection or a store change is reported as `error` (so the bench exits 1) with the replayable `entry:index`
 *    of the first cases. The slowest case is given as a multiple of the median case of the same entry point in
 *    the same run (a near-hang shows as a large ratio), never as seconds.
 * 2. `longRun`: the full-size long session (`tests/e2e/faults/long-run.spec.ts` with `DL_FAULTS_LONG=full`:
 *    5,000 images, 500 samples, 10 trainings, 3 grids) in Playwright against the production build (`DL_DIST`,
 *    built first when missing; port `DL_BENCH_FAULTS_PORT`, 4217), and the figures the spec writes to
 *    `test-results/faults-long-run.json`. `DL_FAULTS_LONG=0` (or `DL_BENCH_BROWSER=0`, or no Chromium) skips it
 *    with the reason; a failed spec is an `error` next to the figures it wrote.
 *
 * `tsx bench/faults.ts --table [--from FILE] [--out bench/README.md | --check]` prints the long run's table
 * (`longRunTable`) from a figures file (default `bench/faults-long-run.json`, the recorded run; a
 * `test-results/faults-long-run.json` or a whole bench JSON also works); `--out` writes it into the file's
 * `<!-- faults:long-run:begin -->` block and records the figures in `bench/faults-long-run.json`; `--check`
 * exits 1 when bench/README.md's block is not what the recorded figures print (`tests/unit/faults-table.test.ts`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

export async function run(): Promise<Record<string, unknown>> {
  return { ...(await fuzz()), longRun: await longRun() };
}

async function fuzz(): Promise<Record<string, unknown>> {
  // The fuzzed server runs experiment jobs, which train tfjs heads: Node needs the module hooks the server
  // installs before the server's modules load (and `--table` needs none of them).
  await import('../server/register.ts');
  const { ENTRY_POINTS, FUZZ_SEED } = await import('../tests/fuzz/corpus.ts');
  const { fuzzEntry, openFuzzContext } = await import('../tests/fuzz/entries.ts');
  const n = process.env.DL_FUZZ_N ? Math.max(1, Number(process.env.DL_FUZZ_N) | 0) : 1000;
  const ctx = await openFuzzContext();
  const entries: Record<string, unknown> = {};
  let cases = 0;
  let crashes = 0;
  try {
    for (const entry of ENTRY_POINTS) {
      const r = await fuzzEntry(entry, n, ctx);
      cases += r.cases;
      crashes += r.crashes.length;
      const bad = [...r.crashes, ...r.unhandled, ...r.storeProblems];
      entries[entry] = {
        cases: r.cases,
        accepted: r.accepted,
        rejectedNamed: r.rejected,
        crashes: r.crashes.length,
        unhandledRejections: r.unhandled.length,
        // Nothing stored before changed or vanished, no half records; importers added whole records to their
        // target dataset only (`recordsAdded`), so their digest after differs by exactly those.
        storedDataUnchanged: r.storeProblems.length === 0,
        recordsAdded: r.recordsAdded,
        digestBefore: r.digestBefore.slice(0, 16),
        digestAfter: r.digestAfter.slice(0, 16),
        byError: r.byCode,
        slowestCase: {
          index: r.slowest.index,
          timesMedian: r.medianMs > 0 ? Number((r.slowest.ms / r.medianMs).toFixed(1)) : null,
        },
        ...(bad.length ? { error: bad.slice(0, 5).join(' | ') } : {}),
      };
      process.stderr.write(`bench faults: ${entry} ${r.cases} cases, ${r.crashes.length} crashes\n`);
    }
  } finally {
    await ctx.close();
  }
  return {
    seed: FUZZ_SEED,
    casesPerEntryPoint: n,
    entryPoints: ENTRY_POINTS.length,
    cases,
    crashes,
    entries,
  };
}

/** Where long-run.spec.ts writes its figures. */
const SPEC_FIGURES = resolve(ROOT, 'test-results/faults-long-run.json');
/** The recorded run bench/README.md's table is printed from. */
export const RECORDED_FIGURES = resolve(ROOT, 'bench/faults-long-run.json');
const BENCH_README = resolve(ROOT, 'bench/README.md');

/** The full-size long session in Playwright; its figures, or why it did not run. */
async function longRun(): Promise<Record<string, unknown>> {
  if (process.env.DL_FAULTS_LONG === '0') return { skipped: 'DL_FAULTS_LONG=0' };
  // Loaded here: it brings Playwright, which the table mode (and the unit test importing this file) need not.
  const { browserSkipReason, distDir, ensureBuild } = await import('./_browser.ts');
  const noBrowser = browserSkipReason();
  if (noBrowser) return { skipped: noBrowser };
  const dist = distDir();
  ensureBuild(dist);
  // A figures file left by an earlier run must not pass for this one's.
  rmSync(SPEC_FIGURES, { force: true });
  const t0 = performance.now();
  // stdout carries the bench's JSON: Playwright's report goes to stderr.
  const r = spawnSync('npx', ['playwright', 'test', 'tests/e2e/faults/long-run.spec.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 2, 2],
    env: {
      ...process.env,
      DL_FAULTS_LONG: 'full',
      DL_DIST: dist,
      DL_PORT: process.env.DL_BENCH_FAULTS_PORT ?? '4217',
    },
    timeout: 90 * 60_000,
  });
  const wallSeconds = Math.round((performance.now() - t0) / 1000);
  const figures = existsSync(SPEC_FIGURES)
    ? (JSON.parse(readFileSync(SPEC_FIGURES, 'utf8')) as Record<string, unknown>)
    : {};
  if (r.status === 0 && existsSync(SPEC_FIGURES)) return { ...figures, wallSeconds };
  const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
  return {
    ...figures,
    wallSeconds,
    error: `long-run.spec.ts (DL_FAULTS_LONG=full) failed (${why}): see Playwright's output above; figures ${existsSync(SPEC_FIGURES) ? 'as it wrote them' : 'none written'}`,
  };
}

/** The figures long-run.spec.ts writes (the part the table prints). */
export interface LongRunFigures {
  sizes: { images: number; samples: number; trainings: number; grids: number };
  full: boolean;
  seconds: number;
  heapBeforeMiB: number;
  heapAfterMiB: number;
  heapRatio: number;
  tensorsBefore: Record<string, number>;
  tensorsAfter: Record<string, number>;
  ortSessionsBefore: Record<string, number>;
  ortSessionsAfter: Record<string, number>;
  workersBefore: number;
  workersAfter: number;
  images: number;
  margins: Record<string, string>;
  date?: string;
}

const int = (n: number) => n.toLocaleString('en-US');

/** "train 12 → 12, experiments 3 → 3", every worker of either side. */
function perWorker(before: Record<string, number>, after: Record<string, number>): string {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return names.map((w) => `${w} ${before[w] ?? '–'} → ${after[w] ?? '–'}`).join(', ') || '–';
}

/** The long run's figures as bench/README.md prints them. */
export function longRunTable(f: LongRunFigures): string {
  const s = f.sizes;
  const rows: [string, string, string][] = [
    [
      'session (images imported, samples accepted, trainings, grids)',
      `${int(s.images)}, ${int(s.samples)}, ${s.trainings}, ${s.grids}`,
      f.full ? 'full size (`DL_FAULTS_LONG=full`)' : 'reduced (CI) size',
    ],
    ['seconds', int(f.seconds), ''],
    [
      'page JS heap after GC, MiB (baseline → after)',
      `${f.heapBeforeMiB.toFixed(1)} → ${f.heapAfterMiB.toFixed(1)} (×${f.heapRatio.toFixed(3)})`,
      f.margins.heap ?? '',
    ],
    ['tfjs tensors per worker', perWorker(f.tensorsBefore, f.tensorsAfter), f.margins.tensors ?? ''],
    [
      'onnxruntime sessions per worker',
      perWorker(f.ortSessionsBefore, f.ortSessionsAfter),
      f.margins.ortSessions ?? '',
    ],
    ['app workers alive', `${f.workersBefore} → ${f.workersAfter}`, f.margins.workers ?? ''],
    ['images stored at the end', int(f.images), ''],
    ...(f.date ? [['recorded', f.date.slice(0, 10), ''] as [string, string, string]] : []),
  ];
  const table = [
    '| long session | value (baseline → after) | margin checked |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  return `${table.join('\n')}\n`;
}

const BEGIN = '<!-- faults:long-run:begin -->';
const END = '<!-- faults:long-run:end -->';

/** `text` with its long-run block holding `table` (prettier leaves generated tables as printed). */
export function withLongRunBlock(text: string, table: string, file: string): string {
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a)
    throw new Error(`${file} has no ${BEGIN} … ${END} block — fix: add the two markers where the table goes`);
  const body = `\n<!-- prettier-ignore-start -->\n\n${table}\n<!-- prettier-ignore-end -->\n`;
  return `${text.slice(0, a + BEGIN.length)}${body}${text.slice(b)}`;
}

/** The long-run figures in a file: the spec's own JSON, or a bench JSON's `results.faults.longRun`. */
export function readLongRunFigures(file: string): LongRunFigures {
  if (!existsSync(file))
    throw new Error(
      `${file} does not exist — fix: run DL_FAULTS_LONG=full npx playwright test tests/e2e/faults/long-run.spec.ts (it writes test-results/faults-long-run.json), or name another file with --from`,
    );
  const j = JSON.parse(readFileSync(file, 'utf8')) as {
    results?: { faults?: { longRun?: unknown } };
    longRun?: unknown;
  };
  const f = (j.results?.faults?.longRun ?? j.longRun ?? j) as Partial<LongRunFigures> & { skipped?: string };
  if (!f.sizes || !f.ortSessionsBefore)
    throw new Error(
      `${file} holds no long-run figures${f.skipped ? ` (skipped: ${f.skipped})` : ''} — fix: run DL_FAULTS_LONG=full npx playwright test tests/e2e/faults/long-run.spec.ts (or npm run bench faults) first`,
    );
  return f as LongRunFigures;
}

async function cli(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const from = resolve(opt('--from') ?? RECORDED_FIGURES);
  const figures = readLongRunFigures(from);
  const table = longRunTable(figures);
  const out = opt('--out');
  if (args.includes('--check')) {
    const text = readFileSync(BENCH_README, 'utf8');
    if (withLongRunBlock(text, table, 'bench/README.md') !== text) {
      console.error(
        `bench/README.md's long-run table is not what ${from} prints — fix: npx tsx bench/faults.ts --table --out bench/README.md`,
      );
      process.exit(1);
    }
    return;
  }
  if (out) {
    const file = resolve(out);
    writeFileSync(file, withLongRunBlock(readFileSync(file, 'utf8'), table, out));
    if (from !== RECORDED_FIGURES) {
      // Written as the repository's Prettier would format it, so `npm run lint` passes on the recorded run.
      const prettier = await import('prettier');
      const config = (await prettier.resolveConfig(RECORDED_FIGURES)) ?? {};
      const json = await prettier.format(JSON.stringify(figures), { ...config, parser: 'json' });
      writeFileSync(RECORDED_FIGURES, json);
    }
    console.error(`wrote the long-run table into ${out} (figures: ${from})`);
    return;
  }
  process.stdout.write(table);
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename && process.argv.includes('--table'))
  await cli(process.argv.slice(2));

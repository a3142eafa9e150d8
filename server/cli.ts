/**
 * `npm run cli -- <command> [options]` (also `npm run experiment:mt`):
 *
 *   experiment  the real-data run (magnetic tiles, MobileNetV2-int8): (a) zero-shot, (b) few-shot, (c) CSE and the
 *               baselines over seeds; prints the Markdown the docs embed. --seeds 0,1,2,3 --n-aug 100 --epochs 50
 *               --cse-epochs 10 --no-cse --no-patchcore --data DIR --model FILE --out DIR (table.md = that Markdown, rendered
 *               from result.json beside it; table.csv, cells.csv) --store FILE (cell store; an interrupted run
 *               resumes from it). `npm run docs:tables -- --run mt --from DIR/result.json` puts a run in the docs.
 *               --device cuda|cpu (default cuda: the CUDA execution provider when present, else CPU and why)
 *   experiment --config GRID.json   a user's grid (generators × N_aug × seeds × heads, see grid-config.ts) over
 *               the config's "data" folder/manifest (or --data); --model FILE (backbone), --diffusion-dir DIR
 *               (diffusion model folders, default models/tiny), --out DIR, --store FILE as above
 *   metrics     --input FILE (JSON {scores, labels} or CSV with score,label columns) [--threshold T | --max-fpr F]
 *   generate    --generator memseg|random-walk|cutpaste|blur --input IMAGE --seed N --out FILE.png (mask next to it)
 */
import './register.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = `usage: npm run cli -- <experiment|metrics|generate> [options]   (see server/README.md)`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'experiment') return experiment(rest);
  if (command === 'metrics') return metrics(rest);
  if (command === 'generate') return generate(rest);
  console.error(USAGE);
  return command ? 2 : 0;
}

async function experiment(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      seeds: { type: 'string', default: '0,1,2,3' },
      'n-aug': { type: 'string', default: '100' },
      epochs: { type: 'string' },
      'cse-epochs': { type: 'string', default: '10' },
      'no-cse': { type: 'boolean', default: false },
      'no-patchcore': { type: 'boolean', default: false },
      data: { type: 'string' },
      model: { type: 'string' },
      out: { type: 'string' },
      store: { type: 'string' },
      config: { type: 'string' },
      'diffusion-dir': { type: 'string' },
      device: { type: 'string', default: 'cuda' },
    },
  });
  const device = values.device;
  if (device !== 'cpu' && device !== 'cuda') {
    console.error(
      `--device ${device}: unknown device — fix: pass --device cuda (CUDA when present, else CPU) or --device cpu`,
    );
    return 2;
  }
  if (values.config !== undefined) return experimentFromConfig({ ...values, device });
  const { runRealData } = await import('./realdata.ts');
  const { cellsToCsv, rowsToCsv } = await import('../src/core/experiments/index.ts');
  const { JsonFileCellStore } = await import('./cell-store.ts');
  const seeds = String(values.seeds)
    .split(',')
    .map((s) => Number.parseInt(s, 10));
  const ctl = new AbortController();
  process.once('SIGINT', () => {
    console.error('stopping after the current step; finished cells stay in the store');
    ctl.abort();
  });
  const r = await runRealData({
    seeds,
    nAug: Number(values['n-aug']),
    epochs: values.epochs ? Number(values.epochs) : undefined,
    cseEpochs: values['cse-epochs'] ? Number(values['cse-epochs']) : undefined,
    skipCse: values['no-cse'],
    skipPatchcore: values['no-patchcore'],
    dataDir: values.data,
    modelPath: values.model,
    device,
    store: values.store ? new JsonFileCellStore(values.store) : undefined,
    signal: ctl.signal,
    log: (l) => console.error(l),
  });
  // The Markdown already lists the cells' warnings and failures.
  console.log(r.markdown);
  console.log(
    `\n${r.cells.length} cells (${r.resumed} resumed) in ${r.seconds.toFixed(0)} s on ${r.backend}; std = sample std over seeds`,
  );
  if (values.out)
    await writeOutputs(values.out, {
      csv: rowsToCsv(r.table),
      cells: cellsToCsv(r.cells),
      json: r.json,
    });
  return 0;
}

/**
 * `--out DIR`: table.md is `renderResult` of the result.json written beside it, byte for byte what
 * `npm run docs:tables` puts into the docs once that result.json is committed under docs/runs/NAME/.
 */
async function writeOutputs(out: string, files: { csv: string; cells: string; json: string }): Promise<void> {
  const { parseResultFile, renderResult } = await import('../src/core/experiments/index.ts');
  const markdown = renderResult(parseResultFile(files.json, join(out, 'result.json')));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'table.md'), `${markdown}\n`);
  writeFileSync(join(out, 'table.csv'), files.csv);
  writeFileSync(join(out, 'cells.csv'), files.cells);
  writeFileSync(join(out, 'result.json'), files.json);
  console.error(`wrote ${out}/table.md, table.csv, cells.csv, result.json`);
}

async function experimentFromConfig(values: {
  config?: string;
  data?: string;
  model?: string;
  out?: string;
  store?: string;
  'diffusion-dir'?: string;
  device: 'cpu' | 'cuda';
}): Promise<number> {
  const { GridConfigError, loadGridConfig, runGridConfig } = await import('./grid-config.ts');
  const { cellsToCsv, rowsToCsv, toJson } = await import('../src/core/experiments/index.ts');
  const { machineLine } = await import('./realdata.ts');
  const { JsonFileCellStore } = await import('./cell-store.ts');
  const file = String(values.config);
  let config;
  try {
    config = await loadGridConfig(file);
  } catch (e) {
    if (e instanceof GridConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const ctl = new AbortController();
  const stop = () => {
    console.error('stopping after the current step; finished cells stay in the store');
    ctl.abort();
  };
  process.once('SIGINT', stop);
  try {
    const r = await runGridConfig(
      config,
      {
        data: values.data,
        backbone: values.model,
        diffusionDir: values['diffusion-dir'],
        device: values.device,
        store: values.store ? new JsonFileCellStore(values.store) : undefined,
        signal: ctl.signal,
        log: (l) => console.error(l),
      },
      file,
    );
    console.log(r.markdown);
    for (const w of r.warnings) console.log(`> warning: ${w}`);
    console.log(
      `\n${r.cells.length} cells (${r.resumed} resumed) of ${r.dataset.name} in ${r.seconds.toFixed(0)} s on ${r.backend}; std = sample std over seeds`,
    );
    if (values.out)
      await writeOutputs(values.out, {
        csv: rowsToCsv(r.table),
        cells: cellsToCsv(r.cells),
        json: toJson(
          r.cells,
          {
            config: file,
            ...(config.title ? { title: config.title } : {}),
            ...(config.columns ? { columns: config.columns } : {}),
            spec: r.spec,
            seconds: r.seconds,
            backend: r.backend,
            machine: machineLine(),
            warnings: r.warnings,
          },
          r.table,
        ),
      });
    return r.cells.some((c) => c.status === 'failed') ? 1 : 0;
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

function readScores(path: string): { scores: number[]; labels: number[] } {
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.json')) return JSON.parse(text) as { scores: number[]; labels: number[] };
  const lines = text.trim().split(/\r?\n/);
  const head = lines[0].split(',').map((s) => s.trim().toLowerCase());
  const si = head.indexOf('score');
  const li = head.indexOf('label');
  if (si < 0 || li < 0) throw new Error(`${path}: needs a header with "score" and "label" columns`);
  const rows = lines.slice(1).map((l) => l.split(','));
  return { scores: rows.map((r) => Number(r[si])), labels: rows.map((r) => Number(r[li])) };
}

async function metrics(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { input: { type: 'string' }, threshold: { type: 'string' }, 'max-fpr': { type: 'string' } },
  });
  if (!values.input) {
    console.error('metrics needs --input FILE (JSON {scores, labels} or CSV with score,label columns)');
    return 2;
  }
  const m = await import('../src/core/metrics/index.ts');
  const { scores, labels } = readScores(values.input);
  const { thresholdOnScores } = await import('../src/core/experiments/threshold.ts');
  const choice = thresholdOnScores(scores, labels, {
    threshold: values.threshold !== undefined ? Number(values.threshold) : undefined,
    maxFpr: values['max-fpr'] !== undefined ? Number(values['max-fpr']) : undefined,
  });
  console.log(
    JSON.stringify(
      {
        ...m.metricRow(scores, labels, choice.threshold),
        thresholdSource: choice.source,
        warnings: choice.warnings,
      },
      null,
      2,
    ),
  );
  return 0;
}

async function generate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      generator: { type: 'string', default: 'memseg' },
      input: { type: 'string' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string' },
    },
  });
  if (!values.input || !values.out) {
    console.error('generate needs --input IMAGE and --out FILE.png');
    return 2;
  }
  const { decodeImage, encodePng } = await import('../src/runtime/decode.ts');
  const { coreGenerators } = await import('../src/app/generators.ts');
  const gens = coreGenerators();
  const gen = gens[String(values.generator)];
  if (!gen) {
    console.error(`unknown generator "${values.generator}"; one of ${Object.keys(gens).join(', ')}`);
    return 2;
  }
  if (!existsSync(values.input)) {
    console.error(`${values.input}: no such file`);
    return 2;
  }
  const { raster } = await decodeImage(new Uint8Array(readFileSync(values.input)), values.input);
  const r = await gen(raster, Number(values.seed));
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, encodePng(r.image));
  const maskPath = values.out.replace(/\.png$/i, '') + '.mask.png';
  writeFileSync(maskPath, encodePng(r.mask));
  console.log(
    JSON.stringify({
      image: values.out,
      mask: maskPath,
      generator: values.generator,
      seed: Number(values.seed),
    }),
  );
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('server/cli.ts')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(1);
    },
  );
}

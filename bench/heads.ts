/**
 * Head training cost in Node: BCE epoch time (1280-d pooled features like MobileNetV2, 256 rows, batch 32,
 * linear and 128-hidden) and CSE step time (96×14×14 maps, 8 pairs per step) on tfjs WASM and CPU, and side by
 * side the same BCE epoch in PyTorch on one CPU thread (`tests/reference/heads_torch.py bench`, the same model,
 * loss, batch and Adam) with `bceEpochToTorch` = ours / PyTorch (target ≤ 1.5). The linear and MLP heads train on
 * typed-array trainers whatever the tfjs backend (`linear-trainer.ts`, `mlp-trainer.ts`), so their figures are
 * the same on both.
 * `cseStepToTorch` compares our CSE step with a PyTorch step of the same shapes (1×1 projection, cosine contrast
 * and reconstruction: `cse_step`), which is lighter than our head (it has no augmentation or pair sampling), so
 * read it as an upper bound. The MLP (128 hidden) trains on its typed-array trainer (`mlp-trainer.ts`) too, on
 * its WebAssembly SIMD kernel (`bceEpochMs_hidden128`, `kernels/mlp.as.ts`); `bceEpochMs_hidden128_scalar` is
 * the same trainer on its scalar JS fallback and `bceEpochMs_hidden128_tfjs` the tfjs trainer it replaced, all
 * measured in the same run. Without `python3 -c "import torch"` the PyTorch half is `skipped` with the reason.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { Rng } from '../src/core/rng.ts';
import { prepareTfForNode } from '../src/runtime/heads/tf-node.ts';
import { pythonWith } from './_python.ts';

const ROWS = 256;
const DIM = 1280;
const BATCH = 32;
const EPOCHS = 5;
const TORCH = resolve(import.meta.dirname, '../tests/reference/heads_torch.py');

type TorchFigures = Record<string, number | string> | { skipped: string };

function torchFigures(): TorchFigures {
  const py = pythonWith('torch');
  if ('skipped' in py) return py;
  const out = execFileSync(
    py.python,
    [TORCH, 'bench', String(ROWS), String(DIM), String(BATCH), String(EPOCHS)],
    {
      encoding: 'utf8',
      timeout: 300_000,
    },
  );
  return JSON.parse(out) as Record<string, number | string>;
}

/**
 * The MLP epoch (128 hidden) on the typed-array trainer's scalar kernel: `trainBceHead`'s steps (same
 * standardization, Glorot init, batches and Adam) with the kernel forced to 'scalar'.
 */
async function scalarMlpEpochMs(rows: Float32Array[], labels: number[]): Promise<number> {
  const { columnStats, fitBinaryWith, glorotUniform, supervisedOptions } =
    await import('../src/runtime/heads/common.ts');
  const { mlpStepper } = await import('../src/runtime/heads/mlp-trainer.ts');
  const hidden = 128;
  const { mean, std } = columnStats(rows, DIM);
  const x = new Float32Array(ROWS * DIM);
  rows.forEach((r, i) => r.forEach((v, j) => (x[i * DIM + j] = (v - mean[j]) / std[j])));
  const rng = new Rng('bench-heads-scalar');
  const init = {
    w1: glorotUniform(rng, DIM, hidden),
    b1: new Float32Array(hidden),
    w2: glorotUniform(rng, hidden, 1),
    b2: new Float32Array(1),
  };
  const o = supervisedOptions({ epochs: EPOCHS + 1, hidden, batchSize: BATCH, validationFraction: 0 });
  const stepper = mlpStepper({ x, dim: DIM, hidden, learningRate: o.learningRate, init }, 'scalar');
  const { history } = await fitBinaryWith(stepper, labels, o, rng.fork('train'));
  stepper.dispose();
  return Math.min(...history.slice(1).map((h) => h.ms));
}

export async function run(): Promise<Record<string, unknown>> {
  prepareTfForNode();
  const { initTf } = await import('../src/runtime/tf.ts');
  const { trainBceHead, trainBceHeadWith } = await import('../src/runtime/heads/bce.ts');
  const { trainCseHead } = await import('../src/runtime/heads/cse.ts');
  const rng = new Rng('bench-heads');
  const rows = Array.from({ length: ROWS }, () => rng.normalArray(DIM));
  const labels = rows.map((_, i) => (i % 4 === 0 ? 1 : 0));
  const maps = Array.from({ length: 16 }, () => ({
    data: rng.normalArray(96 * 196),
    dims: [96, 14, 14] as const,
  }));
  // The machine's 1-minute load average before and after: ratios from a loaded run say so (bench/README.md).
  const out: Record<string, unknown> = { loadAverageBefore: loadavg()[0] };
  const torch = torchFigures();
  out.torch = torch;
  for (const backend of ['wasm', 'cpu'] as const) {
    await initTf(backend);
    const r: Record<string, number | null> = {};
    for (const hidden of [0, 128]) {
      const { head, history } = await trainBceHead(rows, labels, {
        epochs: EPOCHS + 1,
        hidden,
        batchSize: BATCH,
        validationFraction: 0,
      });
      // Best epoch after the first (JIT and kernel warm-up), as the PyTorch side reports its best.
      r[`bceEpochMs_hidden${hidden}`] = Math.min(...history.slice(1).map((h) => h.ms));
      head.dispose();
    }
    r.bceEpochMs_hidden128_scalar = await scalarMlpEpochMs(rows, labels);
    // The MLP's former trainer (tfjs ops, same math), in the same run: what the typed-array trainer replaced.
    {
      const { head, history } = await trainBceHeadWith('tfjs', rows, labels, {
        epochs: EPOCHS + 1,
        hidden: 128,
        batchSize: BATCH,
        validationFraction: 0,
      });
      r.bceEpochMs_hidden128_tfjs = Math.min(...history.slice(1).map((h) => h.ms));
      head.dispose();
    }
    const defect = new Float32Array(196);
    defect.fill(1, 90, 100);
    const source = async (g: Rng) => ({ anchor: maps[g.int(0, 16)], other: maps[g.int(0, 16)], defect });
    const t0 = performance.now();
    const { head } = await trainCseHead(maps, source, { epochs: 1, stepsPerEpoch: 3, pairsPerStep: 8 });
    r.cseStepMs = (performance.now() - t0) / 3;
    head.dispose();
    if (!('skipped' in torch)) {
      const t = torch as Record<string, number>;
      r.bceEpochToTorch_hidden0 = r.bceEpochMs_hidden0! / t.bceEpochMs_hidden0;
      r.bceEpochToTorch_hidden128 = r.bceEpochMs_hidden128! / t.bceEpochMs_hidden128;
      r.bceEpochToTorch_hidden128_scalar = r.bceEpochMs_hidden128_scalar / t.bceEpochMs_hidden128;
      r.bceEpochToTorch_hidden128_tfjs = r.bceEpochMs_hidden128_tfjs! / t.bceEpochMs_hidden128;
      r.cseStepToTorch = r.cseStepMs / t.cseStepMs;
    }
    out[backend] = r;
  }
  if (!('skipped' in torch)) {
    const w = out.wasm as Record<string, number>;
    // The headline figure (issue 16): the default (linear) head's epoch against PyTorch's.
    out.bceEpochToTorch = w.bceEpochToTorch_hidden0;
    // The MLP head (128 hidden, typed-array trainer) against PyTorch's MLP epoch, same key as per backend.
    out.bceEpochToTorch_hidden128 = w.bceEpochToTorch_hidden128;
  }
  out.loadAverageAfter = loadavg()[0];
  return out;
}

/**
 * bench/README.md's issue-16 heads rows from saved `npm run bench heads` outputs (the JSON `bench/run.ts`
 * prints, or this topic's own), numbered from `first`, so the table is written by code:
 * `npx tsx bench/heads.ts --table [--first N] run1.json run2.json …`. Columns: run (with the 1-minute load
 * average before–after), linear ours / PyTorch, its ratio, MLP 128 on the SIMD kernel / PyTorch (scalar
 * kernel and tfjs in the same run), its ratios, CSE step / PyTorch-like step.
 */
export function headsTableRows(results: Record<string, unknown>[], first = 1): string[] {
  const ms = (x: unknown, d = 2) => (typeof x === 'number' ? x.toFixed(d) : '—');
  const ratio = (x: unknown) => (typeof x === 'number' ? `${x.toFixed(x < 10 ? 2 : 1)}×` : '—');
  return results.map((raw, i) => {
    const r = ((raw.results as Record<string, unknown> | undefined)?.heads ?? raw) as Record<string, unknown>;
    const w = (r.wasm ?? {}) as Record<string, number | undefined>;
    const t = (r.torch ?? {}) as Record<string, number | undefined>;
    return [
      `${first + i}, ${Math.max(Number(r.loadAverageBefore), Number(r.loadAverageAfter)) >= 1 ? 'loaded' : 'quiet'} (load ${ms(r.loadAverageBefore, 1)}–${ms(r.loadAverageAfter, 1)})`,
      `${ms(w.bceEpochMs_hidden0)} / ${ms(t.bceEpochMs_hidden0)}`,
      ratio(w.bceEpochToTorch_hidden0),
      `${ms(w.bceEpochMs_hidden128)} / ${ms(t.bceEpochMs_hidden128)} (scalar: ${ms(w.bceEpochMs_hidden128_scalar, 1)}, tfjs: ${ms(w.bceEpochMs_hidden128_tfjs, 1)})`,
      `**${ratio(w.bceEpochToTorch_hidden128)}** (scalar ${ratio(w.bceEpochToTorch_hidden128_scalar)}, tfjs ${ratio(w.bceEpochToTorch_hidden128_tfjs)})`,
      `${ms(w.cseStepMs, 0)} / ${ms(t.cseStepMs, 1)} ms (${ratio(w.cseStepToTorch)})`,
    ]
      .join(' | ')
      .replace(/^/, '| ')
      .concat(' |');
  });
}

// `npx tsx bench/heads.ts --table [--first N] <json>…` prints the README rows of saved runs.
if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === '--table') {
  const args = process.argv.slice(3);
  const first = args[0] === '--first' ? Number(args[1]) : 1;
  const files = args[0] === '--first' ? args.slice(2) : args;
  console.log(
    headsTableRows(
      files.map((p) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>),
      first,
    ).join('\n'),
  );
}

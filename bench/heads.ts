/**
 * Head training cost in Node: BCE epoch time (1280-d pooled features like MobileNetV2, 256 rows, batch 32,
 * linear and 128-hidden) and CSE step time (96×14×14 maps, 8 pairs per step) on tfjs WASM and CPU, and side by
 * side the same BCE epoch in PyTorch on one CPU thread (`tests/reference/heads_torch.py bench`, the same model,
 * loss, batch and Adam) with `bceEpochToTorch` = ours / PyTorch (target ≤ 1.5). The linear and MLP heads train on
 * typed-array trainers whatever the tfjs backend (`linear-trainer.ts`, `mlp-trainer.ts`), so their figures are
 * the same on both.
 * `cseStepToTorch` compares our CSE step with a PyTorch step of the same shapes (1×1 projection, cosine contrast
 * and reconstruction: `cse_step`), which is lighter than our head (it has no augmentation or pair sampling), so
 * read it as an upper bound. The MLP (128 hidden) trains on its typed-array trainer (`mlp-trainer.ts`) too;
 * `bceEpochMs_hidden128_tfjs` is the tfjs trainer it replaced, measured in the same run. Without `python3 -c "import torch"` the PyTorch half is `skipped` with the reason.
 */
import { execFileSync } from 'node:child_process';
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
  const out: Record<string, unknown> = {};
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
  return out;
}

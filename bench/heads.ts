/**
 * Head training cost in Node: BCE epoch time (1280-d pooled features like MobileNetV2, 256 rows, batch 32,
 * linear and 128-hidden) and CSE step time (96×14×14 maps, 8 pairs per step) on tfjs WASM and CPU.
 */
import { Rng } from '../src/core/rng.ts';
import { prepareTfForNode } from '../src/runtime/heads/tf-node.ts';

export async function run(): Promise<Record<string, unknown>> {
  prepareTfForNode();
  const { initTf } = await import('../src/runtime/tf.ts');
  const { trainBceHead } = await import('../src/runtime/heads/bce.ts');
  const { trainCseHead } = await import('../src/runtime/heads/cse.ts');
  const rng = new Rng('bench-heads');
  const rows = Array.from({ length: 256 }, () => rng.normalArray(1280));
  const labels = rows.map((_, i) => (i % 4 === 0 ? 1 : 0));
  const maps = Array.from({ length: 16 }, () => ({
    data: rng.normalArray(96 * 196),
    dims: [96, 14, 14] as const,
  }));
  const out: Record<string, unknown> = {};
  for (const backend of ['wasm', 'cpu'] as const) {
    await initTf(backend);
    const r: Record<string, number> = {};
    for (const hidden of [0, 128]) {
      const { head, history } = await trainBceHead(rows, labels, {
        epochs: 3,
        hidden,
        validationFraction: 0,
      });
      r[`bceEpochMs_hidden${hidden}`] = history.slice(1).reduce((a, h) => a + h.ms, 0) / (history.length - 1);
      head.dispose();
    }
    const defect = new Float32Array(196);
    defect.fill(1, 90, 100);
    const source = async (g: Rng) => ({ anchor: maps[g.int(0, 16)], other: maps[g.int(0, 16)], defect });
    const t0 = performance.now();
    const { head } = await trainCseHead(maps, source, { epochs: 1, stepsPerEpoch: 3, pairsPerStep: 8 });
    r.cseStepMs = (performance.now() - t0) / 3;
    head.dispose();
    out[backend] = r;
  }
  return out;
}

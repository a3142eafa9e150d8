/**
 * `npm run bench bundles`: the bundle tool's cost per 100 MB of weights and the streaming SHA-256 rates.
 *
 * - `prepare`: a generated graph with ~128 MB of float32 MatMul weights in external data (two 64 MiB tensors),
 *   prepared as fp32 (a plain copy into parts), fp16, int8 and int4, each in its own child process so its peak
 *   RSS (`VmHWM`) is its own: seconds and peak RSS, absolute and per 100 MB of source weights. The child's
 *   baseline (Node + tsx + onnx-proto + onnxruntime-node loaded, doing nothing) is reported too.
 * - `sha256`: MB/s over 256 MiB in 8 MiB chunks for hash-wasm (what the app and the tool use), the hand-written
 *   implementation it replaced (`_sha256-handwritten.ts`) and node:crypto (OpenSSL) for scale; best of 3.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Rng } from '../src/core/rng.ts';
import { createSha256 } from '../src/runtime/models/sha256.ts';
import { GraphBuilder, randomWeights } from '../models/builders/graph.ts';
import { toExternalData } from '../models/builders/external.ts';
import { Sha256 as Handwritten } from './_sha256-handwritten.ts';

const ROOT = resolve(import.meta.dirname, '..');
const MB = 1e6;

function best(fn: () => void, rounds = 3): number {
  let t = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t / 1000;
}

async function sha256Rates(): Promise<Record<string, number>> {
  const chunk = new Uint8Array(8 << 20).map((_, i) => (i * 131 + 7) & 255);
  const chunks = 32; // 256 MiB
  const bytes = chunk.length * chunks;
  const hw = best(() => {
    const h = new Handwritten();
    for (let i = 0; i < chunks; i++) h.update(chunk);
    h.hex();
  });
  const hashes: string[] = [];
  let tw = Infinity;
  for (let r = 0; r < 3; r++) {
    const h = await createSha256();
    const t0 = performance.now();
    for (let i = 0; i < chunks; i++) h.update(chunk);
    hashes.push(h.hex());
    tw = Math.min(tw, (performance.now() - t0) / 1000);
  }
  const tc = best(() => {
    const h = createHash('sha256');
    for (let i = 0; i < chunks; i++) h.update(chunk);
    hashes.push(h.digest('hex'));
  });
  if (new Set(hashes).size !== 1) throw new Error('sha256 implementations disagree');
  return {
    hashWasmMBps: bytes / MB / tw,
    handwrittenMBps: bytes / MB / hw,
    nodeCryptoMBps: bytes / MB / tc,
    mebibytes: bytes / 2 ** 20,
  };
}

/** A graph with two 64 MiB float32 MatMul weights, stored as external data. Returns its folder and weight bytes. */
function bigModel(dir: string): number {
  const rng = new Rng(1);
  const K = 4096;
  const N = 4096;
  const g = new GraphBuilder('bench');
  const x = g.input('x', 'float32', [1, K]);
  const h = g.op('Tanh', [g.op('MatMul', [x, g.init('w1', randomWeights(rng, K * N, 1 / 64), [K, N])])]);
  g.output(g.op('MatMul', [h, g.init('w2', randomWeights(rng, N * K, 1 / 64), [N, K])], {}, 'y'), 'float32', [
    1,
    K,
  ]);
  const ext = toExternalData(g.toModel({ opset: 18 }), 'model.onnx_data', 1024);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), ext.model);
  writeFileSync(join(dir, 'model.onnx_data'), ext.data);
  return ext.data.length;
}

function child(args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
  });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

export async function run(): Promise<Record<string, unknown>> {
  const sha256 = await sha256Rates();
  const tmp = mkdtempSync(join(tmpdir(), 'dl-bench-bundles-'));
  try {
    const src = join(tmp, 'src');
    const weights = bigModel(src);
    const per100 = (v: number) => (v * 100 * MB) / weights;
    const baseline = child([
      '-e',
      "await import('./models/bundle/cli.ts'); const { peakRss } = await import('./models/bundle/prepare.ts'); console.log(JSON.stringify({ peakRss: peakRss() }))",
    ]).peakRss as number;
    const tiers: Record<string, string[]> = {
      fp32: [],
      fp16: ['--fp16'],
      int8: ['--quantize', 'int8'],
      int4: ['--quantize', 'int4'],
    };
    const prepare: Record<string, unknown> = {};
    for (const [tier, flags] of Object.entries(tiers)) {
      const out = join(tmp, tier);
      const r = child([
        join(ROOT, 'models/bundle/cli.ts'),
        'prepare',
        src,
        '--out',
        out,
        '--max-part',
        '100MB',
        '--json',
        ...flags,
      ]) as {
        seconds: number;
        peakRss: number;
        bytesOut: number;
        largestPart: number;
      };
      prepare[tier] = {
        seconds: r.seconds,
        secondsPer100MB: per100(r.seconds),
        peakRssMB: r.peakRss / MB,
        peakRssAboveBaselineMBPer100MB: per100((r.peakRss - baseline) / MB),
        outputMB: r.bytesOut / MB,
        largestPartMB: r.largestPart / MB,
      };
      rmSync(out, { recursive: true, force: true });
    }
    return {
      sha256,
      prepare: { sourceWeightsMB: weights / MB, childBaselineRssMB: baseline / MB, ...prepare },
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Weight quantization and dequantization passes of `prepare`:
 *
 * - `quantizeInt4`: MatMul / Gemm with a constant float weight → `com.microsoft::MatMulNBits` (4 bits, blockwise
 *   along K, one float scale per block, default zero point 8), the op onnxruntime-web's WebGPU EP and its CPU
 *   kernels run. Convs stay float (webnn's sdxl-turbo keeps the UNet's I/O convs in fp32 for the same reason:
 *   they are small and sensitive). Each block's scale is the one minimising the block's squared error among a
 *   few clipping ratios (round-to-nearest with clip search, as llama.cpp's and AWQ's searches do), which beats
 *   plain max-abs scaling on Gaussian-like weights.
 * - `quantizeInt8`: weight-only QDQ: MatMul / Gemm / Conv weights → int8 codes + per-channel scale +
 *   `DequantizeLinear`. Activations stay float, so there is no run-time rounding and no u8·s8 saturation; the
 *   WebGPU EP's DequantizeLinear is known wrong on some adapters, which the app's self-check
 *   (`src/runtime/ort-selfcheck.ts`) detects and answers by running such graphs on WASM.
 * - `dequantizeInt8`: an int8 QLinear model (the ONNX zoo's MobileNetV2-12-int8) → float: every QLinear op
 *   becomes its float op on dequantized weights, followed by a `Clip` to the range its uint8/int8 output could
 *   represent — the quantized model saturates there (a zero point of 0 with uint8 *is* its ReLU), so dropping
 *   the Clip would change the network, not just its rounding. The rewrite is the app's float path
 *   (`src/runtime/dequantize.ts`), given this tool's lazy tensors.
 *
 * Weights are produced lazily (one tensor at a time, when the writer reaches them).
 */
import {
  T,
  addInit,
  attrFloat,
  attrInt,
  dimsOf,
  elementCount,
  ensureDomain,
  floatValues,
  intAttr,
  intValues,
  mkNode,
  num,
  opsetOf,
  pruneInitializers,
  type LoadedModel,
  type NodeProtoT,
  type TensorData,
  type TensorProtoT,
} from './onnx.ts';
import { BundleError } from './errors.ts';
import {
  FloatPathError,
  QUANTIZED_OP_TYPES,
  REWRITTEN_OP_TYPES,
  dequantizeModel,
  type FloatPathReport,
  type RewriteTensors,
} from '../../src/runtime/dequantize.ts';

/** Ops that mean a graph is quantized already (weights or activations). */
export const QUANTIZED_OPS = new Set([
  'QLinearConv',
  'QLinearMatMul',
  'QLinearAdd',
  'QLinearMul',
  'QLinearGlobalAveragePool',
  'QLinearAveragePool',
  'QLinearConcat',
  'QLinearSigmoid',
  'QLinearLeakyRelu',
  'MatMulInteger',
  'ConvInteger',
  'DynamicQuantizeLinear',
  'MatMulNBits',
  'QuantizeLinear',
]);

export class UnsupportedOpError extends BundleError {
  constructor(file: string, problem: string, fix: string) {
    super('UnsupportedOpError', `${file}: ${problem}`, fix);
  }
}

/** Refuses to quantize a graph that is quantized already: its weights are codes, not floats. */
export function assertFloatGraph(lm: LoadedModel, mode: string): void {
  const found = [...new Set((lm.model.graph?.node ?? []).map((n) => n.opType ?? ''))].filter((op) =>
    QUANTIZED_OPS.has(op),
  );
  if (found.length)
    throw new UnsupportedOpError(
      lm.file,
      `--quantize ${mode} cannot handle ${found.join(', ')}: the graph is quantized already`,
      'run prepare without --quantize first (it dequantizes int8 graphs to float), then quantize that float bundle — or start from the float export',
    );
}

/** A one-entry cache so the tensors derived from one weight (codes, scales) quantize it once. */
function memo<R>(fn: () => R): () => R {
  let v: R | undefined;
  return () => (v ??= fn());
}

function initOf(lm: LoadedModel, name: string): { t: TensorProtoT; d: TensorData } | null {
  const t = (lm.model.graph?.initializer ?? []).find((x) => x.name === name);
  const d = lm.data.get(name);
  return t && d ? { t, d } : null;
}

const isFloatType = (t: TensorProtoT) => num(t.dataType) === T.FLOAT || num(t.dataType) === T.FLOAT16;

export interface Int4Options {
  blockSize: number;
}

/**
 * int4 codes of a K×N weight (row-major, `w[k * N + n]`) in MatMulNBits' layout: B [N, nBlocks, bs/2] with two
 * codes per byte (low nibble first), scales [N · nBlocks]; the value is `(code − 8) · scale`.
 */
export function packInt4(w: Float32Array, K: number, N: number, bs: number) {
  const nBlocks = Math.ceil(K / bs);
  const packed = new Uint8Array(N * nBlocks * (bs / 2));
  const scales = new Float32Array(N * nBlocks);
  const block = new Float32Array(bs);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nBlocks; b++) {
      let maxAbs = 0;
      for (let k = 0; k < bs; k++) {
        const kk = b * bs + k;
        block[k] = kk < K ? w[kk * N + n] : 0;
        maxAbs = Math.max(maxAbs, Math.abs(block[k]));
      }
      let best = maxAbs / 7 || 1;
      let bestErr = Infinity;
      if (maxAbs > 0)
        for (const ratio of [1, 0.95, 0.9, 0.85, 0.8, 0.75]) {
          const s = (maxAbs * ratio) / 7;
          let err = 0;
          for (let k = 0; k < bs; k++) {
            const q = Math.max(-8, Math.min(7, Math.round(block[k] / s)));
            const e = block[k] - q * s;
            err += e * e;
          }
          if (err < bestErr) {
            bestErr = err;
            best = s;
          }
        }
      const s = Math.fround(best);
      scales[n * nBlocks + b] = s;
      for (let k = 0; k < bs; k++) {
        const q = Math.max(-8, Math.min(7, Math.round(block[k] / s))) + 8;
        const byte = (n * nBlocks + b) * (bs / 2) + (k >> 1);
        packed[byte] |= k & 1 ? q << 4 : q;
      }
    }
  return { packed, scales, nBlocks };
}

/** The float values MatMulNBits computes with, for tests: `[K, N]` row-major. */
export function unpackInt4(packed: Uint8Array, scales: Float32Array, K: number, N: number, bs: number) {
  const nBlocks = Math.ceil(K / bs);
  const w = new Float32Array(K * N);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / bs);
      const byte = packed[(n * nBlocks + b) * (bs / 2) + ((k % bs) >> 1)];
      const q = k % 2 ? byte >> 4 : byte & 15;
      w[k * N + n] = (q - 8) * scales[n * nBlocks + b];
    }
  return w;
}

/** The `[K, N]` float weight of a MatMul (B as is) or a Gemm (B transposed when transB). */
function weightKN(
  t: TensorProtoT,
  d: TensorData,
  transB: boolean,
): { w: () => Float32Array; K: number; N: number } {
  const [a, b] = dimsOf(t);
  const K = transB ? b : a;
  const N = transB ? a : b;
  return {
    K,
    N,
    w: () => {
      const v = floatValues(t, d);
      if (!transB) return v;
      const out = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[k * N + n] = v[n * K + k];
      return out;
    },
  };
}

export interface QuantReport {
  quantized: Record<string, number>;
  skipped: Record<string, number>;
}

function bump(r: Record<string, number>, k: string) {
  r[k] = (r[k] ?? 0) + 1;
}

export function quantizeInt4(lm: LoadedModel, opts: Int4Options): QuantReport {
  assertFloatGraph(lm, 'int4');
  const bs = opts.blockSize;
  if (!Number.isInteger(bs) || bs < 16 || (bs & (bs - 1)) !== 0)
    throw new BundleError(
      'UsageError',
      `--block ${bs} is not supported`,
      'pass --block 16, 32, 64 or 128 (a power of two ≥ 16)',
    );
  const g = lm.model.graph!;
  const report: QuantReport = { quantized: {}, skipped: {} };
  const out: NodeProtoT[] = [];
  let any = false;
  for (const n of g.node ?? []) {
    const op = n.opType ?? '';
    const wName = n.input?.[1] ?? '';
    const init = op === 'MatMul' || op === 'Gemm' ? initOf(lm, wName) : null;
    const transA = op === 'Gemm' ? attrInt(n, 'transA', 0) : 0;
    if (!init || !isFloatType(init.t) || dimsOf(init.t).length !== 2 || transA) {
      if (op === 'MatMul' || op === 'Gemm') bump(report.skipped, `${op} (weight not a constant 2-D float)`);
      out.push(n);
      continue;
    }
    const transB = op === 'Gemm' && attrInt(n, 'transB', 0) === 1;
    const alpha = op === 'Gemm' ? attrFloat(n, 'alpha', 1) : 1;
    const { K, N, w } = weightKN(init.t, init.d, transB);
    const q = memo(() => packInt4(alpha === 1 ? w() : w().map((v) => v * alpha), K, N, bs));
    const nBlocks = Math.ceil(K / bs);
    const base = `${wName}__int4`;
    const qName = addInit(lm, `${base}_qweight`, T.UINT8, [N, nBlocks, bs / 2], {
      kind: 'lazy',
      length: N * nBlocks * (bs / 2),
      produce: () => q().packed,
    });
    const sName = addInit(lm, `${base}_scales`, T.FLOAT, [N * nBlocks], {
      kind: 'lazy',
      length: N * nBlocks * 4,
      produce: () => new Uint8Array(q().scales.buffer),
    });
    const y = n.output![0];
    const hasBias = op === 'Gemm' && !!n.input?.[2];
    const mm = mkNode(
      'MatMulNBits',
      [n.input![0], qName, sName],
      [hasBias ? `${y}__nbits` : y],
      [intAttr('K', K), intAttr('N', N), intAttr('bits', 4), intAttr('block_size', bs)],
      'com.microsoft',
    );
    out.push(mm);
    if (hasBias) {
      const beta = attrFloat(n, 'beta', 1);
      let c = n.input![2];
      if (beta !== 1) {
        const bName = addInit(lm, `${c}__beta`, T.FLOAT, [], {
          kind: 'bytes',
          bytes: new Uint8Array(Float32Array.of(beta).buffer),
        });
        out.push(mkNode('Mul', [c, bName], [`${c}__scaled`]));
        c = `${c}__scaled`;
      }
      out.push(mkNode('Add', [`${y}__nbits`, c], [y]));
    }
    bump(report.quantized, op);
    any = true;
  }
  g.node = out;
  if (any) ensureDomain(lm.model, 'com.microsoft', 1);
  pruneInitializers(lm);
  return report;
}

/** Per-channel symmetric int8 of a float tensor along `axis` (0 = rows of the first dim, 1 = columns of 2-D). */
export function quantizeAxis(v: Float32Array, dims: number[], axis: number | null) {
  const channels = axis === null ? 1 : dims[axis];
  const inner = axis === null ? v.length : elementCount(dims.slice(axis + 1));
  const chanOf = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < v.length; i++) maxAbs[chanOf(i)] = Math.max(maxAbs[chanOf(i)], Math.abs(v[i]));
  const scales = Float32Array.from(maxAbs, (m) => Math.fround(m / 127 || 1));
  const q = new Int8Array(v.length);
  for (let i = 0; i < v.length; i++)
    q[i] = Math.max(-127, Math.min(127, Math.round(v[i] / scales[chanOf(i)])));
  return { q, scales };
}

export function quantizeInt8(lm: LoadedModel): QuantReport {
  assertFloatGraph(lm, 'int8');
  const g = lm.model.graph!;
  const report: QuantReport = { quantized: {}, skipped: {} };
  const perAxis = opsetOf(lm.model) >= 13;
  const done = new Map<string, string>();
  const pre: NodeProtoT[] = [];
  for (const n of g.node ?? []) {
    const op = n.opType ?? '';
    if (op !== 'MatMul' && op !== 'Gemm' && op !== 'Conv') continue;
    const wName = n.input?.[1] ?? '';
    const init = initOf(lm, wName);
    const rank = init ? dimsOf(init.t).length : 0;
    if (!init || !isFloatType(init.t) || (op !== 'Conv' && rank !== 2)) {
      bump(report.skipped, `${op} (weight not a constant float)`);
      continue;
    }
    let dq = done.get(wName);
    if (!dq) {
      const dims = dimsOf(init.t);
      // Output channel: Conv's first dim, MatMul's columns, Gemm's N (dim 0 when transB).
      const axis = !perAxis ? null : op === 'Conv' ? 0 : op === 'Gemm' && attrInt(n, 'transB', 0) ? 0 : 1;
      const { t, d } = init;
      const q = memo(() => quantizeAxis(floatValues(t, d), dims, axis));
      const channels = axis === null ? 1 : dims[axis];
      const sDims = axis === null ? [] : [channels];
      const base = `${wName}__int8`;
      const qName = addInit(lm, `${base}_quantized`, T.INT8, dims, {
        kind: 'lazy',
        length: elementCount(dims),
        produce: () => new Uint8Array(q().q.buffer),
      });
      const sName = addInit(lm, `${base}_scale`, T.FLOAT, sDims, {
        kind: 'lazy',
        length: channels * 4,
        produce: () => new Uint8Array(q().scales.buffer),
      });
      const zName = addInit(lm, `${base}_zero_point`, T.INT8, sDims, {
        kind: 'bytes',
        bytes: new Uint8Array(channels),
      });
      dq = `${wName}__dequantized`;
      pre.push(
        mkNode('DequantizeLinear', [qName, sName, zName], [dq], axis === null ? [] : [intAttr('axis', axis)]),
      );
      done.set(wName, dq);
    }
    n.input![1] = dq;
    bump(report.quantized, op);
  }
  g.node = [...pre, ...(g.node ?? [])];
  pruneInitializers(lm);
  return report;
}

/**
 * An int8 QLinear/QDQ graph → float32 (see the header), by the app's own float-path rewrite
 * (`src/runtime/dequantize.ts`): one op rewrite for the app and the bundle tool. The bundle's tensors are given
 * to it lazily — weights read from their bytes or external-data range when the rewrite needs them, float weights
 * produced when the writer reaches them — so memory still follows the largest tensor. Returns counts of
 * rewritten ops.
 */
export function dequantizeInt8(lm: LoadedModel): QuantReport {
  const g = lm.model.graph!;
  const unknown = (g.node ?? [])
    .map((n) => n.opType ?? '')
    .filter((op) => (QUANTIZED_OPS.has(op) || QUANTIZED_OP_TYPES.has(op)) && !REWRITTEN_OP_TYPES.has(op));
  if (unknown.length)
    throw new UnsupportedOpError(
      lm.file,
      `dequantizing cannot handle ${[...new Set(unknown)].join(', ')} (it rewrites ${[...REWRITTEN_OP_TYPES].join(', ')})`,
      'dequantize this model with onnxruntime tools in Python, or use the float export instead',
    );
  // The float weights are produced when the writer reaches them, after `finish` pruned the int8 codes from the
  // graph: every constant the rewrite looked at is kept here, with where its bytes are.
  const seen = new Map<string, { t: TensorProtoT; d: TensorData }>();
  const constant = (name: string) => {
    let i = seen.get(name);
    if (!i) {
      const found = initOf(lm, name);
      if (!found) throw new Error(`${name} is not an initializer of ${lm.file}`);
      seen.set(name, (i = found));
    }
    return i;
  };
  const tensors: RewriteTensors = {
    info(name) {
      const i = seen.get(name) ?? initOf(lm, name);
      if (!i) return null;
      seen.set(name, i);
      return { dataType: num(i.t.dataType), dims: dimsOf(i.t) };
    },
    ints: (name) => {
      const i = constant(name);
      return intValues(i.t, i.d);
    },
    floats: (name) => {
      const i = constant(name);
      return floatValues(i.t, i.d);
    },
    addFloat(name, dims, values) {
      addInit(lm, name, T.FLOAT, dims, {
        kind: 'lazy',
        length: elementCount(dims) * 4,
        produce: () => {
          const v = values();
          return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        },
      });
    },
    finish: () => pruneInitializers(lm),
  };
  let r: FloatPathReport;
  try {
    // A short name: it prefixes the constants the rewrite adds (a path there would make bundles differ by where
    // they were prepared); errors are reworded with the file below.
    r = dequantizeModel(lm.model, 'dq', { tensors });
  } catch (e) {
    if (e instanceof FloatPathError) throw new UnsupportedOpError(lm.file, e.problem, e.fix);
    throw e;
  }
  return { quantized: { ...r.rewritten }, skipped: {} };
}

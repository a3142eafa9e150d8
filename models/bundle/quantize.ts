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
 *   the Clip would change the network, not just its rounding.
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
  onnx,
  opsetOf,
  pruneInitializers,
  type LoadedModel,
  type NodeProtoT,
  type TensorData,
  type TensorProtoT,
} from './onnx.ts';
import { BundleError } from './errors.ts';

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

/** The representable float range of a quantized tensor: `[(qmin − zp)·s, (qmax − zp)·s]`. */
function qRange(lm: LoadedModel, scale: string, zp: string | undefined): [number, number] {
  const s = initOf(lm, scale);
  const z = zp ? initOf(lm, zp) : null;
  if (!s)
    throw new UnsupportedOpError(
      lm.file,
      `the scale ${scale} is not a constant`,
      'dequantize only graphs with constant quantization parameters (static QLinear / QDQ models)',
    );
  const sv = floatValues(s.t, s.d)[0];
  const zt = z ? num(z.t.dataType) : T.UINT8;
  const zv = z ? intValues(z.t, z.d)[0] : 0;
  const [qmin, qmax] = zt === T.INT8 ? [-128, 127] : [0, 255];
  return [(qmin - zv) * sv, (qmax - zv) * sv];
}

/** Float values of a quantized constant: `(q − zp) · scale`, per-channel along `axis` when the scale is a vector. */
function dequantConst(
  lm: LoadedModel,
  q: string,
  scale: string,
  zp: string | undefined,
  axis = 0,
): { dims: number[]; values: () => Float32Array } {
  const qi = initOf(lm, q)!;
  const si = initOf(lm, scale)!;
  const zi = zp ? initOf(lm, zp) : null;
  const dims = dimsOf(qi.t);
  return {
    dims,
    values: () => {
      const qv = intValues(qi.t, qi.d);
      const sv = floatValues(si.t, si.d);
      const zv = zi ? intValues(zi.t, zi.d) : [0];
      const inner = sv.length > 1 ? elementCount(dims.slice(axis + 1)) : qv.length;
      const out = new Float32Array(qv.length);
      for (let i = 0; i < qv.length; i++) {
        const c = sv.length > 1 ? Math.floor(i / inner) % sv.length : 0;
        out[i] = (qv[i] - (zv[zv.length > 1 ? c : 0] ?? 0)) * sv[c];
      }
      return out;
    },
  };
}

const HANDLED = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'QLinearAdd',
  'QLinearMul',
  'QLinearGlobalAveragePool',
]);

/** An int8 QLinear/QDQ graph → float32 (see the header). Returns counts of rewritten ops. */
export function dequantizeInt8(lm: LoadedModel): QuantReport {
  const g = lm.model.graph!;
  const report: QuantReport = { quantized: {}, skipped: {} };
  const unknown = (g.node ?? [])
    .map((n) => n.opType ?? '')
    .filter((op) => QUANTIZED_OPS.has(op) && !HANDLED.has(op));
  if (unknown.length)
    throw new UnsupportedOpError(
      lm.file,
      `dequantizing cannot handle ${[...new Set(unknown)].join(', ')} (it rewrites ${[...HANDLED].join(', ')})`,
      'dequantize this model with onnxruntime tools in Python, or use the float export instead',
    );
  /** Quantized value → its float twin. */
  const shadow = new Map<string, string>();
  const opset = opsetOf(lm.model);
  const out: NodeProtoT[] = [];
  let counter = 0;
  const floatConst = (name: string, dims: number[], values: () => Float32Array) =>
    addInit(lm, name, T.FLOAT, dims, {
      kind: 'lazy',
      length: elementCount(dims) * 4,
      produce: () => new Uint8Array(values().buffer),
    });
  const scalar = (v: number) => floatConst(`dq_const_${counter++}`, [], () => Float32Array.of(v));
  const clip = (x: string, scale: string, zp: string | undefined, y: string) => {
    const [lo, hi] = qRange(lm, scale, zp);
    if (opset >= 11) out.push(mkNode('Clip', [x, scalar(lo), scalar(hi)], [y]));
    else
      out.push(
        mkNode(
          'Clip',
          [x],
          [y],
          [
            onnx.AttributeProto.create({ name: 'min', type: 1, f: lo }),
            onnx.AttributeProto.create({ name: 'max', type: 1, f: hi }),
          ],
        ),
      );
  };
  /** The float form of a quantized input: its shadow, or a dequantized constant. */
  const fl = (q: string, scale: string, zp: string | undefined, axis = 0): string => {
    const s = shadow.get(q);
    if (s) return s;
    if (!initOf(lm, q))
      throw new UnsupportedOpError(
        lm.file,
        `${q} is quantized but neither a constant nor produced by a quantized op`,
        'dequantize only static QLinear / QDQ models',
      );
    const c = dequantConst(lm, q, scale, zp, axis);
    const name = `${q}__float`;
    if (!initOf(lm, name)) floatConst(name, c.dims, c.values);
    return name;
  };
  for (const n of g.node ?? []) {
    const op = n.opType ?? '';
    const i = n.input ?? [];
    const y = n.output?.[0] ?? '';
    const yf = `${y}__float`;
    switch (op) {
      case 'QuantizeLinear':
        clip(shadow.get(i[0]) ?? i[0], i[1], i[2], yf);
        shadow.set(y, yf);
        break;
      case 'DequantizeLinear': {
        const axis = attrInt(n, 'axis', 1);
        if (shadow.has(i[0])) out.push(mkNode('Identity', [shadow.get(i[0])!], [y]));
        else {
          const c = dequantConst(lm, i[0], i[1], i[2], axis);
          floatConst(y, c.dims, c.values);
        }
        break;
      }
      case 'QLinearConv': {
        const x = fl(i[0], i[1], i[2]);
        const w = fl(i[3], i[4], i[5], 0);
        const ins = [x, w];
        if (i[8]) {
          // int32 bias with scale x_scale · w_scale (per output channel).
          const b = initOf(lm, i[8])!;
          const xs = initOf(lm, i[1])!;
          const ws = initOf(lm, i[4])!;
          const dims = dimsOf(b.t);
          ins.push(
            floatConst(`${i[8]}__float`, dims, () => {
              const bv = intValues(b.t, b.d);
              const x0 = floatValues(xs.t, xs.d)[0];
              const wv = floatValues(ws.t, ws.d);
              return Float32Array.from(bv, (v, c) => v * x0 * wv[wv.length > 1 ? c : 0]);
            }),
          );
        }
        const tmp = `${y}__conv`;
        const conv = mkNode('Conv', ins, [tmp]);
        conv.attribute = n.attribute ?? [];
        out.push(conv);
        clip(tmp, i[6], i[7], yf);
        shadow.set(y, yf);
        break;
      }
      case 'QLinearMatMul': {
        const a = fl(i[0], i[1], i[2]);
        const b = fl(i[3], i[4], i[5], 1);
        out.push(mkNode('MatMul', [a, b], [`${y}__mm`]));
        clip(`${y}__mm`, i[6], i[7], yf);
        shadow.set(y, yf);
        break;
      }
      case 'QLinearAdd':
      case 'QLinearMul': {
        const a = fl(i[0], i[1], i[2]);
        const b = fl(i[3], i[4], i[5]);
        out.push(mkNode(op === 'QLinearAdd' ? 'Add' : 'Mul', [a, b], [`${y}__op`]));
        clip(`${y}__op`, i[6], i[7], yf);
        shadow.set(y, yf);
        break;
      }
      case 'QLinearGlobalAveragePool': {
        if (attrInt(n, 'channels_last', 0))
          throw new UnsupportedOpError(
            lm.file,
            'QLinearGlobalAveragePool with channels_last=1',
            'export the model NCHW',
          );
        out.push(mkNode('GlobalAveragePool', [fl(i[0], i[1], i[2])], [`${y}__pool`]));
        clip(`${y}__pool`, i[3], i[4], yf);
        shadow.set(y, yf);
        break;
      }
      default: {
        // A float op on quantized values (Reshape of a uint8 tensor): it runs on the float twins instead.
        const mapped = i.map((v) => shadow.get(v) ?? v);
        if (mapped.some((v, k) => v !== i[k])) {
          n.input = mapped;
          n.output = (n.output ?? []).map((o) => {
            shadow.set(o, `${o}__float`);
            return `${o}__float`;
          });
        }
        out.push(n);
        continue;
      }
    }
    bump(report.quantized, op);
  }
  // A graph output that was quantized is now its float twin.
  for (const o of g.output ?? []) {
    const s = shadow.get(o.name ?? '');
    if (s) {
      out.push(mkNode('Identity', [s], [o.name ?? '']));
      o.type!.tensorType!.elemType = T.FLOAT;
    }
  }
  g.node = out;
  g.valueInfo = [];
  pruneInitializers(lm);
  return report;
}

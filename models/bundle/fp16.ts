/**
 * fp32 → fp16 conversion of a graph (the `--fp16` pass), in the manner of onnxconverter-common's
 * `convert_float_to_float16(keep_io_types, op_block_list)`:
 *
 * - float initializers and float activations become float16; `Cast(to=float)`, float `Constant`s and
 *   `ConstantOfShape` values follow;
 * - numerically sensitive ops stay float32 behind Casts (`KEEP_FP32`): the normalisations and their
 *   reductions (LayerNorm's mean/variance overflow or lose precision in fp16 over 1280–2048 channels) and
 *   Softmax (its exp overflows at logits above ~11 in fp16);
 * - `DequantizeLinear` stays float32 as well (an fp16 scale needs opset 19, which older exports lack) and its
 *   output is cast to fp16, so int8/int4 weights work with fp16 activations at any opset;
 * - inputs the ONNX spec types float32 whatever the data (Resize `scales`) stay float32;
 * - with `keepIo`, graph inputs and outputs stay float32 and Casts sit at the boundary (the app then feeds
 *   float32), otherwise they become float16 as an optimum `--dtype fp16` export's do.
 */
import { floatToHalf } from '../../src/core/tensor.ts';
import {
  T,
  attr,
  floatValues,
  intAttr,
  mkNode,
  num,
  onnx,
  type LoadedModel,
  type NodeProtoT,
} from './onnx.ts';
import { inferTypes } from './types.ts';

export const KEEP_FP32 = new Set([
  'LayerNormalization',
  'GroupNormalization',
  'InstanceNormalization',
  'BatchNormalization',
  'SimplifiedLayerNormalization',
  'SkipLayerNormalization',
  'ReduceMean',
  'ReduceSum',
  'ReduceSumSquare',
  'ReduceL2',
  'ReduceLogSumExp',
  'Softmax',
  'LogSoftmax',
  'DequantizeLinear',
  'Range',
]);

/** Inputs (op → positions) that must stay float32 per the ONNX spec. */
const FP32_SLOTS: Record<string, number[]> = { Resize: [2], Upsample: [1] };

function toHalfBytes(f: Float32Array): Uint8Array {
  const h = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) h[i] = floatToHalf(f[i]);
  return new Uint8Array(h.buffer);
}

export interface Fp16Report {
  /** Nodes kept in float32, by op type. */
  keptFp32: Record<string, number>;
  convertedInitializers: number;
  casts: number;
}

export function convertToFp16(lm: LoadedModel, opts: { keepIo: boolean }): Fp16Report {
  const g = lm.model.graph!;
  const types = inferTypes(lm);
  const isFloat = (v: string) => !!v && types.get(v) === T.FLOAT;
  const report: Fp16Report = { keptFp32: {}, convertedInitializers: 0, casts: 0 };
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));

  // Initializers only ever read as float32 (LayerNorm scale, Resize scales…) stay float32: no cast needed.
  const consumers = new Map<string, { n: NodeProtoT; i: number }[]>();
  for (const n of g.node ?? [])
    (n.input ?? []).forEach((v, i) => {
      if (!consumers.has(v)) consumers.set(v, []);
      consumers.get(v)!.push({ n, i });
    });
  const wantsFp32 = (n: NodeProtoT, i: number) =>
    KEEP_FP32.has(n.opType ?? '') || (FP32_SLOTS[n.opType ?? ''] ?? []).includes(i);
  const stayFp32 = new Set<string>();
  for (const [name, t] of inits) {
    if (num(t.dataType) !== T.FLOAT) continue;
    const uses = consumers.get(name) ?? [];
    if (uses.length > 0 && uses.every(({ n, i }) => wantsFp32(n, i))) stayFp32.add(name);
  }
  for (const [name, t] of inits) {
    if (num(t.dataType) !== T.FLOAT || stayFp32.has(name)) continue;
    const src = lm.data.get(name)!;
    t.dataType = T.FLOAT16;
    const length = Math.floor((src.kind === 'bytes' ? src.bytes.length : src.length) / 2);
    lm.data.set(name, {
      kind: 'lazy',
      length,
      produce: () => toHalfBytes(floatValues(onnx.TensorProto.create({ name, dataType: T.FLOAT }), src)),
    });
    report.convertedInitializers++;
  }
  /** Type of a value after conversion. */
  const fp16 = (v: string) => isFloat(v) && !stayFp32.has(v);

  const out: NodeProtoT[] = [];
  const castCache = new Map<string, string>();
  const cast = (v: string, to: number, name: string, where: NodeProtoT[]): string => {
    const key = `${v}>${to}`;
    const hit = castCache.get(key);
    if (hit) return hit;
    where.push(mkNode('Cast', [v], [name], [intAttr('to', to)]));
    castCache.set(key, name);
    report.casts++;
    return name;
  };

  // Graph inputs: keep float32 at the boundary and cast once, or declare them float16.
  const rename = new Map<string, string>();
  /** Emitted name → the value it stands for (for type lookups). */
  const orig = new Map<string, string>();
  const keptIn = new Set<string>();
  for (const i of g.input ?? []) {
    const name = i.name ?? '';
    if (!isFloat(name) || inits.has(name)) continue;
    if (opts.keepIo) {
      keptIn.add(name);
      const c = cast(name, T.FLOAT16, `${name}__fp16`, out);
      rename.set(name, c);
      orig.set(c, name);
    } else i.type!.tensorType!.elemType = T.FLOAT16;
  }
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const keptOut = (o: string) => opts.keepIo && outputs.has(o) && isFloat(o);
  const typeOf = (v: string) => orig.get(v) ?? v;

  for (const n of g.node ?? []) {
    const op = n.opType ?? '';
    const produced = [...(n.output ?? [])];
    n.input = (n.input ?? []).map((v) => rename.get(v) ?? v);
    if (KEEP_FP32.has(op)) {
      report.keptFp32[op] = (report.keptFp32[op] ?? 0) + 1;
      n.input = n.input.map((v) => {
        const o = typeOf(v);
        if (keptIn.has(o)) return o;
        return v && fp16(o) ? cast(v, T.FLOAT, `${o}__fp32`, out) : v;
      });
      const post: NodeProtoT[] = [];
      n.output = produced.map((o) => {
        if (!isFloat(o)) return o;
        const tmp = `${o}__fp32out`;
        post.push(mkNode('Cast', [tmp], [keptOut(o) ? `${o}__fp16` : o], [intAttr('to', T.FLOAT16)]));
        report.casts++;
        return tmp;
      });
      out.push(n, ...post);
    } else {
      for (const i of FP32_SLOTS[op] ?? []) {
        const v = n.input[i];
        if (v && fp16(typeOf(v))) n.input[i] = cast(v, T.FLOAT, `${typeOf(v)}__fp32`, out);
      }
      if (op === 'Cast') {
        const to = attr(n, 'to');
        if (to && num(to.i) === T.FLOAT) to.i = T.FLOAT16;
      }
      if (op === 'Constant' || op === 'ConstantOfShape') {
        const a = attr(n, 'value');
        if (a?.t && num(a.t.dataType) === T.FLOAT) {
          const f = new Float32Array(tensorBytes(a.t).slice().buffer);
          a.t.rawData = toHalfBytes(f);
          a.t.floatData = [];
          a.t.dataType = T.FLOAT16;
        }
        const vf = attr(n, 'value_float');
        if (vf)
          n.attribute = [
            onnx.AttributeProto.create({
              name: 'value',
              type: 4,
              t: onnx.TensorProto.create({
                dataType: T.FLOAT16,
                rawData: toHalfBytes(Float32Array.of(vf.f ?? 0)),
              }),
            }),
          ];
      }
      const dt = attr(n, 'dtype');
      if (dt && num(dt.i) === T.FLOAT) dt.i = T.FLOAT16;
      n.output = produced.map((o) => (keptOut(o) ? `${o}__fp16` : o));
      out.push(n);
    }
    // A graph output kept float32: later consumers read the fp16 value, the graph gets a Cast back.
    for (const o of produced)
      if (keptOut(o)) {
        rename.set(o, `${o}__fp16`);
        orig.set(`${o}__fp16`, o);
        out.push(mkNode('Cast', [`${o}__fp16`], [o], [intAttr('to', T.FLOAT)]));
        report.casts++;
      }
  }
  if (!opts.keepIo)
    for (const o of g.output ?? []) if (fp16(o.name ?? '')) o.type!.tensorType!.elemType = T.FLOAT16;
  g.node = out;
  // Stale value_info would contradict the new types; onnxruntime infers them again.
  g.valueInfo = [];
  return report;
}

function tensorBytes(t: { rawData?: Uint8Array | null; floatData?: number[] | null }): Uint8Array {
  if (t.rawData && t.rawData.length) return t.rawData;
  return new Uint8Array(Float32Array.from(t.floatData ?? []).buffer);
}

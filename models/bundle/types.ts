/**
 * Element types of every value in a graph, propagated from the graph inputs and initializers through the nodes
 * (ONNX graphs are topologically sorted). The fp16 pass needs them to know which values are float — an index
 * or a shape must never be cast — and exporters rarely ship complete `value_info`. The rules cover the ops of
 * diffusion exports and image classifiers; any other op takes the type of its first input, which is what the
 * shape-preserving and elementwise majority does.
 */
import { T, attr, num, type LoadedModel, type NodeProtoT } from './onnx.ts';

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const BOOL_OUT = new Set([
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'IsNaN',
  'IsInf',
]);
/** Ops whose output type is that of input `i` (a zero point or a scale). */
const TYPE_FROM_INPUT: Record<string, number> = {
  QuantizeLinear: 2,
  DequantizeLinear: 1,
  QLinearConv: 7,
  QLinearMatMul: 7,
  QLinearAdd: 7,
  QLinearMul: 7,
  QLinearGlobalAveragePool: 4,
  QLinearAveragePool: 4,
  Where: 1,
  CastLike: 1,
  OneHot: 2,
};

export function outputTypes(n: NodeProtoT, inType: (name: string) => number | undefined): number[] {
  const op = n.opType ?? '';
  const outs = n.output ?? [];
  const first = (n.input ?? []).map((i) => (i ? inType(i) : undefined)).find((t) => t !== undefined);
  const all = (t: number | undefined) => outs.map(() => t ?? T.FLOAT);
  if (op === 'Cast') return all(num(attr(n, 'to')?.i));
  if (INT64_OUT.has(op)) return all(T.INT64);
  if (BOOL_OUT.has(op)) return all(T.BOOL);
  if (op === 'DynamicQuantizeLinear') return [T.UINT8, T.FLOAT, T.UINT8];
  if (op === 'MatMulInteger' || op === 'ConvInteger') return all(T.INT32);
  if (op in TYPE_FROM_INPUT) {
    const i = TYPE_FROM_INPUT[op];
    const src = n.input?.[i];
    if (op === 'QuantizeLinear' && !src) return all(T.UINT8);
    return all(src ? inType(src) : first);
  }
  if (op === 'Constant') {
    const a = attr(n, 'value');
    if (a?.t) return all(num(a.t.dataType));
    if (attr(n, 'value_float') || attr(n, 'value_floats')) return all(T.FLOAT);
    return all(T.INT64);
  }
  if (op === 'ConstantOfShape')
    return all(attr(n, 'value')?.t ? num(attr(n, 'value')!.t!.dataType) : T.FLOAT);
  if (op === 'RandomNormal' || op === 'RandomUniform' || op === 'EyeLike' || op.endsWith('Like')) {
    const dt = attr(n, 'dtype');
    return all(dt ? num(dt.i) : op.endsWith('Like') ? first : T.FLOAT);
  }
  if (op === 'TopK' || op === 'MaxPool') return outs.map((_, i) => (i === 0 ? (first ?? T.FLOAT) : T.INT64));
  if (op === 'Dropout') return outs.map((_, i) => (i === 0 ? (first ?? T.FLOAT) : T.BOOL));
  return all(first);
}

/** Type of every graph input, initializer and node output. */
export function inferTypes(lm: LoadedModel): Map<string, number> {
  const g = lm.model.graph!;
  const types = new Map<string, number>();
  for (const i of g.input ?? []) types.set(i.name ?? '', num(i.type?.tensorType?.elemType));
  for (const t of g.initializer ?? []) types.set(t.name ?? '', num(t.dataType));
  for (const n of g.node ?? []) {
    const outs = outputTypes(n, (name) => types.get(name));
    (n.output ?? []).forEach((o, i) => o && types.set(o, outs[i]));
  }
  return types;
}

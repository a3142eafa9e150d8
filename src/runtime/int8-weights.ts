/**
 * An exact graph rewrite for onnxruntime's x86 CPU kernels: int8 weights of QLinearConv, QLinearMatMul,
 * ConvInteger and MatMulInteger become uint8 (every weight and its zero point + 128), so (w − w_zero_point) and
 * therefore every result are unchanged by the ONNX definition.
 *
 * Why: on x86-64 CPUs with AVX2 but without VNNI, onnxruntime's u8·s8 kernels use VPMADDUBSW, whose int16
 * partial sums saturate when activations and full-range int8 weights are large. Measured here (AMD EPYC, AVX2,
 * onnxruntime-node 1.30) on the real MobileNetV2-int8: the first QLinearConv differs from the ONNX definition at
 * 10% of its outputs by up to 42 quantization steps, and the pooled features end at cosine 0.89 from onnxruntime-web
 * WASM (which matches the definition exactly). The u8·u8 kernels widen to int16 before multiplying and match the
 * definition bit for bit. `tests/unit/int8-weights.test.ts` checks both against a direct implementation.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type TensorProtoT = onnxProto.onnx.ITensorProto;

const INT8 = 3;
const UINT8 = 2;

/** Weight and weight-zero-point input positions of the ops whose int8 kernels saturate. */
const WEIGHT_INPUTS: Record<string, { w: number; zp: number }> = {
  QLinearConv: { w: 3, zp: 5 },
  QLinearMatMul: { w: 3, zp: 5 },
  ConvInteger: { w: 1, zp: 3 },
  MatMulInteger: { w: 1, zp: 3 },
};

const ASCII = new TextEncoder();

function includes(hay: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0];
  for (let i = hay.indexOf(first); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

/** Cheap test on the raw bytes (no protobuf decode): could the model hold one of those ops at all? */
export function mayHaveInt8Weights(bytes: Uint8Array): boolean {
  return Object.keys(WEIGHT_INPUTS).some((op) => includes(bytes, ASCII.encode(op)));
}

function int8Values(t: TensorProtoT): Int8Array {
  if (t.rawData && t.rawData.length)
    return new Int8Array(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
  return Int8Array.from(t.int32Data ?? []);
}

function toUint8(t: TensorProtoT): void {
  const v = int8Values(t);
  const u = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) u[i] = v[i] + 128;
  t.dataType = UINT8;
  t.rawData = u;
  t.int32Data = [];
}

/**
 * Returns the model with int8 weight initializers of those ops turned into uint8 (`converted` counts the
 * weight tensors), or the same bytes when there is nothing to convert. Weights that are not initializers (or live
 * in external data) are left alone.
 */
export function widenInt8Weights(bytes: Uint8Array): { bytes: Uint8Array; converted: number } {
  if (!mayHaveInt8Weights(bytes)) return { bytes, converted: 0 };
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph;
  if (!g?.node) return { bytes, converted: 0 };
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const isInlineInt8 = (t: TensorProtoT | undefined): t is TensorProtoT =>
    !!t && t.dataType === INT8 && !(t.externalData && t.externalData.length);
  // Initializers read anywhere but as a weight or its zero point (e.g. shared with an activation) must keep
  // their type: those nodes are left as they are.
  const elsewhere = new Set<string>();
  for (const n of g.node) {
    const pos = WEIGHT_INPUTS[n.opType ?? ''];
    (n.input ?? []).forEach((name, i) => {
      if (!pos || (i !== pos.w && i !== pos.zp)) elsewhere.add(name);
    });
  }
  const done = new Set<string>();
  let converted = 0;
  for (const n of g.node) {
    const pos = WEIGHT_INPUTS[n.opType ?? ''];
    if (!pos || !n.input) continue;
    const w = inits.get(n.input[pos.w]);
    if (!isInlineInt8(w) && !done.has(n.input[pos.w])) continue;
    if (!w || elsewhere.has(w.name!)) continue;
    const zpName = n.input[pos.zp];
    const zp = zpName ? inits.get(zpName) : undefined;
    if (zpName && ((!isInlineInt8(zp) && !done.has(zpName)) || elsewhere.has(zpName))) continue;
    if (!done.has(w.name!)) {
      toUint8(w);
      done.add(w.name!);
      converted++;
    }
    if (zp && !done.has(zp.name!)) {
      toUint8(zp);
      done.add(zp.name!);
    } else if (!zpName) {
      // The optional zero point of ConvInteger/MatMulInteger defaults to 0, i.e. 128 once the weights are uint8.
      const name = `${w.name}__zero_point_u8`;
      if (!inits.has(name)) {
        const t = onnx.TensorProto.create({ name, dataType: UINT8, dims: [], rawData: Uint8Array.of(128) });
        g.initializer!.push(t);
        inits.set(name, t);
      }
      while (n.input.length < pos.zp) n.input.push('');
      n.input[pos.zp] = name;
    }
  }
  if (!converted) return { bytes, converted: 0 };
  return { bytes: onnx.ModelProto.encode(model).finish(), converted };
}

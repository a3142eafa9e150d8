/**
 * Turns an fp32 ONNX model into an fp16 one the way fp16 exports look (optimum `--dtype fp16`, onnxconverter's
 * float16 conversion): float initializers, graph inputs/outputs and `Cast(to=float)` become float16; the inputs
 * the ONNX spec keeps float32 (Resize `scales`) stay. Quantized weights stay int4/int8 and their scales become
 * fp16 (MatMulNBits takes fp16 A and scales; DequantizeLinear needs opset 19 for an fp16 scale). Used for the tiny fp16-I/O variant, so the pipeline's
 * dtype handling meets a real fp16 session instead of a fake.
 */
import onnxProto from 'onnx-proto';
import { floatToHalf } from '../../src/core/tensor.ts';

const { onnx } = onnxProto;
const FLOAT = 1;
const FLOAT16 = 10;

/** Inputs, by op and position, that the spec types as float32 whatever the data type. */
const KEEP_FLOAT: Record<string, number[]> = { Resize: [1, 2] };

export function toFp16(bytes: Uint8Array): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph!;
  const keep = new Set<string>();
  for (const n of g.node ?? [])
    for (const i of KEEP_FLOAT[n.opType ?? ''] ?? []) if (n.input?.[i]) keep.add(n.input[i]);
  for (const t of g.initializer ?? []) {
    if (t.dataType !== FLOAT || keep.has(t.name ?? '')) continue;
    const raw = t.rawData!;
    const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const h = Uint16Array.from(f, floatToHalf);
    t.rawData = new Uint8Array(h.buffer);
    t.dataType = FLOAT16;
  }
  for (const v of [...(g.input ?? []), ...(g.output ?? [])]) {
    const tt = v.type?.tensorType;
    if (tt && tt.elemType === FLOAT) tt.elemType = FLOAT16;
  }
  for (const n of g.node ?? [])
    if (n.opType === 'Cast')
      for (const a of n.attribute ?? []) if (a.name === 'to' && Number(a.i) === FLOAT) a.i = FLOAT16;
  // DequantizeLinear takes an fp16 scale from opset 19 on (int4/int8 weights with fp16 activations).
  if ((g.node ?? []).some((n) => n.opType === 'DequantizeLinear'))
    for (const o of m.opsetImport ?? []) if (!o.domain && Number(o.version) < 19) o.version = 19;
  return onnx.ModelProto.encode(m).finish();
}

/**
 * Self-checks of onnxruntime-web's WebGPU kernels that are known to go wrong on some adapters, run once per
 * page/worker on a tiny graph against values computed here. Found by `tests/e2e/diffusion-parity.spec.ts` and
 * `diffusion-ort-ops.spec.ts`: on SwiftShader, onnxruntime-web 1.30's JSEP `DequantizeLinear` returns wrong
 * values (int8 off by up to 2× the range, uint8 garbage), so a QDQ graph on WebGPU silently computes nonsense.
 * A graph that uses a kernel failing its check runs on WASM instead, and the session says why.
 *
 * The probe graph is written with a ~40-line protobuf encoder rather than onnx-proto so the worker bundle does
 * not carry protobufjs for two tensors.
 */

/** Protobuf wire helpers: varint, key, length-delimited. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
const vint = (field: number, n: number) => [...key(field, 0), ...varint(n)];
const bytes = (field: number, b: ArrayLike<number>) => [
  ...key(field, 2),
  ...varint(b.length),
  ...Array.from(b),
];
const str = (field: number, s: string) => bytes(field, new TextEncoder().encode(s));

/** ONNX element types used here. */
const FLOAT = 1;
const UINT8 = 2;
const INT8 = 3;

function tensorProto(name: string, type: number, dims: number[], raw: Uint8Array): number[] {
  return [...dims.flatMap((d) => vint(1, d)), ...vint(2, type), ...str(8, name), ...bytes(9, raw)];
}
function valueInfo(name: string, type: number, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, vint(1, d)));
  return [...str(1, name), ...bytes(2, bytes(1, [...vint(1, type), ...bytes(2, shape)]))];
}
function nodeProto(op: string, inputs: string[], outputs: string[]): number[] {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(4, op)];
}

/** The DequantizeLinear probe: y = DequantizeLinear(q, scale, zp) + x, with x = 0 fed at run time. */
export function dequantizeProbe(kind: 'int8' | 'uint8'): { model: Uint8Array; expected: Float32Array } {
  const n = 8 * 9 * 3 * 3; // the shape of a 9-channel conv weight, where the bug showed up
  const scale = 0.5;
  const zp = kind === 'int8' ? 0 : 128;
  const q =
    kind === 'int8'
      ? Int8Array.from({ length: n }, (_, i) => ((i * 37) % 256) - 128)
      : Uint8Array.from({ length: n }, (_, i) => (i * 37) % 256);
  const expected = Float32Array.from(q, (v) => (v - zp) * scale);
  const type = kind === 'int8' ? INT8 : UINT8;
  const graph = [
    ...bytes(1, nodeProto('DequantizeLinear', ['q', 's', 'z'], ['w'])),
    ...bytes(1, nodeProto('Add', ['w', 'x'], ['y'])),
    ...str(2, 'dequantize_probe'),
    ...bytes(5, tensorProto('q', type, [n], new Uint8Array(q.buffer))),
    ...bytes(5, tensorProto('s', FLOAT, [], new Uint8Array(Float32Array.of(scale).buffer))),
    ...bytes(5, tensorProto('z', type, [], Uint8Array.of(zp))),
    ...bytes(11, valueInfo('x', FLOAT, [1])),
    ...bytes(12, valueInfo('y', FLOAT, [n])),
  ];
  const model = [...vint(1, 8), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...vint(2, 18)])];
  return { model: Uint8Array.from(model), expected };
}

/** Runs a probe through `run` and returns '' when it matches, else what went wrong (for messages). */
export async function checkProbe(
  probe: { model: Uint8Array; expected: Float32Array },
  run: (model: Uint8Array) => Promise<Float32Array>,
): Promise<string> {
  let got: Float32Array;
  try {
    got = await run(probe.model);
  } catch (e) {
    return `it failed to run (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
  }
  let maxErr = 0;
  for (let i = 0; i < probe.expected.length; i++) {
    const d = Math.abs((got[i] ?? NaN) - probe.expected[i]);
    maxErr = Number.isNaN(d) ? Infinity : Math.max(maxErr, d);
  }
  return maxErr <= 1e-6 ? '' : `it is off by up to ${maxErr.toPrecision(3)} on a self-check`;
}

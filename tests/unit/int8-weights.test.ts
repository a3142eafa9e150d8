/**
 * onnxruntime-node's int8 kernels against the ONNX operator definitions, written out here in plain integer
 * arithmetic: the real MobileNetV2-int8's first QLinearConv and a full-range MatMulInteger. Before the uint8
 * weight rewrite (src/runtime/int8-weights.ts) this machine's AVX2 kernels were off by up to 42 quantization
 * steps on the first conv; the definitions are exact, so the tolerance is 0.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { graph, initializer, model, node, valueInfo } from '../../models/builders/graph.ts';
import { imagenetPreprocess, preprocessBatch } from '../../src/core/preprocess.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { mayHaveInt8Weights, widenInt8Weights } from '../../src/runtime/int8-weights.ts';
import { createSession } from '../../src/runtime/ort-node.ts';

const { onnx } = onnxProto;
const SHARED = resolve(import.meta.dirname, '../../../shared');
const MOBILENET = new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-12-int8.onnx')));

type TensorT = onnxProto.onnx.ITensorProto;

/** Values of an initializer (raw little-endian data or the typed fields). */
function values(t: TensorT): number[] {
  const b = t.rawData;
  if (b && b.length) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out: number[] = [];
    if (t.dataType === 1) for (let i = 0; i < b.length / 4; i++) out.push(dv.getFloat32(i * 4, true));
    else if (t.dataType === 2) for (let i = 0; i < b.length; i++) out.push(dv.getUint8(i));
    else if (t.dataType === 3) for (let i = 0; i < b.length; i++) out.push(dv.getInt8(i));
    else if (t.dataType === 6) for (let i = 0; i < b.length / 4; i++) out.push(dv.getInt32(i * 4, true));
    else throw new Error(`dtype ${t.dataType}`);
    return out;
  }
  return Array.from(t.floatData?.length ? t.floatData : (t.int32Data ?? []));
}

/** round-half-to-even, as QLinearConv's requantization (and QuantizeLinear) specify. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : r;
}

describe('int8 kernels in Node equal the ONNX definitions', () => {
  it('MobileNetV2-int8: the first QLinearConv (uint8 × per-channel int8 weights), every output exact', async () => {
    const m = onnx.ModelProto.decode(MOBILENET);
    const g = m.graph!;
    const conv = g.node!.find((n) => n.opType === 'QLinearConv')!;
    const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
    const [xN, xsN, xzN, wN, wsN, wzN, ysN, yzN, bN] = conv.input!;
    expect(inits.get(wN)!.dataType).toBe(3); // int8 weights: the saturating u8·s8 case
    g.output = [xN, conv.output![0]].map((name) => onnx.ValueInfoProto.create({ name }));
    const session = await createSession(onnx.ModelProto.encode(m).finish(), { backend: 'cpu' });

    const item = JSON.parse(readFileSync(resolve(SHARED, 'data/magnetic-tile-compact/manifest.json'), 'utf8'))
      .items[0] as { file: string };
    const bytes = new Uint8Array(readFileSync(resolve(SHARED, 'data/magnetic-tile-compact', item.file)));
    const { data, dims } = preprocessBatch(
      [(await decodeImage(bytes, item.file)).raster],
      imagenetPreprocess(),
    );
    const r = await session.run({ input: { type: 'float32', data, dims } as never }, [xN, conv.output![0]]);
    const xq = r[xN].data as Uint8Array;
    const got = r[conv.output![0]].data as Uint8Array;

    const attr = Object.fromEntries(
      conv.attribute!.map((a) => [a.name!, a.ints?.length ? a.ints.map(Number) : Number(a.i)]),
    );
    const [M, Cg, kh, kw] = inits.get(wN)!.dims!.map(Number);
    const [sy, sx] = (attr.strides as number[]) ?? [1, 1];
    const pads = (attr.pads as number[]) ?? [0, 0, 0, 0];
    const group = Number(attr.group ?? 1);
    const [, , H, W] = r[xN].dims as number[];
    const OH = Math.floor((H + pads[0] + pads[2] - kh) / sy) + 1;
    const OW = Math.floor((W + pads[1] + pads[3] - kw) / sx) + 1;
    const [xs] = values(inits.get(xsN)!);
    const [xz] = values(inits.get(xzN)!);
    const [ys] = values(inits.get(ysN)!);
    const [yz] = values(inits.get(yzN)!);
    const w = values(inits.get(wN)!);
    const ws = values(inits.get(wsN)!);
    const wz = values(inits.get(wzN)!);
    const bias = values(inits.get(bN)!);
    expect(got.length).toBe(M * OH * OW);
    let wrong = 0;
    for (let o = 0; o < M; o++) {
      const gi = Math.floor(o / (M / group));
      const scale = (xs * (ws.length > 1 ? ws[o] : ws[0])) / ys;
      const wzo = wz.length > 1 ? wz[o] : wz[0];
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let acc = bias[o];
          for (let c = 0; c < Cg; c++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sy - pads[0] + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sx - pads[1] + kx;
                if (ix < 0 || ix >= W) continue;
                acc +=
                  (xq[((gi * Cg + c) * H + iy) * W + ix] - xz) *
                  (w[((o * Cg + c) * kh + ky) * kw + kx] - wzo);
              }
            }
          const want = Math.max(0, Math.min(255, roundEven(acc * scale) + yz));
          if (got[(o * OH + oy) * OW + ox] !== want) wrong++;
        }
    }
    expect(wrong).toBe(0);
    await session.release();
  });

  it('a full-range int8 MatMulInteger without zero points: exact int32 products', async () => {
    // Large activations × ±127 weights: the int16 pair sums of VPMADDUBSW overflow (255·127·2 > 32767).
    const K = 16;
    const N = 4;
    const a = Uint8Array.from({ length: K }, (_, i) => 200 + (i % 56));
    const b = Int8Array.from({ length: K * N }, (_, i) => (i % 3 === 0 ? 127 : i % 3 === 1 ? -128 : 101));
    const bytes = model(
      graph({
        name: 'mmi',
        nodes: [node('MatMulInteger', ['a', 'b'], ['y'])],
        inputs: [valueInfo('a', 'uint8', [1, K])],
        outputs: [valueInfo('y', 'int32', [1, N])],
        initializers: [initializer('b', b, [K, N], 'int8')],
      }),
      { opset: 17 },
    );
    const session = await createSession(bytes, { backend: 'cpu' });
    const r = await session.run({ a: { type: 'uint8', data: a, dims: [1, K] } as never }, ['y']);
    const want = Array.from({ length: N }, (_, n) => a.reduce((s, av, k) => s + av * b[k * N + n], 0));
    expect(Array.from(r.y.data as Int32Array)).toEqual(want);
    await session.release();
  });

  it('the rewrite only touches int8 weights: float models keep their bytes; MobileNetV2 converts every conv weight', () => {
    const float = model(
      graph({
        name: 'f',
        nodes: [node('Relu', ['x'], ['y'])],
        inputs: [valueInfo('x', 'float32', [1])],
        outputs: [valueInfo('y', 'float32', [1])],
        initializers: [],
      }),
    );
    expect(mayHaveInt8Weights(float)).toBe(false);
    expect(widenInt8Weights(float).bytes).toBe(float);

    const g = onnx.ModelProto.decode(MOBILENET).graph!;
    const int8 = new Set(g.initializer!.filter((t) => t.dataType === 3).map((t) => t.name!));
    const weights = new Set(
      g
        .node!.filter((n) => n.opType === 'QLinearConv' || n.opType === 'QLinearMatMul')
        .map((n) => n.input![3]),
    );
    const expected = [...weights].filter((w) => int8.has(w)).length;
    expect(expected).toBeGreaterThan(50);
    const r = widenInt8Weights(MOBILENET);
    expect(r.converted).toBe(expected);
    const after = onnx.ModelProto.decode(r.bytes).graph!;
    const types = new Map(after.initializer!.map((t) => [t.name!, t.dataType]));
    for (const w of weights) expect(types.get(w)).toBe(2);
  });
});

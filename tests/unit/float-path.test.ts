/**
 * The float path for int8 backbones (`src/runtime/dequantize.ts`, issue 16 item 2) against onnxruntime-node's
 * int8 kernels (which `tests/unit/int8-weights.test.ts` checks against the ONNX definitions):
 *
 * - each rewritten op alone (QLinearConv with per-channel int8 weights and an int32 bias, depthwise, QLinearMatMul,
 *   QLinearAdd/Mul, the pools, Sigmoid, LeakyRelu, Concat, and a QDQ conv): the float graph's output is within
 *   1.5 output quantization steps of the int8 graph's (it rounds neither its input to the input grid nor its
 *   output: ≤ 0.5 step for the output, the rest from the input; measured 0.55–1.12); with `rounding: 'int8'`
 *   every output is within one step and ≥ 99 % are identical (measured 100 % for every op but QLinearAdd, 95 %,
 *   and QLinearMul, 99.3 %: onnxruntime's kernels for those two requantize by their own arithmetic);
 * - the real MobileNetV2-int8 on all 210 real magnetic tiles (../shared, read in place): pooled features of the
 *   float path against the int8 graph's, cosine per image ≥ 0.88 and ≥ 0.94 on average (the int8 graph re-rounds
 *   52 layers of activations, the float one does not: the first layers agree exactly, then one-step differences
 *   compound), and the real-data AP of a BCE head (100 normals + 10 real defects, seed 0) and of the 1-NN
 *   baseline on both within 0.03 of each other (measured: BCE 0.736 / 0.736, 1-NN 0.695 / 0.687;
 *   pooled cosine min 0.897, mean 0.956; with int8 rounding min 0.976, mean 0.989); every feature tap keeps its name and shape;
 * - fp16 storage: every float initializer is fp16, inputs/outputs stay float32, features within cosine 0.999
 *   of the fp32 float path;
 * - the feature cache keys float-path rows apart from the int8 graph's (`Backbone.cacheId`);
 * - graphs it cannot rewrite (dynamic quantization) → `FloatPathError` naming the file and the fix;
 * - "auto" in the features engine: in Node the int8 graph; in a web flavour the candidate the measurement says
 *   is faster, measured once per key and reused.
 * The figures are printed as JSON (`floatPathAgreement`) for bench/README.md.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { graph, initializer, model, node, valueInfo } from '../../models/builders/graph.ts';
import { averagePrecision } from '../../src/core/metrics/index.ts';
import { knnScores } from '../../src/core/experiments/baselines.ts';
import type { RasterImage } from '../../src/core/image.ts';
import { toFloat32 } from '../../src/core/tensor.ts';
import { Backbone, CachedFeatures, findBackbone, manifestLoadOptions } from '../../src/runtime/backbone.ts';
import type { StoredFeatures } from '../../src/runtime/db/types.ts';
import {
  type FloatPathMeasurement,
  type FloatPathStore,
  decideFloatPath,
} from '../../src/runtime/backend-choice.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import {
  FloatPathError,
  chooseFloatPrecision,
  floatPath,
  isQuantizedOps,
} from '../../src/runtime/dequantize.ts';
import { trainBceHead } from '../../src/runtime/heads/bce.ts';
import { createSession, nodeBackend } from '../../src/runtime/ort-node.ts';
import { initTf } from '../../src/runtime/tf.ts';
import { FeaturesEngine } from '../../workers/features.engine.ts';
import { cosine } from './similarity.ts';

const { onnx } = onnxProto;
const SHARED = resolve(import.meta.dirname, '../../../shared');
const DATA = resolve(SHARED, 'data/magnetic-tile-compact');
const MOBILENET = new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-12-int8.onnx')));
const MS = { 'com.microsoft': 1 };

async function runModel(bytes: Uint8Array, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await createSession(bytes, { backend: 'cpu' });
  try {
    const r = await s.run({ x: { type: 'float32', data: x, dims } }, ['y']);
    return toFloat32(r.y);
  } finally {
    await s.release();
  }
}

const f32 = (...v: number[]) => Float32Array.from(v);
const X_DIMS = [1, 4, 6, 6];
const xValues = Float32Array.from({ length: 144 }, (_, i) => 1.8 * Math.sin(i * 0.37) + 0.1 * ((i * 7) % 5));

/**
 * x → QuantizeLinear(0.02, 128) → `body` (reads `xq`, writes `yq` with scale `ys` / zero point `yz`) →
 * DequantizeLinear → y.
 */
function opModel(
  body: ReturnType<typeof node>[],
  inits: ReturnType<typeof initializer>[],
  ys: number,
  yz: number,
  yDims: (number | string)[],
): Uint8Array {
  return model(
    graph({
      name: 'op',
      nodes: [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        ...body,
        node('DequantizeLinear', ['yq', 'ys', 'yz'], ['y']),
      ],
      inputs: [valueInfo('x', 'float32', X_DIMS)],
      outputs: [valueInfo('y', 'float32', yDims)],
      initializers: [
        initializer('xs', f32(0.02), []),
        initializer('xz', Uint8Array.of(128), []),
        initializer('ys', f32(ys), []),
        initializer('yz', Uint8Array.of(yz), []),
        ...inits,
      ],
    }),
    { opset: 13, domains: MS },
  );
}

const ms = { domain: 'com.microsoft' };
const constQ = [
  initializer(
    'cq',
    Uint8Array.from({ length: 144 }, (_, i) => (i * 37) % 256),
    X_DIMS,
  ),
  initializer('cs', f32(0.015), []),
  initializer('cz', Uint8Array.of(120), []),
];
const conv = (group: number) => {
  const cg = 4 / group;
  return [
    initializer(
      'w',
      Int8Array.from({ length: 4 * cg * 9 }, (_, i) => ((i * 53) % 255) - 127),
      [4, cg, 3, 3],
    ),
    initializer('wscale', f32(0.004, 0.006, 0.003, 0.005), [4]),
    initializer('wz', new Int8Array(4), [4]),
    initializer('b', Int32Array.of(100, -250, 0, 900), [4]),
  ];
};
const CASES: { name: string; bytes: Uint8Array; ys: number }[] = [
  {
    name: 'QLinearConv (per-channel int8 weights, int32 bias, pads)',
    bytes: opModel(
      [
        node('QLinearConv', ['xq', 'xs', 'xz', 'w', 'wscale', 'wz', 'ys', 'yz', 'b'], ['yq'], {
          kernel_shape: [3, 3],
          pads: [1, 1, 1, 1],
        }),
      ],
      conv(1),
      0.05,
      128,
      X_DIMS,
    ),
    ys: 0.05,
  },
  {
    name: 'QLinearConv depthwise, stride 2, output zero point 0 (its ReLU)',
    bytes: opModel(
      [
        node('QLinearConv', ['xq', 'xs', 'xz', 'w', 'wscale', 'wz', 'ys', 'yz', 'b'], ['yq'], {
          kernel_shape: [3, 3],
          pads: [1, 1, 1, 1],
          strides: [2, 2],
          group: 4,
        }),
      ],
      conv(4),
      0.01,
      0,
      [1, 4, 3, 3],
    ),
    ys: 0.01,
  },
  {
    name: 'QLinearMatMul',
    bytes: opModel(
      [node('QLinearMatMul', ['xq', 'xs', 'xz', 'mq', 'ms', 'mz', 'ys', 'yz'], ['yq'])],
      [
        initializer(
          'mq',
          Uint8Array.from({ length: 18 }, (_, i) => (i * 71) % 256),
          [6, 3],
        ),
        initializer('ms', f32(0.01), []),
        initializer('mz', Uint8Array.of(128), []),
      ],
      0.04,
      128,
      [1, 4, 6, 3],
    ),
    ys: 0.04,
  },
  ...(['QLinearAdd', 'QLinearMul'] as const).map((op) => ({
    name: op,
    bytes: opModel(
      [node(op, ['xq', 'xs', 'xz', 'cq', 'cs', 'cz', 'ys', 'yz'], ['yq'], {}, ms)],
      constQ,
      0.03,
      128,
      X_DIMS,
    ),
    ys: 0.03,
  })),
  {
    name: 'QLinearGlobalAveragePool',
    bytes: opModel(
      [node('QLinearGlobalAveragePool', ['xq', 'xs', 'xz', 'ys', 'yz'], ['yq'], { channels_last: 0 }, ms)],
      [],
      0.01,
      128,
      [1, 4, 1, 1],
    ),
    ys: 0.01,
  },
  {
    name: 'QLinearAveragePool',
    bytes: opModel(
      [
        node(
          'QLinearAveragePool',
          ['xq', 'xs', 'xz', 'ys', 'yz'],
          ['yq'],
          { kernel_shape: [2, 2], strides: [2, 2] },
          ms,
        ),
      ],
      [],
      0.015,
      128,
      [1, 4, 3, 3],
    ),
    ys: 0.015,
  },
  {
    name: 'QLinearSigmoid',
    bytes: opModel(
      [node('QLinearSigmoid', ['xq', 'xs', 'xz', 'ys', 'yz'], ['yq'], {}, ms)],
      [],
      1 / 256,
      0,
      X_DIMS,
    ),
    ys: 1 / 256,
  },
  {
    name: 'QLinearLeakyRelu',
    bytes: opModel(
      [node('QLinearLeakyRelu', ['xq', 'xs', 'xz', 'ys', 'yz'], ['yq'], { alpha: 0.1 }, ms)],
      [],
      0.02,
      100,
      X_DIMS,
    ),
    ys: 0.02,
  },
  {
    name: 'QLinearConcat',
    bytes: opModel(
      [node('QLinearConcat', ['ys', 'yz', 'xq', 'xs', 'xz', 'cq', 'cs', 'cz'], ['yq'], { axis: 1 }, ms)],
      constQ,
      0.025,
      128,
      [1, 8, 6, 6],
    ),
    ys: 0.025,
  },
  {
    name: 'QDQ Conv (float Conv between DequantizeLinear and QuantizeLinear)',
    bytes: opModel(
      [
        node('DequantizeLinear', ['xq', 'xs', 'xz'], ['xf']),
        node('DequantizeLinear', ['w', 'wscale', 'wz'], ['wf'], { axis: 0 }),
        node('Conv', ['xf', 'wf'], ['cf'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('QuantizeLinear', ['cf', 'ys', 'yz'], ['yq']),
      ],
      conv(1),
      0.05,
      128,
      X_DIMS,
    ),
    ys: 0.05,
  },
];

describe('float path: each quantized op against onnxruntime-node int8', () => {
  for (const c of CASES)
    it(`${c.name}: within 1.5 output steps; with int8 rounding ≤ 1 step and ≥ 99 % identical`, async () => {
      const int8 = await runModel(c.bytes, xValues, X_DIMS);
      const plain = floatPath(c.bytes, 'fp32', c.name);
      const rounded = floatPath(c.bytes, 'fp32', c.name, 'int8');
      const ops = onnx.ModelProto.decode(plain.bytes).graph!.node!.map((n) => n.opType ?? '');
      expect(isQuantizedOps(ops)).toBe(false);
      expect(Object.keys(plain.report.rewritten).length).toBeGreaterThan(0);
      const a = await runModel(plain.bytes, xValues, X_DIMS);
      const b = await runModel(rounded.bytes, xValues, X_DIMS);
      expect(a.length).toBe(int8.length);
      let worst = 0;
      let worstRounded = 0;
      let same = 0;
      for (let i = 0; i < int8.length; i++) {
        worst = Math.max(worst, Math.abs(a[i] - int8[i]) / c.ys);
        worstRounded = Math.max(worstRounded, Math.abs(b[i] - int8[i]) / c.ys);
        if (Math.abs(b[i] - int8[i]) < 1e-3 * c.ys) same++;
      }
      expect(worst).toBeLessThanOrEqual(1.5);
      expect(worstRounded).toBeLessThanOrEqual(1 + 1e-3);
      expect(same / int8.length).toBeGreaterThanOrEqual(c.name === 'QLinearAdd' ? 0.95 : 0.99);
    });

  it('refuses dynamic quantization with FloatPathError naming the model and the fix; a float graph is unchanged', () => {
    const dyn = model(
      graph({
        name: 'dyn',
        nodes: [
          node('DynamicQuantizeLinear', ['x'], ['q', 's', 'z']),
          node('MatMulInteger', ['q', 'w', 'z'], ['y32']),
          node('Cast', ['y32'], ['y'], { to: 1 }),
        ],
        inputs: [valueInfo('x', 'float32', [2, 4])],
        outputs: [valueInfo('y', 'float32', [2, 3])],
        initializers: [initializer('w', new Uint8Array(12), [4, 3])],
      }),
    );
    expect(() => floatPath(dyn, 'fp32', 'dyn.onnx')).toThrow(FloatPathError);
    expect(() => floatPath(dyn, 'fp32', 'dyn.onnx')).toThrow(
      /FloatPathError: dyn\.onnx: the float path cannot rewrite DynamicQuantizeLinear, MatMulInteger .* — fix: run this model as it is/,
    );
    const flt = model(
      graph({
        name: 'f',
        nodes: [node('Relu', ['x'], ['y'])],
        inputs: [valueInfo('x', 'float32', [2])],
        outputs: [valueInfo('y', 'float32', [2])],
        initializers: [],
      }),
    );
    expect(floatPath(flt).report.rewritten).toEqual({});
    expect(() => floatPath(Uint8Array.of(1, 2, 3, 255), 'fp32', 'junk.onnx')).toThrow(
      /FloatPathError: junk\.onnx: is not an ONNX model/,
    );
  });

  it('fp16 only on WebGPU with shader-f16', () => {
    expect(chooseFloatPrecision('webgpu', true).precision).toBe('fp16');
    expect(chooseFloatPrecision('webgpu', false)).toEqual({
      precision: 'fp32',
      reason: 'fp32: the WebGPU adapter has no shader-f16',
    });
    expect(chooseFloatPrecision('wasm', true).precision).toBe('fp32');
    expect(chooseFloatPrecision('cpu', true).precision).toBe('fp32');
  });
});

describe('float path: auto decision', () => {
  const m = (over: Partial<FloatPathMeasurement>): FloatPathMeasurement => ({
    key: 'k',
    int8Ms: 100,
    floatMs: 20,
    precision: 'fp32',
    measuredAt: 0,
    ...over,
  });
  it('takes the faster candidate, int8 on a failed float load, the float path on a failed int8 one', () => {
    expect(decideFloatPath(m({})).floatPath).toBe('fp32');
    expect(decideFloatPath(m({})).reason).toMatch(
      /float path \(fp32\) 20\.0 ms vs int8 100\.0 ms .*5\.0× faster/,
    );
    expect(decideFloatPath(m({ floatMs: 150 })).floatPath).toBe('off');
    expect(decideFloatPath(m({ floatMs: 100 })).floatPath).toBe('off');
    expect(decideFloatPath(m({ floatMs: null, floatError: 'boom' })).reason).toMatch(/failed here \(boom\)/);
    expect(decideFloatPath(m({ int8Ms: null, precision: 'fp16' })).floatPath).toBe('fp16');
  });
});

interface Item {
  file: string;
  label: number;
  split: string;
}

function mtFirst(): string {
  return (JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as { items: Item[] }).items[0]
    .file;
}

async function decodeAll(items: Item[]): Promise<RasterImage[]> {
  return Promise.all(
    items.map(async (i) => (await decodeImage(readFileSync(resolve(DATA, i.file)), i.file)).raster),
  );
}

describe('float path: the real MobileNetV2-int8 on the real magnetic tiles', () => {
  it('pooled features agree with the int8 graph (cosine ≥ 0.88, mean ≥ 0.94) and so do the BCE and 1-NN APs (± 0.03); taps keep their names', async () => {
    const items = (JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as { items: Item[] })
      .items;
    const train = items.filter((i) => i.split === 'train' || i.split === 'fewshot');
    const test = items.filter((i) => i.split === 'test');
    expect([train.length, test.length]).toEqual([110, 100]);
    const all = [...train, ...test];
    const imgs = await decodeAll(all);
    const opts = { ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!), ort: nodeBackend };
    const pooled: Record<string, Float32Array[]> = {};
    const taps: Record<string, Record<string, Float32Array>[]> = {};
    for (const [key, fp, rounding] of [
      ['int8', undefined, undefined],
      ['fp32', 'fp32', 'none'],
      ['fp32-int8-rounding', 'fp32', 'int8'],
    ] as const) {
      const bb = await Backbone.load(MOBILENET, { ...opts, floatPath: fp, floatRounding: rounding });
      expect(bb.info.floatPath).toBe(fp ?? 'off');
      expect(bb.cacheId === 'mobilenetv2-12-int8').toBe(!fp);
      if (fp) {
        expect(bb.floatReport!.rewritten).toMatchObject({
          QLinearConv: 52,
          QLinearAdd: 11,
          QLinearMatMul: 1,
        });
        expect(bb.taps).toEqual(['s8', 's16', 's32']);
      }
      pooled[key] = (await bb.extract(imgs, { pooledOnly: true, batchSize: 16 })).pooled;
      const t = await bb.extractTaps(imgs.slice(0, 8));
      taps[key] = t.map((x) => Object.fromEntries(Object.entries(x.maps).map(([k, v]) => [k, v.data])));
      expect(t[0].maps.s8.dims).toEqual([32, 28, 28]);
      expect(t[0].maps.s16.dims).toEqual([96, 14, 14]);
      expect(t[0].maps.s32.dims).toEqual([160, 7, 7]);
      await bb.release();
    }
    await initTf('wasm');
    const labels = test.map((i) => i.label);
    const normals = train.filter((i) => i.label === 0).length;
    const figures: Record<string, unknown> = {};
    const ap: Record<string, { bce: number; knn: number }> = {};
    for (const key of Object.keys(pooled)) {
      const xtr = pooled[key].slice(0, train.length);
      const xte = pooled[key].slice(train.length);
      const { head } = await trainBceHead(
        xtr,
        train.map((i) => i.label),
        { seed: 0 },
      );
      ap[key] = {
        bce: averagePrecision(await head.predict(xte), labels),
        knn: averagePrecision(knnScores(xtr.slice(0, normals), xte), labels),
      };
      head.dispose();
      if (key === 'int8') continue;
      const cos = pooled[key].map((p, i) => cosine(p, pooled.int8[i]));
      const tapCos = Object.fromEntries(
        ['s8', 's16', 's32'].map((t) => [
          t,
          taps[key].reduce((s, m, i) => s + cosine(m[t], taps.int8[i][t]), 0) / taps[key].length,
        ]),
      );
      figures[key] = {
        pooledCosineMin: Math.min(...cos),
        pooledCosineMean: cos.reduce((a, b) => a + b, 0) / cos.length,
        tapCosineMean: tapCos,
      };
      if (key === 'fp32') {
        for (const c of cos) expect(c).toBeGreaterThanOrEqual(0.88);
        expect(cos.reduce((a, b) => a + b, 0) / cos.length).toBeGreaterThanOrEqual(0.94);
        for (const t of ['s8', 's16', 's32']) expect(tapCos[t]).toBeGreaterThanOrEqual(0.85);
      } else {
        // Rounded to the int8 grid: closer, since only tie-level one-step flips compound.
        for (const c of cos) expect(c).toBeGreaterThanOrEqual(0.95);
        expect(cos.reduce((a, b) => a + b, 0) / cos.length).toBeGreaterThanOrEqual(0.98);
      }
      expect(Math.abs(ap[key].bce - ap.int8.bce)).toBeLessThanOrEqual(0.03);
      expect(Math.abs(ap[key].knn - ap.int8.knn)).toBeLessThanOrEqual(0.03);
    }
    console.log(JSON.stringify({ floatPathAgreement: { ap, ...figures } }));
  }, 900_000);

  it('fp16 storage: fp16 initializers, float32 input/outputs, features within cosine 0.999 of fp32', async () => {
    const { bytes, report } = floatPath(MOBILENET, 'fp16', 'mobilenet');
    expect(report.precision).toBe('fp16');
    const g = onnx.ModelProto.decode(bytes).graph!;
    expect(g.initializer!.filter((t) => t.dataType === 1)).toEqual([]);
    expect(report.halfInitializers).toBeGreaterThan(100);
    expect(g.input!.map((i) => i.type!.tensorType!.elemType)).toEqual([1]);
    expect(g.output!.map((o) => o.type!.tensorType!.elemType)).toEqual([1]);
    const items = (
      JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as { items: Item[] }
    ).items.filter((_, i) => i % 26 === 0);
    const imgs = await decodeAll(items);
    const opts = { ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!), ort: nodeBackend };
    const out: Record<string, Float32Array[]> = {};
    for (const p of ['fp32', 'fp16'] as const) {
      const bb = await Backbone.load(MOBILENET, { ...opts, floatPath: p });
      out[p] = (await bb.extract(imgs, { pooledOnly: true })).pooled;
      await bb.release();
    }
    for (let i = 0; i < imgs.length; i++)
      expect(cosine(out.fp16[i], out.fp32[i])).toBeGreaterThanOrEqual(0.999);
  }, 300_000);
});

describe('float path: the feature cache', () => {
  it("keys float-path rows apart from the int8 graph's: neither path is served the other's features", async () => {
    const rows = new Map<string, StoredFeatures>();
    const store = {
      async getFeatures(k: object) {
        return rows.get(JSON.stringify(k));
      },
      async putFeatures(k: object, f: StoredFeatures) {
        rows.set(JSON.stringify(k), f);
      },
    };
    const item = (await decodeAll([{ file: mtFirst(), label: 0, split: 'train' }]))[0];
    const keyed = [{ sha256: 'tile-0', load: () => item }];
    const opts = { ...manifestLoadOptions(findBackbone('mobilenetv2-12-int8')!), ort: nodeBackend };
    const got: Float32Array[] = [];
    for (const fp of [undefined, 'fp32', undefined] as const) {
      const bb = await Backbone.load(MOBILENET, { ...opts, floatPath: fp });
      const cache = new CachedFeatures(bb, store);
      got.push((await cache.extract(keyed, { pooledOnly: true }))[0].pooled);
      // int8 first: a miss; the float path: a miss too (its own key); int8 again: a hit on its own row.
      expect([cache.hits, cache.misses]).toEqual(got.length === 3 ? [1, 0] : [0, 1]);
      await bb.release();
    }
    expect(rows.size).toBe(2);
    expect(cosine(got[0], got[1])).toBeLessThan(0.9999);
    expect(got[2]).toEqual(got[0]);
  }, 120_000);
});

describe('float path: "auto" in the features engine', () => {
  class MemoryStore implements FloatPathStore {
    saved: FloatPathMeasurement[] = [];
    async load(key: string) {
      return this.saved.find((m) => m.key === key);
    }
    async save(m: FloatPathMeasurement) {
      this.saved.push(m);
    }
  }

  it('Node keeps the int8 graph; a web flavour measures once, keeps the faster and reuses the measurement', async () => {
    const node = new FeaturesEngine({ ort: nodeBackend });
    const a = await node.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes: MOBILENET, device: 'cpu' });
    expect(a.floatPath).toBe('off');
    expect(a.floatPathReason).toMatch(/onnxruntime-node runs its int8 kernels natively/);
    const f16 = await node.loadBackbone({
      manifestId: 'mobilenetv2-12-int8',
      bytes: MOBILENET,
      device: 'cpu',
      floatPath: 'fp16',
    });
    expect(f16.floatPath).toBe('fp32');
    expect(f16.floatPathReason).toMatch(/fp16 asked; fp32: cpu has no fp16 arithmetic/);
    await node.releaseBackbone();

    const store = new MemoryStore();
    // The Node door under a web flavour: the engine's measuring branch on real sessions.
    const web = new FeaturesEngine({ ort: { ...nodeBackend, flavour: 'web' }, floatPathStore: store });
    const b = await web.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes: MOBILENET, device: 'cpu' });
    expect(store.saved).toHaveLength(1);
    const m = store.saved[0];
    expect(m.int8Ms).toBeGreaterThan(0);
    expect(m.floatMs).toBeGreaterThan(0);
    expect(b.floatPath).toBe(m.floatMs! < m.int8Ms! ? 'fp32' : 'off');
    expect(b.floatPathReason).toMatch(
      /^auto: measured: float path \(fp32\) .* ms on cpu vs int8 .* ms on cpu/,
    );
    // A stored measurement that says the float path is faster is reused, not measured again.
    store.saved[0] = { ...m, int8Ms: 1000, floatMs: 1 };
    const c = await web.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes: MOBILENET, device: 'cpu' });
    expect(store.saved).toHaveLength(1);
    expect(c.floatPath).toBe('fp32');
    expect(c.floatPathReason).toMatch(/1000\.0× faster/);
    await web.releaseBackbone();
  }, 300_000);
});

/**
 * The tfjs executor (`src/runtime/onnx-tf.ts`) against onnxruntime-node on the same float graphs: onnxruntime
 * is the reference (nobody here wrote it). Tolerances are fp32 summation-order ones: the two sum a 3×3×C window
 * in different orders (XNNPACK NHWC against MLAS NCHW).
 * - every op of its set, one small graph each (asymmetric pads, strides, dilation, depthwise and grouped-1
 *   Convs, fused and separate activations, pools with pads, broadcasts of NCHW constants, shape arithmetic),
 *   `max |Δ| ≤ 1e-5 · (1 + max |ref|)`;
 * - the tiny ResNet-shaped backbone the app ships;
 * - the real MobileNetV2-int8's float path on 8 real magnetic tiles through `Backbone`: pooled, spatial, the
 *   three taps and the logits at cosine ≥ 0.999999 and `max |Δ| ≤ 1e-4 · (1 + max |ref|)`;
 * - an op outside the set is refused by name, and "auto" on WASM times the tfjs executor as a third candidate.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { graph, initializer, model, node, valueInfo } from '../../models/builders/graph.ts';
import type { RasterImage } from '../../src/core/image.ts';
import { toFloat32 } from '../../src/core/tensor.ts';
import { Backbone, findBackbone, manifestLoadOptions } from '../../src/runtime/backbone.ts';
import type { FloatPathMeasurement } from '../../src/runtime/backend-choice.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { OnnxTfSession, OnnxTfUnsupportedError } from '../../src/runtime/onnx-tf.ts';
import { createSession, nodeBackend } from '../../src/runtime/ort-node.ts';
import { FeaturesEngine } from '../../workers/features.engine.ts';
import { cosine } from './similarity.ts';

const SHARED = resolve(import.meta.dirname, '../../../shared');
const DATA = resolve(SHARED, 'data/magnetic-tile-compact');
const MOBILENET = new Uint8Array(readFileSync(resolve(SHARED, 'models/mobilenetv2-12-int8.onnx')));
const TINY = new Uint8Array(
  readFileSync(resolve(import.meta.dirname, '../../models/tiny/tiny-resnet/model.onnx')),
);

/** Largest |a − b| relative to `1 + max |b|`. */
function relMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let s = 0;
  for (let k = 0; k < a.length; k++) {
    m = Math.max(m, Math.abs(a[k] - b[k]));
    s = Math.max(s, Math.abs(b[k]));
  }
  return m / (1 + s);
}

const rand = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 1.7);

async function bothRun(bytes: Uint8Array, input: string, x: Float32Array, dims: number[], outs: string[]) {
  const ref = await createSession(bytes, { backend: 'cpu' });
  const tf = await OnnxTfSession.create(bytes, 'test');
  try {
    const feeds = { [input]: { type: 'float32' as const, data: x, dims } };
    const a = await tf.run(feeds, outs);
    const b = await ref.run(feeds, outs);
    return outs.map((o) => ({ name: o, tf: a[o], ref: b[o] }));
  } finally {
    await ref.release();
    await tf.release();
  }
}

const C = 4;
const X = [2, C, 9, 7];
const w = (o: number, i: number, k: number, seed: number) =>
  initializer(`w${seed}`, rand(o * i * k * k, seed), [o, i, k, k]);
const b = (o: number, seed: number) => initializer(`b${seed}`, rand(o, seed + 100), [o]);
const scalar = (name: string, v: number) => initializer(name, Float32Array.of(v), []);

/** One graph per case: x [2, 4, 9, 7] → nodes → y. */
const CASES: {
  name: string;
  nodes: ReturnType<typeof node>[];
  inits: ReturnType<typeof initializer>[];
  y: number[];
}[] = [
  {
    name: 'Conv 3×3, asymmetric pads, stride 2, fused ReLU6',
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c'], { kernel_shape: [3, 3], pads: [1, 0, 0, 1], strides: [2, 2] }),
      node('Clip', ['c', 'lo', 'hi'], ['y']),
    ],
    inits: [w(6, C, 3, 1), b(6, 1), scalar('lo', 0), scalar('hi', 6)],
    y: [2, 6, 4, 3],
  },
  {
    name: 'depthwise Conv with dilation 2, then a Clip to an int8 range, then ReLU',
    nodes: [
      node('Conv', ['x', 'w2', 'b2'], ['c'], {
        kernel_shape: [3, 3],
        pads: [2, 2, 2, 2],
        dilations: [2, 2],
        group: C,
      }),
      node('Clip', ['c', 'lo', 'hi'], ['d']),
      node('Relu', ['d'], ['y']),
    ],
    inits: [w(C, 1, 3, 2), b(C, 2), scalar('lo', -1.3), scalar('hi', 2.7)],
    y: [2, C, 9, 7],
  },
  {
    name: '1×1 Conv without bias, fused ReLU, residual Add, Sigmoid, Mul/Sub/Div by NCHW [C,1,1] constants',
    nodes: [
      node('Conv', ['x', 'w3'], ['c'], { kernel_shape: [1, 1] }),
      node('Relu', ['c'], ['r']),
      node('Add', ['r', 'x'], ['s']),
      node('Sigmoid', ['s'], ['g']),
      node('Mul', ['g', 'k'], ['m']),
      node('Sub', ['m', 'k'], ['n']),
      node('Div', ['n', 'k2'], ['y']),
    ],
    inits: [
      w(C, C, 1, 3),
      initializer('k', rand(C, 7), [C, 1, 1]),
      initializer('k2', Float32Array.of(2, -3, 4, 0.5), [C, 1, 1]),
    ],
    y: [2, C, 9, 7],
  },
  {
    name: 'MaxPool with pads, AveragePool, channel Concat',
    nodes: [
      node('MaxPool', ['x'], ['p'], { kernel_shape: [3, 3], pads: [1, 1, 0, 0], strides: [2, 2] }),
      node('AveragePool', ['x'], ['q'], { kernel_shape: [3, 3], strides: [2, 2] }),
      node('Concat', ['p', 'q'], ['y'], { axis: 1 }),
    ],
    inits: [],
    y: [2, 2 * C, 4, 3],
  },
  {
    name: 'GlobalAveragePool → Shape/Gather/Unsqueeze/Concat → Reshape → MatMul, and Flatten → Gemm (transB)',
    nodes: [
      node('GlobalAveragePool', ['x'], ['gp']),
      node('Shape', ['gp'], ['sh']),
      node('Gather', ['sh', 'zero'], ['n0'], { axis: 0 }),
      node('Unsqueeze', ['n0', 'axes'], ['n1']),
      node('Concat', ['n1', 'minus1'], ['target'], { axis: 0 }),
      node('Reshape', ['gp', 'target'], ['flat']),
      node('MatMul', ['flat', 'wm'], ['mm']),
      node('Flatten', ['gp'], ['fl'], { axis: 1 }),
      node('Gemm', ['fl', 'wg', 'bg'], ['gm'], { transB: 1, alpha: 0.5, beta: { float: 2 } }),
      node('Add', ['mm', 'gm'], ['y']),
    ],
    inits: [
      initializer('zero', BigInt64Array.of(0n), []),
      initializer('axes', BigInt64Array.of(0n), [1]),
      initializer('minus1', BigInt64Array.of(-1n), [1]),
      initializer('wm', rand(C * 5, 11), [C, 5]),
      initializer('wg', rand(5 * C, 12), [5, C]),
      initializer('bg', rand(5, 13), [5]),
    ],
    y: [2, 5],
  },
];

describe('tfjs executor: every op against onnxruntime-node', () => {
  for (const c of CASES)
    it(c.name, async () => {
      const bytes = model(
        graph({
          name: 'case',
          nodes: c.nodes,
          inputs: [valueInfo('x', 'float32', X)],
          outputs: [valueInfo('y', 'float32', c.y)],
          initializers: c.inits,
        }),
        { opset: 13 },
      );
      const x = rand(
        X.reduce((p, q) => p * q, 1),
        5,
      );
      const [r] = await bothRun(bytes, 'x', x, X, ['y']);
      expect(r.tf.dims).toEqual(r.ref.dims);
      expect(relMax(toFloat32(r.tf), toFloat32(r.ref))).toBeLessThanOrEqual(1e-5);
    });

  it('the tiny ResNet-shaped backbone (Conv, ReLU, MaxPool, Add, pool, Flatten, Gemm) gives onnxruntime-node’s outputs', async () => {
    const probe = await createSession(TINY, { backend: 'cpu' });
    const input = probe.inputNames[0];
    const outs = [...probe.outputNames];
    const shape = probe.inputs[0].shape.map((d) => (typeof d === 'number' && d > 0 ? d : 2));
    await probe.release();
    const x = rand(
      shape.reduce((p, q) => p * q, 1),
      3,
    );
    for (const r of await bothRun(TINY, input, x, shape, outs)) {
      expect(r.tf.dims, r.name).toEqual(r.ref.dims);
      expect(relMax(toFloat32(r.tf), toFloat32(r.ref)), r.name).toBeLessThanOrEqual(1e-5);
    }
  });

  it('keeps a float weight only as its tensor: host copies are for integers and floats of ≤ 64 values', async () => {
    const s = await OnnxTfSession.create(TINY, 'tiny');
    try {
      // Private fields, read on purpose: memory held twice is invisible through the session's API.
      const inner = s as unknown as {
        host: Map<string, { values: number[] }>;
        consts: Map<string, { size: number }>;
      };
      const bigFloats = [...inner.consts].filter(([, t]) => t.size > 64).map(([k]) => k);
      expect(bigFloats.length, 'the tiny ResNet has float constants over 64 values').toBeGreaterThan(0);
      for (const k of bigFloats) expect(inner.host.has(k), k).toBe(false);
      for (const [k, h] of inner.host)
        expect(h.values.length <= 64 || h.values.every(Number.isInteger), k).toBe(true);
    } finally {
      await s.release();
    }
  });

  it('refuses an op outside its set by name, and says what to use instead', async () => {
    const bytes = model(
      graph({
        name: 'softmax',
        nodes: [node('Softmax', ['x'], ['y'], { axis: 1 })],
        inputs: [valueInfo('x', 'float32', X)],
        outputs: [valueInfo('y', 'float32', X)],
        initializers: [],
      }),
      { opset: 13 },
    );
    const err = await OnnxTfSession.create(bytes, 'softmax.onnx').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnnxTfUnsupportedError);
    expect(String((err as Error).message)).toMatch(
      /softmax\.onnx: the tfjs executor cannot run the ops Softmax/,
    );
    expect((err as OnnxTfUnsupportedError).fix).toMatch(/onnxruntime/);
  });
});

interface Item {
  file: string;
}

async function tiles(n: number): Promise<RasterImage[]> {
  const items = (JSON.parse(readFileSync(resolve(DATA, 'manifest.json'), 'utf8')) as { items: Item[] }).items;
  const step = Math.floor(items.length / n);
  const picked = Array.from({ length: n }, (_, i) => items[i * step]);
  return Promise.all(
    picked.map(async (i) => (await decodeImage(readFileSync(resolve(DATA, i.file)), i.file)).raster),
  );
}

describe('tfjs executor: the real MobileNetV2-int8 float path', () => {
  it('pooled, spatial, s8/s16/s32 taps and logits on 8 real tiles match onnxruntime-node’s float path (cosine ≥ 0.999999)', async () => {
    const entry = findBackbone('mobilenetv2-12-int8')!;
    const opts = {
      ...manifestLoadOptions(entry),
      ort: nodeBackend,
      device: 'cpu' as const,
      floatPath: 'fp32' as const,
    };
    const ort = await Backbone.load(MOBILENET, opts);
    const tf = await Backbone.load(MOBILENET, { ...opts, floatExecutor: 'tfjs' });
    try {
      expect(tf.info.floatExecutor).toBe('tfjs');
      expect(ort.info.floatExecutor).toBe('onnxruntime');
      // Same math, so the feature cache may share rows between the two executors.
      expect(tf.cacheId).toBe(ort.cacheId);
      const imgs = await tiles(8);
      const [a, b] = [await tf.extract(imgs, { batchSize: 4 }), await ort.extract(imgs, { batchSize: 4 })];
      for (let i = 0; i < imgs.length; i++) {
        expect(cosine(a.pooled[i], b.pooled[i])).toBeGreaterThanOrEqual(0.999999);
        expect(relMax(a.pooled[i], b.pooled[i])).toBeLessThanOrEqual(1e-4);
        expect(a.spatial[i].dims).toEqual(b.spatial[i].dims);
        expect(cosine(a.spatial[i].data, b.spatial[i].data)).toBeGreaterThanOrEqual(0.999999);
        expect(relMax(a.spatial[i].data, b.spatial[i].data)).toBeLessThanOrEqual(1e-4);
      }
      const [ta, tb] = [await tf.extractTaps(imgs.slice(0, 2)), await ort.extractTaps(imgs.slice(0, 2))];
      for (let i = 0; i < 2; i++)
        for (const t of ['s8', 's16', 's32']) {
          expect(ta[i].maps[t].dims, t).toEqual(tb[i].maps[t].dims);
          expect(cosine(ta[i].maps[t].data, tb[i].maps[t].data), t).toBeGreaterThanOrEqual(0.999999);
        }
      const [la, lb] = [await tf.logits(imgs.slice(0, 2)), await ort.logits(imgs.slice(0, 2))];
      for (let i = 0; i < 2; i++) {
        expect(relMax(la[i], lb[i])).toBeLessThanOrEqual(1e-4);
        // Same ImageNet class on top.
        expect(la[i].indexOf(Math.max(...la[i]))).toBe(lb[i].indexOf(Math.max(...lb[i])));
      }
    } finally {
      await tf.release();
      await ort.release();
    }
  }, 300_000);

  it('"auto" on WASM times the int8 graph and both float executors, keeps the fastest, and loads a stored tfjs pick', async () => {
    const saved: FloatPathMeasurement[] = [];
    const store = {
      saved,
      async load(key: string) {
        return saved.find((m) => m.key === key);
      },
      async save(m: FloatPathMeasurement) {
        const i = saved.findIndex((s) => s.key === m.key);
        if (i >= 0) saved[i] = m;
        else saved.push(m);
      },
    };
    const web = new FeaturesEngine({ ort: { ...nodeBackend, flavour: 'web' }, floatPathStore: store });
    const a = await web.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes: MOBILENET, device: 'wasm' });
    expect(saved).toHaveLength(1);
    const m = saved[0];
    expect(m.int8Ms).toBeGreaterThan(0);
    expect(m.floatMs).toBeGreaterThan(0);
    expect(m.floatTfMs).toBeGreaterThan(0);
    const fastest = Math.min(m.int8Ms!, m.floatMs!, m.floatTfMs!);
    const expected = fastest === m.int8Ms ? 'off' : 'fp32';
    expect(a.floatPath).toBe(expected);
    if (expected === 'fp32') expect(a.floatExecutor).toBe(fastest === m.floatTfMs ? 'tfjs' : 'onnxruntime');
    expect(a.floatPathReason).toMatch(
      /^auto: measured: float path \(fp32(, tfjs XNNPACK)?\) .* ms .* vs int8 /,
    );
    // A stored measurement where the tfjs executor wins is reused and loads that executor.
    saved[0] = { ...m, int8Ms: 100, floatMs: 50, floatTfMs: 10 };
    const b = await web.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes: MOBILENET, device: 'wasm' });
    expect(saved).toHaveLength(1);
    expect(b.floatPath).toBe('fp32');
    expect(b.floatExecutor).toBe('tfjs');
    expect(b.floatPathReason).toMatch(
      /tfjs XNNPACK\) 10\.0 ms .*10\.0× faster; onnxruntime ran it in 50\.0 ms/,
    );
    // One measured before the tfjs executor existed is taken again.
    const { floatTfMs: _drop, ...old } = m;
    void _drop;
    saved[0] = old;
    await web.loadBackbone({ manifestId: 'mobilenetv2-12-int8', bytes: MOBILENET, device: 'wasm' });
    expect(saved[0].floatTfMs).toBeGreaterThan(0);
    await web.releaseBackbone();
  }, 300_000);
});

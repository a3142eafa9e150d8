/**
 * The float path for quantized classifiers: a load-time graph rewrite (onnx-proto, bytes in, bytes out, nothing
 * stored) of a static int8 QLinear* / QDQ graph into float ops on dequantized weights, and optionally fp16.
 *
 * Why: onnxruntime-web's WASM build runs the QLinear* kernels of the real MobileNetV2-int8 at a tenth of
 * onnxruntime-node's speed (bench/README.md, issue 16), while its float Conv kernels (SIMD, threads) are within
 * a few times of Node; and the JSEP WebGPU `DequantizeLinear` is wrong on SwiftShader, so an int8 graph cannot
 * use WebGPU there at all. A float graph has neither problem.
 *
 * The rewrite (each quantized value `q` gets a float twin `q__float`):
 * - `QLinearConv` / `QLinearMatMul` / `QLinearAdd` / `QLinearMul` / `QLinearGlobalAveragePool` /
 *   `QLinearAveragePool` / `QLinearSigmoid` / `QLinearLeakyRelu` / `QLinearConcat` become their float op on the
 *   float twins (constant weights dequantized per channel, an int32 conv bias times `x_scale · w_scale[c]`),
 *   followed by a `Clip` to the range the op's int8/uint8 output could represent: the quantized model saturates
 *   there (a uint8 output with zero point 0 *is* its ReLU), so dropping the Clip would change the network, not
 *   only its rounding;
 * - `QuantizeLinear` becomes that Clip; `DequantizeLinear` of a value with a float twin becomes `Identity` (its
 *   output name stays, so feature taps and graph outputs that dequantize a tensor keep their names), of a
 *   constant becomes a float initializer (QDQ weights);
 * - any other node reading a quantized value (a Reshape of the pooled codes) reads the float twin instead.
 * Activations are not re-rounded, so the float graph is the int8 graph without its rounding: on real magnetic
 * tiles the pooled features agree at cosine ≈ 0.95 (tests/unit/float-path.test.ts states the bounds).
 *
 * `toFloat16` then stores every float tensor as fp16 with float32 graph inputs/outputs (Casts at the edge), for
 * WebGPU adapters with `shader-f16` (`chooseFloatPrecision`: never on WASM, never without the feature).
 *
 * One rewrite serves both users: the app rewrites a graph already in memory (a backbone of a few MB: the default
 * `RewriteTensors`), and the bundle tool (`models/bundle/quantize.ts`, which may import `src/` where product code
 * may not import `models/`) passes its own `RewriteTensors`, which reads weights from external data and makes
 * the float ones lazily, one tensor at a time, when it writes the bundle.
 */
import onnxProto from 'onnx-proto';
import { DefectLabError } from '../core/errors.ts';
import { floatToHalf } from '../core/tensor.ts';

const { onnx } = onnxProto;
type ModelProtoT = InstanceType<typeof onnx.ModelProto>;
type NodeProtoT = onnxProto.onnx.INodeProto;
type TensorProtoT = onnxProto.onnx.ITensorProto;

const FLOAT = 1;
const UINT8 = 2;
const INT8 = 3;
const INT32 = 6;
const INT64 = 7;
const FLOAT16 = 10;
const DOUBLE = 11;

/** Precision of a float path: fp32 everywhere, fp16 where WebGPU has `shader-f16`. */
export type FloatPrecision = 'fp32' | 'fp16';

/**
 * 'none': activations stay unrounded (the fastest float graph); 'int8': every quantized activation is rounded to
 * its int8 grid in float (`round(x / scale) · scale`, three cheap element-wise ops per layer), so the float graph
 * reproduces the int8 graph's values up to ties and fp32 summation order.
 */
export type FloatRounding = 'none' | 'int8';

/** Ops that make a graph quantized (static QLinear/QDQ ones are rewritten; dynamic ones are refused). */
export const QUANTIZED_OP_TYPES: ReadonlySet<string> = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'QLinearConv',
  'QLinearMatMul',
  'QLinearAdd',
  'QLinearMul',
  'QLinearGlobalAveragePool',
  'QLinearAveragePool',
  'QLinearSigmoid',
  'QLinearLeakyRelu',
  'QLinearConcat',
  'MatMulInteger',
  'ConvInteger',
  'DynamicQuantizeLinear',
]);

/** The quantized ops the rewrite turns into float ones (the dynamic ones it refuses). */
export const REWRITTEN_OP_TYPES: ReadonlySet<string> = new Set(
  [...QUANTIZED_OP_TYPES].filter((op) => !/Integer|Dynamic/.test(op)),
);
const REWRITTEN = REWRITTEN_OP_TYPES;

/** A graph the float path cannot rewrite (dynamic quantization, quantization parameters computed at run time). */
export class FloatPathError extends DefectLabError {
  /** The problem without the model's name (callers with their own error class reword it). */
  readonly problem: string;
  constructor(name: string, problem: string, fix: string) {
    super('FloatPathError', `${name}: ${problem}`, fix);
    this.problem = problem;
  }
}

/**
 * Where the rewrite reads constants and puts the float ones it makes (element types are ONNX `TensorProto`
 * codes: 1 float, 2 uint8, 3 int8, 6 int32).
 */
export interface RewriteTensors {
  /** Element type and dims of the constant initializer `name`; null when `name` is not a constant. */
  info(name: string): { dataType: number; dims: number[] } | null;
  /** Values of an integer constant (int8, uint8, int32). */
  ints(name: string): ArrayLike<number>;
  /** Values of a float constant. */
  floats(name: string): Float32Array;
  /** Adds a float32 initializer; `values` may run now or later (the bundle tool runs it when writing). */
  addFloat(name: string, dims: number[], values: () => Float32Array): void;
  /** Called once the nodes are rewritten: drop the initializers no node reads any more. */
  finish(): void;
}

/** The rewrite's tensors for a decoded model whose initializers hold their bytes (what the app loads). */
function memoryTensors(model: ModelProtoT, name: string): RewriteTensors {
  const g = model.graph!;
  const inits = new Map<string, TensorProtoT>((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const t of inits.values())
    if (t.externalData?.length && numOf(t.dataType) !== FLOAT)
      throw new FloatPathError(
        name,
        `the quantized initializer ${t.name} lives in external data`,
        'run this model as it is (float path off), or prepare a float bundle with npm run models -- prepare',
      );
  const added: TensorProtoT[] = [];
  const get = (v: string) => {
    const t = inits.get(v);
    if (!t) throw new Error(`${v} is not an initializer`);
    return t;
  };
  return {
    info: (v) => {
      const t = inits.get(v);
      return t ? { dataType: numOf(t.dataType), dims: dimsOf(t) } : null;
    },
    ints: (v) => intValues(get(v)),
    floats: (v) => floatValues(get(v)),
    addFloat(tname, dims, values) {
      const f = values();
      const t = onnx.TensorProto.create({
        name: tname,
        dataType: FLOAT,
        dims,
        rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength),
      });
      inits.set(tname, t);
      added.push(t);
    },
    finish() {
      g.initializer = [...(g.initializer ?? []), ...added];
      pruneUnused(model);
    },
  };
}

/** Whether the op list (`inspectOnnx(...).ops` or the graph's) has any quantized op. */
export function isQuantizedOps(ops: Iterable<string>): boolean {
  for (const op of ops) if (QUANTIZED_OP_TYPES.has(op)) return true;
  return false;
}

/** What the rewrite did. */
export interface FloatPathReport {
  /** Rewritten nodes by op type ({} for a graph that was float already). */
  rewritten: Record<string, number>;
  /** Quantized value → its float twin (for taps that name an int8 tensor). */
  floatOf: Record<string, string>;
  precision: FloatPrecision;
  rounding: FloatRounding;
  /** Float tensors stored as fp16 (fp16 only). */
  halfInitializers: number;
}

function numOf(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function dimsOf(t: TensorProtoT): number[] {
  return (t.dims ?? []).map(numOf);
}

function count(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** An initializer's values, as its element type reads them. */
export type InitializerValues = Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array | number[];

/**
 * The one reader of ONNX initializers (the float path here, the tfjs executor in `onnx-tf.ts`): float32, float64,
 * int8, uint8, int32 and int64 (as numbers), from `rawData` or the typed field. Raw bytes are copied first:
 * aligned, and never a view of the Buffer protobufjs hands out in Node. Null for any other element type, so each
 * caller names the refusal in its own terms.
 */
export function initializerValues(t: TensorProtoT): InitializerValues | null {
  const dt = numOf(t.dataType);
  const raw = t.rawData && t.rawData.length ? Uint8Array.from(t.rawData) : null;
  const ints = () => (t.int32Data ?? []).map(numOf);
  if (dt === FLOAT) return raw ? new Float32Array(raw.buffer) : Float32Array.from(t.floatData ?? []);
  if (dt === UINT8) return raw ?? Uint8Array.from(ints());
  if (dt === INT8) return raw ? new Int8Array(raw.buffer) : Int8Array.from(ints());
  if (dt === INT32) return raw ? new Int32Array(raw.buffer) : Int32Array.from(ints());
  if (dt === INT64)
    return raw ? Array.from(new BigInt64Array(raw.buffer), Number) : (t.int64Data ?? []).map(numOf);
  if (dt === DOUBLE) return raw ? new Float64Array(raw.buffer) : Float64Array.from(t.doubleData ?? []);
  return null;
}

/** Integer values of an int8 / uint8 / int32 initializer. */
function intValues(t: TensorProtoT): ArrayLike<number> {
  const dt = numOf(t.dataType);
  const v = dt === INT8 || dt === UINT8 || dt === INT32 ? initializerValues(t) : null;
  if (!v) throw new Error(`element type ${dt} is not an integer type the float path reads`);
  return v;
}

function floatValues(t: TensorProtoT): Float32Array {
  const v = initializerValues(t);
  if (!(v instanceof Float32Array))
    throw new Error(`element type ${numOf(t.dataType)} is not the float32 the float path reads`);
  return v;
}

function attrInt(n: NodeProtoT, name: string, dflt: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.i != null ? numOf(a.i) : dflt;
}

function attrFloat(n: NodeProtoT, name: string, dflt: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.f != null ? a.f : dflt;
}

function opsetOf(model: ModelProtoT): number {
  const o = (model.opsetImport ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
  return o ? numOf(o.version) : 1;
}

/**
 * Rewrites a decoded model in place (see the header); a graph without quantized ops is left as it is. Throws
 * `FloatPathError` for what it cannot rewrite, before changing anything.
 */
export function dequantizeModel(
  model: ModelProtoT,
  name = 'model',
  o: { rounding?: FloatRounding; tensors?: RewriteTensors } = {},
): FloatPathReport {
  const rounding = o.rounding ?? 'none';
  const report: FloatPathReport = {
    rewritten: {},
    floatOf: {},
    precision: 'fp32',
    rounding,
    halfInitializers: 0,
  };
  const g = model.graph;
  if (!g?.node?.length) return report;
  const ops = g.node.map((n) => n.opType ?? '');
  if (!isQuantizedOps(ops)) return report;
  const refused = [...new Set(ops.filter((op) => QUANTIZED_OP_TYPES.has(op) && !REWRITTEN.has(op)))];
  if (refused.length)
    throw new FloatPathError(
      name,
      `the float path cannot rewrite ${refused.join(', ')} (dynamic quantization); it rewrites ${[...REWRITTEN].join(', ')}`,
      'run this model as it is (float path off), or pick its float export',
    );
  const tensors = o.tensors ?? memoryTensors(model, name);
  const constOf = (v: string, what: string): { dataType: number; dims: number[] } => {
    const t = tensors.info(v);
    if (!t)
      throw new FloatPathError(
        name,
        `${what} ${v} is not a constant (quantization parameters computed at run time)`,
        'run this model as it is (float path off): only static QLinear/QDQ graphs have a float path',
      );
    return t;
  };
  const scalarF = (v: string) => {
    constOf(v, 'the scale');
    return tensors.floats(v)[0];
  };
  const qRange = (scale: string, zp: string | undefined): [number, number] => {
    const s = scalarF(scale);
    const z = zp ? constOf(zp, 'the zero point') : undefined;
    const zv = z && zp ? (tensors.ints(zp)[0] ?? 0) : 0;
    const [lo, hi] = z && z.dataType === INT8 ? [-128, 127] : [0, 255];
    return [(lo - zv) * s, (hi - zv) * s];
  };
  const madeFloat = new Set<string>();
  const floatInit = (tname: string, dims: number[], values: () => Float32Array): string => {
    tensors.addFloat(tname, dims, values);
    madeFloat.add(tname);
    return tname;
  };
  let counter = 0;
  const scalar = (v: number) =>
    floatInit(`${name}__fp_const_${counter++}`.replace(/\W/g, '_'), [], () => Float32Array.of(v));
  /** `(q − zp) · scale` of a constant, per channel along `axis` when the scale is a vector. */
  const dequantConst = (q: string, scale: string, zp: string | undefined, axis: number): string => {
    const out = `${q}__float`;
    if (madeFloat.has(out)) return out;
    const dims = constOf(q, 'the quantized input').dims;
    constOf(scale, 'the scale');
    if (zp) constOf(zp, 'the zero point');
    return floatInit(out, dims, () => {
      const qv = tensors.ints(q);
      const sv = tensors.floats(scale);
      const zv = zp ? tensors.ints(zp) : [0];
      const ax = axis < 0 ? axis + dims.length : axis;
      const inner = sv.length > 1 ? count(dims.slice(ax + 1)) : qv.length;
      const values = new Float32Array(qv.length);
      for (let i = 0; i < qv.length; i++) {
        const c = sv.length > 1 ? Math.floor(i / inner) % sv.length : 0;
        values[i] = (qv[i] - (zv[zv.length > 1 ? c : 0] ?? 0)) * sv[c];
      }
      return values;
    });
  };
  const opset = opsetOf(model);
  const out: NodeProtoT[] = [];
  const shadow = new Map<string, string>();
  const node = (opType: string, input: string[], output: string[], attribute: NodeProtoT['attribute'] = []) =>
    onnx.NodeProto.create({ opType, input, output, attribute, name: `${output[0]}__node` });
  /** y_float = clip(x, range of (scale, zp)). */
  const clip = (x: string, scale: string, zp: string | undefined, y: string) => {
    const [lo, hi] = qRange(scale, zp);
    if (rounding === 'int8' && opset >= 11) {
      // round(x / s) · s: the int8 graph's requantization (zero points are integers, so they cancel).
      out.push(node('Div', [x, scale], [`${y}__steps`]));
      out.push(node('Round', [`${y}__steps`], [`${y}__rounded`]));
      out.push(node('Mul', [`${y}__rounded`, scale], [`${y}__grid`]));
      x = `${y}__grid`;
    }
    if (opset >= 11) out.push(node('Clip', [x, scalar(lo), scalar(hi)], [y]));
    else
      out.push(
        node(
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
  const fl = (q: string, scale: string, zp: string | undefined, axis = 0): string =>
    shadow.get(q) ?? dequantConst(q, scale, zp, axis);
  /** Float op `op` on float inputs, clipped to the quantized output's range, as the twin of `y`. */
  const floatOp = (
    op: string,
    ins: string[],
    y: string,
    yScale: string,
    yZp: string | undefined,
    attribute: NodeProtoT['attribute'] = [],
  ) => {
    const tmp = `${y}__${op.toLowerCase()}`;
    out.push(node(op, ins, [tmp], attribute));
    clip(tmp, yScale, yZp, `${y}__float`);
    shadow.set(y, `${y}__float`);
  };
  const keepAttrs = (n: NodeProtoT, drop: string[] = []) =>
    (n.attribute ?? []).filter((a) => !drop.includes(a.name ?? ''));
  for (const n of g.node) {
    const op = n.opType ?? '';
    const i = n.input ?? [];
    const y = n.output?.[0] ?? '';
    switch (op) {
      case 'QuantizeLinear':
        clip(shadow.get(i[0]) ?? i[0], i[1], i[2], `${y}__float`);
        shadow.set(y, `${y}__float`);
        break;
      case 'DequantizeLinear': {
        const twin = shadow.get(i[0]);
        if (twin) out.push(node('Identity', [twin], [y]));
        else {
          const c = dequantConst(i[0], i[1], i[2], attrInt(n, 'axis', 1));
          out.push(node('Identity', [c], [y]));
        }
        break;
      }
      case 'QLinearConv': {
        const ins = [fl(i[0], i[1], i[2]), fl(i[3], i[4], i[5], 0)];
        if (i[8]) {
          // An int32 bias on the scale x_scale · w_scale (per output channel).
          const bias = i[8];
          const dims = constOf(bias, 'the bias').dims;
          const x0 = scalarF(i[1]);
          constOf(i[4], 'the weight scale');
          const wScale = i[4];
          ins.push(
            floatInit(`${bias}__float`, dims, () => {
              const ws = tensors.floats(wScale);
              return Float32Array.from(tensors.ints(bias), (v, c) => v * x0 * ws[ws.length > 1 ? c : 0]);
            }),
          );
        }
        floatOp('Conv', ins, y, i[6], i[7], keepAttrs(n));
        break;
      }
      case 'QLinearMatMul':
        floatOp('MatMul', [fl(i[0], i[1], i[2]), fl(i[3], i[4], i[5], 1)], y, i[6], i[7]);
        break;
      case 'QLinearAdd':
      case 'QLinearMul':
        floatOp(
          op === 'QLinearAdd' ? 'Add' : 'Mul',
          [fl(i[0], i[1], i[2]), fl(i[3], i[4], i[5])],
          y,
          i[6],
          i[7],
        );
        break;
      case 'QLinearGlobalAveragePool':
      case 'QLinearAveragePool': {
        if (attrInt(n, 'channels_last', 0))
          throw new FloatPathError(name, `${op} with channels_last=1`, 'export the model NCHW');
        floatOp(
          op === 'QLinearGlobalAveragePool' ? 'GlobalAveragePool' : 'AveragePool',
          [fl(i[0], i[1], i[2])],
          y,
          i[3],
          i[4],
          keepAttrs(n, ['channels_last']),
        );
        break;
      }
      case 'QLinearSigmoid':
        floatOp('Sigmoid', [fl(i[0], i[1], i[2])], y, i[3], i[4]);
        break;
      case 'QLinearLeakyRelu':
        floatOp('LeakyRelu', [fl(i[0], i[1], i[2])], y, i[3], i[4], [
          onnx.AttributeProto.create({ name: 'alpha', type: 1, f: attrFloat(n, 'alpha', 0.01) }),
        ]);
        break;
      case 'QLinearConcat': {
        // [y_scale, y_zero_point, (x, x_scale, x_zero_point)…]
        const xs: string[] = [];
        for (let k = 2; k + 2 < i.length; k += 3) xs.push(fl(i[k], i[k + 1], i[k + 2]));
        floatOp('Concat', xs, y, i[0], i[1], keepAttrs(n));
        break;
      }
      default: {
        // A float op on quantized values (a Reshape of the pooled codes) runs on their float twins.
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
    report.rewritten[op] = (report.rewritten[op] ?? 0) + 1;
  }
  // A graph output that was a quantized value is now its float twin, under its own name.
  for (const o of g.output ?? []) {
    const s = shadow.get(o.name ?? '');
    if (!s) continue;
    out.push(node('Identity', [s], [o.name ?? '']));
    if (o.type?.tensorType) o.type.tensorType.elemType = FLOAT;
  }
  g.node = out;
  // Stored shapes/types of quantized intermediates are stale; onnxruntime infers them again.
  g.valueInfo = [];
  tensors.finish();
  report.floatOf = Object.fromEntries(shadow);
  return report;
}

/** Drops initializers no node reads any more (the int8 codes and their scales). */
function pruneUnused(model: ModelProtoT): void {
  const g = model.graph!;
  const used = new Set<string>();
  for (const n of g.node ?? []) for (const v of n.input ?? []) used.add(v);
  for (const o of g.output ?? []) used.add(o.name ?? '');
  g.initializer = (g.initializer ?? []).filter((t) => used.has(t.name ?? ''));
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  // Initializers listed as graph inputs (old exports) go with them.
  g.input = (g.input ?? []).filter((v) => !inits.has(v.name) || used.has(v.name ?? ''));
}

/**
 * A float graph → fp16 storage and compute, float32 at the edges: every float initializer becomes fp16, each
 * float graph input is cast to fp16 where it enters and each float output cast back to float32 where it leaves,
 * `Cast(to=float)` and float `Constant`s follow. For the graphs the float path makes (Conv, Clip, Add, pools,
 * MatMul, shape ops); opset-19+ ops typed float32 by the spec (Resize scales) are not expected there.
 */
export function toFloat16(model: ModelProtoT): number {
  const g = model.graph;
  if (!g) return 0;
  let converted = 0;
  for (const t of g.initializer ?? []) {
    if (numOf(t.dataType) !== FLOAT) continue;
    const f = floatValues(t);
    const h = Uint16Array.from(f, floatToHalf);
    t.dataType = FLOAT16;
    t.rawData = new Uint8Array(h.buffer);
    t.floatData = [];
    converted++;
  }
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const head: NodeProtoT[] = [];
  for (const inp of g.input ?? []) {
    if (inits.has(inp.name) || inp.type?.tensorType?.elemType !== FLOAT) continue;
    const half = `${inp.name}__fp16`;
    for (const n of g.node ?? []) n.input = (n.input ?? []).map((v) => (v === inp.name ? half : v));
    head.push(
      onnx.NodeProto.create({
        opType: 'Cast',
        input: [inp.name!],
        output: [half],
        name: `${half}__cast`,
        attribute: [onnx.AttributeProto.create({ name: 'to', type: 2, i: FLOAT16 })],
      }),
    );
  }
  const tail: NodeProtoT[] = [];
  for (const o of g.output ?? []) {
    if (o.type?.tensorType?.elemType !== FLOAT) continue;
    const half = `${o.name}__fp16`;
    for (const n of g.node ?? []) {
      n.output = (n.output ?? []).map((v) => (v === o.name ? half : v));
      n.input = (n.input ?? []).map((v) => (v === o.name ? half : v));
    }
    tail.push(
      onnx.NodeProto.create({
        opType: 'Cast',
        input: [half],
        output: [o.name!],
        name: `${o.name}__cast`,
        attribute: [onnx.AttributeProto.create({ name: 'to', type: 2, i: FLOAT })],
      }),
    );
  }
  for (const n of g.node ?? []) {
    if (n.opType === 'Cast')
      for (const a of n.attribute ?? []) if (a.name === 'to' && numOf(a.i) === FLOAT) a.i = FLOAT16;
    if (n.opType === 'Constant')
      for (const a of n.attribute ?? [])
        if (a.t && numOf(a.t.dataType) === FLOAT) {
          a.t.rawData = new Uint8Array(Uint16Array.from(floatValues(a.t), floatToHalf).buffer);
          a.t.floatData = [];
          a.t.dataType = FLOAT16;
        }
  }
  g.node = [...head, ...(g.node ?? []), ...tail];
  g.valueInfo = [];
  return converted;
}

/**
 * The float path of a model's bytes: `dequantizeModel`, then `toFloat16` for 'fp16'. Pure (bytes in, bytes
 * out), so it runs in Node, a worker or the page.
 */
export function floatPath(
  bytes: Uint8Array,
  precision: FloatPrecision = 'fp32',
  name = 'model',
  rounding: FloatRounding = 'none',
): { bytes: Uint8Array; report: FloatPathReport } {
  let model: ModelProtoT;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new FloatPathError(name, `is not an ONNX model (${(e as Error).message})`, 'pick an .onnx file');
  }
  const report = dequantizeModel(model, name, { rounding });
  if (precision === 'fp16') {
    report.halfInitializers = toFloat16(model);
    report.precision = 'fp16';
  }
  return { bytes: onnx.ModelProto.encode(model).finish(), report };
}

/**
 * Which float precision a float path should use on a backend: fp16 only on WebGPU whose adapter has
 * `shader-f16` (capability detection; SwiftShader has none), fp32 otherwise (WASM has no fp16 arithmetic:
 * onnxruntime would cast around every node).
 */
export function chooseFloatPrecision(
  backend: string,
  shaderF16: boolean,
): { precision: FloatPrecision; reason: string } {
  if (backend === 'webgpu' && shaderF16)
    return { precision: 'fp16', reason: 'fp16: the WebGPU adapter has shader-f16' };
  return {
    precision: 'fp32',
    reason:
      backend === 'webgpu'
        ? 'fp32: the WebGPU adapter has no shader-f16'
        : `fp32: ${backend} has no fp16 arithmetic`,
  };
}

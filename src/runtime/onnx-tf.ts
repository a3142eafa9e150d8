/**
 * A second executor for float backbone graphs: the ONNX graph run op by op as tfjs kernels on tfjs-backend-wasm,
 * whose Conv / depthwise Conv are XNNPACK's (NHWC, bias and ReLU/ReLU6 fused). It implements `SessionLike`, so a
 * `Backbone` runs on it exactly as on an onnxruntime session.
 *
 * Why write one: on this repo's 2-core bench host onnxruntime-web's float Conv kernels (MLAS, NCHW, SIMD128) run
 * the dequantized MobileNetV2 about 1.5× slower than XNNPACK does through tfjs on the same WASM SIMD + threads
 * (bench/README.md, issue 16), and no onnxruntime-web setting closes that gap. tfjs has no ONNX importer, and the
 * backbones the app runs use a small op set, so this covers that set and refuses anything else by name
 * (`OnnxTfUnsupportedError`), which makes "auto" skip the candidate rather than run a wrong graph.
 *
 * Layout: 4-D activations live as NHWC (what XNNPACK wants); the input is transposed once on the way in and every
 * requested 4-D output once on the way out, so callers see ONNX's NCHW. Shape arithmetic (Shape → Gather →
 * Unsqueeze → Concat → Reshape, as PyTorch exports write a flatten) runs on the host in NCHW terms.
 *
 * Op set: Conv (groups 1 or depthwise), Clip, Relu, Sigmoid, Add, Sub, Mul, Div, GlobalAveragePool,
 * AveragePool / MaxPool (no ceil mode), Identity, Flatten, Reshape, MatMul, Gemm, Concat, Shape, Gather,
 * Unsqueeze.
 */
import onnxProto from 'onnx-proto';
import { DefectLabError } from '../core/errors.ts';
import type { SessionLike, TensorLike, ValueInfo } from '../core/tensor.ts';
import { initializerValues } from './dequantize.ts';
import { initTf, tf, tfWasmThreads } from './tf.ts';
import { withCores } from './threads.ts';

const { onnx } = onnxProto;
type NodeProtoT = onnxProto.onnx.INodeProto;
type TensorProtoT = onnxProto.onnx.ITensorProto;

/** The op types this executor runs. */
export const ONNX_TF_OPS: ReadonlySet<string> = new Set([
  'Conv',
  'Clip',
  'Relu',
  'Sigmoid',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'GlobalAveragePool',
  'AveragePool',
  'MaxPool',
  'Identity',
  'Flatten',
  'Reshape',
  'MatMul',
  'Gemm',
  'Concat',
  'Shape',
  'Gather',
  'Unsqueeze',
]);

export class OnnxTfUnsupportedError extends DefectLabError {
  constructor(model: string, what: string) {
    super(
      'OnnxTfUnsupportedError',
      `${model}: the tfjs executor cannot run ${what}`,
      'run it on onnxruntime (float path executor "onnxruntime", or "auto", which skips this executor)',
    );
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

function attr(n: NodeProtoT, name: string) {
  return (n.attribute ?? []).find((a) => a.name === name);
}
function attrInt(n: NodeProtoT, name: string, d: number): number {
  const a = attr(n, name);
  return a && a.i != null ? num(a.i) : d;
}
function attrInts(n: NodeProtoT, name: string): number[] | undefined {
  const a = attr(n, name);
  return a?.ints?.length ? a.ints.map(num) : undefined;
}
function attrFloat(n: NodeProtoT, name: string, d: number): number {
  const a = attr(n, name);
  return a && a.f != null ? a.f : d;
}
function attrString(n: NodeProtoT, name: string): string | undefined {
  const a = attr(n, name);
  return a?.s?.length ? new TextDecoder().decode(a.s) : undefined;
}

/** A constant's values (float32 as it is, other types as numbers), read by the float path's one reader. */
function constValues(t: TensorProtoT, model: string): { values: Float32Array | number[]; dims: number[] } {
  if (t.externalData?.length)
    throw new OnnxTfUnsupportedError(model, `the initializer ${t.name} in external data`);
  const v = initializerValues(t);
  if (!v)
    throw new OnnxTfUnsupportedError(model, `the initializer ${t.name} of element type ${num(t.dataType)}`);
  return { values: v instanceof Float32Array ? v : Array.from(v), dims: (t.dims ?? []).map(num) };
}

/** Float constants at most this long also keep host values (Clip bounds, scalars read while planning). */
const HOST_FLOATS_MAX = 64;

/** A value during a run: a tfjs tensor (NHWC when 4-D) or a host array (shape arithmetic, constants). */
type Val =
  { kind: 'tensor'; t: tf.Tensor; nhwc: boolean } | { kind: 'host'; values: number[]; dims: number[] };

interface ConvPlan {
  filter: tf.Tensor4D;
  bias?: tf.Tensor1D;
  depthwise: boolean;
  strides: [number, number];
  dilations: [number, number];
  /** Symmetric padding as a number, or explicit padding applied with `tf.pad` before a 'valid' conv. */
  pad: number | [[number, number], [number, number]];
}

export class OnnxTfSession implements SessionLike {
  readonly backend = 'wasm';
  readonly executor = 'tfjs-wasm (XNNPACK)';
  readonly fallbackReason = '';
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  private readonly nodes: NodeProtoT[];
  private readonly producer = new Map<string, number>();
  private readonly host = new Map<string, { values: number[]; dims: number[] }>();
  private readonly consts = new Map<string, tf.Tensor>();
  private readonly constSet = new Set<tf.Tensor>();
  private readonly convs = new Map<number, ConvPlan>();
  private readonly plans = new Map<string, { order: number[]; fused: Map<number, 'relu' | 'relu6'> }>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    bytes: Uint8Array,
    private readonly name: string,
  ) {
    const m = onnx.ModelProto.decode(bytes);
    const g = m.graph!;
    this.nodes = g.node ?? [];
    const unsupported = [...new Set(this.nodes.map((n) => n.opType ?? ''))].filter(
      (o) => !ONNX_TF_OPS.has(o),
    );
    if (unsupported.length) throw new OnnxTfUnsupportedError(name, `the ops ${unsupported.join(', ')}`);
    const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
    const initNames = new Set(inits.keys());
    const info = (v: onnxProto.onnx.IValueInfoProto): ValueInfo => ({
      name: v.name ?? '',
      type: 'float32',
      shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) =>
        d.dimParam ? d.dimParam : d.dimValue != null ? num(d.dimValue) : -1,
      ),
    });
    this.inputs = (g.input ?? []).filter((v) => !initNames.has(v.name ?? '')).map(info);
    this.outputs = (g.output ?? []).map(info);
    this.inputNames = this.inputs.map((v) => v.name);
    this.outputNames = this.outputs.map((v) => v.name);
    for (const t of this.inputs)
      if (t.shape.length !== 4)
        throw new OnnxTfUnsupportedError(
          name,
          `the input ${t.name} of rank ${t.shape.length} (an NCHW image is)`,
        );
    this.nodes.forEach((n, i) => (n.output ?? []).forEach((o) => this.producer.set(o, i)));
    // Constants: a Conv's weights become XNNPACK filters; small integer ones stay on the host for shape
    // arithmetic; the rest become tensors in the layout their consumer needs (NCHW broadcasts turned NHWC).
    const convWeights = new Set<string>();
    this.nodes.forEach((n, i) => {
      if (n.opType !== 'Conv') return;
      const w = inits.get(n.input![1]);
      if (!w) throw new OnnxTfUnsupportedError(name, `Conv ${n.name} with weights that are not constant`);
      convWeights.add(n.input![1]);
      const b = n.input![2] ? inits.get(n.input![2]) : undefined;
      if (n.input![2] && !b)
        throw new OnnxTfUnsupportedError(name, `Conv ${n.name} with a bias that is not constant`);
      if (b) convWeights.add(n.input![2]);
      this.convs.set(i, this.convPlan(n, constValues(w, name), b && constValues(b, name)));
    });
    for (const [k, t] of inits) {
      if (convWeights.has(k)) continue;
      const c = constValues(t, name);
      const isFloat = c.values instanceof Float32Array;
      if (isFloat) {
        const ct = tf.tensor(c.values, c.dims.length ? c.dims : []);
        this.consts.set(k, ct);
        this.constSet.add(ct);
      }
      // Host values serve shape arithmetic and Clip bounds: integers, or a few floats. A large float weight (the
      // classifier's 1280×1000) lives only as its tensor; a host copy would double its memory in the worker.
      if (!isFloat || c.values.length <= HOST_FLOATS_MAX)
        this.host.set(k, { values: Array.from(c.values), dims: c.dims });
    }
  }

  /** Parses `bytes` (a float ONNX graph) and starts tfjs's WASM backend (threads as `threads.ts` plans). */
  static async create(bytes: Uint8Array, name = 'model'): Promise<OnnxTfSession> {
    const backend = await initTf('wasm');
    if (backend !== 'wasm')
      throw new OnnxTfUnsupportedError(name, `anything here: tfjs started ${backend}, not WASM`);
    return new OnnxTfSession(bytes, name);
  }

  private convPlan(
    n: NodeProtoT,
    w: { values: Float32Array | number[]; dims: number[] },
    b?: { values: Float32Array | number[]; dims: number[] },
  ): ConvPlan {
    const [o, ipg, kh, kw] = w.dims;
    if (w.dims.length !== 4) throw new OnnxTfUnsupportedError(this.name, `Conv ${n.name} that is not 2-D`);
    const group = attrInt(n, 'group', 1);
    const autoPad = attrString(n, 'auto_pad');
    if (autoPad && autoPad !== 'NOTSET')
      throw new OnnxTfUnsupportedError(this.name, `Conv ${n.name} with auto_pad ${autoPad}`);
    const depthwise = group > 1 && ipg === 1 && o === group;
    if (group > 1 && !depthwise)
      throw new OnnxTfUnsupportedError(
        this.name,
        `Conv ${n.name} with ${group} groups (only 1 or depthwise)`,
      );
    const src = Float32Array.from(w.values);
    // ONNX [O, I/g, kh, kw] → tfjs [kh, kw, I, O] (depthwise: [kh, kw, C, 1]).
    const filter = new Float32Array(src.length);
    const inC = depthwise ? o : ipg;
    const outC = depthwise ? 1 : o;
    for (let oc = 0; oc < o; oc++)
      for (let ic = 0; ic < ipg; ic++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++) {
            const s = ((oc * ipg + ic) * kh + y) * kw + x;
            const d = depthwise ? (y * kw + x) * inC + oc : ((y * kw + x) * inC + ic) * outC + oc;
            filter[d] = src[s];
          }
    const [pt, pl, pb, pr] = attrInts(n, 'pads') ?? [0, 0, 0, 0];
    const symmetric = pt === pb && pl === pr && pt === pl;
    const s = attrInts(n, 'strides') ?? [1, 1];
    const d = attrInts(n, 'dilations') ?? [1, 1];
    return {
      filter: tf.tensor4d(filter, [kh, kw, inC, outC]),
      bias: b ? tf.tensor1d(Float32Array.from(b.values)) : undefined,
      depthwise,
      strides: [s[0], s[1]],
      dilations: [d[0], d[1]],
      pad: symmetric
        ? pt
        : [
            [pt, pb],
            [pl, pr],
          ],
    };
  }

  /** Nodes needed for `outputs`, in graph order, and which Convs take the following Relu / Clip(0, 6) fused. */
  private plan(outputs: readonly string[]) {
    const key = outputs.join('\n');
    const cached = this.plans.get(key);
    if (cached) return cached;
    const need = new Set<number>();
    const stack = [...outputs];
    while (stack.length) {
      const v = stack.pop()!;
      const i = this.producer.get(v);
      if (i == null || need.has(i)) continue;
      need.add(i);
      for (const x of this.nodes[i].input ?? []) if (x) stack.push(x);
    }
    const order = [...need].sort((a, b) => a - b);
    const readers = new Map<string, number>();
    for (const i of order)
      for (const x of this.nodes[i].input ?? []) readers.set(x, (readers.get(x) ?? 0) + 1);
    const fused = new Map<number, 'relu' | 'relu6'>();
    for (const i of order) {
      const n = this.nodes[i];
      const act = this.activationOf(n);
      if (!act) continue;
      const src = this.producer.get(n.input![0]);
      if (src == null || this.nodes[src].opType !== 'Conv' || !need.has(src)) continue;
      const mid = n.input![0];
      if (readers.get(mid) !== 1 || outputs.includes(mid)) continue;
      fused.set(src, act);
      fused.set(i, act); // marks the activation node as folded into its Conv
    }
    const p = { order, fused };
    this.plans.set(key, p);
    return p;
  }

  private activationOf(n: NodeProtoT): 'relu' | 'relu6' | null {
    if (n.opType === 'Relu') return 'relu';
    if (n.opType !== 'Clip') return null;
    const [lo, hi] = this.clipRange(n);
    if (lo === 0 && hi === 6) return 'relu6';
    if (lo === 0 && hi === Infinity) return 'relu';
    return null;
  }

  private clipRange(n: NodeProtoT): [number, number] {
    const scalar = (v: string | undefined, d: number) => {
      if (!v) return d;
      const h = this.host.get(v);
      if (!h) throw new OnnxTfUnsupportedError(this.name, `Clip ${n.name} with a bound that is not constant`);
      return h.values[0];
    };
    if ((n.input ?? []).length > 1) return [scalar(n.input![1], -Infinity), scalar(n.input![2], Infinity)];
    return [attrFloat(n, 'min', -Infinity), attrFloat(n, 'max', Infinity)];
  }

  run(
    feeds: Record<string, TensorLike>,
    outputNames?: readonly string[],
  ): Promise<Record<string, TensorLike>> {
    // Holds the cores lock like an onnxruntime run (threads.ts): two workers never run two pools at once.
    const r = this.queue.then(async () =>
      withCores(await tfWasmThreads(), () => this.runNow(feeds, outputNames ?? this.outputNames)),
    );
    this.queue = r.catch(() => undefined);
    return r;
  }

  private async runNow(feeds: Record<string, TensorLike>, outputs: readonly string[]) {
    for (const o of outputs)
      if (!this.producer.has(o) && !(o in feeds))
        throw new OnnxTfUnsupportedError(this.name, `the output ${o}: no node writes it`);
    const { order, fused } = this.plan(outputs);
    const result = tf.tidy(() => {
      const vals = new Map<string, Val>();
      for (const [k, t] of Object.entries(feeds)) {
        if (t.type !== 'float32' || t.dims.length !== 4)
          throw new OnnxTfUnsupportedError(this.name, `the input ${k} (${t.type}, rank ${t.dims.length})`);
        const x = tf.tensor4d(t.data as Float32Array, t.dims as [number, number, number, number]);
        vals.set(k, { kind: 'tensor', t: tf.transpose(x, [0, 2, 3, 1]), nhwc: true });
      }
      // Readers left per tensor (names that alias one tensor, through Identity or a folded activation, add
      // up), so each activation is freed after its last use: peak memory of a few layers, not the network.
      const readers = new Map<string, number>();
      for (const i of order)
        for (const x of this.nodes[i].input ?? []) readers.set(x, (readers.get(x) ?? 0) + 1);
      const pending = new Map<tf.Tensor, number>();
      const hold = (name: string, v: Val) => {
        if (v.kind !== 'tensor' || this.constSet.has(v.t)) return;
        const extra = outputs.includes(name) ? Infinity : 0;
        pending.set(v.t, (pending.get(v.t) ?? 0) + (readers.get(name) ?? 0) + extra);
      };
      for (const [k, v] of vals) hold(k, v);
      for (const i of order) {
        const n = this.nodes[i];
        if (fused.has(i) && n.opType !== 'Conv') {
          const v = vals.get(n.input![0])!; // folded into its Conv
          vals.set(n.output![0], v);
          hold(n.output![0], v);
        } else {
          const out = this.exec(i, n, vals, fused.get(i));
          n.output!.forEach((o, k) => {
            vals.set(o, out[k]);
            hold(o, out[k]);
          });
        }
        for (const x of n.input ?? []) {
          const v = vals.get(x);
          if (!v || v.kind !== 'tensor' || !pending.has(v.t)) continue;
          const c = pending.get(v.t)! - 1;
          pending.set(v.t, c);
          if (c <= 0) {
            pending.delete(v.t);
            v.t.dispose();
          }
        }
      }
      return outputs.map((o) => {
        const v = vals.get(o);
        if (!v) throw new OnnxTfUnsupportedError(this.name, `the output ${o}`);
        if (v.kind === 'host') return tf.tensor(v.values, v.dims);
        return v.nhwc ? tf.transpose(v.t, [0, 3, 1, 2]) : tf.clone(v.t);
      });
    });
    try {
      const res: Record<string, TensorLike> = {};
      for (let k = 0; k < outputs.length; k++) {
        const t = result[k];
        res[outputs[k]] = { type: 'float32', data: (await t.data()) as Float32Array, dims: [...t.shape] };
      }
      return res;
    } finally {
      for (const t of result) t.dispose();
    }
  }

  /** One node; `act` is the activation folded into a Conv. */
  private exec(i: number, n: NodeProtoT, vals: Map<string, Val>, act?: 'relu' | 'relu6'): Val[] {
    const ins = n.input ?? [];
    const get = (k: number): Val => {
      const name = ins[k];
      const v = vals.get(name);
      if (v) return v;
      const c = this.consts.get(name);
      if (c) return { kind: 'tensor', t: c, nhwc: false };
      const h = this.host.get(name);
      if (h) return { kind: 'host', ...h };
      throw new OnnxTfUnsupportedError(this.name, `${n.opType} ${n.name}: its input ${name} is missing`);
    };
    const tensorNhwc = (k: number): tf.Tensor4D => {
      const v = get(k);
      if (v.kind !== 'tensor' || !v.nhwc)
        throw new OnnxTfUnsupportedError(
          this.name,
          `${n.opType} ${n.name} on a value that is not an image map`,
        );
      return v.t as tf.Tensor4D;
    };
    const t = (x: tf.Tensor, nhwc: boolean): Val[] => [{ kind: 'tensor', t: x, nhwc }];
    switch (n.opType) {
      case 'Conv': {
        const c = this.convs.get(i)!;
        let x = tensorNhwc(0);
        let pad: number | 'valid' = typeof c.pad === 'number' ? c.pad : 'valid';
        if (typeof c.pad !== 'number') {
          x = tf.pad(x, [[0, 0], c.pad[0], c.pad[1], [0, 0]]);
          pad = 'valid';
        }
        const args = {
          x,
          filter: c.filter,
          strides: c.strides,
          pad: pad === 0 ? ('valid' as const) : pad,
          dilations: c.dilations,
          bias: c.bias,
          activation: (act ?? 'linear') as 'relu' | 'relu6' | 'linear',
        };
        return t(c.depthwise ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args), true);
      }
      case 'Clip': {
        const [lo, hi] = this.clipRange(n);
        const v = this.asTensor(get(0), n);
        return t(tf.clipByValue(v.t, lo === -Infinity ? -3.4e38 : lo, hi === Infinity ? 3.4e38 : hi), v.nhwc);
      }
      case 'Relu': {
        const v = this.asTensor(get(0), n);
        return t(tf.relu(v.t), v.nhwc);
      }
      case 'Sigmoid': {
        const v = this.asTensor(get(0), n);
        return t(tf.sigmoid(v.t), v.nhwc);
      }
      case 'Identity':
        return [get(0)];
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const [a, b] = this.broadcastPair(get(0), get(1), n);
        const f = { Add: tf.add, Sub: tf.sub, Mul: tf.mul, Div: tf.div }[n.opType];
        return t(f(a.t, b.t), a.nhwc);
      }
      case 'GlobalAveragePool':
        return t(tf.mean(tensorNhwc(0), [1, 2], true), true);
      case 'AveragePool':
      case 'MaxPool': {
        if (attrInt(n, 'ceil_mode', 0))
          throw new OnnxTfUnsupportedError(this.name, `${n.opType} with ceil_mode`);
        const k = attrInts(n, 'kernel_shape')!;
        const s = attrInts(n, 'strides') ?? [1, 1];
        const [pt, pl, pb, pr] = attrInts(n, 'pads') ?? [0, 0, 0, 0];
        let x = tensorNhwc(0);
        if (pt || pl || pb || pr) {
          if (n.opType === 'AveragePool' && !attrInt(n, 'count_include_pad', 0))
            throw new OnnxTfUnsupportedError(
              this.name,
              `padded AveragePool ${n.name} without count_include_pad`,
            );
          const fill = n.opType === 'MaxPool' ? -3.4e38 : 0;
          x = tf.pad(
            x,
            [
              [0, 0],
              [pt, pb],
              [pl, pr],
              [0, 0],
            ],
            fill,
          );
        }
        const f = n.opType === 'MaxPool' ? tf.maxPool : tf.avgPool;
        return t(f(x, [k[0], k[1]], [s[0], s[1]], 'valid'), true);
      }
      case 'Flatten': {
        const x = this.nchw(get(0), n);
        const axis = attrInt(n, 'axis', 1);
        const sh = x.shape;
        const a = sh.slice(0, axis).reduce((p, q) => p * q, 1);
        return t(tf.reshape(x, [a, -1]), false);
      }
      case 'Reshape': {
        const x = this.nchw(get(0), n);
        const target = get(1);
        if (target.kind !== 'host')
          throw new OnnxTfUnsupportedError(this.name, `Reshape ${n.name} to a computed shape`);
        const shape = target.values.map((d, k) => (d === 0 ? x.shape[k] : d));
        return t(tf.reshape(x, shape), false);
      }
      case 'MatMul': {
        const a = this.nchw(get(0), n);
        const b = this.nchw(get(1), n);
        if (a.rank !== 2 || b.rank !== 2)
          throw new OnnxTfUnsupportedError(this.name, `MatMul ${n.name} above rank 2`);
        return t(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), false);
      }
      case 'Gemm': {
        const a = this.nchw(get(0), n) as tf.Tensor2D;
        const b = this.nchw(get(1), n) as tf.Tensor2D;
        let y = tf.matMul(a, b, attrInt(n, 'transA', 0) === 1, attrInt(n, 'transB', 0) === 1);
        const alpha = attrFloat(n, 'alpha', 1);
        if (alpha !== 1) y = tf.mul(y, alpha);
        if (ins[2]) y = tf.add(y, tf.mul(this.nchw(get(2), n), attrFloat(n, 'beta', 1)));
        return t(y, false);
      }
      case 'Concat': {
        const parts = ins.map((_, k) => get(k));
        const axis = attrInt(n, 'axis', 0);
        if (parts.every((p) => p.kind === 'host')) {
          const values = parts.flatMap((p) => (p as { values: number[] }).values);
          return [{ kind: 'host', values, dims: [values.length] }];
        }
        if (parts.every((p) => p.kind === 'tensor' && p.nhwc) && (axis === 1 || axis === -3))
          return t(
            tf.concat(
              parts.map((p) => (p as { t: tf.Tensor }).t),
              3,
            ),
            true,
          );
        const ts = parts.map((p) => this.nchw(p, n));
        return t(tf.concat(ts, axis), false);
      }
      case 'Shape': {
        const v = get(0);
        const dims =
          v.kind === 'host'
            ? v.dims
            : v.nhwc
              ? [v.t.shape[0], v.t.shape[3], v.t.shape[1], v.t.shape[2]]
              : v.t.shape;
        const values = dims.map((d) => d ?? -1);
        return [{ kind: 'host', values, dims: [values.length] }];
      }
      case 'Gather': {
        const data = get(0);
        const idx = get(1);
        if (
          data.kind !== 'host' ||
          idx.kind !== 'host' ||
          attrInt(n, 'axis', 0) !== 0 ||
          data.dims.length !== 1
        )
          throw new OnnxTfUnsupportedError(this.name, `Gather ${n.name} outside shape arithmetic`);
        const values = idx.values.map((j) => data.values[j < 0 ? j + data.values.length : j]);
        return [{ kind: 'host', values, dims: idx.dims }];
      }
      case 'Unsqueeze': {
        const v = get(0);
        if (v.kind !== 'host') throw new OnnxTfUnsupportedError(this.name, `Unsqueeze ${n.name} of a tensor`);
        return [{ kind: 'host', values: v.values, dims: v.dims.length ? [...v.dims, 1] : [1] }];
      }
      default:
        throw new OnnxTfUnsupportedError(this.name, `the op ${n.opType}`);
    }
  }

  private asTensor(v: Val, n: NodeProtoT): { t: tf.Tensor; nhwc: boolean } {
    if (v.kind === 'host') return { t: tf.tensor(v.values, v.dims), nhwc: false };
    if (!v.t) throw new OnnxTfUnsupportedError(this.name, `${n.opType} ${n.name}`);
    return v;
  }

  /** A value in ONNX's own layout (NCHW for 4-D maps). */
  private nchw(v: Val, n: NodeProtoT): tf.Tensor {
    const x = this.asTensor(v, n);
    return x.nhwc ? tf.transpose(x.t, [0, 3, 1, 2]) : x.t;
  }

  /**
   * Both operands of an element-wise op in one layout: when one is an NHWC map, the other (a constant or a
   * non-map) is read as an NCHW-broadcast shape, padded to rank 4 and moved to NHWC.
   */
  private broadcastPair(a: Val, b: Val, n: NodeProtoT): [{ t: tf.Tensor; nhwc: boolean }, { t: tf.Tensor }] {
    const x = this.asTensor(a, n);
    const y = this.asTensor(b, n);
    if (x.nhwc === y.nhwc) return [x, y];
    const toNhwc = (o: { t: tf.Tensor; nhwc: boolean }) => {
      if (o.nhwc) return o.t;
      if (o.t.rank > 4) throw new OnnxTfUnsupportedError(this.name, `${n.opType} ${n.name} above rank 4`);
      const sh = [...Array(4 - o.t.rank).fill(1), ...o.t.shape];
      return tf.transpose(tf.reshape(o.t, sh), [0, 2, 3, 1]);
    };
    return [{ t: toNhwc(x), nhwc: true }, { t: toNhwc(y) }];
  }

  async release(): Promise<void> {
    await this.queue.catch(() => undefined);
    for (const c of this.convs.values()) {
      c.filter.dispose();
      c.bias?.dispose();
    }
    for (const c of this.consts.values()) c.dispose();
    this.convs.clear();
    this.consts.clear();
  }
}

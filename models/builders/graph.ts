/**
 * Small helpers for building ONNX graphs in TypeScript with onnx-proto (no Python), used by the tiny-model
 * builders. Two layers:
 *
 * - plain functions (`initializer`, `node`, `valueInfo`, `graph`, `model`) that return onnx-proto messages;
 * - `GraphBuilder`, which names intermediate values for you (`g.op('Conv', [x, w]) → 'Conv_3'`) so builders
 *   read like the forward pass they describe.
 *
 * ```ts
 * const g = new GraphBuilder('tiny');
 * const x = g.input('pixel_values', 'float32', ['batch', 3, 'height', 'width']);
 * const w = g.init('conv.weight', rng.normalArray(8 * 3 * 9).map((v) => v * 0.1), [8, 3, 3, 3]);
 * const y = g.op('Conv', [x, w], { pads: [1, 1, 1, 1] });
 * g.output(g.op('Relu', [y], {}, 'features'), 'float32', ['batch', 8, 'height', 'width']);
 * const bytes = g.toModel({ opset: 17 }); // Uint8Array, ready for fs.writeFile or InferenceSession.create
 * ```
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type TensorProtoT = InstanceType<typeof onnx.TensorProto>;
type NodeProtoT = InstanceType<typeof onnx.NodeProto>;
type ValueInfoProtoT = InstanceType<typeof onnx.ValueInfoProto>;
type GraphProtoT = InstanceType<typeof onnx.GraphProto>;
type AttributeProtoT = InstanceType<typeof onnx.AttributeProto>;

/** Element types the builders use, named like `src/core/tensor.ts`. */
export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

/** ONNX `TensorProto.DataType` codes. */
export const DATA_TYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
};

/** Typed arrays an initializer can hold; `Uint16Array` means fp16 bit patterns unless `type` says otherwise. */
export type InitData = Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

function inferType(data: InitData): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Uint16Array) return 'float16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  return 'int64';
}

/**
 * A constant tensor stored in the model (weights, biases, shape constants). Data is written as little-endian
 * `raw_data`, which is what exporters emit and what onnxruntime reads fastest.
 */
export function initializer(
  name: string,
  data: InitData,
  dims: readonly number[],
  type?: DType,
): TensorProtoT {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n)
    throw new RangeError(`initializer ${name}: ${data.length} values but dims [${dims.join(',')}] need ${n}`);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return onnx.TensorProto.create({
    name,
    dims: [...dims],
    dataType: DATA_TYPE[type ?? inferType(data)],
    rawData: raw,
  });
}

/** Attribute values: numbers → INT (integers) or FLOAT, arrays → INTS/FLOATS, strings → STRING. */
export type AttrValue =
  number | readonly number[] | string | { float: number } | { floats: readonly number[] };
export type Attrs = Record<string, AttrValue>;

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

function attribute(name: string, v: AttrValue): AttributeProtoT {
  if (typeof v === 'string')
    return onnx.AttributeProto.create({ name, type: ATTR.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === 'number')
    return Number.isInteger(v)
      ? onnx.AttributeProto.create({ name, type: ATTR.INT, i: v })
      : onnx.AttributeProto.create({ name, type: ATTR.FLOAT, f: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: ATTR.FLOAT, f: v.float });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: ATTR.FLOATS, floats: [...v.floats] });
  const arr = v as readonly number[];
  return arr.every(Number.isInteger)
    ? onnx.AttributeProto.create({ name, type: ATTR.INTS, ints: [...arr] })
    : onnx.AttributeProto.create({ name, type: ATTR.FLOATS, floats: [...arr] });
}

/**
 * One operator. Use `{ float: 1 }` for a float attribute whose value happens to be an integer (e.g. Gemm alpha).
 * `domain` is '' for the standard ops and 'com.microsoft' for onnxruntime contrib ops such as MatMulNBits.
 */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Attrs = {},
  opts: { name?: string; domain?: string } = {},
): NodeProtoT {
  return onnx.NodeProto.create({
    opType,
    input: [...inputs],
    output: [...outputs],
    name: opts.name ?? `${opType}_${outputs[0]}`,
    domain: opts.domain ?? '',
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  });
}

/** A graph input/output declaration; string dims are symbolic ('batch'), -1 means unknown. */
export function valueInfo(name: string, type: DType, shape: readonly (number | string)[]): ValueInfoProtoT {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: {
          dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : d < 0 ? {} : { dimValue: d })),
        },
      },
    },
  });
}

export interface GraphParts {
  name: string;
  nodes: NodeProtoT[];
  inputs: ValueInfoProtoT[];
  outputs: ValueInfoProtoT[];
  initializers: TensorProtoT[];
}

export function graph(parts: GraphParts): GraphProtoT {
  return onnx.GraphProto.create({
    name: parts.name,
    node: parts.nodes,
    input: parts.inputs,
    output: parts.outputs,
    initializer: parts.initializers,
  });
}

export interface ModelOptions {
  /** Default-domain opset version (17 covers everything the tiny models use; LayerNormalization needs ≥ 17). */
  opset?: number;
  /** Extra domains, e.g. `{ 'com.microsoft': 1 }` for MatMulNBits. */
  domains?: Record<string, number>;
  producer?: string;
  /** Stored as model metadata (`metadata_props`), e.g. `{ 'defectlab.tiny': 'true' }`. */
  metadata?: Record<string, string>;
}

/** Serializes a graph into ONNX model bytes (IR version 8, which onnxruntime 1.x reads). */
export function model(g: GraphProtoT, opts: ModelOptions = {}): Uint8Array {
  const opsetImport = [{ domain: '', version: opts.opset ?? 17 }];
  for (const [domain, version] of Object.entries(opts.domains ?? {})) opsetImport.push({ domain, version });
  const m = onnx.ModelProto.create({
    irVersion: 8,
    producerName: opts.producer ?? 'defectlab-tiny-builder',
    producerVersion: '1',
    opsetImport,
    graph: g,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(m).finish();
}

/**
 * Accumulates nodes, initializers and I/O, inventing unique names for intermediate values so a builder only
 * names what the outside world sees (graph inputs/outputs and weights).
 */
export class GraphBuilder {
  readonly nodes: NodeProtoT[] = [];
  readonly inputs: ValueInfoProtoT[] = [];
  readonly outputs: ValueInfoProtoT[] = [];
  readonly initializers: TensorProtoT[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** Declares a graph input and returns its name. */
  input(name: string, type: DType, shape: readonly (number | string)[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Declares an existing value as a graph output (rename it first with `op('Identity', …)` if needed). */
  output(name: string, type: DType, shape: readonly (number | string)[]): string {
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Adds a weight/constant and returns its name. */
  init(name: string, data: InitData, dims: readonly number[], type?: DType): string {
    this.claim(name);
    return this.addInit(name, data, dims, type);
  }

  /** Shorthand for an int64 constant (shapes, axes). */
  ints(name: string, values: readonly number[]): string {
    return this.addInit(
      this.fresh(name),
      BigInt64Array.from(values, (v) => BigInt(v)),
      [values.length],
    );
  }

  /** Shorthand for a float32 scalar constant. */
  scalar(name: string, value: number): string {
    return this.addInit(this.fresh(name), Float32Array.of(value), []);
  }

  /**
   * Adds a node and returns its (first) output name: `outputName` if given, otherwise a fresh `<op>_<n>`.
   * Empty strings in `inputs` mark omitted optional inputs, as in ONNX.
   */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Attrs = {},
    outputName?: string,
    opts: { domain?: string } = {},
  ): string {
    const out = outputName ?? this.fresh(opType);
    if (outputName) this.claim(outputName);
    this.nodes.push(
      node(opType, inputs, [out], attrs, { domain: opts.domain, name: `n${this.nodes.length}_${opType}` }),
    );
    return out;
  }

  /** Adds a node with several outputs (Split, …) and returns their names. */
  opMulti(
    opType: string,
    inputs: readonly string[],
    nOutputs: number,
    attrs: Attrs = {},
    opts: { domain?: string } = {},
  ): string[] {
    const outs = Array.from({ length: nOutputs }, () => this.fresh(opType));
    this.nodes.push(
      node(opType, inputs, outs, attrs, { domain: opts.domain, name: `n${this.nodes.length}_${opType}` }),
    );
    return outs;
  }

  /** A fresh, unused value name with the given prefix. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.used.has(name));
    this.used.add(name);
    return name;
  }

  toGraph(): GraphProtoT {
    return graph(this);
  }

  toModel(opts: ModelOptions = {}): Uint8Array {
    return model(this.toGraph(), opts);
  }

  private addInit(name: string, data: InitData, dims: readonly number[], type?: DType): string {
    this.initializers.push(initializer(name, data, dims, type));
    return name;
  }

  private claim(name: string): void {
    if (this.used.has(name)) throw new Error(`GraphBuilder ${this.name}: value name ${name} used twice`);
    this.used.add(name);
  }
}

/** Seeded weights: N(0, std²) values from a `normal()` source (pass an `Rng` from src/core/rng.ts). */
export function randomWeights(rng: { normal(): number }, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

/**
 * ONNX models as the bundle tool handles them: the graph decoded with onnx-proto, every initializer's bytes left
 * where they are (inline `raw_data`, or a byte range of an external-data file read only when needed), and
 * conversions recorded as lazy producers run one tensor at a time by the writer. So a multi-GB export never sits
 * in one buffer: peak memory is about the largest tensor, whatever the model's size.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { ELEM_BYTES, inspectOnnx } from '../../src/runtime/models/onnx-inspect.ts';
import { BundleError } from './errors.ts';

export const { onnx } = onnxProto;
export type ModelProtoT = InstanceType<typeof onnx.ModelProto>;
export type GraphProtoT = onnxProto.onnx.IGraphProto;
export type NodeProtoT = onnxProto.onnx.INodeProto;
export type TensorProtoT = onnxProto.onnx.ITensorProto;
export type AttributeProtoT = onnxProto.onnx.IAttributeProto;

/** ONNX `TensorProto.DataType` codes used here. */
export const T = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

export { ELEM_BYTES };
export const TYPE_NAME: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16',
};

/** Where an initializer's bytes come from when the bundle is written. */
export type TensorData =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'file'; file: string; offset: number; length: number }
  | { kind: 'lazy'; length: number; produce: () => Uint8Array };

/** A loaded graph: the decoded proto (initializers without their bytes) and where each initializer's bytes are. */
export interface LoadedModel {
  /** Path as given (for messages). */
  file: string;
  model: ModelProtoT;
  data: Map<string, TensorData>;
  /** External-data files the source referenced (absolute paths). */
  externalFiles: string[];
}

export const num = (v: unknown): number => Number(v ?? 0);

export function dimsOf(t: { dims?: unknown[] | null }): number[] {
  return (t.dims ?? []).map(num);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** The bytes of an initializer stored in the typed `*_data` fields instead of `raw_data` (older exporters). */
function typedFieldBytes(t: TensorProtoT): Uint8Array {
  const type = num(t.dataType);
  const n = elementCount(dimsOf(t));
  if (t.floatData?.length) return new Uint8Array(Float32Array.from(t.floatData).buffer);
  if (t.doubleData?.length) return new Uint8Array(Float64Array.from(t.doubleData).buffer);
  if (t.int64Data?.length)
    return new Uint8Array(BigInt64Array.from(t.int64Data, (v) => BigInt(String(v))).buffer);
  if (t.int32Data?.length) {
    const v = t.int32Data.map(num);
    if (type === T.INT32) return new Uint8Array(Int32Array.from(v).buffer);
    if (type === T.FLOAT16 || type === T.UINT16 || type === T.INT16 || type === T.BFLOAT16)
      return new Uint8Array(Uint16Array.from(v).buffer);
    if (type === T.INT8) return new Uint8Array(Int8Array.from(v).buffer);
    return Uint8Array.from(v);
  }
  return new Uint8Array(n * (ELEM_BYTES[type] ?? 4));
}

/**
 * Reads `file` (a graph) and indexes its initializers' bytes without reading external data. A truncated or
 * damaged protobuf is a `TruncatedModelError` naming the file (the bounds-checked walker sees it before
 * onnx-proto would decode garbage); a missing or short external-data file is a `MissingExternalDataError`.
 */
export async function loadModel(file: string): Promise<LoadedModel> {
  if (!existsSync(file))
    throw new BundleError(
      'ModelFileMissingError',
      `${file} does not exist`,
      'pass the path of an .onnx file or an export folder',
    );
  const bytes = new Uint8Array(await readFile(file));
  inspectOnnx(bytes, file);
  let model: ModelProtoT;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new BundleError(
      'TruncatedModelError',
      `${file} is not a complete ONNX model (${(e as Error).message})`,
      'the file is damaged or was cut short: export or copy it again',
    );
  }
  const data = new Map<string, TensorData>();
  const externalFiles = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    const name = t.name ?? '';
    if (num(t.dataLocation) === 1) {
      const kv = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
      const location = kv.location ?? '';
      const ext = join(dirname(file), location);
      const length =
        kv.length !== undefined
          ? Number(kv.length)
          : elementCount(dimsOf(t)) * (ELEM_BYTES[num(t.dataType)] ?? 4);
      const offset = Number(kv.offset ?? 0);
      if (!location || !existsSync(ext))
        throw new BundleError(
          'MissingExternalDataError',
          `${file}: initializer ${name} is stored in external data ${location || '(no location)'}, which is missing (looked for ${ext})`,
          'copy the whole export folder, with every .onnx_data / .data file beside its model.onnx',
        );
      const size = statSync(ext).size;
      if (offset + length > size)
        throw new BundleError(
          'MissingExternalDataError',
          `${file}: initializer ${name} needs bytes ${offset}–${offset + length} of ${ext}, which has only ${size}`,
          'the external-data file is truncated: copy or export it again',
        );
      externalFiles.add(ext);
      data.set(name, { kind: 'file', file: ext, offset, length });
    } else {
      const raw = t.rawData && t.rawData.length ? t.rawData : typedFieldBytes(t);
      data.set(name, { kind: 'bytes', bytes: raw });
    }
    // The writer stores bytes itself; the proto keeps only the metadata.
    t.rawData = new Uint8Array(0);
    t.floatData = [];
    t.int32Data = [];
    t.int64Data = [];
    t.doubleData = [];
    t.externalData = [];
    t.dataLocation = 0;
  }
  return { file, model, data, externalFiles: [...externalFiles] };
}

/** Byte length of an initializer's data. */
export function dataLength(d: TensorData): number {
  return d.kind === 'bytes' ? d.bytes.length : d.length;
}

/** All of one initializer's bytes (one tensor at a time: the largest tensor bounds memory). */
export function readData(d: TensorData): Uint8Array {
  if (d.kind === 'bytes') return d.bytes;
  if (d.kind === 'lazy') return d.produce();
  const out = new Uint8Array(d.length);
  const fd = openSync(d.file, 'r');
  try {
    let done = 0;
    while (done < d.length) {
      const n = readSync(fd, out, done, d.length - done, d.offset + done);
      if (n <= 0) throw new Error(`${d.file} ended at ${d.offset + done}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Streams an initializer's bytes in chunks (a plain copy never holds a whole tensor). */
export function* dataChunks(d: TensorData, chunk = 8 << 20): Generator<Uint8Array> {
  if (d.kind !== 'file') {
    yield readData(d);
    return;
  }
  const fd = openSync(d.file, 'r');
  try {
    const buf = new Uint8Array(Math.min(chunk, Math.max(d.length, 1)));
    for (let done = 0; done < d.length;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, d.length - done), d.offset + done);
      if (n <= 0) throw new Error(`${d.file} ended at ${d.offset + done}`);
      yield buf.subarray(0, n);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Float32 values of a float/float16/double initializer. */
export function floatValues(t: TensorProtoT, d: TensorData): Float32Array {
  const bytes = readData(d);
  const type = num(t.dataType);
  // A fresh read is already aligned and ours; only a view into the proto's buffer may need a copy.
  const copy = bytes.byteOffset % 8 === 0 && d.kind !== 'bytes' ? bytes : bytes.slice();
  if (type === T.FLOAT) return new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4);
  if (type === T.DOUBLE)
    return Float32Array.from(new Float64Array(copy.buffer, copy.byteOffset, copy.length / 8));
  if (type === T.FLOAT16) {
    const h = new Uint16Array(copy.buffer, copy.byteOffset, copy.length / 2);
    return Float32Array.from(h, halfBitsToFloat);
  }
  throw new Error(`${t.name} is ${TYPE_NAME[type] ?? type}, not a float tensor`);
}

/** Integer values (as numbers) of an int8/uint8/int32/int64 initializer. */
export function intValues(t: TensorProtoT, d: TensorData): number[] {
  const bytes = readData(d).slice();
  switch (num(t.dataType)) {
    case T.INT8:
      return Array.from(new Int8Array(bytes.buffer));
    case T.UINT8:
      return Array.from(bytes);
    case T.INT32:
      return Array.from(new Int32Array(bytes.buffer));
    case T.INT64:
      return Array.from(new BigInt64Array(bytes.buffer), Number);
    default:
      throw new Error(`${t.name} is not an integer tensor`);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function halfBitsToFloat(h: number): number {
  const s = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return (s ? -1 : 1) * m * 2 ** -24;
  if (e === 0x1f) u32[0] = s | 0x7f800000 | (m << 13);
  else u32[0] = s | ((e - 15 + 127) << 23) | (m << 13);
  return f32[0];
}

/** An attribute by name. */
export function attr(n: NodeProtoT, name: string): AttributeProtoT | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(n: NodeProtoT, name: string, dflt: number): number {
  const a = attr(n, name);
  return a ? num(a.i) : dflt;
}

export function attrFloat(n: NodeProtoT, name: string, dflt: number): number {
  const a = attr(n, name);
  return a ? Number(a.f) : dflt;
}

export function intAttr(name: string, v: number): AttributeProtoT {
  return onnx.AttributeProto.create({ name, type: 2, i: v });
}

export function intsAttr(name: string, v: number[]): AttributeProtoT {
  return onnx.AttributeProto.create({ name, type: 7, ints: v });
}

export function mkNode(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: AttributeProtoT[] = [],
  domain = '',
): NodeProtoT {
  return onnx.NodeProto.create({
    opType,
    input: inputs,
    output: outputs,
    name: `bundle_${opType}_${outputs[0]}`,
    domain,
    attribute: attrs,
  });
}

/** The default-domain opset version of a model. */
export function opsetOf(m: ModelProtoT): number {
  return num((m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version);
}

export function ensureDomain(m: ModelProtoT, domain: string, version: number): void {
  if (!(m.opsetImport ?? []).some((o) => o.domain === domain))
    m.opsetImport = [...(m.opsetImport ?? []), onnx.OperatorSetIdProto.create({ domain, version })];
}

/** Adds an initializer with bytes or a lazy producer. */
export function addInit(
  lm: LoadedModel,
  name: string,
  dataType: number,
  dims: number[],
  data: TensorData,
): string {
  const g = lm.model.graph!;
  g.initializer = [...(g.initializer ?? []), onnx.TensorProto.create({ name, dataType, dims })];
  lm.data.set(name, data);
  return name;
}

/** Removes initializers no node or graph output uses any more (weights replaced by quantized ones). */
export function pruneInitializers(lm: LoadedModel): void {
  const g = lm.model.graph!;
  const used = new Set<string>();
  const visit = (gr: GraphProtoT) => {
    for (const n of gr.node ?? []) {
      for (const i of n.input ?? []) used.add(i);
      for (const a of n.attribute ?? []) if (a.g) visit(a.g as GraphProtoT);
    }
    for (const o of gr.output ?? []) used.add(o.name ?? '');
  };
  visit(g);
  const removed = new Set<string>();
  g.initializer = (g.initializer ?? []).filter((t) => {
    const keep = used.has(t.name ?? '');
    if (!keep) {
      lm.data.delete(t.name ?? '');
      removed.add(t.name ?? '');
    }
    return keep;
  });
  // Older exporters also list weights among the graph inputs; a removed weight must not stay a feed.
  g.input = (g.input ?? []).filter((i) => !removed.has(i.name ?? ''));
}

/**
 * Reads what the model manager needs from ONNX bytes without onnxruntime and without copying weights: graph
 * inputs/outputs (names, dtypes, shapes), initializer sizes (the largest one decides whether a WebGPU buffer can
 * hold it), fp16 use, operator domains (MatMulNBits lives in com.microsoft) and external-data references.
 *
 * A hand-written protobuf walker (~100 lines) rather than onnx-proto/protobufjs because it must skip multi-GB
 * `raw_data` fields by length instead of materialising them, and it must tell a truncated file from a valid one:
 * every length-delimited field is bounds-checked and an overrun is a `TruncatedModelError`.
 */
import { DefectLabError } from '../../core/errors.ts';
import type { TensorType, ValueInfo } from '../../core/tensor.ts';

export class TruncatedModelError extends DefectLabError {
  constructor(file: string, detail: string) {
    super(
      'TruncatedModelError',
      `${file} is not a complete ONNX model (${detail})`,
      'the download was cut short or the file is damaged: purge the model and download it again (or rebuild with npm run models:tiny)',
    );
  }
}

export interface OnnxSummary {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opsets: Record<string, number>;
  /** Operator types present, prefixed with their domain when not the default one ('com.microsoft.MatMulNBits'). */
  ops: string[];
  initializerCount: number;
  /** Bytes of the largest initializer (inline or external). */
  largestTensorBytes: number;
  /** Total initializer bytes (inline + external). */
  totalTensorBytes: number;
  usesFp16: boolean;
  /** External data files the graph references (relative paths). */
  externalFiles: string[];
}

const ELEM: Record<number, TensorType> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
};
/** Bytes per element of each ONNX `TensorProto.DataType` (shared with the bundle tool). */
export const ELEM_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

interface Field {
  no: number;
  wire: number;
  /** varint value (wire 0), or start offset of the payload (wire 2). */
  value: number;
  end: number;
}

class Reader {
  constructor(
    private readonly buf: Uint8Array,
    private pos: number,
    private readonly limit: number,
    private readonly file: string,
  ) {}

  done(): boolean {
    return this.pos >= this.limit;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.limit)
        throw new TruncatedModelError(this.file, `varint runs past byte ${this.limit}`);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new TruncatedModelError(this.file, 'malformed varint');
  }

  next(): Field {
    const key = this.varint();
    const wire = key & 7;
    const no = Math.floor(key / 8);
    if (wire === 0) return { no, wire, value: this.varint(), end: this.pos };
    if (wire === 2) {
      const len = this.varint();
      const start = this.pos;
      if (start + len > this.limit)
        throw new TruncatedModelError(
          this.file,
          `field ${no} needs ${len} bytes at offset ${start}, only ${this.limit - start} left`,
        );
      this.pos = start + len;
      return { no, wire, value: start, end: start + len };
    }
    const skip = wire === 1 ? 8 : wire === 5 ? 4 : -1;
    if (skip < 0) throw new TruncatedModelError(this.file, `unknown wire type ${wire} at offset ${this.pos}`);
    if (this.pos + skip > this.limit)
      throw new TruncatedModelError(this.file, 'fixed field runs past the end');
    this.pos += skip;
    return { no, wire, value: 0, end: this.pos };
  }

  sub(f: Field): Reader {
    return new Reader(this.buf, f.value, f.end, this.file);
  }

  string(f: Field): string {
    return new TextDecoder().decode(this.buf.subarray(f.value, f.end));
  }
}

function readValueInfo(r: Reader): ValueInfo {
  let name = '';
  let type: TensorType = 'float32';
  const shape: (number | string)[] = [];
  while (!r.done()) {
    const f = r.next();
    if (f.no === 1 && f.wire === 2) name = r.string(f);
    else if (f.no === 2 && f.wire === 2) {
      const tp = r.sub(f);
      while (!tp.done()) {
        const g = tp.next();
        if (g.no !== 1 || g.wire !== 2) continue; // tensor_type
        const tt = tp.sub(g);
        while (!tt.done()) {
          const h = tt.next();
          if (h.no === 1 && h.wire === 0) type = ELEM[h.value] ?? 'float32';
          else if (h.no === 2 && h.wire === 2) {
            const sh = tt.sub(h);
            while (!sh.done()) {
              const d = sh.next();
              if (d.no !== 1 || d.wire !== 2) continue;
              const dr = sh.sub(d);
              let dim: number | string = -1;
              while (!dr.done()) {
                const x = dr.next();
                if (x.no === 1 && x.wire === 0) dim = x.value;
                else if (x.no === 2 && x.wire === 2) dim = dr.string(x);
              }
              shape.push(dim);
            }
          }
        }
      }
    }
  }
  return { name, type, shape };
}

/** Whether an `AttributeProto` holds a graph (`g`, field 6) or graphs (field 11). */
function hasGraphAttribute(a: Reader): boolean {
  while (!a.done()) {
    const f = a.next();
    if ((f.no === 6 || f.no === 11) && f.wire === 2) return true;
  }
  return false;
}

/** Parses the parts of an ONNX model the manager checks. Throws `TruncatedModelError` on damaged bytes. */
export function inspectOnnx(bytes: Uint8Array, file = 'model.onnx'): OnnxSummary {
  const top = new Reader(bytes, 0, bytes.length, file);
  const s: OnnxSummary = {
    inputs: [],
    outputs: [],
    opsets: {},
    ops: [],
    initializerCount: 0,
    largestTensorBytes: 0,
    totalTensorBytes: 0,
    usesFp16: false,
    externalFiles: [],
  };
  let graph: Field | null = null;
  if (bytes.length === 0) throw new TruncatedModelError(file, 'the file is empty');
  while (!top.done()) {
    const f = top.next();
    if (f.no === 7 && f.wire === 2) graph = f;
    else if (f.no === 8 && f.wire === 2) {
      const o = top.sub(f);
      let domain = '';
      let version = 0;
      while (!o.done()) {
        const g = o.next();
        if (g.no === 1 && g.wire === 2) domain = o.string(g);
        else if (g.no === 2 && g.wire === 0) version = g.value;
      }
      s.opsets[domain] = version;
    }
  }
  if (!graph) throw new TruncatedModelError(file, 'it has no graph');
  const ops = new Set<string>();
  const external = new Set<string>();
  const g = top.sub(graph);
  const inputNames: ValueInfo[] = [];
  const initNames = new Set<string>();
  const produced = new Set<string>();
  const nodeReads: { op: string; reads: string[] }[] = [];
  let subgraphs = false;
  while (!g.done()) {
    const f = g.next();
    if (f.wire !== 2) continue;
    if (f.no === 1) {
      const n = g.sub(f);
      let op = '';
      let domain = '';
      const reads: string[] = [];
      while (!n.done()) {
        const x = n.next();
        if (x.no === 4 && x.wire === 2) op = n.string(x);
        else if (x.no === 7 && x.wire === 2) domain = n.string(x);
        else if (x.no === 1 && x.wire === 2) reads.push(n.string(x));
        else if (x.no === 2 && x.wire === 2) produced.add(n.string(x));
        // Subgraphs (If, Loop, Scan) read names of the enclosing scope: the reference check below is skipped.
        else if (x.no === 5 && x.wire === 2) subgraphs ||= hasGraphAttribute(n.sub(x));
      }
      nodeReads.push({ op, reads });
      ops.add(domain && domain !== 'ai.onnx' ? `${domain}.${op}` : op);
    } else if (f.no === 5) {
      const t = g.sub(f);
      let count = 1;
      let elem = 1;
      let bytesLen = 0;
      let name = '';
      let extLen = -1;
      let extFile = '';
      while (!t.done()) {
        const x = t.next();
        if (x.no === 1 && x.wire === 0) count *= x.value;
        else if (x.no === 1 && x.wire === 2) {
          const p = t.sub(x);
          while (!p.done()) count *= p.varint();
        } else if (x.no === 2 && x.wire === 0) elem = x.value;
        else if (x.no === 8 && x.wire === 2) name = t.string(x);
        else if (x.no === 9 && x.wire === 2) bytesLen = x.end - x.value;
        else if (x.no === 13 && x.wire === 2) {
          const e = t.sub(x);
          let key = '';
          let value = '';
          while (!e.done()) {
            const y = e.next();
            if (y.no === 1 && y.wire === 2) key = e.string(y);
            else if (y.no === 2 && y.wire === 2) value = e.string(y);
          }
          if (key === 'location') extFile = value;
          else if (key === 'length') extLen = Number(value);
        }
      }
      const size = extFile
        ? extLen >= 0
          ? extLen
          : count * (ELEM_BYTES[elem] ?? 4)
        : bytesLen || count * (ELEM_BYTES[elem] ?? 4);
      if (extFile) external.add(extFile);
      if (elem === 10) s.usesFp16 = true;
      s.initializerCount++;
      s.totalTensorBytes += size;
      s.largestTensorBytes = Math.max(s.largestTensorBytes, size);
      initNames.add(name);
    } else if (f.no === 11) inputNames.push(readValueInfo(g.sub(f)));
    else if (f.no === 12) s.outputs.push(readValueInfo(g.sub(f)));
  }
  // Every tensor a node reads must come from somewhere: a graph input, an initializer or a node's output. A
  // weight missing from a damaged or half-converted file otherwise passes here and fails later inside
  // onnxruntime's session creation with an error that does not say the file is bad.
  if (!subgraphs) {
    const known = new Set([...inputNames.map((v) => v.name), ...initNames, ...produced]);
    nodeReads.forEach(({ op, reads }, i) => {
      const missing = reads.find((r) => r !== '' && !known.has(r));
      if (missing !== undefined)
        throw new TruncatedModelError(
          file,
          `node ${i} (${op || 'no op'}) reads ${JSON.stringify(missing)}, which no initializer, graph input or node provides`,
        );
    });
  }
  // Older exporters list initializers among the graph inputs too; those are weights, not feeds.
  s.inputs = inputNames.filter((v) => !initNames.has(v.name));
  if (s.inputs.some((v) => v.type === 'float16') || s.outputs.some((v) => v.type === 'float16'))
    s.usesFp16 = true;
  s.ops = [...ops].sort();
  s.externalFiles = [...external];
  return s;
}

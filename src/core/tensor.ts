/**
 * The minimal tensor and inference-session shapes the core depends on. `src/runtime/ort.ts` adapts
 * onnxruntime-web and onnxruntime-node to these, so pipelines in `src/core/` run over either (or over a pure-TS
 * fake in unit tests) without importing onnxruntime.
 */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

export interface TensorLike {
  type: TensorType;
  data: TensorData;
  dims: readonly number[];
}

export interface ValueInfo {
  name: string;
  type: TensorType;
  /** Dimensions; symbolic ones ('batch', 'height') are strings, unknown ones -1. */
  shape: readonly (number | string)[];
}

export interface SessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Input types and shapes read from the graph, so callers adapt (timestep int64 vs float, fp16 I/O). */
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  run(
    feeds: Record<string, TensorLike>,
    outputNames?: readonly string[],
  ): Promise<Record<string, TensorLike>>;
  release(): Promise<void>;
}

export function tensor(type: TensorType, data: TensorData, dims: readonly number[]): TensorLike {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data.length !== n)
    throw new RangeError(`tensor data has ${data.length} values but dims [${dims}] need ${n}`);
  return { type, data, dims };
}

export function float32(data: Float32Array, dims: readonly number[]): TensorLike {
  return tensor('float32', data, dims);
}

/** IEEE 754 half → float. */
export function halfToFloat(h: number): number {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  const sign = s ? -1 : 1;
  if (e === 0) return sign * 2 ** -14 * (f / 1024);
  if (e === 0x1f) return f ? NaN : sign * Infinity;
  return sign * 2 ** (e - 15) * (1 + f / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float → IEEE 754 half, round to nearest even. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (e >= 0x1f) return sign | (((x >>> 23) & 0xff) === 0xff && m ? 0x7e00 : 0x7c00);
  if (e <= 0) {
    if (e < -10) return sign;
    m = (m | 0x800000) >> (1 - e);
    if (m & 0x1000 && m & 0x2fff) m += 0x2000;
    return sign | (m >> 13);
  }
  if (m & 0x1000 && m & 0x2fff) {
    m += 0x2000;
    if (m & 0x800000) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | (m >> 13);
}

/** Converts any float tensor to a Float32Array view of its values. */
export function toFloat32(t: TensorLike): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') {
    const src = t.data as Uint16Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
    return out;
  }
  if (t.type === 'int64') return Float32Array.from(t.data as BigInt64Array, (v) => Number(v));
  return Float32Array.from(t.data as ArrayLike<number>);
}

/** Converts float values to the tensor type an input expects (fp16 models take Uint16Array halves). */
export function fromFloat32(data: Float32Array, type: TensorType, dims: readonly number[]): TensorLike {
  if (type === 'float32') return tensor(type, data, dims);
  if (type === 'float16') return tensor(type, Uint16Array.from(data, floatToHalf), dims);
  if (type === 'int64')
    return tensor(
      type,
      BigInt64Array.from(data, (v) => BigInt(Math.round(v))),
      dims,
    );
  if (type === 'int32') return tensor(type, Int32Array.from(data, Math.round), dims);
  throw new RangeError(`cannot convert float values to ${type}`);
}

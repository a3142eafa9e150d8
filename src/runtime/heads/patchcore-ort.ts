/**
 * PatchCore's nearest-neighbour search as a small ONNX graph, for onnxruntime's multi-threaded GEMM (MLAS):
 * `TopK(q · B + s, k, smallest)` with the bank as initializers, `B = −2·bᵀ` `[D, M]` and `s = ‖b‖²` `[M]`, so the
 * graph is the tfjs search's fused product (`tfjsBankSearch` in `patchcore.ts`) plus its arg-min, on the other
 * runtime. Platform-free: it builds the bytes with onnx-proto and opens them through whatever session factory
 * it is given (`patchcore-node.ts` passes onnxruntime-node's, with one intra-op thread per core).
 *
 * A large bank is cut into blocks of `bankBlock` rows, one session each (each block's distance matrix stays
 * bounded and its weights are packed once), and queries into blocks of `queryBlock` rows; the per-block top-k
 * lists are merged by the same expanded distance, first global index on ties, which is what one search over the
 * whole bank answers.
 */
import onnxProto from 'onnx-proto';
import { InvalidArgumentError } from '../../core/errors.ts';
import { projectionMatrix } from '../../core/patchcore/coreset.ts';
import { float32, type SessionLike, tensor } from '../../core/tensor.ts';
import type { BankSearch } from './patchcore.ts';

const { onnx } = onnxProto;

const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;

/** Bank rows per session: a 196-row query against 16k rows is a 12 MB distance block. */
export const NEAREST_BANK_BLOCK = 16_384;
/** Query rows per run: 1024 × 16k × 4 B = 64 MB of distances at most. */
export const NEAREST_QUERY_BLOCK = 1024;

/**
 * The search graph of bank rows `[m0, m0 + rows)` of `bank` `[*, D]`: input `q` `[n, D]` float32 and `k` `[1]`
 * int64; outputs `values` `[n, k]` (the expanded distances `‖b‖² − 2 q·b`, ascending) and `indices` `[n, k]`
 * int64 (block-local).
 */
export function nearestGraph(bank: Float32Array, m0: number, rows: number, D: number): Uint8Array {
  const bT = new Float32Array(D * rows);
  const sq = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = (m0 + r) * D;
    let s = 0;
    for (let j = 0; j < D; j++) {
      const v = bank[o + j];
      bT[j * rows + r] = -2 * v; // exact in float32
      s += v * v;
    }
    sq[r] = s;
  }
  const graph = onnx.GraphProto.create({
    name: 'patchcore_nearest',
    node: [
      node('MatMul', ['q', 'bank_t'], ['product']),
      node('Add', ['product', 'bank_sq'], ['expanded']),
      node(
        'TopK',
        ['expanded', 'k'],
        ['values', 'indices'],
        [
          onnx.AttributeProto.create({ name: 'axis', type: ATTR_INT, i: -1 }),
          onnx.AttributeProto.create({ name: 'largest', type: ATTR_INT, i: 0 }),
          onnx.AttributeProto.create({ name: 'sorted', type: ATTR_INT, i: 1 }),
        ],
      ),
    ],
    input: [info('q', FLOAT, ['n', D]), info('k', INT64, [1])],
    output: [info('values', FLOAT, ['n', 'k']), info('indices', INT64, ['n', 'k'])],
    initializer: [floatInit('bank_t', [D, rows], bT), floatInit('bank_sq', [rows], sq)],
  });
  return encodeModel(graph);
}

function floatInit(name: string, dims: number[], v: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dataType: FLOAT,
    dims,
    rawData: new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
  });
}

function info(name: string, elemType: number, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

function node(opType: string, input: string[], output: string[], attribute: object[] = []) {
  return onnx.NodeProto.create({ opType, input, output, name: `${output[0]}__node`, attribute });
}

/** IR 8, opset 13: what onnxruntime 1.x reads, and TopK with `k` as an input. */
function encodeModel(graph: InstanceType<typeof onnx.GraphProto>): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'defectlab-patchcore',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The coreset's random projection as a graph: input `x` `[n, dim]`, output `y = x · R` `[n, d]` with the core's
 * matrix for the seed (`projectionMatrix`) as the initializer.
 */
export function projectionGraph(R: Float32Array, dim: number, d: number): Uint8Array {
  if (R.length !== dim * d) throw new InvalidArgumentError('projection matrix', `${dim}×${d}`, R.length);
  return encodeModel(
    onnx.GraphProto.create({
      name: 'patchcore_projection',
      node: [node('MatMul', ['x', 'r'], ['y'])],
      input: [info('x', FLOAT, ['n', dim])],
      output: [info('y', FLOAT, ['n', d])],
      initializer: [floatInit('r', [dim, d], R)],
    }),
  );
}

/** Rows per projection run: 16k × 256 floats in, 16k × 128 out (24 MB). */
const PROJECTION_BLOCK = 16_384;

/**
 * `[N, dim] → [N, d]` through `projectionGraph` on one session: the same numbers as the core's
 * `randomProjection` up to float32 summation order (as the tfjs `projectRows`).
 */
export async function ortProjectRows(
  data: Float32Array,
  N: number,
  dim: number,
  d: number,
  seed: number,
  open: OpenSession,
): Promise<Float32Array> {
  if (data.length !== N * dim) throw new InvalidArgumentError('projection input', `${N}×${dim}`, data.length);
  const session = await open(projectionGraph(projectionMatrix(dim, d, seed), dim, d), 'patchcore-projection');
  try {
    const out = new Float32Array(N * d);
    for (let s = 0; s < N; s += PROJECTION_BLOCK) {
      const n = Math.min(PROJECTION_BLOCK, N - s);
      const y = await session.run({ x: float32(data.subarray(s * dim, (s + n) * dim), [n, dim]) }, ['y']);
      out.set(y.y.data as Float32Array, s * d);
    }
    return out;
  } finally {
    await session.release();
  }
}

/** Opens one graph's bytes as a session (e.g. onnxruntime-node's `createSession` with its thread count). */
export type OpenSession = (bytes: Uint8Array, name: string) => Promise<SessionLike>;

/**
 * The `BankSearch` of a bank `[M, D]` on onnxruntime: one session per bank block, released by `dispose`.
 * `label` says where it runs (shown by result lines and the bench).
 */
export async function ortBankSearch(
  bank: Float32Array,
  M: number,
  D: number,
  open: OpenSession,
  o: { label?: string; bankBlock?: number; queryBlock?: number } = {},
): Promise<BankSearch> {
  if (!(M > 0) || bank.length !== M * D)
    throw new InvalidArgumentError('patchcore bank', `${M} rows of ${D} values`, bank.length);
  const bankBlock = o.bankBlock ?? NEAREST_BANK_BLOCK;
  const queryBlock = o.queryBlock ?? NEAREST_QUERY_BLOCK;
  const blocks: { m0: number; rows: number; session: SessionLike }[] = [];
  try {
    for (let m0 = 0; m0 < M; m0 += bankBlock) {
      const rows = Math.min(bankBlock, M - m0);
      const session = await open(nearestGraph(bank, m0, rows, D), `patchcore-nearest[${m0}:${m0 + rows}]`);
      blocks.push({ m0, rows, session });
    }
  } catch (e) {
    await Promise.all(blocks.map((b) => b.session.release()));
    throw e;
  }
  return {
    label: o.label ?? 'onnxruntime',
    async nearest(q, n, k) {
      if (q.length !== n * D) throw new InvalidArgumentError('query features', `${n}×${D}`, q.length);
      const kk = Math.min(k, M);
      const index = new Int32Array(n * kk);
      // Best-so-far expanded distances, merged block by block.
      const value = new Float32Array(n * kk).fill(Infinity);
      const mergedIdx = new Int32Array(kk);
      const mergedVal = new Float32Array(kk);
      for (let s = 0; s < n; s += queryBlock) {
        const r = Math.min(queryBlock, n - s);
        const feeds = { q: float32(q.subarray(s * D, (s + r) * D), [r, D]) };
        for (const b of blocks) {
          const kb = Math.min(kk, b.rows);
          const out = await b.session.run(
            { ...feeds, k: tensor('int64', BigInt64Array.of(BigInt(kb)), [1]) },
            ['values', 'indices'],
          );
          const vals = out.values.data as Float32Array;
          const idx = out.indices.data as BigInt64Array;
          for (let i = 0; i < r; i++) {
            const row = (s + i) * kk;
            // Two ascending lists; on equal distances the earlier (lower-index) block's row comes first.
            let a = 0;
            let c = 0;
            for (let j = 0; j < kk; j++) {
              const takeNew = c < kb && vals[i * kb + c] < value[row + a];
              if (takeNew) {
                mergedIdx[j] = Number(idx[i * kb + c]) + b.m0;
                mergedVal[j] = vals[i * kb + c];
                c++;
              } else {
                mergedIdx[j] = index[row + a];
                mergedVal[j] = value[row + a];
                a++;
              }
            }
            index.set(mergedIdx, row);
            value.set(mergedVal, row);
          }
        }
      }
      return index;
    },
    dispose() {
      // Releasing a session frees native memory only; a failure there leaves nothing to undo.
      for (const b of blocks) b.session.release().catch(() => undefined);
    },
  };
}

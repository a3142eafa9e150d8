/**
 * PatchCore's Node speed-ups (server, CLI, experiment runner, bench), injected into the head as a
 * `PatchCoreRuntime` so the browser bundle never sees them (it keeps tfjs and the core's sequential coreset):
 *
 * - the nearest-neighbour search and the coreset's random projection on onnxruntime-node: the graphs of
 *   `patchcore-ort.ts` on MLAS's multi-threaded GEMM, one intra-op thread per core (tfjs WASM has no threads in
 *   Node);
 * - the greedy coreset split across worker_threads over shared memory: each step every thread scans its own
 *   contiguous rows with the core's `coresetScan` (the very function, by its source text) and answers its range's
 *   arg-max; the main thread takes the first largest in range order, which is the sequential scan's pick, so the
 *   picks are identical to `greedyCoreset`'s (`tests/unit/patchcore-node.test.ts`).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CancelledError, DefectLabError, InvalidArgumentError } from '../../core/errors.ts';
import {
  coresetScan,
  firstCentre,
  greedyCoreset,
  principalBound,
  sqDistBelow,
  sqDistRows,
} from '../../core/patchcore/coreset.ts';
import type { CancelSignal } from '../../core/progress.ts';
import { createSession } from '../ort-node.ts';
import { type OpenSession, ortBankSearch, ortProjectRows } from './patchcore-ort.ts';
import type { BankSearch, PatchCoreRuntime } from './patchcore.ts';

/** Threads: every core the process may use. */
export function nodeThreads(): number {
  return Math.max(1, availableParallelism());
}

/** The bank search on onnxruntime-node's CPU provider with `threads` intra-op threads. */
export function nodeBankSearch(
  bank: Float32Array,
  rows: number,
  dim: number,
  threads = nodeThreads(),
): Promise<BankSearch> {
  return ortBankSearch(
    bank,
    rows,
    dim,
    (bytes, name) => createSession(bytes, { name, intraOpNumThreads: threads }),
    { label: `onnxruntime-node cpu, ${threads} thread${threads === 1 ? '' : 's'}` },
  );
}

/** What the Node entry points hand PatchCore: onnxruntime's search and the threaded coreset. */
export function nodePatchCoreRuntime(o: { threads?: number } = {}): PatchCoreRuntime {
  const threads = o.threads ?? nodeThreads();
  const open: OpenSession = (bytes, name) => createSession(bytes, { name, intraOpNumThreads: threads });
  return {
    search: (bank, rows, dim) => nodeBankSearch(bank, rows, dim, threads),
    project: (data, N, dim, d, seed) => ortProjectRows(data, N, dim, d, seed, open),
    coreset: (x, N, d, n, so) => threadedGreedyCoreset(x, N, d, n, { ...so, threads }),
  };
}

/** Below this many rows per thread the threads' start-up (tens of ms each) costs more than they save. */
const MIN_ROWS_PER_THREAD = 8192;

// Control words in the shared Int32Array.
const GEN = 0; // step counter: workers wait on it
const CENTRE = 1; // the new centre's row offset in x (−1: stop)
const STEP = 2; // k, the selection step
const DONE = 3; // workers finished with this step
const FAILED = 4; // a worker threw
const CZ = 5; // the new centre's offset in the bound's z

/**
 * The worker's program (CommonJS, evaluated): the core's own `sqDistBelow` and `coresetScan` by their source
 * text, so the threads run the very code of the sequential reference, and a loop that waits for each step. The
 * scan is bound as an expression, so a bundler that renames `coresetScan` does not break the call.
 */
function workerSource(): string {
  return `'use strict';
const { workerData, parentPort } = require('node:worker_threads');
${sqDistBelow.toString()}
const scan = (${coresetScan.toString()});
const w = workerData;
const x = new Float32Array(w.x);
const minDist = new Float32Array(w.minDist);
const owner = new Int32Array(w.owner);
const gap = new Float32Array(w.gap);
const ctrl = new Int32Array(w.ctrl);
const best = new Int32Array(w.best);
const z = new Float64Array(w.z);
let seen = 0;
try {
  for (;;) {
    Atomics.wait(ctrl, ${GEN}, seen);
    seen = Atomics.load(ctrl, ${GEN});
    const c = Atomics.load(ctrl, ${CENTRE});
    if (c < 0) break;
    const k = Atomics.load(ctrl, ${STEP});
    const cz = Atomics.load(ctrl, ${CZ});
    best[w.slot] = scan(x, w.d, w.lo, w.hi, c, k, minDist, owner, gap, z, w.r, cz, w.floor);
    if (Atomics.add(ctrl, ${DONE}, 1) + 1 === w.workers) Atomics.notify(ctrl, ${DONE});
  }
} catch (e) {
  parentPort.postMessage(String(e && e.stack ? e.stack : e));
  Atomics.store(ctrl, ${FAILED}, 1);
  Atomics.add(ctrl, ${DONE}, 1);
  Atomics.notify(ctrl, ${DONE});
}
`;
}

/**
 * `greedyCoreset` of already projected rows `[N, d]` (no projection here) on `threads` threads: the main thread
 * scans the first range and `threads − 1` workers the others. Same picks as the sequential scan; falls back to it
 * when there are too few rows to be worth a thread. Yields to the event loop every 64 steps (progress, cancel).
 */
export async function threadedGreedyCoreset(
  x: Float32Array,
  N: number,
  d: number,
  n: number,
  o: {
    seed?: number;
    threads?: number;
    onStep?: (done: number, total: number) => void;
    signal?: CancelSignal;
    /** Fewer rows per thread than this run sequentially (tests lower it to thread small data). */
    minRowsPerThread?: number;
  } = {},
): Promise<Int32Array> {
  if (!Number.isInteger(N) || N < 1 || x.length !== N * d)
    throw new InvalidArgumentError('coreset features', `${N} rows of ${d} values`, x.length);
  if (!Number.isInteger(n) || n < 1 || n > N)
    throw new InvalidArgumentError('coreset size', `an integer in [1, ${N}]`, n);
  const seed = o.seed ?? 0;
  const perThread = o.minRowsPerThread ?? MIN_ROWS_PER_THREAD;
  const T = Math.max(1, Math.min(o.threads ?? nodeThreads(), Math.floor(N / perThread)));
  if (T === 1) return greedyCoreset(x, N, d, n, { projectionDim: d, seed, onStep: o.onStep });

  const shared = <A extends Float32Array | Int32Array>(make: (b: SharedArrayBuffer) => A, bytes: number) =>
    make(new SharedArrayBuffer(bytes));
  const xs = shared((b) => new Float32Array(b), x.byteLength);
  xs.set(x);
  const minDist = shared((b) => new Float32Array(b), N * 4).fill(Infinity);
  const owner = shared((b) => new Int32Array(b), N * 4).fill(-1);
  const gap = shared((b) => new Float32Array(b), n * 4);
  const ctrl = shared((b) => new Int32Array(b), 8 * 4);
  const best = shared((b) => new Int32Array(b), T * 4);
  const bounds = Array.from({ length: T + 1 }, (_, t) => Math.round((t * N) / T));
  const pb = principalBound(x, N, d);
  const zs = new Float64Array(new SharedArrayBuffer(pb.z.byteLength));
  zs.set(pb.z);

  const errors: string[] = [];
  const source = workerSource();
  const workers = Array.from({ length: T - 1 }, (_, i) => {
    const wk = new Worker(source, {
      eval: true,
      workerData: {
        x: xs.buffer,
        minDist: minDist.buffer,
        owner: owner.buffer,
        gap: gap.buffer,
        ctrl: ctrl.buffer,
        best: best.buffer,
        z: zs.buffer,
        r: pb.r,
        floor: pb.floor,
        d,
        lo: bounds[i + 1],
        hi: bounds[i + 2],
        slot: i + 1,
        workers: T - 1,
      },
    });
    wk.on('message', (m) => errors.push(String(m)));
    return wk;
  });
  const failed = (why: string) =>
    new DefectLabError(
      'CoresetThreadError',
      `a coreset worker thread failed (${why})${errors.length ? `: ${errors.join('; ')}` : ''}`,
      'pass threads: 1 to nodePatchCoreRuntime to use the sequential scan, and report the message above',
    );
  try {
    // Each must be running before the main thread blocks on them: a worker that cannot start would never count.
    await Promise.all(
      workers.map(
        (wk) =>
          new Promise<void>((res, rej) => {
            wk.once('online', res);
            wk.once('error', (e) => rej(failed(e.message)));
          }),
      ),
    );
    const chosen = new Int32Array(n);
    let next = firstCentre(N, seed);
    for (let k = 0; k < n; k++) {
      chosen[k] = next;
      minDist[next] = -1; // never picked again
      const c = next * d;
      for (let q = 0; q < k; q++) gap[q] = sqDistRows(xs, c, chosen[q] * d, d);
      Atomics.store(ctrl, CENTRE, c);
      Atomics.store(ctrl, STEP, k);
      Atomics.store(ctrl, CZ, next * pb.r);
      Atomics.store(ctrl, DONE, 0);
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
      best[0] = coresetScan(
        xs,
        d,
        bounds[0],
        bounds[1],
        c,
        k,
        minDist,
        owner,
        gap,
        zs,
        pb.r,
        next * pb.r,
        pb.floor,
      );
      for (;;) {
        const v = Atomics.load(ctrl, DONE);
        if (v >= T - 1) break;
        // Timed, so a worker that died without counting cannot hang the process.
        if (Atomics.wait(ctrl, DONE, v, 60_000) === 'timed-out') throw failed('no answer in 60 s');
      }
      if (Atomics.load(ctrl, FAILED)) {
        await new Promise((r) => setTimeout(r, 50)); // let its message arrive
        throw failed('it threw');
      }
      // The first largest in range order: the sequential scan's `m > bestVal` over ascending rows.
      let pick = -1;
      let pickVal = -Infinity;
      for (let t = 0; t < T; t++) {
        const b = best[t];
        if (b >= 0 && minDist[b] > pickVal) {
          pickVal = minDist[b];
          pick = b;
        }
      }
      if (pick < 0) break;
      next = pick;
      if (k % 64 === 63) {
        o.onStep?.(k + 1, n);
        await new Promise((r) => setImmediate(r));
        if (o.signal?.aborted) throw new CancelledError('PatchCore coreset', `${k + 1} of ${n} picks made`);
      }
    }
    return chosen;
  } finally {
    Atomics.store(ctrl, CENTRE, -1);
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    await Promise.all(workers.map((wk) => wk.terminate()));
  }
}

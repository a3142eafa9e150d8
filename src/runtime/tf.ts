/**
 * The one door to tfjs: the only module that imports `@tensorflow/*` (`tests/unit/tf-door.test.ts` greps the repo
 * for it). Heads import `tf` from here, exporting loads tfjs-layers through `loadTfLayers()`, and the backend
 * benchmark (`backend-choice.ts`) times its workload through `timeTfWorkload()`, so backend selection, the WASM
 * binaries' location (`env.wasm.tfPaths`) and the WASM flags live in one place.
 *
 * 'auto' is the same measured choice as onnxruntime's: the System panel's preference resolved against this
 * device's benchmark and adapter (`backendState()`; in Node, without WebGPU, WASM), so on a software adapter the
 * heads train on WASM like the backbone runs on WASM. An explicit backend is honoured or fails with
 * `TfBackendError`: a user (or a test) that asked for WASM knows it got WASM.
 *
 * WASM threads follow `planWasmThreads` (`threads.ts`): `min(hardwareConcurrency, 8)` when cross-origin isolated.
 * The old hang of the threaded build under COOP/COEP had one cause, fixed here (`withPthreadMainScript`): tfjs
 * hands each pthread worker `'var WasmBackendModuleThreadedSimd = ' + factory.toString()` as its main script,
 * and in a minified bundle that function's text refers to a variable of the enclosing module (the minified
 * `_scriptDir`, whose `typeof` guard the minifier dropped). In the pthread worker that name does not exist, the
 * script throws a ReferenceError before it reports 'loaded', and tfjs waits for the pool forever. The fix gives
 * the pthreads the package's own unminified script (shipped with `?url`), so nothing depends on the minifier.
 */
import * as tf from '@tensorflow/tfjs-core';
// Training needs the gradient registry, which tfjs-core leaves out of its default entry point.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import type * as TfLayersModule from '@tensorflow/tfjs-layers';
import { DefectLabError } from '../core/errors.ts';
import {
  backendState,
  decideBackend,
  decideTfBackend,
  type BackendDecision,
  type TfBackendName,
  type TfBackendPreference,
  type TfDecision,
} from './backend-choice.ts';
import { DeviceLossWatch, type DeviceLoss } from './device-lost.ts';
import { env } from './env.ts';
import { announceThreads, planWasmThreads, type ThreadPlan } from './threads.ts';

export { tf };
export type { TfBackendName, TfBackendPreference };
export type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
export type TfLayers = typeof TfLayersModule;

/** tfjs-layers, loaded on demand: only exporting a head needs it (it shares this door's tfjs-core). */
export function loadTfLayers(): Promise<TfLayers> {
  return import('@tensorflow/tfjs-layers');
}

export class TfBackendError extends DefectLabError {
  constructor(backend: string, cause: unknown) {
    super(
      'TfBackendError',
      `the tfjs ${backend} backend could not start (${cause instanceof Error ? cause.message : String(cause)})`,
      backend === 'webgpu'
        ? 'choose WASM in the System panel (or the train tab), or use a browser with WebGPU enabled'
        : 'choose another backend (auto picks the first that works)',
      { cause },
    );
  }
}

const isBrowserLike =
  typeof window !== 'undefined' ||
  typeof (globalThis as { importScripts?: unknown }).importScripts === 'function';

/** The WASM binaries shipped with the build (Vite `?url`: fingerprinted files, no CDN). Browser only. */
async function bundledWasmPaths(): Promise<Record<string, string>> {
  const [plain, simd, threaded] = await Promise.all([
    import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url'),
    import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'),
    import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url'),
  ]);
  return {
    'tfjs-backend-wasm.wasm': plain.default,
    'tfjs-backend-wasm-simd.wasm': simd.default,
    'tfjs-backend-wasm-threaded-simd.wasm': threaded.default,
  };
}

/** The prefix tfjs-backend-wasm gives the pthreads' main-script Blob (`backend_wasm.js`, `init`). */
const PTHREAD_SCRIPT_PREFIX = 'var WasmBackendModuleThreadedSimd = ';

/** The start of tfjs-backend-wasm's pthread worker script (`wasmWorkerContents`, made a Blob in `locateFile`). */
const PTHREAD_WORKER_PREFIX = '"use strict";var Module={};';

/**
 * Run first in every tfjs pthread worker. A Blob worker inherits its creator's CSP, so one started from the page
 * (the System panel's benchmark) must obey the page's Trusted Types, and the pthread's `importScripts(string)`
 * is refused without a policy; the page's policy does not reach the worker's realm. This one admits the same
 * URLs as `src/ui/workshop/trusted-types.ts`: this origin's and the Blobs it made.
 */
const PTHREAD_TRUSTED_TYPES = `(() => {
  const tt = self.trustedTypes;
  if (!tt || tt.defaultPolicy) return;
  const own = new URL(self.location.href).origin;
  tt.createPolicy('default', { createScriptURL: (u) => {
    if (new URL(u, self.location.href).origin === own) return u;
    throw new TypeError('TrustedTypes: the script URL ' + u + ' is not from ' + own);
  } });
})();
`;

/**
 * Runs `fn` (the first `setBackend('wasm')`, which builds the pthreads' main-script Blob and sizes XNNPACK's
 * pool) with two things tfjs gets wrong for us swapped in, and put back after:
 * - `Blob` replaces that one Blob's text with `script`, the package's unminified factory (see the header: the
 *   minified `factory.toString()` throws in a pthread worker), and the pthread worker's own Blob gets
 *   `PTHREAD_TRUSTED_TYPES` first. Every other Blob passes through unchanged.
 * - `navigator.hardwareConcurrency` reads `2 × threads`: tfjs caps its pool at half the logical cores (it
 *   assumes two hyper-threads per core, `backend.cc`), which on this 2-core machine means no threads at all;
 *   the policy here is `min(hardwareConcurrency, 8)` (`threads.ts`), the same as onnxruntime's.
 */
async function withPthreadMainScript<T>(script: string, threads: number, fn: () => Promise<T>): Promise<T> {
  const Original = globalThis.Blob;
  class PthreadScriptBlob extends Original {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      const text = parts?.length === 1 && typeof parts[0] === 'string' ? parts[0] : '';
      super(
        text.startsWith(PTHREAD_SCRIPT_PREFIX)
          ? [script]
          : text.startsWith(PTHREAD_WORKER_PREFIX)
            ? [`"use strict";${PTHREAD_TRUSTED_TYPES}${text.slice('"use strict";'.length)}`]
            : parts,
        options,
      );
    }
  }
  const nav = globalThis.navigator as Navigator | undefined;
  globalThis.Blob = PthreadScriptBlob;
  if (nav) Object.defineProperty(nav, 'hardwareConcurrency', { configurable: true, get: () => 2 * threads });
  try {
    return await fn();
  } finally {
    globalThis.Blob = Original;
    // The own property shadowed the prototype's getter; removing it restores the real value.
    if (nav) delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

/** The threaded factory's own file, as shipped (browser only). */
async function threadedFactoryScript(): Promise<string> {
  const url = (await import('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js?url'))
    .default;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status} (the tfjs WASM pthread script)`);
  return res.text();
}

let wasmRegistered: Promise<ThreadPlan> | null = null;
/**
 * Registers and initialises the WASM backend once per context (paths and threads can be set only before its
 * first initialisation), with the thread plan, and announces the threads it really got. Leaves the current
 * backend as it was.
 */
function registerWasm(): Promise<ThreadPlan> {
  wasmRegistered ??= (async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const paths =
      env.wasm.tfPaths ??
      (isBrowserLike
        ? await bundledWasmPaths()
        : // Node reads the binaries from the package folder (hoisted node_modules next to src/).
          new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).pathname);
    wasm.setWasmPaths(paths);
    // Node: no cross-origin isolation in the plan, so one thread (the bench compares with one-thread PyTorch).
    const plan = isBrowserLike
      ? planWasmThreads()
      : { threads: 1, reason: 'Node: tfjs WASM runs one thread' };
    const threaded = plan.threads > 1 && (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threaded);
    if (threaded) wasm.setThreadsCount(plan.threads);
    const before = tf.getBackend() as string | null;
    const init = () => tf.setBackend('wasm');
    const ok = threaded
      ? await withPthreadMainScript(await threadedFactoryScript(), plan.threads, init)
      : await init();
    if (!ok) throw new Error("setBackend('wasm') returned false");
    if (before && before !== 'wasm') await tf.setBackend(before);
    const got = wasm.getThreadsCount();
    const reason =
      plan.threads > 1 && !threaded
        ? 'this browser has no WebAssembly threads, so tfjs WASM runs single-threaded'
        : got !== plan.threads
          ? `${plan.reason ? `${plan.reason}; ` : ''}tfjs reports ${got} threads`
          : plan.reason;
    const actual = { threads: got, reason };
    announceThreads('tfjs', actual.threads, actual.reason);
    return actual;
  })();
  wasmRegistered.catch(() => {
    wasmRegistered = null;
  });
  return wasmRegistered;
}

/** The threads tfjs WASM runs with in this context (after it started), for the training loop's core lock. */
export async function tfWasmThreads(): Promise<number> {
  return wasmRegistered && tf.getBackend() === 'wasm' ? (await wasmRegistered).threads : 1;
}

async function register(name: TfBackendName): Promise<void> {
  if (name === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else if (name === 'webgpu') {
    if (!(globalThis.navigator as Navigator & { gpu?: GPU })?.gpu)
      throw new Error('navigator.gpu is missing');
    await import('@tensorflow/tfjs-backend-webgpu');
  } else {
    await registerWasm();
  }
}

async function tryBackend(name: TfBackendName): Promise<void> {
  await register(name);
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`setBackend('${name}') returned false`);
  await tf.ready();
  // A tiny op proves kernels run (WebGPU can register yet fail on the first dispatch).
  const probe = tf.sum(tf.tensor1d([1, 2, 3]));
  const v = (await probe.data())[0];
  probe.dispose();
  if (v !== 6) throw new Error(`the ${name} backend computed 1+2+3 = ${v}`);
}

/** Where tfjs runs after `initTfChoice`: what was asked, what it got, and why when those differ. */
export interface TfChoice {
  asked: TfBackendPreference;
  backend: TfBackendName;
  /** Empty when the backend is what was asked; else e.g. "auto: WASM measured faster on this software adapter". */
  reason: string;
}

/**
 * What a run's response carries about tfjs (train, re-evaluate, experiment grid): where its heads ran and, when
 * that is not exactly what was asked, why. The result lines show `tfBackend` and, if set, `(tfBackendReason)`.
 */
export interface TfPlace {
  tfBackend: TfBackendName;
  tfBackendReason: string;
}

/** `initTfChoice`'s answer as the response fields: `{ ...tfPlace(await initTfChoice(pref)) }`. */
export function tfPlace(c: TfChoice): TfPlace {
  return { tfBackend: c.backend, tfBackendReason: c.reason };
}

/** The shared decision 'auto' follows: the System panel's, measured on this device (Node: no WebGPU → WASM). */
async function systemDecision(): Promise<BackendDecision> {
  if (isBrowserLike) return (await backendState()).decision;
  // Node has no WebGPU, so the decision needs no benchmark and no stored settings.
  return decideBackend(
    env.backend.preference,
    { available: false, reason: 'Node has no WebGPU' },
    undefined,
  ) as BackendDecision;
}

/** The backend tryBackend last started successfully, so a repeated choice costs nothing. */
let started: TfBackendName | null = null;

/**
 * The tfjs WebGPU backend's device (`device-lost.ts`): once it is lost, the training on it fails with
 * `GpuDeviceLostError` (`whileTfGpuAlive`), 'auto' trains on WASM from then on in this context, and an explicit
 * 'webgpu' gets a fresh backend with a fresh device (`dropLostWebgpu`).
 */
const tfGpu = new DeviceLossWatch(
  'tfjs (the training heads)',
  'run it again: DefectLab now trains on WASM (choose WebGPU again, or reload the page, to retry the GPU)',
);
/** The first device loss this context saw; 'auto' avoids WebGPU after it (the GPU may keep failing). */
let lostOnce: DeviceLoss | null = null;

function watchTfDevice(): void {
  const device = (tf.backend() as unknown as { device?: GPUDevice }).device;
  if (!device?.lost) return;
  tfGpu.watch(device);
  tfGpu.quietEchoes();
}

/**
 * Throws the lost WebGPU backend away (its device cannot come back) and registers its factory again, so the
 * next `setBackend('webgpu')` requests a fresh adapter and device.
 */
function dropLostWebgpu(): void {
  const factory = tf.findBackendFactory('webgpu');
  try {
    tf.removeBackend('webgpu');
  } catch {
    // Disposing a backend whose device is gone may throw; it is dropped all the same.
  }
  if (factory) tf.registerBackend('webgpu', factory);
  tfGpu.reset();
  if (started === 'webgpu') started = null;
}

async function start(name: TfBackendName): Promise<void> {
  if (name === 'webgpu' && tfGpu.lost) dropLostWebgpu();
  // The benchmark switches backends and puts the old one back, so the started one is still current here.
  if (started === name && tf.getBackend() === name) return;
  started = null;
  await tryBackend(name);
  started = name;
  if (name === 'webgpu') watchTfDevice();
}

/** The loss of tfjs's WebGPU device in this context, if one happened (diagnostics, tests). */
export function tfGpuLoss(): DeviceLoss | null {
  return lostOnce;
}

/**
 * `work` (a training or scoring on tfjs), failing with `GpuDeviceLostError` if tfjs runs on WebGPU and its device
 * is lost before `work` ends; on any other backend `work` itself.
 */
export function whileTfGpuAlive<T>(work: Promise<T>): Promise<T> {
  if (started !== 'webgpu' || tf.getBackend() !== 'webgpu') return work;
  return tfGpu.whileAlive(work).catch((e: unknown) => {
    if (tfGpu.lost) lostOnce ??= tfGpu.lost;
    throw e;
  });
}

async function choose(asked: TfBackendPreference): Promise<TfChoice> {
  if (asked !== 'auto') {
    try {
      await start(asked);
    } catch (e) {
      throw new TfBackendError(asked, e);
    }
    return { asked, backend: asked, reason: '' };
  }
  const d: TfDecision = decideTfBackend('auto', await systemDecision());
  let reason = d.reason;
  let last: unknown;
  if (tfGpu.lost) lostOnce ??= tfGpu.lost;
  let order = [d.backend, ...d.fallbacks];
  if (lostOnce) {
    const lost = `the WebGPU device was lost earlier (${lostOnce.reason}${lostOnce.message ? `: ${lostOnce.message}` : ''})`;
    if (order.includes('webgpu')) {
      const rest = order.filter((b) => b !== 'webgpu');
      order = rest.includes('wasm') ? rest : ['wasm', ...rest];
      reason = `auto: ${lost}, so WASM`;
    } else reason = `${reason}; ${lost}`;
  }
  for (const b of order) {
    try {
      await start(b);
      return { asked, backend: b, reason };
    } catch (e) {
      last = e;
      reason += `; ${b} could not start in tfjs (${e instanceof Error ? e.message : String(e)})`;
    }
  }
  throw new TfBackendError(order.join('/'), last);
}

// Choices run one after another: two concurrent setBackend calls would leave either backend active.
let queue: Promise<unknown> = Promise.resolve();
let lastChoice: Promise<TfChoice> | null = null;

/**
 * Selects the tfjs backend for `pref` and says where it runs and why. 'auto' is re-resolved on every call (cheap
 * once this device is measured), so a change in the System panel reaches the next training in a long-lived worker.
 */
export function initTfChoice(pref: TfBackendPreference = 'auto'): Promise<TfChoice> {
  const c = queue.then(() => choose(pref));
  queue = c.catch(() => undefined);
  lastChoice = c;
  c.catch(() => {
    if (lastChoice === c) lastChoice = null;
  });
  return c;
}

/** `initTfChoice`, answering only the backend (the engines' long-standing signature). */
export async function initTf(pref: TfBackendPreference = 'auto'): Promise<TfBackendName> {
  return (await initTfChoice(pref)).backend;
}

/**
 * The backend already chosen by an earlier `initTf` (whatever its preference), else `initTf('auto')`. For code
 * that trains inside a run whose caller picked the backend: calling `initTf('auto')` there would switch away
 * from an explicit choice such as 'wasm' while the run still reports it.
 */
export async function ensureTf(): Promise<TfBackendName> {
  return lastChoice ? (await lastChoice).backend : initTf('auto');
}

/** The last choice (where the current run's heads train and why), or null before any `initTf`. */
export function lastTfChoice(): Promise<TfChoice> | null {
  return lastChoice;
}

/** The backend tfjs is using now (after `initTf`). */
export function currentTfBackend(): string {
  return tf.getBackend();
}

/**
 * Milliseconds per iteration of the backend benchmark's workload (`BENCH_WORKLOAD` in backend-choice.ts) on one
 * backend, after one warm-up run. Switches tfjs to that backend: wrap it in `restoreTfBackend()`.
 */
export async function timeTfWorkload(backend: 'webgpu' | 'wasm', iterations: number): Promise<number> {
  await register(backend);
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs could not initialise the ${backend} backend`);
  await tf.ready();
  const x = tf.randomUniform([1, 64, 64, 16], 0, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomUniform([3, 3, 16, 32], -0.1, 0.1, 'float32', 2) as tf.Tensor4D;
  const a = tf.randomUniform([256, 256], -1, 1, 'float32', 3) as tf.Tensor2D;
  const once = async () => {
    const out = tf.tidy(() => {
      const y = tf.relu(tf.conv2d(x, w, 1, 'same'));
      const m = tf.matMul(a, a);
      return tf.add(tf.sum(y), tf.sum(m));
    });
    // Reading back forces the GPU queue to finish, so the time covers the work and not just its submission.
    await out.data();
    out.dispose();
  };
  try {
    await once();
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) await once();
    return (performance.now() - t0) / iterations;
  } finally {
    x.dispose();
    w.dispose();
    a.dispose();
  }
}

/**
 * Remembers the current backend and returns a function that puts it back: the benchmark shares tfjs with the
 * context's own ML code (the train worker's heads), whose started backend must stay true.
 */
export function restoreTfBackend(): () => Promise<void> {
  // `getBackend()` only reads (before any setBackend it is null); it initialises nothing.
  const before = tf.getBackend() as string | null;
  return async () => {
    if (before && tf.getBackend() !== before) await tf.setBackend(before).catch(() => false);
  };
}

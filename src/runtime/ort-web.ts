/**
 * The browser flavour of the onnxruntime door: `onnxruntime-web` (the JSEP build, whose WebGPU provider gives
 * correct Conv results for 9-channel inputs on SwiftShader where 'onnxruntime-web/webgpu' did not) with WASM as
 * the fallback. The .wasm file is imported with Vite's `?url`, so the build ships it next to the bundle and the
 * app works offline (no CDN).
 *
 * Before a WebGPU load the adapter's real limits are checked against the model (`checkAdapterLimits`), so a model
 * too large for this GPU fails at once with a message that names a smaller tier or the server backend, instead of
 * a device loss halfway through.
 */
import * as ort from 'onnxruntime-web';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.mjs?url';
import { DeviceLossWatch } from './device-lost.ts';
import { env } from './env.ts';
import { SessionCounter } from './ort-sessions.ts';
import { type ThreadPlan, announceSessions, announceThreads, planWasmThreads, withCores } from './threads.ts';
import { inspectOnnx } from './models/onnx-inspect.ts';
import { checkProbe, dequantizeProbe } from './ort-selfcheck.ts';
import {
  SessionCreateError,
  checkAdapterLimits,
  checkModelPlan,
  messageOf,
  wrapSession,
  type AdapterFacts,
  type Backend,
  type CreateSessionOptions,
  type ModelNeeds,
  type ModelPlan,
  type OrtBackend,
  type OrtSession,
  type TensorCtor,
} from './ort.ts';

export * from './ort.ts';

/**
 * Every `InferenceSession` this context creates, the self-check probes included (`ort-sessions.ts`): counted
 * until released, announced per worker for the System panel and read by `liveOrtSessions()`.
 */
const sessions = new SessionCounter();
sessions.onChange((n) => announceSessions('onnxruntime', n));

/** onnxruntime sessions created in this context and not released yet. */
export function liveOrtSessions(): number {
  return sessions.live;
}

/** `ort.InferenceSession.create`, counted. */
function createCounted(
  model: Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  return sessions.create(() => ort.InferenceSession.create(model, options));
}

let configured: ThreadPlan | null = null;
/**
 * Sets the WASM options once, before the first session, from DefectLab's `env` (`env.ts`): the binary's location
 * (the bundled files unless `env.wasm.ortPaths` says otherwise) and the thread count (`planWasmThreads`:
 * `min(hardwareConcurrency, 8)` when cross-origin isolated, else 1 with the reason), announced for the System
 * panel. The pthread workers load the shipped `.mjs` (not the bundle chunk that holds onnxruntime: that chunk is
 * our own worker, whose top-level code must not run again in every pthread). The proxy worker is off because
 * sessions already live in our own worker. onnxruntime reads these at its first session, so later calls keep
 * the first plan.
 */
function configure(numThreads: number | undefined): ThreadPlan {
  if (configured) return configured;
  const plan = planWasmThreads(undefined, numThreads ?? env.wasm.numThreads);
  ort.env.wasm.wasmPaths = env.wasm.ortPaths ?? { wasm: wasmUrl, mjs: mjsUrl };
  ort.env.wasm.numThreads = plan.threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  announceThreads('onnxruntime', plan.threads, plan.reason);
  configured = plan;
  return plan;
}

/**
 * onnxruntime's WebGPU device (`device-lost.ts`). The JSEP provider creates one device for the life of its WASM
 * module and cannot replace it, so once it is lost every WebGPU session of this context fails its runs with
 * `GpuDeviceLostError`, and every later WebGPU request falls back to WASM with the reason. (A fresh worker gets a
 * fresh module and device: the diffusion client loads its model again there, on WASM, after a loss.)
 */
const ortGpu = new DeviceLossWatch(
  'onnxruntime',
  'run it again: the model is loaded again on WASM (reload the page to retry the GPU)',
);

/** The loss of onnxruntime's WebGPU device in this context, or null (diagnostics, tests). */
export function ortGpuLoss() {
  return ortGpu.lost;
}

/** Starts watching the device onnxruntime's WebGPU provider created for its first session. */
async function watchOrtDevice(): Promise<void> {
  try {
    ortGpu.watch(await ort.env.webgpu.device);
    ortGpu.quietEchoes();
  } catch {
    // No device to watch (the provider did not start): nothing can be lost.
  }
}

/** A WebGPU session whose runs fail with `GpuDeviceLostError` once the device is lost (instead of hanging). */
function watchingLoss(s: OrtSession): OrtSession {
  const run = s.run.bind(s);
  return { ...s, run: (...args: Parameters<OrtSession['run']>) => ortGpu.whileAlive(run(...args)) };
}

/** The session with every `run` holding the cores lock (`withCores`: two worker pools never compute at once). */
function sharingCores(s: OrtSession, threads: number): OrtSession {
  if (threads <= 1) return s;
  const run = s.run.bind(s);
  // wrapSession answers a plain object of closures, so a spread copy keeps every member working.
  return { ...s, run: (...args: Parameters<OrtSession['run']>) => withCores(threads, () => run(...args)) };
}

let adapterPromise: Promise<GPUAdapter | null> | null = null;
function adapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return Promise.resolve(null);
  adapterPromise ??= gpu.requestAdapter().catch(() => null);
  return adapterPromise;
}

/** The adapter facts the limits check reads, or null without WebGPU. */
export async function adapterFacts(): Promise<AdapterFacts | null> {
  const a = await adapter();
  if (!a) return null;
  return {
    maxBufferSize: a.limits.maxBufferSize,
    maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
    shaderF16: a.features.has('shader-f16'),
  };
}

async function load(model: Uint8Array | string): Promise<Uint8Array> {
  if (typeof model !== 'string') return model;
  const res = await fetch(model);
  if (!res.ok) throw new Error(`GET ${model} answered ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

function needsOf(bytes: Uint8Array, opts: CreateSessionOptions, name: string): ModelNeeds {
  if (opts.needs) return opts.needs;
  const s = inspectOnnx(bytes, name);
  return { largestTensorBytes: s.largestTensorBytes, totalBytes: s.totalTensorBytes, usesFp16: s.usesFp16 };
}

let dequantizeCheck: Promise<string> | null = null;
/**
 * '' when this adapter's WebGPU DequantizeLinear computes what the spec says (int8 and uint8), else the problem;
 * run once (two tiny sessions), only when a graph headed for WebGPU contains DequantizeLinear.
 */
function webgpuDequantizeProblem(): Promise<string> {
  dequantizeCheck ??= (async () => {
    for (const kind of ['int8', 'uint8'] as const) {
      const problem = await checkProbe(dequantizeProbe(kind), async (model) => {
        const s = await createCounted(model, { executionProviders: ['webgpu'] });
        try {
          const x = new ort.Tensor('float32', Float32Array.of(0), [1]);
          const out = await s.run({ x });
          return (await out.y.getData(true)) as Float32Array;
        } finally {
          await s.release();
        }
      });
      if (problem) return `${kind} DequantizeLinear on this WebGPU adapter is wrong: ${problem}`;
    }
    return '';
  })();
  return dequantizeCheck;
}

/** onnxruntime's message when `session.disable_cpu_ep_fallback` meets a node without a kernel on the EP. */
const CPU_FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/i;

/**
 * A WebGPU session, and whether onnxruntime had to place some nodes on its CPU (WASM) kernels. The JSEP WebGPU
 * provider lacks kernels for some ops (int8 dynamic quantization: DynamicQuantizeLinear, MatMulInteger,
 * ConvInteger); onnxruntime then assigns those nodes to the CPU provider, node by node, and copies tensors
 * across — correct, but slower, and invisible unless asked. So the first attempt forbids the CPU fallback; only
 * if onnxruntime refuses for that reason is the session created again with it, and the caller is told.
 */
async function createOnWebgpu(
  bytes: Uint8Array,
  common: ort.InferenceSession.SessionOptions,
  name: string,
): Promise<{ session: ort.InferenceSession; partialFallback: string }> {
  try {
    const session = await createCounted(bytes, {
      ...common,
      executionProviders: ['webgpu'],
      extra: {
        session: {
          ...(common.extra as { session?: object } | undefined)?.session,
          disable_cpu_ep_fallback: '1',
        },
      },
    });
    return { session, partialFallback: '' };
  } catch (e) {
    if (!CPU_FALLBACK_REFUSED.test(messageOf(e))) throw e;
  }
  const session = await createCounted(bytes, { ...common, executionProviders: ['webgpu'] });
  return {
    session,
    partialFallback: `some nodes of ${name} have no WebGPU kernel in onnxruntime-web (e.g. a cast of an int64 timestep, int8 dynamic-quantization ops) and run on its CPU (WASM) kernels: same results, slower where those nodes are heavy`,
  };
}

/**
 * Creates a session on WebGPU (default when available) or WASM. A WebGPU request without WebGPU, or whose
 * session creation fails, falls back to WASM with the reason in `fallbackReason`; a model that does not fit the
 * adapter throws `GpuLimitError` (falling back silently would hide a 10× slowdown).
 */
export async function createSession(
  model: Uint8Array | string,
  opts: CreateSessionOptions = {},
): Promise<OrtSession> {
  const threads = configure(opts.numThreads).threads;
  const name = opts.name ?? (typeof model === 'string' ? model : 'model');
  const requested: Backend = opts.backend ?? 'webgpu';
  const bytes = await load(model);
  const externalData = opts.externalData?.map((e) => ({ path: e.path, data: e.data }));
  const common: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    ...(externalData ? { externalData } : {}),
    // An idle pool that spins would take the cores the other worker holds the lock for (threads.ts).
    ...(threads > 1 ? { extra: { session: { 'intra_op.allow_spinning': '0' } } } : {}),
  };
  let fallbackReason =
    requested === 'cuda' || requested === 'cpu'
      ? `${requested} is not available in the browser; using WASM`
      : '';
  const loss = ortGpu.lost;
  if (requested === 'webgpu' && loss)
    fallbackReason = `the WebGPU device was lost earlier (${loss.reason}${loss.message ? `: ${loss.message}` : ''}); using WASM`;
  else if (requested === 'webgpu') {
    const facts = await adapterFacts();
    if (!facts) fallbackReason = 'WebGPU is not available in this browser; using WASM';
    else {
      checkAdapterLimits(name, needsOf(bytes, opts, name), facts);
      const ops = opts.ops ?? inspectOnnx(bytes, name).ops;
      const dqProblem = ops.includes('DequantizeLinear') ? await webgpuDequantizeProblem() : '';
      if (dqProblem)
        fallbackReason = `${dqProblem} (onnxruntime-web's JSEP kernel); ${name} uses it, so it runs on WASM`;
      else
        try {
          const { session, partialFallback } = await createOnWebgpu(bytes, common, name);
          try {
            await watchOrtDevice();
            return watchingLoss(
              wrapSession(session, ort.Tensor as unknown as TensorCtor, {
                name,
                backend: 'webgpu',
                fallbackReason: '',
                partialFallback,
              }),
            );
          } catch (e) {
            // The caller never gets this session (the WASM one made next replaces it): release it, or it lives on.
            await session.release().catch(() => undefined);
            throw e;
          }
        } catch (e) {
          fallbackReason = `WebGPU could not load ${name} (${messageOf(e).split('\n')[0]}); using WASM`;
        }
    }
  }
  let s: ort.InferenceSession | undefined;
  try {
    s = await createCounted(bytes, { ...common, executionProviders: ['wasm'] });
    return sharingCores(
      wrapSession(s, ort.Tensor as unknown as TensorCtor, {
        name,
        backend: 'wasm',
        fallbackReason,
        partialFallback: '',
      }),
      threads,
    );
  } catch (e) {
    await s?.release().catch(() => undefined);
    throw new SessionCreateError(name, 'wasm', e);
  }
}

/**
 * The whole-model check before loading: on WebGPU (the default when present) the adapter's buffer limits and
 * shader-f16, everywhere `navigator.deviceMemory` (page and worker both expose it in Chromium).
 */
export async function preflight(plan: ModelPlan, backend?: Backend): Promise<string[]> {
  const wantsGpu = (backend ?? 'webgpu') === 'webgpu';
  const adapter = wantsGpu ? await adapterFacts() : null;
  const deviceMemoryGiB = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
  return checkModelPlan(plan, {
    adapter,
    ...(typeof deviceMemoryGiB === 'number' ? { deviceMemoryGiB } : {}),
  });
}

export const webBackend: OrtBackend = {
  flavour: 'web',
  version: ort.env.versions?.web ?? ort.env.versions?.common ?? 'unknown',
  async availableBackends() {
    return (await adapter()) ? ['webgpu', 'wasm'] : ['wasm'];
  },
  createSession,
  preflight,
  adapterFacts,
  liveSessions: liveOrtSessions,
};

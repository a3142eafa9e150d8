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
import { inspectOnnx } from './models/onnx-inspect.ts';
import {
  SessionCreateError,
  checkAdapterLimits,
  messageOf,
  wrapSession,
  type AdapterFacts,
  type Backend,
  type CreateSessionOptions,
  type ModelNeeds,
  type OrtBackend,
  type OrtSession,
  type TensorCtor,
} from './ort.ts';

export * from './ort.ts';

let configured = false;
/**
 * Sets the WASM options once, before the first session: the thread count is explicit (1 unless asked; threads
 * need cross-origin isolation and gain little on the tiny models) and the proxy worker is off because sessions
 * already live in our own worker.
 */
function configure(numThreads: number | undefined): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.wasmPaths = { wasm: wasmUrl };
  ort.env.wasm.numThreads = numThreads ?? 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
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

/**
 * Creates a session on WebGPU (default when available) or WASM. A WebGPU request without WebGPU, or whose
 * session creation fails, falls back to WASM with the reason in `fallbackReason`; a model that does not fit the
 * adapter throws `GpuLimitError` (falling back silently would hide a 10× slowdown).
 */
export async function createSession(
  model: Uint8Array | string,
  opts: CreateSessionOptions = {},
): Promise<OrtSession> {
  configure(opts.numThreads);
  const name = opts.name ?? (typeof model === 'string' ? model : 'model');
  const requested: Backend = opts.backend ?? 'webgpu';
  const bytes = await load(model);
  const externalData = opts.externalData?.map((e) => ({ path: e.path, data: e.data }));
  const common = { graphOptimizationLevel: 'all' as const, ...(externalData ? { externalData } : {}) };
  let fallbackReason =
    requested === 'cuda' || requested === 'cpu'
      ? `${requested} is not available in the browser; using WASM`
      : '';
  if (requested === 'webgpu') {
    const facts = await adapterFacts();
    if (!facts) fallbackReason = 'WebGPU is not available in this browser; using WASM';
    else {
      checkAdapterLimits(name, needsOf(bytes, opts, name), facts);
      try {
        const s = await ort.InferenceSession.create(bytes, { ...common, executionProviders: ['webgpu'] });
        return wrapSession(s, ort.Tensor as unknown as TensorCtor, {
          name,
          backend: 'webgpu',
          fallbackReason: '',
        });
      } catch (e) {
        fallbackReason = `WebGPU could not load ${name} (${messageOf(e).split('\n')[0]}); using WASM`;
      }
    }
  }
  try {
    const s = await ort.InferenceSession.create(bytes, { ...common, executionProviders: ['wasm'] });
    return wrapSession(s, ort.Tensor as unknown as TensorCtor, { name, backend: 'wasm', fallbackReason });
  } catch (e) {
    throw new SessionCreateError(name, 'wasm', e);
  }
}

export const webBackend: OrtBackend = {
  flavour: 'web',
  version: ort.env.versions?.web ?? ort.env.versions?.common ?? 'unknown',
  async availableBackends() {
    return (await adapter()) ? ['webgpu', 'wasm'] : ['wasm'];
  },
  createSession,
};

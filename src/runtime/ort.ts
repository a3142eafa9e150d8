/**
 * The onnxruntime door: one interface (`OrtBackend`), two flavours.
 *
 * - `ort-web.ts` imports `onnxruntime-web` (the JSEP build: WebGPU EP with WASM fallback) for the browser;
 * - `ort-node.ts` imports `onnxruntime-node` (CPU, CUDA when asked and present) for Node, the server and tests.
 *
 * This file holds what both share and imports no runtime (only types), so a browser bundle never pulls
 * onnxruntime-node and a Node process never pulls the WASM build: the adapter from ORT sessions to the core's
 * `SessionLike` (serialized runs, every tensor disposed), the pre-load checks against the adapter's limits, and
 * the named errors. Everything else in the app reaches onnxruntime through `SessionLike`.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { DefectLabError } from '../core/errors.ts';
import type { SessionLike, TensorLike, TensorType, ValueInfo } from '../core/tensor.ts';

/** Where a session runs. 'webgpu'/'wasm' exist in the browser, 'cpu'/'cuda' in Node. */
export type Backend = 'webgpu' | 'wasm' | 'cpu' | 'cuda';

/** What a model needs from a GPU adapter; computed from the graph (`inspectOnnx`) or the manifest. */
export interface ModelNeeds {
  /** Bytes of the largest single initializer or external-data file: one WebGPU buffer must hold it. */
  largestTensorBytes: number;
  /** Total weight bytes (initializers + external data). */
  totalBytes: number;
  /** The graph computes in fp16 (fp16 initializers or I/O): WebGPU needs the shader-f16 feature. */
  usesFp16: boolean;
}

/** The adapter properties the pre-load check reads (a subset of `GPUAdapter`). */
export interface AdapterFacts {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  shaderF16: boolean;
}

export interface CreateSessionOptions {
  /** Requested backend; the session reports what it actually got in `backend` and why in `fallbackReason`. */
  backend?: Backend;
  /** A label for messages ('tiny-sdxl/unet'). */
  name?: string;
  /** ONNX external data files (models above 2 GB): `path` as written in the graph, with the bytes or a URL. */
  externalData?: { path: string; data: Uint8Array | string }[];
  /** Known needs (from the manifest) so the limits check need not parse the graph. */
  needs?: ModelNeeds;
  /** The graph's op types (`inspectOnnx(...).ops`), so kernel self-checks need not parse it again. */
  ops?: readonly string[];
  /** WASM threads (web only). Defaults to 1, which is what works everywhere (see DEVELOPERS.md). */
  numThreads?: number;
}

/** A `SessionLike` that also says where it runs. */
export interface OrtSession extends SessionLike {
  readonly name: string;
  /** The backend actually used. */
  readonly backend: Backend;
  /** Why the backend differs from the one requested (no CUDA, no WebGPU, …); empty when it does not. */
  readonly fallbackReason: string;
  /**
   * Non-empty when the session runs on `backend` but onnxruntime placed some nodes on its CPU kernels (ops the
   * WebGPU provider lacks, e.g. int8 dynamic quantization): correct results, slower.
   */
  readonly partialFallback: string;
}

/** The door both flavours implement. */
export interface OrtBackend {
  readonly flavour: 'web' | 'node';
  /** Backends this process can try, best first. */
  availableBackends(): Promise<Backend[]>;
  /** Loads a model from bytes or a URL/path. */
  createSession(model: Uint8Array | string, opts?: CreateSessionOptions): Promise<OrtSession>;
  /**
   * Before loading a whole model: refuses one this device cannot hold on `backend` (`checkModelPlan`: adapter
   * limits, shader-f16, memory) and returns warnings for one that may not fit.
   */
  preflight?(plan: ModelPlan, backend?: Backend): Promise<string[]>;
  /** The WebGPU adapter's limits and features (shader-f16 decides a float path's precision); null without one. */
  adapterFacts?(): Promise<AdapterFacts | null>;
  /** onnxruntime's version, for provenance and the System panel. */
  readonly version: string;
  /**
   * Sessions this door created in this context and has not released (onnxruntime keeps no such count:
   * `ort-sessions.ts`); a leak shows as a count that does not return to its baseline.
   */
  liveSessions?(): number;
}

/** The model does not fit the GPU adapter (buffer limits) or needs a feature it lacks (shader-f16). */
export class GpuLimitError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('GpuLimitError', problem, fix);
  }
}

/** onnxruntime refused to create a session (bad graph, unsupported op, out of memory). */
export class SessionCreateError extends DefectLabError {
  constructor(name: string, backend: Backend, cause: unknown) {
    super(
      'SessionCreateError',
      `onnxruntime could not load ${name} on ${backend}: ${messageOf(cause)}`,
      backend === 'webgpu'
        ? 'try the WASM backend, a smaller model tier, or the server backend (npm run server)'
        : 'check that the file is a complete ONNX export (re-download it, or rebuild with npm run models:tiny)',
      { cause },
    );
  }
}

/** A run failed (wrong feeds, shape mismatch, device lost). */
export class SessionRunError extends DefectLabError {
  constructor(name: string, cause: unknown) {
    super(
      'SessionRunError',
      `running ${name} failed: ${messageOf(cause)}`,
      'check that the model matches its manifest layout; if the GPU was lost, reload the page',
      { cause },
    );
  }
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const GiB = 1024 ** 3;
function fmtBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}

/**
 * Refuses, before anything is loaded, a model the adapter cannot hold: one initializer (or external-data
 * file) larger than `maxBufferSize`/`maxStorageBufferBindingSize`, or fp16 compute without shader-f16.
 * Throws `GpuLimitError` naming the numbers and a way out (smaller tier, WASM, the server backend).
 */
export function checkAdapterLimits(name: string, needs: ModelNeeds, adapter: AdapterFacts): void {
  const limit = Math.min(adapter.maxBufferSize, adapter.maxStorageBufferBindingSize);
  if (needs.largestTensorBytes > limit)
    throw new GpuLimitError(
      `${name} has a ${fmtBytes(needs.largestTensorBytes)} weight tensor but this GPU's largest buffer is ${fmtBytes(limit)}`,
      'pick a smaller tier (int8/int4, or the SD-inpaint model), use the WASM backend, or run on the server backend (npm run server)',
    );
  if (needs.usesFp16 && !adapter.shaderF16)
    throw new GpuLimitError(
      `${name} computes in fp16 but this GPU adapter lacks the shader-f16 feature`,
      'pick an fp32 or int8 tier of the model, use the WASM backend, or run on the server backend (npm run server)',
    );
}

/** The model's weights cannot fit this device's memory or the browser's storage. */
export class MemoryLimitError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('MemoryLimitError', problem, fix);
  }
}

/** What the memory check knows about the device; every field is optional (browsers expose little). */
export interface MemoryFacts {
  /** `navigator.deviceMemory`: GiB of RAM, rounded down to a power of two and capped at 8 (so 8 means "≥ 8"). */
  deviceMemoryGiB?: number;
  /** Node: bytes of RAM (`os.totalmem()`), not capped. */
  totalMemoryBytes?: number;
}

/** A whole model for the pre-load check: its total needs and each component's (named in messages). */
export interface ModelPlan {
  name: string;
  components: { name: string; needs: ModelNeeds }[];
}

const WAY_OUT =
  'pick a smaller tier (int8/int4, or the SD-inpaint model) or run on the server backend (npm run server)';

/**
 * Checks a model's total weight bytes against the device's memory before anything is loaded. Throws
 * `MemoryLimitError` when the weights alone exceed it — session creation holds them at least once, so loading
 * could only end in an out-of-memory crash. Returns warnings (not refusals) when they take more than half of
 * it: loading may work but swap or kill the tab. `navigator.deviceMemory` is capped at 8 GiB, so from a value
 * of 8 nothing is refused (the device may have far more), only warned about.
 */
export function checkModelMemory(name: string, needs: ModelNeeds, facts: MemoryFacts): string[] {
  const warnings: string[] = [];
  const capped = facts.totalMemoryBytes === undefined && facts.deviceMemoryGiB !== undefined;
  const ram = facts.totalMemoryBytes ?? (facts.deviceMemoryGiB ?? 0) * GiB;
  if (ram <= 0) return warnings;
  const ramText = capped && (facts.deviceMemoryGiB ?? 0) >= 8 ? `at least ${fmtBytes(ram)}` : fmtBytes(ram);
  if (needs.totalBytes > ram && !(capped && (facts.deviceMemoryGiB ?? 0) >= 8))
    throw new MemoryLimitError(
      `${name} has ${fmtBytes(needs.totalBytes)} of weights but this device has ${ramText} of memory`,
      WAY_OUT,
    );
  if (needs.totalBytes > ram / 2)
    warnings.push(
      `${name} has ${fmtBytes(needs.totalBytes)} of weights and this device reports ${ramText} of memory: loading may fail or slow the machine — ${WAY_OUT}`,
    );
  return warnings;
}

/**
 * Refuses a download the browser's storage quota cannot take (`navigator.storage.estimate()`): `bytesToFetch` is
 * what is not stored yet (a resumed download needs only the rest).
 */
export function checkStorageQuota(
  name: string,
  bytesToFetch: number,
  estimate: { quota?: number; usage?: number },
): void {
  if (estimate.quota === undefined) return;
  const free = estimate.quota - (estimate.usage ?? 0);
  if (bytesToFetch > free)
    throw new MemoryLimitError(
      `${name} needs ${fmtBytes(bytesToFetch)} more of storage but the browser grants this site ${fmtBytes(Math.max(0, free))} free (quota ${fmtBytes(estimate.quota)})`,
      `free disk space or purge cached models, pick the files from disk instead (Models tab → Pick files: read in place, not copied), ${WAY_OUT}`,
    );
}

/**
 * The pre-load check both flavours run (`OrtBackend.preflight`): each component against the adapter's buffer
 * limits and shader-f16 when headed for WebGPU (`checkAdapterLimits`, named `<model>/<component>`), then the
 * summed weights against the device's memory (`checkModelMemory`). Throws the first refusal; returns warnings.
 */
export function checkModelPlan(
  plan: ModelPlan,
  facts: MemoryFacts & { adapter?: AdapterFacts | null },
): string[] {
  if (facts.adapter) for (const c of plan.components) checkAdapterLimits(c.name, c.needs, facts.adapter);
  return checkModelMemory(plan.name, combineNeeds(plan.components.map((c) => c.needs)), facts);
}

/** Needs of a whole model from its components' needs: weights add up, the largest tensor is the maximum. */
export function combineNeeds(parts: readonly ModelNeeds[]): ModelNeeds {
  return {
    largestTensorBytes: Math.max(0, ...parts.map((p) => p.largestTensorBytes)),
    totalBytes: parts.reduce((a, p) => a + p.totalBytes, 0),
    usesFp16: parts.some((p) => p.usesFp16),
  };
}

const ORT_TYPES: Record<string, TensorType> = {
  float32: 'float32',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  int8: 'int8',
  bool: 'bool',
};

/** Reads input/output metadata from an ORT session into the core's `ValueInfo`. */
export function valueInfos(
  meta: readonly InferenceSession.ValueMetadata[] | undefined,
  names: readonly string[],
): ValueInfo[] {
  return names.map((name) => {
    const m = meta?.find((x) => x.name === name);
    if (!m || !m.isTensor) return { name, type: 'float32', shape: [] };
    return {
      name,
      type: ORT_TYPES[m.type] ?? 'float32',
      shape: m.shape.map((d) => (typeof d === 'number' ? d : d === undefined || d === null ? -1 : String(d))),
    };
  });
}

/**
 * fp16 outputs as the core expects them, Uint16Array bit patterns. Where the JS engine has `Float16Array`
 * (Chromium now does), onnxruntime-common returns one, whose elements are values, not bits: reading it as bits
 * turned every fp16 result into NaN in the browser. The buffer holds the same halves, so a view suffices.
 */
function halfBits(type: string, data: TensorLike['data']): TensorLike['data'] {
  if (type !== 'float16' || data instanceof Uint16Array) return data;
  const v = data as unknown as ArrayBufferView & { length: number };
  return new Uint16Array(v.buffer, v.byteOffset, v.length);
}

/** The two constructors every ORT flavour exposes (`ort.Tensor`), typed loosely enough for both. */
export interface TensorCtor {
  new (type: TensorType, data: TensorLike['data'], dims: readonly number[]): Tensor;
}

/**
 * Wraps an `InferenceSession` as an `OrtSession`:
 * - runs are serialized per session with a promise chain (WebGPU sessions must not run concurrently and
 *   onnxruntime-node's CPU session gains nothing from it);
 * - input tensors are created per run and disposed after it; outputs are copied to CPU (`getData`) and their
 *   ORT tensors disposed, so GPU buffers never leak;
 * - `release()` waits for the pending run, then releases the session once.
 */
export function wrapSession(
  session: InferenceSession,
  TensorClass: TensorCtor,
  info: { name: string; backend: Backend; fallbackReason: string; partialFallback?: string },
): OrtSession {
  let chain: Promise<unknown> = Promise.resolve();
  let released = false;
  const inputs = valueInfos(session.inputMetadata, session.inputNames);
  const outputs = valueInfos(session.outputMetadata, session.outputNames);

  async function runOnce(
    feeds: Record<string, TensorLike>,
    outputNames?: readonly string[],
  ): Promise<Record<string, TensorLike>> {
    if (released)
      throw new SessionRunError(info.name, new Error('the session was released; load the model again'));
    const ortFeeds: Record<string, Tensor> = {};
    try {
      for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new TensorClass(t.type, t.data, t.dims);
      let result: InferenceSession.OnnxValueMapType;
      try {
        result = outputNames ? await session.run(ortFeeds, [...outputNames]) : await session.run(ortFeeds);
      } catch (e) {
        throw new SessionRunError(info.name, e);
      }
      const out: Record<string, TensorLike> = {};
      for (const [k, v] of Object.entries(result)) {
        const t = v as Tensor;
        const data = halfBits(t.type, (await t.getData(true)) as TensorLike['data']);
        out[k] = { type: (ORT_TYPES[t.type] ?? 'float32') as TensorType, data, dims: [...t.dims] };
      }
      return out;
    } finally {
      for (const t of Object.values(ortFeeds)) t.dispose();
    }
  }

  return {
    name: info.name,
    backend: info.backend,
    fallbackReason: info.fallbackReason,
    partialFallback: info.partialFallback ?? '',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputs,
    outputs,
    run(feeds, outputNames) {
      const next = chain.then(
        () => runOnce(feeds, outputNames),
        () => runOnce(feeds, outputNames),
      );
      chain = next.catch(() => undefined);
      return next;
    },
    async release() {
      if (released) return;
      released = true;
      await chain;
      await session.release();
    },
  };
}

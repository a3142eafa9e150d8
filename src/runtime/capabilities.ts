/**
 * What this browser (or Node process) can do, detected once at start and shown in the System panel: WebGPU
 * (adapter, limits, shader-f16, software or hardware), threads (cross-origin isolation) and storage.
 * Detection never throws: a missing API is a value with a reason, so the app still starts on WASM.
 * Inputs are injectable (`CapabilityEnv`) so the decision parts run under Node in unit tests.
 */

/** The adapter limits the runtime cares about when deciding whether a model fits. */
export interface GpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxTextureDimension2D: number;
}

export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export type WebGpuCapability =
  | { available: false; reason: string }
  | {
      available: true;
      info: GpuAdapterSummary;
      /** True for SwiftShader / fallback adapters: WebGPU runs on the CPU there and is far slower than WASM. */
      software: boolean;
      /** Why it was judged software (which signal matched); empty when hardware. */
      softwareReason: string;
      isFallbackAdapter: boolean;
      shaderF16: boolean;
      features: string[];
      limits: GpuLimits;
    };

export interface ThreadCapability {
  /** COOP/COEP in effect: SharedArrayBuffer and therefore WASM threads are usable. */
  crossOriginIsolated: boolean;
  sharedArrayBuffer: boolean;
  hardwareConcurrency: number;
}

export type StorageCapability =
  | { available: false; reason: string }
  | { available: true; usage: number; quota: number; persisted: boolean };

export interface Capabilities {
  webgpu: WebGpuCapability;
  threads: ThreadCapability;
  storage: StorageCapability;
  userAgent: string;
  detectedAt: number;
}

/** The parts of the global scope detection reads; a browser's `globalThis` satisfies it. */
export interface CapabilityEnv {
  navigator?: {
    gpu?: Pick<GPU, 'requestAdapter'>;
    hardwareConcurrency?: number;
    userAgent?: string;
    storage?: Partial<Pick<StorageManager, 'estimate' | 'persisted' | 'persist'>>;
  };
  crossOriginIsolated?: boolean;
  SharedArrayBuffer?: unknown;
}

/** Vendors/descriptions of CPU implementations of WebGPU (Chromium's SwiftShader, Mesa's llvmpipe/lavapipe…). */
const SOFTWARE_PATTERNS = [
  /swiftshader/i,
  /llvmpipe/i,
  /lavapipe/i,
  /softpipe/i,
  /microsoft basic render/i,
  /warp/i,
];

/**
 * Judges whether an adapter is a software one. Chromium reports SwiftShader through `info.vendor`/`architecture`
 * ("google", "swiftshader") and sometimes sets `isFallbackAdapter`; either signal counts.
 */
export function classifyAdapter(
  info: Partial<GpuAdapterSummary>,
  isFallbackAdapter: boolean,
): { software: boolean; reason: string } {
  if (isFallbackAdapter) return { software: true, reason: 'the browser marks it as a fallback adapter' };
  const fields = [info.vendor, info.architecture, info.device, info.description].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  for (const f of fields) {
    for (const p of SOFTWARE_PATTERNS) {
      if (p.test(f)) return { software: true, reason: `adapter info says "${f}"` };
    }
  }
  return { software: false, reason: '' };
}

function readLimits(l: Partial<GPUSupportedLimits> | undefined): GpuLimits {
  return {
    maxBufferSize: Number(l?.maxBufferSize ?? 0),
    maxStorageBufferBindingSize: Number(l?.maxStorageBufferBindingSize ?? 0),
    maxComputeWorkgroupStorageSize: Number(l?.maxComputeWorkgroupStorageSize ?? 0),
    maxComputeInvocationsPerWorkgroup: Number(l?.maxComputeInvocationsPerWorkgroup ?? 0),
    maxTextureDimension2D: Number(l?.maxTextureDimension2D ?? 0),
  };
}

export async function detectWebGpu(
  env: CapabilityEnv = globalThis as CapabilityEnv,
): Promise<WebGpuCapability> {
  const gpu = env.navigator?.gpu;
  if (!gpu) {
    return {
      available: false,
      reason: 'this browser has no navigator.gpu (WebGPU is off or unsupported)',
    };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return {
      available: false,
      reason: `requestAdapter failed: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
  if (!adapter)
    return { available: false, reason: 'requestAdapter returned no adapter (GPU blocklisted or absent)' };
  const raw = (adapter as GPUAdapter & { info?: Partial<GPUAdapterInfo> }).info ?? {};
  const info: GpuAdapterSummary = {
    vendor: raw.vendor ?? '',
    architecture: raw.architecture ?? '',
    device: raw.device ?? '',
    description: raw.description ?? '',
  };
  // `isFallbackAdapter` moved from the adapter to its info in newer specs; read both.
  const fallback =
    Boolean((adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
    Boolean((raw as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const cls = classifyAdapter(info, fallback);
  const features = [...(adapter.features as ReadonlySet<string>)].sort();
  return {
    available: true,
    info,
    software: cls.software,
    softwareReason: cls.reason,
    isFallbackAdapter: fallback,
    shaderF16: features.includes('shader-f16'),
    features,
    limits: readLimits(adapter.limits),
  };
}

export function detectThreads(env: CapabilityEnv = globalThis as CapabilityEnv): ThreadCapability {
  return {
    crossOriginIsolated: Boolean(env.crossOriginIsolated),
    sharedArrayBuffer: typeof env.SharedArrayBuffer === 'function',
    hardwareConcurrency: env.navigator?.hardwareConcurrency ?? 1,
  };
}

export async function detectStorage(
  env: CapabilityEnv = globalThis as CapabilityEnv,
): Promise<StorageCapability> {
  const s = env.navigator?.storage;
  if (!s?.estimate) return { available: false, reason: 'navigator.storage.estimate is not available' };
  try {
    const est = await s.estimate();
    const persisted = s.persisted ? await s.persisted() : false;
    return { available: true, usage: est.usage ?? 0, quota: est.quota ?? 0, persisted };
  } catch (e) {
    return {
      available: false,
      reason: `storage estimate failed: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

/** Asks the browser to keep our data under storage pressure; returns whether it is now persistent. */
export async function requestPersistentStorage(
  env: CapabilityEnv = globalThis as CapabilityEnv,
): Promise<boolean> {
  const s = env.navigator?.storage;
  if (!s?.persist) return false;
  try {
    return await s.persist();
  } catch {
    return false;
  }
}

export async function detectCapabilities(
  env: CapabilityEnv = globalThis as CapabilityEnv,
): Promise<Capabilities> {
  const [webgpu, storage] = await Promise.all([detectWebGpu(env), detectStorage(env)]);
  return {
    webgpu,
    threads: detectThreads(env),
    storage,
    userAgent: env.navigator?.userAgent ?? '',
    detectedAt: Date.now(),
  };
}

/** A one-line notice when WebGPU work will be slow or impossible; null when a hardware adapter is present. */
export function webGpuNotice(webgpu: WebGpuCapability): string | null {
  if (!webgpu.available) {
    return `WebGPU is not available (${webgpu.reason}). Everything still works on WASM (CPU), only slower.`;
  }
  if (webgpu.software) {
    return `WebGPU runs on a software adapter (${webgpu.softwareReason}): it is far slower than WASM here, so "auto" uses the faster backend measured on this device.`;
  }
  return null;
}

/** Bytes as a short human string (1.5 GB). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

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

/** Where the one automatic persistence request is remembered (the store's settings). */
export const PERSIST_REQUEST_SETTING = 'storage.persistRequest';

/** What `ensurePersistentStorage` found or did; the System panel shows it. */
export interface PersistenceState {
  /** The browser keeps our data under storage pressure (`navigator.storage.persisted()`). */
  persisted: boolean;
  /** When DefectLab asked (`persist()`), null if it never did; it asks automatically once per profile. */
  askedAt: number | null;
  /** It asked and the browser said no (and it is still not persistent). */
  refused: boolean;
  /** `persist()` was called by this call (false when the answer came from the remembered request). */
  askedNow: boolean;
  /** Set when the browser has no persistence API at all. */
  unsupported?: string;
}

/** The piece of the store this needs (keeps capabilities free of the IndexedDB module). */
export interface SettingsStore {
  getSetting<T>(key: string): Promise<T | undefined>;
  setSetting<T>(key: string, value: T): Promise<void>;
}

/**
 * Asks for persistent storage once per profile, automatically (at first start, when the sample dataset or the
 * first import is stored), and afterwards only reports the state: asking on every start would re-prompt in
 * Firefox, and Chromium answers from its own heuristics (bookmarked, installed, engagement) without prompting, so
 * asking again changes nothing until the user does one of those and presses "Persist storage" in the System panel.
 */
export async function ensurePersistentStorage(
  settings: SettingsStore,
  env: CapabilityEnv = globalThis as CapabilityEnv,
): Promise<PersistenceState> {
  const s = env.navigator?.storage;
  const asked = await settings.getSetting<{ askedAt: number; granted: boolean }>(PERSIST_REQUEST_SETTING);
  const askedAt = asked?.askedAt ?? null;
  if (!s?.persist) {
    return {
      persisted: false,
      askedAt,
      refused: false,
      askedNow: false,
      unsupported: 'this browser has no navigator.storage.persist',
    };
  }
  const already = s.persisted ? await s.persisted().catch(() => false) : false;
  if (already) return { persisted: true, askedAt, refused: false, askedNow: false };
  if (asked) return { persisted: false, askedAt, refused: true, askedNow: false };
  return askForPersistence(settings, env);
}

/** Calls `persist()` now (the System panel's button, or the first automatic request) and remembers the answer. */
export async function askForPersistence(
  settings: SettingsStore,
  env: CapabilityEnv = globalThis as CapabilityEnv,
): Promise<PersistenceState> {
  const granted = await requestPersistentStorage(env);
  const now = Date.now();
  await settings.setSetting(PERSIST_REQUEST_SETTING, { askedAt: now, granted });
  return { persisted: granted, askedAt: now, refused: !granted, askedNow: true };
}

/** The notice shown when the browser refused persistence: what it means and what the user can do. */
export function persistenceRefusedNotice(): string {
  return (
    'The browser did not grant persistent storage, so it may evict your datasets when the disk runs low — fix: ' +
    'bookmark or install DefectLab (Chromium grants persistence to those), or allow it when Firefox asks, then ' +
    'press "Persist storage" in the System panel; export datasets you cannot lose.'
  );
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

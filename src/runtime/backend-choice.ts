/**
 * Which compute backend the ML code uses: the user's preference ('auto' | 'webgpu' | 'wasm') resolved against
 * what this device has. On a software WebGPU adapter (SwiftShader) WebGPU is ~100× slower than WASM, so 'auto'
 * decides from a short micro-benchmark (a conv + matmul loop timed on each backend with tfjs), run once per device
 * and remembered in localStorage keyed by adapter info + user agent (mirrored into the store's IndexedDB settings,
 * because the workers that call this have no localStorage). The benchmark runs lazily: on the first
 * `preferredBackend()` call that needs it, or when the user asks for it in the System panel.
 *
 * ORT and tfjs code call `preferredBackend()`; the pure decision (`decideBackend`) is unit-tested.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import { detectWebGpu, type CapabilityEnv, type WebGpuCapability } from './capabilities.ts';

export type Backend = 'webgpu' | 'wasm';
export type BackendPreference = 'auto' | Backend;
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'webgpu', 'wasm'];

/** One device's benchmark: milliseconds per iteration of the same workload, null where the backend failed. */
export interface MicroBenchResult {
  deviceKey: string;
  workload: string;
  webgpuMs: number | null;
  wasmMs: number | null;
  webgpuError?: string;
  wasmError?: string;
  measuredAt: number;
}

export interface BackendDecision {
  backend: Backend;
  /** Why, in words for the System panel. */
  reason: string;
}

export type Resolution = BackendDecision | { needsBenchmark: true; reason: string };

/** The few facts about WebGPU the decision needs. */
export interface WebGpuFacts {
  available: boolean;
  software?: boolean;
  /** Why WebGPU is unavailable, when it is. */
  reason?: string;
}

/**
 * The pure decision. 'wasm' is always honoured; 'webgpu' falls back to WASM only when WebGPU is missing;
 * 'auto' takes the faster backend of this device's benchmark, or asks for one when there is none yet.
 */
export function decideBackend(
  pref: BackendPreference,
  webgpu: WebGpuFacts,
  bench: MicroBenchResult | undefined,
): Resolution {
  if (pref === 'wasm') return { backend: 'wasm', reason: 'you chose WASM' };
  if (!webgpu.available) {
    const why = webgpu.reason ? ` (${webgpu.reason})` : '';
    return {
      backend: 'wasm',
      reason:
        pref === 'webgpu'
          ? `you chose WebGPU but it is not available${why}; using WASM`
          : `WebGPU is not available${why}`,
    };
  }
  if (pref === 'webgpu') return { backend: 'webgpu', reason: 'you chose WebGPU' };
  if (!bench) return { needsBenchmark: true, reason: 'no benchmark on this device yet' };
  const { webgpuMs, wasmMs } = bench;
  if (webgpuMs == null && wasmMs == null) {
    return { backend: 'wasm', reason: 'both backends failed the benchmark; WASM is the safer choice' };
  }
  if (webgpuMs == null) {
    return {
      backend: 'wasm',
      reason: `WebGPU failed the benchmark (${bench.webgpuError ?? 'unknown error'})`,
    };
  }
  if (wasmMs == null) {
    return { backend: 'webgpu', reason: `WASM failed the benchmark (${bench.wasmError ?? 'unknown error'})` };
  }
  const faster: Backend = webgpuMs < wasmMs ? 'webgpu' : 'wasm';
  const ratio = faster === 'webgpu' ? wasmMs / webgpuMs : webgpuMs / wasmMs;
  return {
    backend: faster,
    reason: `benchmark: WebGPU ${webgpuMs.toFixed(1)} ms vs WASM ${wasmMs.toFixed(1)} ms per iteration (${
      faster === 'webgpu' ? 'WebGPU' : 'WASM'
    } ${ratio.toFixed(1)}× faster)${webgpu.software ? '; the WebGPU adapter is software' : ''}`,
  };
}

/** A stable key for "this device": adapter identity plus the browser build (drivers change with both). */
export function deviceKey(
  info: { vendor?: string; architecture?: string; device?: string; description?: string } | null,
  userAgent: string,
): string {
  const gpu = info
    ? [info.vendor, info.architecture, info.device, info.description].map((s) => s ?? '').join('/')
    : 'no-webgpu';
  return `${gpu}|${userAgent}`;
}

/** FNV-1a of a string as 8 hex digits: keeps storage keys short while the full key is kept in the record. */
export function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The part of `Storage` used here, so tests can pass a Map-backed one. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const PREF_KEY = 'defectlab.backend.preference';
const benchKey = (device: string) => `defectlab.backend.bench.${shortHash(device)}`;

class MemoryStore implements KeyValueStore {
  private m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

let fallbackStore: KeyValueStore | null = null;
function defaultStore(): KeyValueStore {
  try {
    const ls = (globalThis as { localStorage?: KeyValueStore }).localStorage;
    if (ls) return ls;
  } catch {
    // Access to localStorage throws in sandboxed frames; remember in memory for this session instead.
  }
  fallbackStore ??= new MemoryStore();
  return fallbackStore;
}

/** A stored preference string as a preference ('auto' when absent or unknown). */
export function parsePreference(raw: string | null | undefined): BackendPreference {
  return raw && (BACKEND_PREFERENCES as readonly string[]).includes(raw)
    ? (raw as BackendPreference)
    : 'auto';
}

/** A stored benchmark as a result, or undefined when absent, corrupt or from another device. */
export function parseBench(raw: string | null | undefined, device: string): MicroBenchResult | undefined {
  if (!raw) return undefined;
  try {
    const r = JSON.parse(raw) as MicroBenchResult;
    if (r.deviceKey !== device) return undefined;
    const okNum = (x: unknown) => x === null || (typeof x === 'number' && Number.isFinite(x) && x >= 0);
    if (!okNum(r.webgpuMs) || !okNum(r.wasmMs)) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

export function loadPreference(store: KeyValueStore = defaultStore()): BackendPreference {
  return parsePreference(store.getItem(PREF_KEY));
}

export function savePreference(pref: BackendPreference, store: KeyValueStore = defaultStore()): void {
  store.setItem(PREF_KEY, pref);
}

/** The stored benchmark of this device, or undefined when absent, corrupt or from another device. */
export function loadBench(
  device: string,
  store: KeyValueStore = defaultStore(),
): MicroBenchResult | undefined {
  return parseBench(store.getItem(benchKey(device)), device);
}

export function saveBench(r: MicroBenchResult, store: KeyValueStore = defaultStore()): void {
  store.setItem(benchKey(r.deviceKey), JSON.stringify(r));
}

export function clearBench(device: string, store: KeyValueStore = defaultStore()): void {
  store.removeItem(benchKey(device));
}

// Workers (features, train, experiments call `preferredBackend()` there) have no localStorage, so the preference
// and the benchmarks are mirrored into the store's settings (IndexedDB), which every context of the origin reads.
// localStorage stays the main thread's fast path; IndexedDB is the copy workers see.

interface SettingsLike {
  getSetting<T>(key: string): Promise<T | undefined>;
  setSetting<T>(key: string, value: T): Promise<void>;
}

let settingsPromise: Promise<SettingsLike | null> | null = null;
function sharedSettings(): Promise<SettingsLike | null> {
  settingsPromise ??=
    typeof indexedDB === 'undefined'
      ? Promise.resolve(null)
      : import('./db/store.ts').then(
          (m) => m.openStore(),
          () => null,
        );
  return settingsPromise.catch(() => null);
}

function hasLocalStorage(): boolean {
  try {
    return typeof (globalThis as { localStorage?: unknown }).localStorage === 'object';
  } catch {
    return false;
  }
}

async function readShared(key: string): Promise<string | null> {
  const local = defaultStore().getItem(key);
  if (local !== null) return local;
  const settings = await sharedSettings();
  const v = settings ? await settings.getSetting<string>(key).catch(() => undefined) : undefined;
  if (typeof v !== 'string') return null;
  // A benchmark a worker measured: cache it on the main thread too.
  if (hasLocalStorage()) defaultStore().setItem(key, v);
  return v;
}

async function writeShared(key: string, value: string): Promise<void> {
  defaultStore().setItem(key, value);
  const settings = await sharedSettings();
  if (settings) await settings.setSetting(key, value).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// The micro-benchmark (browser only; tfjs is loaded on demand so it costs nothing at first paint)

/** Workload per iteration: a 3×3 conv (1×64×64×16 → 32 channels) + ReLU, then a 256×256 matmul. */
export const BENCH_WORKLOAD = 'conv3x3 1x64x64x16->32 + relu + matmul 256x256';
const BENCH_ITERATIONS = 5;
const BENCH_TIMEOUT_MS = 30_000;

type Tf = typeof TfCore;

let wasmReady: Promise<void> | null = null;
async function loadWasmBackend(tf: Tf): Promise<void> {
  wasmReady ??= (async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const [plain, simd, threaded] = await Promise.all([
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url'),
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'),
      import('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url'),
    ]);
    // Without this the threaded build hangs under COOP/COEP in a Vite build (DEVELOPERS.md).
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    try {
      wasm.setWasmPaths({
        'tfjs-backend-wasm.wasm': plain.default,
        'tfjs-backend-wasm-simd.wasm': simd.default,
        'tfjs-backend-wasm-threaded-simd.wasm': threaded.default,
      });
    } catch {
      // Another module initialised the WASM backend first with its own paths; that instance is fine to time.
    }
  })();
  return wasmReady;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Milliseconds per iteration of `BENCH_WORKLOAD` on one tfjs backend (after one warm-up run). */
async function timeBackend(tf: Tf, backend: Backend): Promise<number> {
  if (backend === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  else await loadWasmBackend(tf);
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs could not initialise the ${backend} backend`);
  await tf.ready();
  const x = tf.randomUniform([1, 64, 64, 16], 0, 1, 'float32', 1) as TfCore.Tensor4D;
  const w = tf.randomUniform([3, 3, 16, 32], -0.1, 0.1, 'float32', 2) as TfCore.Tensor4D;
  const a = tf.randomUniform([256, 256], -1, 1, 'float32', 3) as TfCore.Tensor2D;
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
    for (let i = 0; i < BENCH_ITERATIONS; i++) await once();
    return (performance.now() - t0) / BENCH_ITERATIONS;
  } finally {
    x.dispose();
    w.dispose();
    a.dispose();
  }
}

/** Times each backend this device has and returns the result (does not store it). */
export async function runMicroBenchmark(
  webgpu: WebGpuCapability,
  userAgent: string,
): Promise<MicroBenchResult> {
  const tf = await import('@tensorflow/tfjs-core');
  const device = deviceKey(webgpu.available ? webgpu.info : null, userAgent);
  const result: MicroBenchResult = {
    deviceKey: device,
    workload: BENCH_WORKLOAD,
    webgpuMs: null,
    wasmMs: null,
    measuredAt: Date.now(),
  };
  // The benchmark shares tfjs with the context's own ML code (tf.ts in the train worker): put back the backend
  // that code had selected, so its cached choice stays true. `getBackend()` only reads, it initialises nothing.
  const before = tf.getBackend() as string | null;
  try {
    await timeAll(tf, webgpu, result);
  } finally {
    if (before && tf.getBackend() !== before) await tf.setBackend(before).catch(() => false);
  }
  return result;
}

async function timeAll(tf: Tf, webgpu: WebGpuCapability, result: MicroBenchResult): Promise<void> {
  // WASM first: it is the baseline and cannot take the page's GPU down with it.
  try {
    result.wasmMs = await withTimeout(timeBackend(tf, 'wasm'), BENCH_TIMEOUT_MS, 'the WASM benchmark');
  } catch (e) {
    result.wasmError = e instanceof Error ? e.message : String(e);
  }
  if (webgpu.available) {
    try {
      result.webgpuMs = await withTimeout(
        timeBackend(tf, 'webgpu'),
        BENCH_TIMEOUT_MS,
        'the WebGPU benchmark',
      );
    } catch (e) {
      result.webgpuError = e instanceof Error ? e.message : String(e);
    }
  } else {
    result.webgpuError = webgpu.reason;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The app-wide answer

export interface BackendState {
  preference: BackendPreference;
  webgpu: WebGpuCapability;
  deviceKey: string;
  bench: MicroBenchResult | undefined;
  decision: BackendDecision;
}

let cachedWebGpu: Promise<WebGpuCapability> | null = null;
let benchInFlight: Promise<MicroBenchResult> | null = null;
const listeners = new Set<(s: BackendState) => void>();

function webGpuOnce(env?: CapabilityEnv): Promise<WebGpuCapability> {
  cachedWebGpu ??= detectWebGpu(env);
  return cachedWebGpu;
}

function userAgent(): string {
  return (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? 'node';
}

/** One benchmark at a time per context; concurrent callers share it. */
function benchmarkOnce(webgpu: WebGpuCapability): Promise<MicroBenchResult> {
  benchInFlight ??= runMicroBenchmark(webgpu, userAgent()).finally(() => {
    benchInFlight = null;
  });
  return benchInFlight;
}

async function resolveState(forceBenchmark: boolean): Promise<BackendState> {
  const webgpu = await webGpuOnce();
  // Read every time (cheap): the user may have changed the preference in another context since the last call.
  const preference = parsePreference(await readShared(PREF_KEY));
  const device = deviceKey(webgpu.available ? webgpu.info : null, userAgent());
  let bench = forceBenchmark ? undefined : parseBench(await readShared(benchKey(device)), device);
  let r = decideBackend(preference, webgpu, bench);
  if ('needsBenchmark' in r || forceBenchmark) {
    bench = await benchmarkOnce(webgpu);
    await writeShared(benchKey(device), JSON.stringify(bench));
    r = decideBackend(preference, webgpu, bench);
  }
  // decideBackend only asks for a benchmark when it has none; with one it always decides.
  const decision = r as BackendDecision;
  const state = { preference, webgpu, deviceKey: device, bench, decision };
  for (const fn of listeners) fn(state);
  return state;
}

/**
 * The backend ML code should use on this device: the user's choice, or for 'auto' the benchmark winner
 * (running the benchmark once if this device has none). Works in workers too (settings live in IndexedDB).
 */
export async function preferredBackend(): Promise<Backend> {
  return (await backendState()).decision.backend;
}

/** The full resolution (preference, adapter, benchmark, decision with its reason) for the System panel. */
export function backendState(): Promise<BackendState> {
  return resolveState(false);
}

/** What is known without running a benchmark (for showing the panel before the user asks for one). */
export async function peekBackendState(): Promise<
  Omit<BackendState, 'decision'> & { resolution: Resolution }
> {
  const webgpu = await webGpuOnce();
  const preference = parsePreference(await readShared(PREF_KEY));
  const device = deviceKey(webgpu.available ? webgpu.info : null, userAgent());
  const bench = parseBench(await readShared(benchKey(device)), device);
  return {
    preference,
    webgpu,
    deviceKey: device,
    bench,
    resolution: decideBackend(preference, webgpu, bench),
  };
}

/** Stores the user's override where every context (page and workers) reads it; the next resolution honours it. */
export async function setBackendPreference(pref: BackendPreference): Promise<void> {
  await writeShared(PREF_KEY, pref);
}

/** Re-measures this device (System panel "measure again") and returns the new state. */
export function rerunBenchmark(): Promise<BackendState> {
  return resolveState(true);
}

/** Called with every new resolution (the System panel listens so it shows what ML code was told). */
export function onBackendResolved(fn: (s: BackendState) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

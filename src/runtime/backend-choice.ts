/**
 * Which compute backend the ML code uses: the user's preference ('auto' | 'webgpu' | 'wasm') resolved against
 * what this device has. On a software WebGPU adapter (SwiftShader) WebGPU is ~100× slower than WASM, so 'auto'
 * decides from a short micro-benchmark (a conv + matmul loop timed on each backend with tfjs), run once per device
 * and remembered in localStorage keyed by adapter info + user agent (mirrored into the store's IndexedDB settings,
 * because the workers that call this have no localStorage). The benchmark runs lazily: on the first
 * `preferredBackend()` call that needs it, or when the user asks for it in the System panel.
 *
 * ORT code calls `preferredBackend()`; tfjs's `initTf('auto')` (`tf.ts`) takes the same `backendState()`, so both
 * runtimes run where the System panel says. The pure decisions (`decideBackend`, `decideTfBackend`) are
 * unit-tested; the benchmark itself is timed through the tfjs door (`tf.ts`), the only module importing tfjs.
 */
import { detectWebGpu, type CapabilityEnv, type WebGpuCapability } from './capabilities.ts';
import { env, type BackendPreference } from './env.ts';

export type { BackendPreference };
export type Backend = 'webgpu' | 'wasm';
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
  /** Why, in a few words for a result line ("WASM measured faster on this software adapter"). */
  brief: string;
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
  if (pref === 'wasm')
    return { backend: 'wasm', reason: 'you chose WASM', brief: 'WASM chosen in the System panel' };
  if (!webgpu.available) {
    const why = webgpu.reason ? ` (${webgpu.reason})` : '';
    return pref === 'webgpu'
      ? {
          backend: 'wasm',
          reason: `you chose WebGPU but it is not available${why}; using WASM`,
          brief: 'WebGPU chosen in the System panel but not available here',
        }
      : { backend: 'wasm', reason: `WebGPU is not available${why}`, brief: 'WebGPU is not available here' };
  }
  if (pref === 'webgpu')
    return { backend: 'webgpu', reason: 'you chose WebGPU', brief: 'WebGPU chosen in the System panel' };
  if (!bench) return { needsBenchmark: true, reason: 'no benchmark on this device yet' };
  const { webgpuMs, wasmMs } = bench;
  if (webgpuMs == null && wasmMs == null) {
    return {
      backend: 'wasm',
      reason: 'both backends failed the benchmark; WASM is the safer choice',
      brief: 'both backends failed the benchmark',
    };
  }
  if (webgpuMs == null) {
    return {
      backend: 'wasm',
      reason: `WebGPU failed the benchmark (${bench.webgpuError ?? 'unknown error'})`,
      brief: 'WebGPU failed the benchmark',
    };
  }
  if (wasmMs == null) {
    return {
      backend: 'webgpu',
      reason: `WASM failed the benchmark (${bench.wasmError ?? 'unknown error'})`,
      brief: 'WASM failed the benchmark',
    };
  }
  const faster: Backend = webgpuMs < wasmMs ? 'webgpu' : 'wasm';
  const ratio = faster === 'webgpu' ? wasmMs / webgpuMs : webgpuMs / wasmMs;
  const fasterName = faster === 'webgpu' ? 'WebGPU' : 'WASM';
  const adapter = webgpu.software ? ' on this software adapter' : '';
  return {
    backend: faster,
    reason: `benchmark: WebGPU ${webgpuMs.toFixed(1)} ms vs WASM ${wasmMs.toFixed(1)} ms per iteration (${
      fasterName
    } ${ratio.toFixed(1)}× faster)${webgpu.software ? '; the WebGPU adapter is software' : ''}`,
    brief: `${fasterName} measured faster${adapter}`,
  };
}

/** What a tfjs caller may ask for: the System panel's choice ('auto'), or one backend for this run. */
export type TfBackendName = 'webgpu' | 'wasm' | 'cpu';
export type TfBackendPreference = TfBackendName | 'auto';

/** Where tfjs should run and, when that is not simply what was asked, why (for the result line). */
export interface TfDecision {
  asked: TfBackendPreference;
  backend: TfBackendName;
  /** Empty when the backend is exactly what was asked; else e.g. "auto: WASM measured faster on …". */
  reason: string;
  /** What to try, in order, if `backend` fails to start ('auto' only: an explicit choice never falls back). */
  fallbacks: TfBackendName[];
}

/**
 * The tfjs side of the same decision: 'auto' is what `decideBackend` says for the System panel's choice, the
 * measured benchmark and the adapter (so tfjs and ORT land on one backend); an explicit backend is honoured as
 * asked. `system` is the resolved decision (`backendState().decision`).
 */
export function decideTfBackend(asked: TfBackendPreference, system: BackendDecision): TfDecision {
  if (asked !== 'auto') return { asked, backend: asked, reason: '', fallbacks: [] };
  return {
    asked,
    backend: system.backend,
    reason: `auto: ${system.brief}`,
    fallbacks: system.backend === 'webgpu' ? ['wasm', 'cpu'] : ['cpu'],
  };
}

/** A result line's "where it ran": `wasm`, plus the reason in brackets when there is one. */
export function describePlace(backend: string, reason: string | undefined): string {
  return reason ? `${backend} (${reason})` : backend;
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

// Read from `env` at each use, so an app that renames the keys before first use gets them everywhere.
const prefKey = () => `${env.cache.settingsPrefix}preference`;
const benchKey = (device: string) => `${env.cache.settingsPrefix}bench.${shortHash(device)}`;

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
  return parsePreference(store.getItem(prefKey()));
}

export function savePreference(pref: BackendPreference, store: KeyValueStore = defaultStore()): void {
  store.setItem(prefKey(), pref);
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
// The micro-benchmark (browser only; tfjs is loaded on demand through its door, so it costs nothing at first paint)

/** Workload per iteration: a 3×3 conv (1×64×64×16 → 32 channels) + ReLU, then a 256×256 matmul. */
export const BENCH_WORKLOAD = 'conv3x3 1x64x64x16->32 + relu + matmul 256x256';
const BENCH_ITERATIONS = 5;
const BENCH_TIMEOUT_MS = 30_000;

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

/** Times each backend this device has and returns the result (does not store it). */
export async function runMicroBenchmark(
  webgpu: WebGpuCapability,
  userAgent: string,
): Promise<MicroBenchResult> {
  // Dynamic: tf.ts imports this module for its 'auto', and the page should not load tfjs before a benchmark.
  const { timeTfWorkload, restoreTfBackend } = await import('./tf.ts');
  const device = deviceKey(webgpu.available ? webgpu.info : null, userAgent);
  const result: MicroBenchResult = {
    deviceKey: device,
    workload: BENCH_WORKLOAD,
    webgpuMs: null,
    wasmMs: null,
    measuredAt: Date.now(),
  };
  const restore = restoreTfBackend();
  try {
    // WASM first: it is the baseline and cannot take the page's GPU down with it.
    try {
      result.wasmMs = await withTimeout(
        timeTfWorkload('wasm', BENCH_ITERATIONS),
        BENCH_TIMEOUT_MS,
        'the WASM benchmark',
      );
    } catch (e) {
      result.wasmError = e instanceof Error ? e.message : String(e);
    }
    if (webgpu.available) {
      try {
        result.webgpuMs = await withTimeout(
          timeTfWorkload('webgpu', BENCH_ITERATIONS),
          BENCH_TIMEOUT_MS,
          'the WebGPU benchmark',
        );
      } catch (e) {
        result.webgpuError = e instanceof Error ? e.message : String(e);
      }
    } else {
      result.webgpuError = webgpu.reason;
    }
  } finally {
    await restore();
  }
  return result;
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

/**
 * The System panel's choice: the stored one where there is one (re-read every time, cheap: the user may have
 * changed it in another context), else `env.backend.preference` (Node: CLI and server set it there). Mirrored into
 * `env` so this context's switches show what its ML code was told.
 */
async function readPreference(): Promise<BackendPreference> {
  const raw = await readShared(prefKey());
  const preference = raw === null ? env.backend.preference : parsePreference(raw);
  env.backend.preference = preference;
  return preference;
}

async function resolveState(forceBenchmark: boolean): Promise<BackendState> {
  const webgpu = await webGpuOnce();
  const preference = await readPreference();
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

/**
 * `preferredBackend()` with the words a result line needs ("auto: WASM measured faster on this software
 * adapter"), phrased as tfjs's `initTfChoice('auto')` phrases it: for ORT callers (features, diffusion) whose
 * request said 'auto'.
 */
export async function autoPlace(): Promise<{ backend: Backend; reason: string }> {
  const d = (await backendState()).decision;
  return { backend: d.backend, reason: `auto: ${d.brief}` };
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
  const preference = await readPreference();
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
  env.backend.preference = pref;
  await writeShared(prefKey(), pref);
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

// ---------------------------------------------------------------------------------------------------------------
// The float path as one more candidate for an int8 backbone (issue 16): measured on the model itself

/**
 * One device's timing of an int8 backbone both ways on one backend: milliseconds per image of the graph as it is
 * (`int8Ms`) and of its float path (`floatMs`, `dequantize.ts`), null where that candidate failed to load or run.
 */
export interface FloatPathMeasurement {
  /** `floatPathKey(...)`: device, model and backend. */
  key: string;
  int8Ms: number | null;
  floatMs: number | null;
  /** The float candidate's precision ('fp16' only on WebGPU with shader-f16). */
  precision: 'fp32' | 'fp16';
  /** Where each candidate actually ran (an int8 graph may fall back from WebGPU to WASM). */
  int8Backend?: string;
  floatBackend?: string;
  int8Error?: string;
  floatError?: string;
  /**
   * The same fp32 float path run by the tfjs executor (XNNPACK, `onnx-tf.ts`): measured on WASM only; absent in
   * measurements made before it existed (the engine measures those again).
   */
  floatTfMs?: number | null;
  floatTfError?: string;
  measuredAt: number;
}

export interface FloatPathDecision {
  floatPath: 'off' | 'fp32' | 'fp16';
  /** Who runs the float path (meaningless when `floatPath` is 'off'). */
  executor: 'onnxruntime' | 'tfjs';
  /** Why, in words for the load info ("measured: float path 38 ms vs int8 190 ms per image (5.0× faster)"). */
  reason: string;
}

/** The storage key of a measurement: this device, this model (its id or sha256), this backend. */
export function floatPathKey(device: string, modelId: string, backend: string): string {
  return `${device}|${modelId}|${backend}`;
}

/** The pure decision: the faster candidate of the measurement; int8 (the model as it is) on a tie or no data. */
export function decideFloatPath(m: FloatPathMeasurement): FloatPathDecision {
  const { int8Ms } = m;
  // The float candidate is the faster of its executors: onnxruntime, or tfjs's XNNPACK (fp32 on WASM only).
  const tf = m.floatTfMs != null && m.precision === 'fp32' && (m.floatMs == null || m.floatTfMs < m.floatMs);
  const floatMs = tf ? m.floatTfMs! : m.floatMs;
  const executor = tf ? ('tfjs' as const) : ('onnxruntime' as const);
  const name = `float path (${m.precision}${tf ? ', tfjs XNNPACK' : ''})`;
  const other =
    m.floatTfMs != null && m.floatMs != null
      ? `; ${tf ? 'onnxruntime' : 'tfjs XNNPACK'} ran it in ${(tf ? m.floatMs : m.floatTfMs).toFixed(1)} ms`
      : '';
  if (floatMs == null)
    return {
      floatPath: 'off',
      executor,
      reason: `the ${name} failed here (${m.floatError ?? 'unknown error'}); running the int8 graph`,
    };
  if (int8Ms == null)
    return {
      floatPath: m.precision,
      executor,
      reason: `the int8 graph failed here (${m.int8Error ?? 'unknown error'}); running the ${name}`,
    };
  const faster = floatMs < int8Ms;
  const ratio = faster ? int8Ms / floatMs : floatMs / int8Ms;
  const where = (b?: string) => (b ? ` on ${b}` : '');
  return {
    floatPath: faster ? m.precision : 'off',
    executor,
    reason: `measured: ${name} ${floatMs.toFixed(1)} ms${where(m.floatBackend)} vs int8 ${int8Ms.toFixed(1)} ms${where(
      m.int8Backend,
    )} per image (${faster ? name : 'int8'} ${ratio.toFixed(1)}× faster${other})`,
  };
}

/** A stored measurement as one, or undefined when absent, corrupt or for another key. */
export function parseFloatPathMeasurement(
  raw: string | null | undefined,
  key: string,
): FloatPathMeasurement | undefined {
  if (!raw) return undefined;
  try {
    const r = JSON.parse(raw) as FloatPathMeasurement;
    const okNum = (x: unknown) => x === null || (typeof x === 'number' && Number.isFinite(x) && x >= 0);
    if (r.key !== key || !okNum(r.int8Ms) || !okNum(r.floatMs)) return undefined;
    if (r.floatTfMs !== undefined && !okNum(r.floatTfMs)) return undefined;
    if (r.precision !== 'fp32' && r.precision !== 'fp16') return undefined;
    return r;
  } catch {
    return undefined;
  }
}

const floatPathStorageKey = (key: string) => `${env.cache.settingsPrefix}floatpath.${shortHash(key)}`;

/** This context's device key (adapter identity + browser build), as the backend benchmark keys it. */
export async function currentDeviceKey(): Promise<string> {
  const webgpu = await webGpuOnce();
  return deviceKey(webgpu.available ? webgpu.info : null, userAgent());
}

/** Where measurements live: every context of the origin (localStorage on the page, IndexedDB for workers). */
export interface FloatPathStore {
  load(key: string): Promise<FloatPathMeasurement | undefined>;
  save(m: FloatPathMeasurement): Promise<void>;
}

export const sharedFloatPathStore: FloatPathStore = {
  async load(key) {
    return parseFloatPathMeasurement(await readShared(floatPathStorageKey(key)), key);
  },
  async save(m) {
    await writeShared(floatPathStorageKey(m.key), JSON.stringify(m));
  },
};

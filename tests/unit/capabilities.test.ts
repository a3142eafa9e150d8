import { describe, expect, it } from 'vitest';
import {
  PERSIST_REQUEST_SETTING,
  askForPersistence,
  classifyAdapter,
  ensurePersistentStorage,
  persistenceRefusedNotice,
  detectCapabilities,
  detectStorage,
  detectThreads,
  detectWebGpu,
  formatBytes,
  webGpuNotice,
  type CapabilityEnv,
  type SettingsStore,
} from '../../src/runtime/capabilities.ts';

/** A fake adapter shaped like Chromium's (info, features set, limits object). */
function fakeGpu(opts: {
  info: Partial<GPUAdapterInfo>;
  features?: string[];
  fallback?: boolean;
  limits?: Partial<Record<string, number>>;
}): CapabilityEnv['navigator'] {
  const adapter = {
    info: opts.info,
    features: new Set(opts.features ?? []),
    limits: { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 27, ...opts.limits },
    isFallbackAdapter: opts.fallback ?? false,
  };
  return { gpu: { requestAdapter: async () => adapter as unknown as GPUAdapter } };
}

describe('classifyAdapter', () => {
  it('labels SwiftShader (as Chromium reports it under --use-webgpu-adapter=swiftshader) as software', () => {
    const r = classifyAdapter({ vendor: 'google', architecture: 'swiftshader' }, false);
    expect(r.software).toBe(true);
    expect(r.reason).toContain('swiftshader');
  });
  it('labels llvmpipe and a fallback adapter as software', () => {
    expect(
      classifyAdapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }, false).software,
    ).toBe(true);
    const fb = classifyAdapter({ vendor: 'nvidia' }, true);
    expect(fb.software).toBe(true);
    expect(fb.reason).toContain('fallback');
  });
  it('does not label real GPUs as software', () => {
    expect(classifyAdapter({ vendor: 'nvidia', architecture: 'hopper' }, false)).toEqual({
      software: false,
      reason: '',
    });
    expect(classifyAdapter({ vendor: 'apple', architecture: 'metal-3' }, false).software).toBe(false);
    expect(classifyAdapter({}, false).software).toBe(false);
  });
});

describe('detectWebGpu', () => {
  it('reports missing WebGPU with a reason instead of throwing', async () => {
    const r = await detectWebGpu({ navigator: {} });
    expect(r.available).toBe(false);
    if (!r.available) expect(r.reason).toContain('navigator.gpu');
  });
  it('reports a null adapter and a throwing requestAdapter as unavailable', async () => {
    const none = await detectWebGpu({ navigator: { gpu: { requestAdapter: async () => null } } });
    expect(none.available).toBe(false);
    const boom = await detectWebGpu({
      navigator: {
        gpu: {
          requestAdapter: async () => {
            throw new Error('GPU process crashed');
          },
        },
      },
    });
    expect(boom.available).toBe(false);
    if (!boom.available) expect(boom.reason).toContain('GPU process crashed');
  });
  it('reads info, limits, features and shader-f16 from the adapter', async () => {
    const r = await detectWebGpu({
      navigator: fakeGpu({
        info: { vendor: 'nvidia', architecture: 'hopper' },
        features: ['timestamp-query', 'shader-f16'],
        limits: { maxBufferSize: 4 * 2 ** 30 },
      }),
    });
    expect(r.available).toBe(true);
    if (!r.available) return;
    expect(r.software).toBe(false);
    expect(r.shaderF16).toBe(true);
    expect(r.features).toEqual(['shader-f16', 'timestamp-query']);
    expect(r.limits.maxBufferSize).toBe(4 * 2 ** 30);
    expect(r.limits.maxStorageBufferBindingSize).toBe(1 << 27);
    expect(r.info.architecture).toBe('hopper');
  });
  it('flags a SwiftShader adapter without shader-f16 as software', async () => {
    const r = await detectWebGpu({
      navigator: fakeGpu({ info: { vendor: 'google', architecture: 'swiftshader' } }),
    });
    expect(r.available && r.software).toBe(true);
    expect(r.available && r.shaderF16).toBe(false);
    expect(webGpuNotice(r)).toMatch(/software adapter/);
  });
});

describe('threads and storage', () => {
  it('reads cross-origin isolation and SharedArrayBuffer', () => {
    expect(
      detectThreads({ crossOriginIsolated: true, SharedArrayBuffer, navigator: { hardwareConcurrency: 8 } }),
    ).toEqual({ crossOriginIsolated: true, sharedArrayBuffer: true, hardwareConcurrency: 8 });
    expect(detectThreads({}).crossOriginIsolated).toBe(false);
  });
  it('reads the storage estimate and persistence', async () => {
    const s = await detectStorage({
      navigator: {
        storage: { estimate: async () => ({ usage: 1234, quota: 10_000 }), persisted: async () => true },
      },
    });
    expect(s).toEqual({ available: true, usage: 1234, quota: 10_000, persisted: true });
    const none = await detectStorage({ navigator: {} });
    expect(none.available).toBe(false);
  });
  it('detectCapabilities combines everything and a missing GPU gives a WASM notice', async () => {
    const c = await detectCapabilities({ navigator: { userAgent: 'test-UA' } });
    expect(c.userAgent).toBe('test-UA');
    expect(c.webgpu.available).toBe(false);
    expect(webGpuNotice(c.webgpu)).toMatch(/WASM/);
  });
});

/** Settings in a Map, like the store's settings object store. */
function memorySettings(): SettingsStore & { map: Map<string, unknown> } {
  const map = new Map<string, unknown>();
  return {
    map,
    getSetting: async <T>(k: string) => map.get(k) as T | undefined,
    setSetting: async <T>(k: string, v: T) => void map.set(k, v),
  };
}

/** A StorageManager whose persist() answers `grant` and counts its calls. */
function fakeStorage(grant: boolean | 'throws', persistedAlready = false) {
  let persisted = persistedAlready;
  const env = {
    calls: 0,
    navigator: {
      storage: {
        persist: async () => {
          env.calls++;
          if (grant === 'throws') throw new DOMException('private mode', 'InvalidStateError');
          persisted = grant;
          return grant;
        },
        persisted: async () => persisted,
      },
    },
  };
  return env;
}

describe('persistent storage: asked once by itself, answer remembered', () => {
  it('asks once when not persistent, remembers a refusal and does not ask again', async () => {
    const settings = memorySettings();
    const env = fakeStorage(false);
    const first = await ensurePersistentStorage(settings, env);
    expect(env.calls).toBe(1);
    expect(first).toMatchObject({ persisted: false, refused: true, askedNow: true });
    expect(first.askedAt).toBeGreaterThan(0);
    expect(settings.map.get(PERSIST_REQUEST_SETTING)).toEqual({ askedAt: first.askedAt, granted: false });
    const second = await ensurePersistentStorage(settings, env);
    expect(env.calls).toBe(1);
    expect(second).toEqual({ persisted: false, refused: true, askedNow: false, askedAt: first.askedAt });
    // The System panel's button asks again on purpose.
    const again = await askForPersistence(settings, env);
    expect(env.calls).toBe(2);
    expect(again.refused).toBe(true);
  });

  it('a grant is reported as persistent and later starts only read persisted()', async () => {
    const settings = memorySettings();
    const env = fakeStorage(true);
    expect(await ensurePersistentStorage(settings, env)).toMatchObject({
      persisted: true,
      refused: false,
      askedNow: true,
    });
    expect((await ensurePersistentStorage(settings, env)).persisted).toBe(true);
    expect(env.calls).toBe(1);
  });

  it('an origin already persistent is never asked; a throwing persist() counts as a refusal', async () => {
    const already = fakeStorage(true, true);
    const r = await ensurePersistentStorage(memorySettings(), already);
    expect(already.calls).toBe(0);
    expect(r).toEqual({ persisted: true, askedAt: null, refused: false, askedNow: false });
    const throws = fakeStorage('throws');
    expect(await ensurePersistentStorage(memorySettings(), throws)).toMatchObject({
      persisted: false,
      refused: true,
    });
    expect(throws.calls).toBe(1);
  });

  it('without the API it says so instead of claiming a refusal; the refusal notice carries a fix', async () => {
    const settings = memorySettings();
    const r = await ensurePersistentStorage(settings, { navigator: {} });
    expect(r.persisted).toBe(false);
    expect(r.refused).toBe(false);
    expect(r.unsupported).toMatch(/navigator\.storage\.persist/);
    expect(settings.map.size).toBe(0);
    expect(persistenceRefusedNotice()).toMatch(/ — fix: bookmark or install/);
  });
});

describe('formatBytes', () => {
  it('formats sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5.0 GB');
  });
});

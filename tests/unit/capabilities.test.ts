import { describe, expect, it } from 'vitest';
import {
  classifyAdapter,
  detectCapabilities,
  detectStorage,
  detectThreads,
  detectWebGpu,
  formatBytes,
  webGpuNotice,
  type CapabilityEnv,
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

describe('formatBytes', () => {
  it('formats sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5.0 GB');
  });
});

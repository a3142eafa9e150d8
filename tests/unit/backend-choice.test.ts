// An IndexedDB for the worker-context test (the store's settings are where workers read the preference).
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import {
  clearBench,
  decideBackend,
  deviceKey,
  loadBench,
  loadPreference,
  saveBench,
  savePreference,
  type KeyValueStore,
  type MicroBenchResult,
} from '../../src/runtime/backend-choice.ts';

class MapStore implements KeyValueStore {
  m = new Map<string, string>();
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

const gpu = { available: true, software: false };
const swiftshader = { available: true, software: true };
const noGpu = { available: false, reason: 'no navigator.gpu' };

function bench(webgpuMs: number | null, wasmMs: number | null, key = 'k'): MicroBenchResult {
  return {
    deviceKey: key,
    workload: 'w',
    webgpuMs,
    wasmMs,
    measuredAt: 0,
    webgpuError: webgpuMs == null ? 'lost' : undefined,
  };
}

describe('decideBackend', () => {
  it('always honours an explicit WASM choice', () => {
    expect(decideBackend('wasm', gpu, bench(1, 100))).toMatchObject({ backend: 'wasm' });
  });
  it('honours an explicit WebGPU choice when WebGPU exists, even on a software adapter', () => {
    expect(decideBackend('webgpu', swiftshader, bench(500, 5))).toMatchObject({ backend: 'webgpu' });
  });
  it('falls back to WASM and says why when WebGPU was chosen but is missing', () => {
    const r = decideBackend('webgpu', noGpu, undefined);
    expect(r).toMatchObject({ backend: 'wasm' });
    expect('reason' in r && r.reason).toContain('no navigator.gpu');
  });
  it('auto without WebGPU is WASM without a benchmark', () => {
    expect(decideBackend('auto', noGpu, undefined)).toMatchObject({ backend: 'wasm' });
  });
  it('auto with WebGPU but no benchmark asks for one', () => {
    expect(decideBackend('auto', swiftshader, undefined)).toMatchObject({ needsBenchmark: true });
  });
  it('auto picks the faster backend of the benchmark', () => {
    // SwiftShader: WebGPU ~100× slower than WASM.
    const slow = decideBackend('auto', swiftshader, bench(700, 5));
    expect(slow).toMatchObject({ backend: 'wasm' });
    expect('reason' in slow && slow.reason).toMatch(/140\.0× faster/);
    expect(decideBackend('auto', gpu, bench(0.8, 12))).toMatchObject({ backend: 'webgpu' });
  });
  it('auto avoids a backend that failed the benchmark', () => {
    expect(decideBackend('auto', gpu, bench(null, 12))).toMatchObject({ backend: 'wasm' });
    expect(decideBackend('auto', gpu, bench(3, null))).toMatchObject({ backend: 'webgpu' });
    expect(decideBackend('auto', gpu, bench(null, null))).toMatchObject({ backend: 'wasm' });
  });
});

describe('remembering per device', () => {
  it('keys devices by adapter identity and user agent', () => {
    const a = deviceKey({ vendor: 'google', architecture: 'swiftshader' }, 'UA1');
    expect(deviceKey({ vendor: 'google', architecture: 'swiftshader' }, 'UA1')).toBe(a);
    expect(deviceKey({ vendor: 'google', architecture: 'swiftshader' }, 'UA2')).not.toBe(a);
    expect(deviceKey({ vendor: 'nvidia', architecture: 'hopper' }, 'UA1')).not.toBe(a);
    expect(deviceKey(null, 'UA1')).not.toBe(a);
  });
  it('stores a benchmark per device and ignores other devices and corrupt entries', () => {
    const s = new MapStore();
    const a = deviceKey({ vendor: 'google', architecture: 'swiftshader' }, 'UA1');
    const b = deviceKey({ vendor: 'nvidia', architecture: 'hopper' }, 'UA1');
    saveBench(bench(700, 5, a), s);
    expect(loadBench(a, s)?.webgpuMs).toBe(700);
    expect(loadBench(b, s)).toBeUndefined();
    saveBench(bench(1, 10, b), s);
    expect(loadBench(a, s)?.wasmMs).toBe(5);
    expect(loadBench(b, s)?.wasmMs).toBe(10);
    clearBench(a, s);
    expect(loadBench(a, s)).toBeUndefined();
    for (const k of s.m.keys()) s.m.set(k, '{not json');
    expect(loadBench(b, s)).toBeUndefined();
  });
  it('stores the preference and ignores unknown values', () => {
    const s = new MapStore();
    expect(loadPreference(s)).toBe('auto');
    savePreference('wasm', s);
    expect(loadPreference(s)).toBe('wasm');
    s.m.set('defectlab.backend.preference', 'cuda');
    expect(loadPreference(s)).toBe('auto');
  });
});

describe('contexts without localStorage (workers)', () => {
  it('read the preference the page stored in IndexedDB and re-read it on every call', async () => {
    const { openStore } = await import('../../src/runtime/db/store.ts');
    const { peekBackendState, preferredBackend, setBackendPreference } =
      await import('../../src/runtime/backend-choice.ts');
    expect((globalThis as { localStorage?: unknown }).localStorage).toBeUndefined();
    const store = await openStore();
    // What the System panel does on the page: written where a worker can see it.
    await store.setSetting('defectlab.backend.preference', 'webgpu');
    const s = await peekBackendState();
    expect(s.preference).toBe('webgpu');
    // Node has no WebGPU: an explicit WebGPU choice falls back to WASM and says why.
    expect(s.resolution).toMatchObject({ backend: 'wasm' });
    expect('reason' in s.resolution && s.resolution.reason).toContain(
      'you chose WebGPU but it is not available',
    );
    expect(await preferredBackend()).toBe('wasm');
    await setBackendPreference('wasm');
    expect(await store.getSetting('defectlab.backend.preference')).toBe('wasm');
    expect((await peekBackendState()).preference).toBe('wasm');
    store.close();
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import {
  autoPlace,
  decideBackend,
  decideTfBackend,
  describePlace,
  preferredBackend,
  type BackendDecision,
  type BackendPreference,
  type MicroBenchResult,
  type WebGpuFacts,
} from '../../src/runtime/backend-choice.ts';
import { env } from '../../src/runtime/env.ts';
import { initTfChoice, lastTfChoice } from '../../src/runtime/tf.ts';

/**
 * "auto" is one measured choice for both runtimes: ORT code takes `decideBackend(...).backend`
 * (`preferredBackend()`), tfjs takes `decideTfBackend('auto', decision)`. These tests run the pure functions over
 * every combination of inputs, then both doors in Node.
 */

function bench(webgpuMs: number | null, wasmMs: number | null): MicroBenchResult {
  return {
    deviceKey: 'k',
    workload: 'w',
    webgpuMs,
    wasmMs,
    measuredAt: 0,
    webgpuError: webgpuMs == null ? 'device lost' : undefined,
    wasmError: wasmMs == null ? 'no simd' : undefined,
  };
}

const adapters: Record<string, WebGpuFacts> = {
  hardware: { available: true, software: false },
  swiftshader: { available: true, software: true },
  none: { available: false, reason: 'no navigator.gpu' },
};
const benches: Record<string, MicroBenchResult | undefined> = {
  none: undefined,
  gpuFaster: bench(0.8, 12),
  wasmFaster: bench(700, 5),
  gpuFailed: bench(null, 5),
  wasmFailed: bench(3, null),
  bothFailed: bench(null, null),
};
const prefs: BackendPreference[] = ['auto', 'webgpu', 'wasm'];

describe('tfjs "auto" is the same decision as ORT "auto"', () => {
  it('lands on the backend ORT uses for every preference × adapter × benchmark', () => {
    let compared = 0;
    for (const pref of prefs)
      for (const [aName, a] of Object.entries(adapters))
        for (const [bName, b] of Object.entries(benches)) {
          const ort = decideBackend(pref, a, b);
          if ('needsBenchmark' in ort) {
            // Only auto on a WebGPU device without a benchmark asks for one; the resolver measures, then decides.
            expect([pref, a.available, bName]).toEqual(['auto', true, 'none']);
            continue;
          }
          const t = decideTfBackend('auto', ort);
          expect(t.backend, `${pref}/${aName}/${bName}`).toBe(ort.backend);
          // 'auto' always says why, in the decision's own short words.
          expect(t.reason).toBe(`auto: ${ort.brief}`);
          compared++;
        }
    expect(compared).toBe(3 * 3 * 6 - 2);
  });

  it('on SwiftShader, with WASM measured faster, trains on WASM and says so', () => {
    const ort = decideBackend('auto', adapters.swiftshader, benches.wasmFaster) as BackendDecision;
    const t = decideTfBackend('auto', ort);
    expect(t).toMatchObject({ backend: 'wasm', fallbacks: ['cpu'] });
    expect(describePlace(t.backend, t.reason)).toBe(
      'wasm (auto: WASM measured faster on this software adapter)',
    );
    // On a hardware adapter the same words leave out the adapter.
    const hw = decideBackend('auto', adapters.hardware, benches.gpuFaster) as BackendDecision;
    expect(decideTfBackend('auto', hw)).toMatchObject({
      backend: 'webgpu',
      reason: 'auto: WebGPU measured faster',
      fallbacks: ['wasm', 'cpu'],
    });
  });

  it('follows the System panel: its explicit choice is what auto means, with the reason naming it', () => {
    const wasm = decideBackend('wasm', adapters.hardware, benches.gpuFaster) as BackendDecision;
    expect(decideTfBackend('auto', wasm)).toMatchObject({
      backend: 'wasm',
      reason: 'auto: WASM chosen in the System panel',
    });
    const gpu = decideBackend('webgpu', adapters.swiftshader, benches.wasmFaster) as BackendDecision;
    expect(decideTfBackend('auto', gpu)).toMatchObject({ backend: 'webgpu' });
    const missing = decideBackend('webgpu', adapters.none, undefined) as BackendDecision;
    expect(decideTfBackend('auto', missing)).toMatchObject({
      backend: 'wasm',
      reason: 'auto: WebGPU chosen in the System panel but not available here',
    });
  });

  it('an explicit tfjs backend for one run is honoured whatever the System panel says, with no reason', () => {
    const gpu = decideBackend('auto', adapters.hardware, benches.gpuFaster) as BackendDecision;
    for (const asked of ['wasm', 'cpu', 'webgpu'] as const) {
      expect(decideTfBackend(asked, gpu)).toEqual({ asked, backend: asked, reason: '', fallbacks: [] });
    }
    expect(describePlace('wasm', '')).toBe('wasm');
  });
});

describe('both doors in Node follow env.backend.preference', () => {
  const saved = env.backend.preference;
  afterEach(() => {
    env.backend.preference = saved;
  });

  it('tfjs auto and ORT auto pick the same backend for each preference, and the choice says why', async () => {
    for (const pref of prefs) {
      env.backend.preference = pref;
      const ort = await preferredBackend();
      const t = await initTfChoice('auto');
      expect(t.backend, pref).toBe(ort);
      // The ORT side's result-line words are the tfjs side's.
      expect(await autoPlace()).toEqual({ backend: ort, reason: t.reason });
      expect(t.backend).toBe('wasm');
      expect(await lastTfChoice()).toEqual(t);
    }
    env.backend.preference = 'wasm';
    expect((await initTfChoice('auto')).reason).toBe('auto: WASM chosen in the System panel');
    env.backend.preference = 'auto';
    expect((await initTfChoice('auto')).reason).toBe('auto: WebGPU is not available here');
    // Asking for CPU explicitly is honoured and needs no reason; 'auto' afterwards switches back.
    expect(await initTfChoice('cpu')).toEqual({ asked: 'cpu', backend: 'cpu', reason: '' });
    expect((await initTfChoice('auto')).backend).toBe('wasm');
  });
});

/**
 * The guided first run's pure parts (`src/ui/workshop/first-run.ts`): when "lite" is chosen from capabilities,
 * that its settings are a valid share setup (they are applied the same way), and which steps count as done.
 */
import { describe, expect, it } from 'vitest';
import type { Capabilities } from '../../src/runtime/capabilities.ts';
import { decodeSetup, encodeSetup } from '../../src/core/share/index.ts';
import { firstRunSetup, liteChoice, stepsDone } from '../../src/ui/workshop/first-run.ts';
import backbones from '../../models/manifests/backbones.json';

function caps(webgpu: Partial<{ available: boolean; software: boolean }>, cores = 8): Capabilities {
  const gpu = webgpu.available
    ? { available: true, software: !!webgpu.software, softwareReason: webgpu.software ? 'swiftshader' : '' }
    : { available: false, reason: 'no adapter' };
  return {
    webgpu: gpu,
    threads: { crossOriginIsolated: true, sharedArrayBuffer: true, hardwareConcurrency: cores },
    storage: { available: false, reason: 'test' },
    userAgent: 'test',
    detectedAt: 0,
  } as unknown as Capabilities;
}

describe('first run', () => {
  it('picks lite without WebGPU, on a software adapter, on few cores, before detection; full otherwise', () => {
    expect(liteChoice(null).lite).toBe(true);
    expect(liteChoice(caps({ available: false })).lite).toBe(true);
    expect(liteChoice(caps({ available: true, software: true })).reason).toMatch(/software/);
    expect(liteChoice(caps({ available: true }, 2)).lite).toBe(true);
    expect(liteChoice(caps({ available: true }, 8)).lite).toBe(false);
  });

  it('its settings survive the share codec and name backbones the app ships', () => {
    const ids = (backbones as { id: string }[]).map((b) => b.id);
    for (const lite of [true, false]) {
      const s = firstRunSetup(lite);
      expect(decodeSetup(encodeSetup(s))).toEqual(s);
      expect(ids).toContain(s.train!.backbone);
    }
    expect(firstRunSetup(true).train).toMatchObject({ backbone: 'tiny-resnet', device: 'wasm', width: 64 });
  });

  it('ticks steps from what the store holds', () => {
    expect(stepsDone({ generated: 0, masks: 0, heads: 0, evaluated: 0 })).toEqual({
      paint: false,
      generate: false,
      train: false,
      evaluate: false,
    });
    expect(stepsDone({ generated: 0, masks: 1, heads: 0, evaluated: 0 }).paint).toBe(true);
    expect(stepsDone({ generated: 3, masks: 1, heads: 1, evaluated: 0 })).toEqual({
      paint: true,
      generate: true,
      train: true,
      evaluate: false,
    });
    expect(stepsDone({ generated: 3, masks: 1, heads: 1, evaluated: 1 }).evaluate).toBe(true);
  });
});

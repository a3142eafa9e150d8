/**
 * The guided first run on the built-in sample data: paint → generate → train → evaluate. Pure: what "lite" means
 * on this device (from capability detection), the settings each choice applies (a share-link setup, applied the
 * same way a link is), and which steps are done (from what the store holds). Unit-tested in Node.
 */
import type { Capabilities } from '../../runtime/capabilities.ts';
import type { WorkshopSetup } from '../../core/share/setup.ts';

export interface LiteChoice {
  lite: boolean;
  reason: string;
}

/**
 * Lite (the tiny ResNet at 64×64 on WASM, 3 epochs) unless the device has a hardware WebGPU adapter and at least
 * 4 cores: a software adapter or a small CPU would take minutes on MobileNetV2 at 224×224.
 */
export function liteChoice(c: Capabilities | null): LiteChoice {
  if (!c)
    return { lite: true, reason: 'capabilities not detected yet: the smallest models are the safe choice' };
  if (!c.webgpu.available) return { lite: true, reason: 'no WebGPU: the smallest models run on WASM' };
  if (c.webgpu.software)
    return { lite: true, reason: 'software WebGPU adapter: the smallest models run on WASM' };
  if (c.threads.hardwareConcurrency < 4)
    return { lite: true, reason: `${c.threads.hardwareConcurrency} CPU cores: the smallest models` };
  return { lite: false, reason: 'hardware WebGPU and enough cores: MobileNetV2-int8 (pick its file)' };
}

/** The settings of the guided run: MemSeg ×8 in the painted region, then a BCE head. */
export function firstRunSetup(lite: boolean): WorkshopSetup {
  return {
    title: 'Guided first run',
    generate: { generator: 'memseg', count: 8, seed: 1, sourceMode: 'current', maskMode: 'painted' },
    train: lite
      ? {
          backbone: 'tiny-resnet',
          device: 'wasm',
          tfBackend: 'wasm',
          resize: 'stretch',
          width: 64,
          height: 64,
          head: 'bce',
          epochs: 3,
          seed: 0,
        }
      : {
          backbone: 'mobilenetv2-12-int8',
          device: 'auto',
          tfBackend: 'auto',
          resize: 'stretch',
          width: 224,
          height: 224,
          head: 'bce',
          epochs: 20,
          seed: 0,
        },
  };
}

export type StepId = 'paint' | 'generate' | 'train' | 'evaluate';

export interface FirstRunState {
  /** Accepted generated images in the open dataset. */
  generated: number;
  /** Region or library masks the user saved (a painted region is stored when Generate runs). */
  masks: number;
  /** Heads trained on the open dataset (each training run evaluates on the test split and stores its metrics). */
  heads: number;
  /** Heads whose stored record holds test metrics. */
  evaluated: number;
}

export function stepsDone(s: FirstRunState): Record<StepId, boolean> {
  return {
    paint: s.masks > 0 || s.generated > 0,
    generate: s.generated > 0,
    train: s.heads > 0,
    evaluate: s.evaluated > 0,
  };
}

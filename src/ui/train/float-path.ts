/**
 * The Train tab's float-path choice for int8 backbones (pure, unit-tested): the options the select offers and
 * one line saying what the loaded backbone runs and why (`BackboneInfo.floatPath` / `floatPathReason`).
 */
import type { BackboneInfo, FloatPathPreference } from '../../../workers/features.engine.ts';

export const FLOAT_PATH_CHOICES: readonly { value: FloatPathPreference; label: string; title: string }[] = [
  {
    value: 'auto',
    label: 'auto',
    title:
      'time the int8 graph and its float path once on this device and keep the faster (remembered per device)',
  },
  { value: 'off', label: 'off (int8 graph)', title: 'run the quantized graph as it is' },
  { value: 'fp32', label: 'fp32', title: 'dequantize the weights and run float32 ops (WASM SIMD, WebGPU)' },
  {
    value: 'fp16',
    label: 'fp16',
    title: 'float16 on WebGPU adapters with shader-f16; elsewhere fp32, with the reason',
  },
];

/** What the loaded backbone runs, for the line beside the choice; '' before anything is loaded. */
export function floatPathOutcome(
  info: Pick<BackboneInfo, 'floatPath' | 'floatPathReason' | 'floatExecutor'> | null,
): string {
  if (!info) return '';
  const by = info.floatExecutor === 'tfjs' ? ', tfjs XNNPACK' : '';
  const runs = info.floatPath === 'off' ? 'the graph as it is' : `its float path (${info.floatPath}${by})`;
  const reason = info.floatPathReason;
  if (reason.startsWith('auto: ')) return `auto picked ${runs}: ${reason.slice('auto: '.length)}`;
  return reason ? `runs ${runs}: ${reason}` : `runs ${runs}`;
}

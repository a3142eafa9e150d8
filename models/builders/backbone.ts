/**
 * Builds the tiny ResNet-shaped backbone (`models/tiny/tiny-resnet/model.onnx`): random weights (fixed seed),
 * the same graph shape as a torchvision ResNet export so the feature rewrite is exercised on a float model —
 *
 *   pixel_values [B, 3, 64, 64] → stem Conv 3×3/2 (16) → ReLU → MaxPool 2×2/2            → [B, 16, 16, 16]
 *   → basic block (Conv-ReLU-Conv + identity, ReLU)                                     → [B, 16, 16, 16]
 *   → basic block with stride 2 and a 1×1/2 projection shortcut (32)                    → [B, 32, 8, 8]
 *   → GlobalAveragePool → Flatten → Gemm (32 → 10) → logits [B, 10]
 *
 * He-initialised weights keep activations in a sane range through the blocks, so features are not all zero.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.ts';
import { GraphBuilder, randomWeights } from './graph.ts';

export const TINY_RESNET_ID = 'tiny-resnet';

/** ONNX bytes of the tiny ResNet-shaped backbone (deterministic for a seed). */
export function tinyResnetModel(seed = 8): Uint8Array {
  const rng = new Rng(`tiny-resnet:${seed}`);
  const g = new GraphBuilder('tiny-resnet');
  let n = 0;
  const conv = (x: string, cin: number, cout: number, k: number, stride: number): string => {
    const id = n++;
    const w = g.init(
      `conv${id}.weight`,
      randomWeights(rng, cout * cin * k * k, Math.sqrt(2 / (cin * k * k))),
      [cout, cin, k, k],
    );
    const b = g.init(`conv${id}.bias`, new Float32Array(cout), [cout]);
    const p = Math.floor(k / 2);
    return g.op('Conv', [x, w, b], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p] });
  };
  const block = (x: string, cin: number, cout: number, stride: number): string => {
    const h = g.op('Relu', [conv(x, cin, cout, 3, stride)]);
    const y = conv(h, cout, cout, 3, 1);
    const shortcut = stride === 1 && cin === cout ? x : conv(x, cin, cout, 1, stride);
    return g.op('Relu', [g.op('Add', [y, shortcut])]);
  };
  const x = g.input('pixel_values', 'float32', ['batch', 3, 64, 64]);
  let h = g.op('Relu', [conv(x, 3, 16, 3, 2)]);
  h = g.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
  h = block(h, 16, 16, 1);
  h = block(h, 16, 32, 2);
  const pooled = g.op('GlobalAveragePool', [h]);
  const flat = g.op('Flatten', [pooled], { axis: 1 });
  const fcW = g.init('fc.weight', randomWeights(rng, 10 * 32, Math.sqrt(1 / 32)), [10, 32]);
  const fcB = g.init('fc.bias', new Float32Array(10), [10]);
  g.op('Gemm', [flat, fcW, fcB], { transB: 1 }, 'logits');
  g.output('logits', 'float32', ['batch', 10]);
  return g.toModel({ opset: 17, metadata: { 'defectlab.tiny': 'true' } });
}

/** Writes `tiny-resnet/model.onnx` under `outDir` (called by `npm run models:tiny`). */
export async function buildBackboneTinyModels(outDir: string): Promise<string[]> {
  const dir = join(outDir, TINY_RESNET_ID);
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'model.onnx');
  await writeFile(file, tinyResnetModel());
  return [file];
}

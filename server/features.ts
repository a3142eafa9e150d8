/**
 * Node feature extraction for the experiment runner: the features engineer's `Backbone` (graph rewrite +
 * batched extraction, `src/runtime/backbone.ts`) over the Node ORT door (`src/runtime/ort-node.ts`), adapted to the
 * core's `FeatureExtractor`. Spatial maps are kept per image object so the CSE trainer reuses them.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FeatureExtractor } from '../src/core/experiments/index.ts';
import type { RasterImage } from '../src/core/image.ts';
import type { PreprocessOptions } from '../src/core/preprocess.ts';
import type { CancelSignal } from '../src/core/progress.ts';
import { Backbone, identifyBackbone } from '../src/runtime/backbone.ts';
import type { FeatureMap } from '../src/runtime/heads/spatial.ts';
import { nodeBackend } from '../src/runtime/ort-node.ts';

export const MOBILENET_PATH = resolve(import.meta.dirname, '../../shared/models/mobilenetv2-12-int8.onnx');

export interface NodeExtractor extends FeatureExtractor {
  readonly backbone: Backbone;
  /** Pooled [D] and spatial [C, h, w] features of images (no caching). */
  extractBoth(
    images: RasterImage[],
    signal?: CancelSignal,
  ): Promise<{ pooled: Float32Array[]; spatial: FeatureMap[] }>;
  release(): Promise<void>;
}

/** Loads an ONNX backbone (default: the real MobileNetV2-int8 in ../shared) on onnxruntime-node CPU. */
export async function loadNodeExtractor(
  modelPath = MOBILENET_PATH,
  id = 'mobilenetv2-12-int8',
  device: 'cpu' | 'cuda' = 'cpu',
  /** The app's preprocessing of this backbone (default: the model's input size, ImageNet statistics). */
  preprocess?: PreprocessOptions,
): Promise<NodeExtractor> {
  const bytes = new Uint8Array(await readFile(modelPath));
  // A known model's feature taps (PatchCore, the masked head) come with it; pooled and spatial stay as they are.
  const taps = (await identifyBackbone(bytes))?.taps;
  const backbone = await Backbone.load(bytes, {
    id,
    ort: nodeBackend,
    device,
    ...(taps ? { taps } : {}),
    ...(preprocess ? { preprocess } : {}),
  });
  return {
    id: `${id}|${backbone.preprocessingId}`,
    backbone,
    async extract(images, signal) {
      return (await backbone.extract(images, { signal, pooledOnly: true, batchSize: 16 })).pooled;
    },
    async extractBoth(images, signal) {
      return backbone.extract(images, { signal, batchSize: 16 });
    },
    release: () => backbone.release(),
  };
}

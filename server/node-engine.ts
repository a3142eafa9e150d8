/**
 * The diffusion engine for Node (server, CLI, benchmarks): onnxruntime-node (CPU, or CUDA when asked and
 * present) and models read from a folder on disk (`{ kind: 'dir', dir }`, e.g. `models/tiny/tiny-sdxl-inpaint`
 * or an optimum export with its manifest).
 *
 * ```ts
 * const engine = createNodeDiffusionEngine();
 * const manifest = await readManifest('models/tiny/tiny-sdxl-inpaint');
 * await engine.load({ manifest, source: { kind: 'dir', dir: 'models/tiny/tiny-sdxl-inpaint' }, backend: 'cpu' });
 * const result = await engine.generate({ image, mask, prompt, steps: 30, guidanceScale: 20, strength: 0.99, seed: 1 });
 * ```
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeBackend } from '../src/runtime/ort-node.ts';
import { createDiffusionEngine, type DiffusionEngineApi } from '../workers/diffusion.engine.ts';
import { parseManifestText, type ModelManifest } from '../src/runtime/models/manifest.ts';

export function createNodeDiffusionEngine(): DiffusionEngineApi {
  return createDiffusionEngine({
    ort: nodeBackend,
    readLocal: async (p) => new Uint8Array(await readFile(p)),
  });
}

/** Reads and validates `<dir>/manifest.json` (or a manifest file path). */
export async function readManifest(dirOrFile: string): Promise<ModelManifest> {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'manifest.json');
  return parseManifestText(await readFile(file, 'utf8'), file);
}

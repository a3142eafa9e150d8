/**
 * `POST /api/diffusion/generate` over the diffusion engine (`workers/diffusion.engine.ts`, core pipeline +
 * onnxruntime-node). Models are resolved by id (default: the folders `npm run models:tiny` builds in
 * `models/tiny/<id>/`); the engine keeps the last one loaded.
 */
import { readFile, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DefectLabError } from '../src/core/errors.ts';
import { decodeImage, encodePng } from '../src/runtime/decode.ts';
import { nodeBackend } from '../src/runtime/ort-node.ts';
import type { ModelManifest } from '../src/runtime/models/manifest.ts';
import type { DiffusionModelSource } from '../src/app/generators.ts';
import {
  createDiffusionEngine,
  type DiffusionEngineApi,
  type LoadRequest,
} from '../workers/diffusion.engine.ts';

export interface DiffusionBody {
  model?: string;
  image: string;
  mask: string;
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidanceScale?: number;
  strength?: number;
  seed?: number;
  /** Crop around the mask (DIAG / diffusers' padding_mask_crop) with this padding in pixels. */
  onlyMasked?: boolean;
  padding?: number;
}

export const TINY_MODELS_DIR = resolve(import.meta.dirname, '../models/tiny');

/** Resolves a model id to a folder `<dir>/<id>/` holding `manifest.json` and the ONNX files. */
/** Where Node sessions run: CUDA when asked and present (else CPU, with the reason on the session), or CPU. */
export type NodeDevice = 'cpu' | 'cuda';

export function localModels(
  dir = TINY_MODELS_DIR,
  device: NodeDevice = 'cpu',
): (id: string) => Promise<LoadRequest> {
  return async (id) => {
    if (!/^[\w.-]+$/.test(id))
      throw new DefectLabError(
        'ModelNotFoundError',
        `bad model id ${JSON.stringify(id)}`,
        `use the name of a model folder under ${dir}`,
      );
    const folder = `${dir}/${id}`;
    let manifest: ModelManifest;
    try {
      manifest = JSON.parse(await readFile(`${folder}/manifest.json`, 'utf8')) as ModelManifest;
    } catch {
      throw new DefectLabError(
        'ModelNotFoundError',
        `${folder}/manifest.json is missing`,
        'run npm run models:tiny',
      );
    }
    return { manifest, source: { kind: 'dir', dir: folder }, backend: device };
  };
}

/**
 * The experiment runner's diffusion models in Node: every `<dir>/<id>/manifest.json` (by default the tiny models
 * `npm run models:tiny` builds), on onnxruntime-node CPU.
 */
export function nodeDiffusionSource(
  dir = TINY_MODELS_DIR,
  engine = nodeDiffusionEngine(),
  device: NodeDevice = 'cpu',
): DiffusionModelSource {
  return {
    async list() {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      const out: { id: string; name: string }[] = [];
      for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name)))
        try {
          const m = JSON.parse(await readFile(`${dir}/${e.name}/manifest.json`, 'utf8')) as ModelManifest;
          out.push({ id: e.name, name: m.name ?? e.name });
        } catch {
          // a folder without a readable manifest is not a model
        }
      return out;
    },
    resolve: localModels(dir, device),
    engine,
    fix: `run npm run models:tiny, or put an export with its manifest.json in a folder under ${dir} (CLI: --diffusion-dir DIR) and name that folder in the grid's diffusion.model`,
  };
}

export function nodeDiffusionEngine(): DiffusionEngineApi {
  return createDiffusionEngine({
    ort: nodeBackend,
    readLocal: async (p) => new Uint8Array(await readFile(p)),
  });
}

/** The route handler: loads the model when it changes, generates, answers PNGs as base64. */
export function diffusionHandler(
  engine: DiffusionEngineApi,
  resolveModel: (id: string) => Promise<LoadRequest>,
): (body: Record<string, unknown>) => Promise<unknown> {
  let loadedId = '';
  return async (raw) => {
    const body = raw as unknown as DiffusionBody;
    const id = body.model ?? 'tiny-sd-inpaint';
    if (loadedId !== id) {
      await engine.load(await resolveModel(id));
      loadedId = id;
    }
    const image = (await decodeImage(new Uint8Array(Buffer.from(body.image, 'base64')), 'request image'))
      .raster;
    const mask = (await decodeImage(new Uint8Array(Buffer.from(body.mask, 'base64')), 'request mask')).raster;
    const r = await engine.generate({
      image,
      mask,
      prompt: body.prompt,
      negativePrompt: body.negativePrompt,
      steps: body.steps ?? 20,
      guidanceScale: body.guidanceScale ?? 7.5,
      strength: body.strength ?? 0.99,
      seed: body.seed ?? 0,
      ...(body.onlyMasked ? { onlyMasked: { padding: body.padding ?? 32 } } : {}),
    });
    return {
      image: Buffer.from(encodePng(r.image)).toString('base64'),
      mask: Buffer.from(encodePng(r.mask)).toString('base64'),
      modelId: r.modelId,
      backend: r.backend,
      ms: r.ms,
      seed: body.seed ?? 0,
    };
  };
}

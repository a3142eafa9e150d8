/**
 * The diffusion engine a process's generate jobs share: loading a model costs seconds, so the engine keeps the
 * last model and reloads only when a job names another. Model ids are folders under `--models`.
 */
import type { DiffusionEngineApi } from '../workers/diffusion.engine.ts';
import { confinedPath } from './confine.ts';
import { localModels, nodeDiffusionEngine } from './diffusion.ts';

let engine: DiffusionEngineApi | null = null;
let loaded = '';

export async function getDiffusionEngine(
  modelsRoot: string,
  id: string,
  device: 'cpu' | 'cuda',
): Promise<DiffusionEngineApi> {
  // Confinement first (a bad id is a 4xx naming the rule), then the manifest as every other entry point reads it.
  confinedPath(modelsRoot, id, 'diffusion.model', '--models');
  engine ??= nodeDiffusionEngine();
  const key = `${modelsRoot}|${id}|${device}`;
  if (loaded !== key) {
    await engine.load(await localModels(modelsRoot, device)(id));
    loaded = key;
  }
  return engine;
}

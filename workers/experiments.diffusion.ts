/**
 * The experiments worker's diffusion models: what the Models tab cached (Cache Storage, and OPFS for big
 * exports), run by a diffusion engine of its own (onnxruntime-web) inside the experiments worker, so a grid does
 * not share sessions with the Paint & generate tab's worker.
 */
import { ModelManager } from '../src/runtime/models/manager.ts';
import type { ModelManifest } from '../src/runtime/models/manifest.ts';
import {
  CacheStorageFileStore,
  OpfsFileStore,
  storeFor,
  type FileStore,
} from '../src/runtime/models/store.ts';
import type { Backend, OrtBackend } from '../src/runtime/ort.ts';
import { NoDiffusionModelError, type DiffusionModelSource } from '../src/app/generators.ts';
import { createDiffusionEngine } from './diffusion.engine.ts';

const FIX = 'download a diffusion model in the Models tab';

function stores(): FileStore[] {
  const out: FileStore[] = [];
  if (typeof caches !== 'undefined') out.push(new CacheStorageFileStore());
  if (typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function')
    out.push(new OpfsFileStore());
  return out;
}

async function cachedManifests(): Promise<ModelManifest[]> {
  const seen = new Map<string, ModelManifest>();
  for (const s of stores()) {
    // A store this browser refuses (OPFS in a private window) just has no models.
    const list = await new ModelManager(s).listCached().catch(() => []);
    for (const c of list) if (!seen.has(c.manifest.id)) seen.set(c.manifest.id, c.manifest);
  }
  return [...seen.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export function cachedDiffusionSource(
  ort: OrtBackend,
  device?: () => Promise<Backend>,
): DiffusionModelSource {
  const engine = createDiffusionEngine({ ort, store: storeFor });
  return {
    async list() {
      return (await cachedManifests()).map((m) => ({ id: m.id, name: m.name ?? m.id }));
    },
    async resolve(id) {
      const manifest = (await cachedManifests()).find((m) => m.id === id);
      if (!manifest) throw new NoDiffusionModelError(`diffusion model "${id}" is not cached`, FIX);
      return { manifest, source: { kind: 'cache' }, backend: await device?.() };
    },
    engine,
    fix: FIX,
  };
}

/**
 * Models-tab state shared with the diffusion panel: the bundled manifests, what is cached, the running download
 * (one overall progress: bytes, rate, ETA), the chosen source per model, the loaded model and the worker client.
 * Logic lives in `src/runtime/models/` (manager, stores) and `workers/diffusion.*`; this only wires it to runes.
 */
/* eslint-disable svelte/prefer-svelte-reactivity -- the Maps here hold File objects posted to the worker
   (structured clone needs plain Maps) and are never rendered; the UI reads counts from `models`. */
import { errorInfo } from '../../core/errors.ts';
import {
  validateManifest,
  serverBase,
  hubBase,
  totalBytes,
  type ModelManifest,
} from '../../runtime/models/manifest.ts';
import { ModelManager, type DownloadProgress, type ModelSource } from '../../runtime/models/manager.ts';
import { CacheStorageFileStore, OpfsFileStore, storeFor } from '../../runtime/models/store.ts';
import { sha256Hex } from '../../runtime/models/sha256.ts';
import { checkModelPlan, type Backend } from '../../runtime/ort.ts';
import type { WebGpuCapability } from '../../runtime/capabilities.ts';
import { autoPlace } from '../../runtime/backend-choice.ts';
import { diffusionClient } from '../../../workers/diffusion.client.ts';
import type { LoadedInfo } from '../../../workers/diffusion.engine.ts';

const raw = import.meta.glob('../../../models/manifests/*.json', { eager: true, import: 'default' });

/** Diffusion manifests bundled with the app (other JSON in models/manifests/ belongs to other features). */
export const manifests: ModelManifest[] = Object.entries(raw)
  .filter(([, v]) => (v as { format?: unknown })?.format === 'defectlab-model/1')
  .map(([path, v]) => validateManifest(v, path.split('/').pop()))
  .sort((a, b) => a.id.localeCompare(b.id));

export type SourceKind = 'server' | 'hub' | 'files';

export const models = $state({
  /** Per model id: stored bytes and whether the cached copy is complete. */
  cached: {} as Record<string, { complete: boolean; bytes: number }>,
  source: {} as Record<string, SourceKind>,
  /** A custom hub base (a mirror); empty = huggingface.co. */
  hubBase: '',
  download: null as null | { id: string; progress: DownloadProgress | null; cancelling: boolean },
  /** The last finished download's final progress (stays visible, so "100 %" can be read after the bar goes). */
  lastDownload: null as null | { id: string; done: number; total: number; ms: number },
  /** Files picked from disk per model id (read in place, never copied). */
  picked: {} as Record<string, number>,
  loading: null as null | { id: string; done: number; total: number; message: string },
  loaded: null as LoadedInfo | null,
  /** Why the loaded model runs where it does: the 'auto' decision, or the device loss that moved it to WASM. */
  loadedReason: '',
  /** While the loaded model moves to WASM after a WebGPU device loss: why ('' otherwise). */
  relocating: '',
  backend: 'auto' as 'auto' | Backend,
  error: null as null | { code: string; message: string },
});

/** Picked File objects stay out of $state (proxying File maps buys nothing). */
const pickedFiles = new Map<string, Map<string, Blob>>();
let abort: AbortController | null = null;

export function managerFor(m: ModelManifest): ModelManager {
  return new ModelManager(storeFor(m));
}

export function manifestById(id: string): ModelManifest {
  const m = manifests.find((x) => x.id === id);
  if (!m) throw new Error(`no manifest ${id}`);
  return m;
}

/** Where to download a model from, for the chosen source. */
export function baseUrl(m: ModelManifest, kind: SourceKind): string | null {
  if (kind === 'server') return serverBase(m, location.origin);
  if (kind === 'hub') return hubBase(m, models.hubBase || undefined);
  return null;
}

/**
 * Why this device cannot (or may not) run a model — the manifest's declared needs against the adapter's limits
 * and shader-f16, its total bytes against `navigator.deviceMemory` — or null when it fits or nothing is known.
 * Shown before the user spends a download on it (the load repeats the check from the graphs themselves).
 */
export function gpuWarning(m: ModelManifest, webgpu: WebGpuCapability | undefined): string | null {
  const deviceMemoryGiB = (navigator as { deviceMemory?: number }).deviceMemory;
  const adapter =
    m.gpu && webgpu?.available
      ? {
          maxBufferSize: webgpu.limits.maxBufferSize,
          maxStorageBufferBindingSize: webgpu.limits.maxStorageBufferBindingSize,
          shaderF16: webgpu.shaderF16,
        }
      : null;
  try {
    const warnings = checkModelPlan(
      {
        name: m.id,
        components: [
          {
            name: m.id,
            needs: {
              largestTensorBytes: m.gpu?.largestTensorBytes ?? 0,
              totalBytes: totalBytes(m),
              usesFp16: m.gpu?.shaderF16 ?? false,
            },
          },
        ],
      },
      { adapter, ...(typeof deviceMemoryGiB === 'number' ? { deviceMemoryGiB } : {}) },
    );
    return warnings[0] ?? null;
  } catch (e) {
    return errorInfo(e).message;
  }
}

export async function refreshCached(): Promise<void> {
  const out: Record<string, { complete: boolean; bytes: number }> = {};
  for (const m of manifests) out[m.id] = await managerFor(m).storedBytes(m);
  models.cached = out;
}

function fail(e: unknown): void {
  const info = errorInfo(e);
  models.error = { code: info.code, message: info.message };
}

/** Downloads (or resumes) a model into the cache from its chosen source. */
export async function downloadModel(id: string): Promise<void> {
  const m = manifestById(id);
  const kind = models.source[id] ?? 'server';
  const base = baseUrl(m, kind);
  models.error = null;
  if (!base) return fail(new Error(`${id} has no ${kind} source — pick another source`));
  abort = new AbortController();
  models.download = { id, progress: null, cancelling: false };
  models.lastDownload = null;
  const t0 = performance.now();
  try {
    await managerFor(m).download(m, base, {
      signal: abort.signal,
      onProgress: (p) => {
        if (models.download) models.download.progress = p;
      },
    });
    const last = models.download.progress;
    models.lastDownload = {
      id,
      done: last?.done ?? 0,
      total: last?.total ?? 0,
      ms: Math.round(performance.now() - t0),
    };
  } catch (e) {
    fail(e);
  } finally {
    models.download = null;
    abort = null;
    await refreshCached();
  }
}

export function cancelDownload(): void {
  if (models.download) models.download.cancelling = true;
  abort?.abort();
}

export async function purgeModel(id: string): Promise<void> {
  models.error = null;
  if (models.loaded?.modelId === id) await unloadModel();
  await managerFor(manifestById(id)).purge(id);
  await refreshCached();
}

/** Lets the user pick an export folder (File System Access API; falls back to a directory input). */
export async function pickFiles(id: string, files?: Iterable<File>): Promise<void> {
  const m = manifestById(id);
  const map = new Map<string, Blob>();
  if (files) {
    for (const f of files)
      map.set((f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name, f);
  } else {
    const picker = (window as unknown as { showDirectoryPicker?: () => Promise<FileSystemDirectoryHandle> })
      .showDirectoryPicker;
    if (!picker) return fail(new Error('this browser cannot pick folders — use the folder input instead'));
    const dir = await picker();
    const walk = async (d: FileSystemDirectoryHandle, prefix: string) => {
      for await (const [name, h] of (
        d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }
      ).entries()) {
        if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${prefix}${name}/`);
        else map.set(`${prefix}${name}`, await (h as FileSystemFileHandle).getFile());
      }
    };
    await walk(dir, '');
  }
  // Keep only the files the manifest names (matching by path suffix, so the picked folder's own name is ignored).
  const wanted = new Map<string, Blob>();
  for (const f of m.files) {
    const hit = map.get(f.path) ?? [...map.entries()].find(([k]) => k.endsWith('/' + f.path))?.[1];
    if (hit) wanted.set(f.path, hit);
  }
  pickedFiles.set(id, wanted);
  models.picked[id] = wanted.size;
  models.source[id] = 'files';
}

/** Where a load goes: the Models tab's choice, or 'auto' = the System panel's measured choice, with why. */
async function resolveBackend(): Promise<{ backend: Backend; reason: string }> {
  if (models.backend !== 'auto') return { backend: models.backend, reason: '' };
  try {
    return await autoPlace();
  } catch (e) {
    return { backend: 'wasm', reason: `auto: no backend decision (${(e as Error).message}), WASM` };
  }
}

/** Loads a model into the diffusion worker, from the cache or from picked files. */
export async function loadModel(id: string, backend?: Backend): Promise<LoadedInfo | null> {
  const m = manifestById(id);
  models.error = null;
  const files = pickedFiles.get(id);
  const source: ModelSource =
    models.source[id] === 'files' && files ? { kind: 'files', files } : { kind: 'cache' };
  models.loading = { id, done: 0, total: 1, message: 'starting' };
  // Progress travels on its own message channel and can land after the load's result: a late message must not
  // bring `loading` back (every Load button would stay disabled).
  let settled = false;
  try {
    const place = backend ? { backend, reason: '' } : await resolveBackend();
    const info = await diffusionClient().load(
      { manifest: JSON.parse(JSON.stringify(m)), source, backend: place.backend },
      {
        onProgress: (p) => {
          if (!settled) models.loading = { id, done: p.done, total: p.total, message: p.message ?? '' };
        },
      },
    );
    models.loaded = info;
    models.loadedReason = place.reason;
    return info;
  } catch (e) {
    fail(e);
    return null;
  } finally {
    settled = true;
    models.loading = null;
  }
}

// After a WebGPU device loss the client loads the model again on WASM by itself: show where it is now, and why.
diffusionClient().onRelocate((r) => {
  if (r.phase === 'reloading') {
    models.relocating = r.reason;
    models.loading = { id: r.modelId, done: 0, total: 1, message: 'again on WASM' };
    return;
  }
  models.relocating = '';
  models.loading = null;
  if (r.phase === 'reloaded') {
    models.loaded = r.info;
    models.loadedReason = r.reason;
  } else {
    models.loaded = null;
    models.loadedReason = '';
    models.error = { code: 'GpuDeviceLostError', message: r.reason };
  }
});

export async function unloadModel(): Promise<void> {
  await diffusionClient().unload();
  models.loaded = null;
}

// Console/test access to the same objects the UI uses (the parity e2e test drives the worker through it).
(globalThis as Record<string, unknown>).__defectlabModels = {
  manifests,
  models,
  managerFor,
  downloadModel,
  loadModel,
  refreshCached,
  client: diffusionClient,
  classes: { ModelManager, CacheStorageFileStore, OpfsFileStore },
  sha256: sha256Hex,
  serverBase,
};

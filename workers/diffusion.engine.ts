/**
 * The diffusion engine: load / generate / cancel / unload over the core pipeline (`src/core/diffusion`) and an
 * onnxruntime door (`OrtBackend`). The same object runs inside `diffusion.worker.ts` (onnxruntime-web, models
 * read from the Cache Storage the Models tab filled, or from picked files), in-thread in tests, and in Node for
 * the server (`createDiffusionEngine({ ort: nodeBackend, readLocal })`, models read from a folder).
 *
 * Before any session is created every graph is checked against the manifest's layout (`assertLayout`), so a
 * wrong export fails with a `LayoutMismatchError` naming the file, not an onnxruntime error at step 1.
 */
import { ClipTokenizer, generate } from '../src/core/diffusion/index.ts';
import type { DiffusionModels, GenerateRequest, GenerateResult } from '../src/core/diffusion/index.ts';
import { DefectLabError } from '../src/core/errors.ts';
import { throwIfCancelled } from '../src/core/progress.ts';
import type { SessionLike } from '../src/core/tensor.ts';
import type { Backend, OrtBackend, OrtSession } from '../src/runtime/ort.ts';
import { assertLayout } from '../src/runtime/models/layout.ts';
import { ModelManager, type ModelFiles, type ModelSource } from '../src/runtime/models/manager.ts';
import {
  requiredComponents,
  validateManifest,
  type ComponentName,
  type ModelManifest,
} from '../src/runtime/models/manifest.ts';
import { inspectOnnx } from '../src/runtime/models/onnx-inspect.ts';
import { MemoryFileStore, type FileStore } from '../src/runtime/models/store.ts';
import { JobRegistry, type Cancellable, type JobOptions, type OrtDiagnostics } from './host.ts';

/** A model source the engine can read: the manager's sources, or a local folder (Node). */
export type EngineSource = ModelSource | { kind: 'dir'; dir: string };

export interface LoadRequest {
  manifest: ModelManifest;
  source: EngineSource;
  /** Requested backend ('webgpu'/'wasm' in the browser, 'cpu'/'cuda' in Node); default: the door's best. */
  backend?: Backend;
}

export interface LoadedInfo {
  modelId: string;
  layout: ModelManifest['layout'];
  resolution: number;
  /** Where each component runs and, when it differs from the request, why. */
  components: Partial<
    Record<ComponentName, { backend: Backend; fallbackReason: string; partialFallback: string }>
  >;
  loadMs: number;
  /** Pre-load warnings (the model may not fit this device's memory); empty when it clearly fits. */
  warnings: string[];
  ortVersion: string;
  flavour: 'web' | 'node';
}

export interface EngineResult extends GenerateResult {
  modelId: string;
  /** Backend of the UNet (the component that dominates the time). */
  backend: Backend;
  ms: number;
  /** Wall time of each UNet call (one per step, cond and uncond batched), for benchmarks. */
  unetMs: number[];
}

/** The same session, timing each `run` into `into` (a generate-local array, so runs never mix). */
function timed(s: SessionLike, into: number[]): SessionLike {
  return {
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    inputs: s.inputs,
    outputs: s.outputs,
    async run(feeds, outputNames) {
      const t0 = performance.now();
      try {
        return await s.run(feeds, outputNames);
      } finally {
        into.push(performance.now() - t0);
      }
    },
    release: () => s.release(),
  };
}

export interface DiffusionEngineApi extends Cancellable, OrtDiagnostics {
  load(req: LoadRequest, opts?: JobOptions): Promise<LoadedInfo>;
  generate(req: GenerateRequest, opts?: JobOptions): Promise<EngineResult>;
  unload(): Promise<void>;
  loaded(): Promise<LoadedInfo | null>;
}

export class NoModelLoadedError extends DefectLabError {
  constructor() {
    super(
      'NoModelLoadedError',
      'no diffusion model is loaded',
      'load one in the Models tab (or call load()) first',
    );
  }
}

export interface EngineDeps {
  ort: OrtBackend;
  /** The model cache (`CacheStorageFileStore` in the browser), or a choice per manifest (`storeFor`). */
  store?: FileStore | ((m: ModelManifest) => FileStore);
  fetchFn?: typeof fetch;
  /** Reads a local file (Node: `fs.readFile`); enables `{ kind: 'dir' }` sources. */
  readLocal?: (path: string) => Promise<Uint8Array>;
}

const SESSION_KEYS: Record<ComponentName, keyof Omit<DiffusionModels, 'config'>> = {
  text_encoder: 'textEncoder',
  text_encoder_2: 'textEncoder2',
  unet: 'unet',
  vae_encoder: 'vaeEncoder',
  vae_decoder: 'vaeDecoder',
};

export function createDiffusionEngine(deps: EngineDeps): DiffusionEngineApi {
  const jobs = new JobRegistry();
  const memory = new MemoryFileStore();
  const managerFor = (m: ModelManifest) =>
    new ModelManager(typeof deps.store === 'function' ? deps.store(m) : (deps.store ?? memory), deps.fetchFn);
  let current: {
    models: DiffusionModels;
    tokenizer: ClipTokenizer;
    info: LoadedInfo;
    sessions: OrtSession[];
  } | null = null;

  function filesOf(manifest: ModelManifest, source: EngineSource): ModelFiles {
    if (source.kind !== 'dir') return managerFor(manifest).open(manifest, source);
    const read = deps.readLocal;
    if (!read)
      throw new DefectLabError(
        'UnsupportedSourceError',
        'a folder source needs file access, which only the Node engine has',
        'pick the files (Models tab → Pick files) or serve the folder with npm start',
      );
    const full = (path: string) => `${source.dir.replace(/\/$/, '')}/${path}`;
    // The Node door reads a path itself, so external data is never read here.
    return {
      manifest,
      read: (path) => read(full(path)),
      url: async (path) => ({ url: full(path), release() {} }),
    };
  }

  async function unload(): Promise<void> {
    const c = current;
    current = null;
    if (c) for (const s of c.sessions) await s.release();
  }

  return {
    async load(req, opts) {
      const job = jobs.start(opts?.jobId);
      const t0 = Date.now();
      const sessions: OrtSession[] = [];
      try {
        const manifest = validateManifest(req.manifest, `${req.manifest?.id ?? 'model'} manifest`);
        const files = filesOf(manifest, req.source);
        const comps = requiredComponents(manifest.layout);
        const steps = comps.length + 1;
        const dec = new TextDecoder();
        const tokenizer = ClipTokenizer.fromVocabMerges(
          dec.decode(await files.read(manifest.tokenizer.vocab)),
          dec.decode(await files.read(manifest.tokenizer.merges)),
        );
        // Read and check every graph before releasing the current model, so a bad file leaves it loaded.
        const graphs: { name: ComponentName; bytes: Uint8Array; summary: ReturnType<typeof inspectOnnx> }[] =
          [];
        for (const name of comps) {
          throwIfCancelled(job.signal, `loading ${manifest.id}`);
          const comp = manifest.components[name]!;
          const bytes = await files.read(comp.file);
          const summary = inspectOnnx(bytes, `${manifest.id}/${comp.file}`);
          assertLayout(manifest.layout, name, `${manifest.id}/${comp.file}`, summary);
          graphs.push({ name, bytes, summary });
        }
        // The whole model against the device (memory, adapter limits, shader-f16), still before the current
        // model is released: a model that cannot fit is refused and the loaded one keeps working.
        const warnings =
          (await deps.ort.preflight?.(
            {
              name: manifest.id,
              components: graphs.map(({ name, summary: s }) => ({
                name: `${manifest.id}/${name}`,
                needs: {
                  largestTensorBytes: s.largestTensorBytes,
                  totalBytes: s.totalTensorBytes,
                  usesFp16: s.usesFp16,
                },
              })),
            },
            req.backend,
          )) ?? [];
        opts?.onProgress?.({ stage: 'load', done: 1, total: steps, unit: 'items', message: 'checked' });
        await unload();
        const partial: Partial<Record<keyof Omit<DiffusionModels, 'config'>, SessionLike>> = {};
        const components: LoadedInfo['components'] = {};
        for (const [i, { name, bytes, summary }] of graphs.entries()) {
          throwIfCancelled(job.signal, `loading ${manifest.id}`);
          const comp = manifest.components[name]!;
          // External data goes to onnxruntime as URLs (object URLs of cached Blobs / picked Files, server
          // URLs, file paths in Node) so no single multi-GB Uint8Array is ever built here; bytes only where
          // the platform has no object URLs.
          const dir = comp.file.includes('/') ? comp.file.slice(0, comp.file.lastIndexOf('/') + 1) : '';
          const urls: { release(): void }[] = [];
          const externalData = comp.externalData
            ? await Promise.all(
                comp.externalData.map(async (p) => {
                  const path = p.startsWith(dir) ? p.slice(dir.length) : p.split('/').pop()!;
                  const ref = await files.url?.(p);
                  if (ref) urls.push(ref);
                  return { path, data: ref ? ref.url : await files.read(p) };
                }),
              )
            : undefined;
          const s = await deps.ort
            .createSession(bytes, {
              backend: req.backend,
              name: `${manifest.id}/${name}`,
              needs: {
                largestTensorBytes: summary.largestTensorBytes,
                totalBytes: summary.totalTensorBytes,
                usesFp16: summary.usesFp16,
              },
              ops: summary.ops,
              ...(externalData ? { externalData } : {}),
            })
            .finally(() => urls.forEach((u) => u.release()));
          sessions.push(s);
          partial[SESSION_KEYS[name]] = s;
          components[name] = {
            backend: s.backend,
            fallbackReason: s.fallbackReason,
            partialFallback: s.partialFallback,
          };
          opts?.onProgress?.({ stage: 'load', done: i + 2, total: steps, unit: 'items', message: name });
        }
        const models: DiffusionModels = {
          textEncoder: partial.textEncoder!,
          textEncoder2: partial.textEncoder2,
          unet: partial.unet!,
          vaeEncoder: partial.vaeEncoder!,
          vaeDecoder: partial.vaeDecoder!,
          config: {
            layout: manifest.layout,
            vaeScalingFactor: manifest.config.vaeScalingFactor,
            latentChannels: manifest.config.latentChannels,
            resolution: manifest.resolution,
            scheduler: manifest.config.scheduler,
            maxTokens: manifest.config.maxTokens,
            padTokenId: manifest.config.padTokenId,
            padTokenId2: manifest.config.padTokenId2,
          },
        };
        const info: LoadedInfo = {
          modelId: manifest.id,
          layout: manifest.layout,
          resolution: manifest.resolution,
          components,
          loadMs: Date.now() - t0,
          warnings,
          ortVersion: deps.ort.version,
          flavour: deps.ort.flavour,
        };
        current = { models, tokenizer, info, sessions };
        return info;
      } catch (e) {
        for (const s of sessions) await s.release();
        throw e;
      } finally {
        job.done();
      }
    },

    async generate(req, opts) {
      const c = current;
      if (!c) throw new NoModelLoadedError();
      const job = jobs.start(opts?.jobId);
      const t0 = Date.now();
      const unetMs: number[] = [];
      try {
        const models = { ...c.models, unet: timed(c.models.unet, unetMs) };
        const r = await generate(models, c.tokenizer, req, {
          signal: job.signal,
          onProgress: opts?.onProgress,
        });
        return {
          ...r,
          modelId: c.info.modelId,
          backend: c.info.components.unet?.backend ?? 'cpu',
          ms: Date.now() - t0,
          unetMs,
        };
      } finally {
        job.done();
      }
    },

    cancel(jobId) {
      jobs.cancel(jobId);
    },

    unload,

    async loaded() {
      return current?.info ?? null;
    },

    async ortSessions() {
      return deps.ort.liveSessions?.() ?? null;
    },
  };
}

/**
 * The features engine: load a backbone (manifest entry, URL or picked file), set its preprocessing, and extract
 * pooled + spatial features of images or of a stored dataset through the feature cache. Runs in
 * `features.worker.ts` (and inside the train worker), and in-thread in Node tests with `nodeBackend`.
 *
 * Progress callbacks are top-level arguments: comlink proxies only those, not callbacks nested in options.
 */
import type { ImageRecord, Label, Split } from '../src/core/dataset.ts';
import { DefectLabError } from '../src/core/errors.ts';
import type { RasterImage } from '../src/core/image.ts';
import { type PreprocessOptions, preprocessingId } from '../src/core/preprocess.ts';
import type { CancelSignal, ProgressFn } from '../src/core/progress.ts';
import {
  BACKBONES,
  Backbone,
  type FloatExecutor,
  type BackboneManifestEntry,
  CachedFeatures,
  type Features,
  findBackbone,
  identifyBackbone,
  manifestLoadOptions,
  timeBackbones,
} from '../src/runtime/backbone.ts';
import {
  type FloatPathMeasurement,
  type FloatPathStore,
  currentDeviceKey,
  decideFloatPath,
  floatPathKey,
  sharedFloatPathStore,
} from '../src/runtime/backend-choice.ts';
import { type FloatPrecision, chooseFloatPrecision } from '../src/runtime/dequantize.ts';
import type { DefectLabStore, ImageFilter } from '../src/runtime/db/types.ts';
import type { FeatureMap } from '../src/runtime/heads/spatial.ts';
import type { Backend, OrtBackend } from '../src/runtime/ort.ts';
import { type Cancellable, JobRegistry, type OrtDiagnostics } from './host.ts';

export type DevicePreference = 'auto' | Backend;

/**
 * The batch "auto" times the float-path candidates at: the batch extraction runs (`extract`'s default), because
 * the executors rank differently by batch (tfjs's XNNPACK behind onnxruntime-web at 2, ahead at 8 on the bench host).
 */
const AUTO_TIMING_BATCH = 8;

/**
 * How an int8 (QLinear* / QDQ) backbone runs: 'off' = the graph as it is; 'fp32' / 'fp16' = its float path
 * (`src/runtime/dequantize.ts`; 'fp16' only where WebGPU has shader-f16, else fp32 with the reason); 'auto' =
 * whichever this device measured faster (browser; stored per device, model and backend), int8 in Node.
 */
export type FloatPathPreference = 'auto' | 'off' | FloatPrecision;

export interface LoadBackboneRequest {
  /** A manifest id ('mobilenetv2-12-int8', 'resnet50-hf', 'tiny-resnet'). */
  manifestId?: string;
  /** Model bytes picked by the user (matched to the manifest by sha256 when it is a known model). */
  bytes?: Uint8Array;
  /** URL or (Node) path; default: the manifest entry's URL/path. */
  url?: string;
  name?: string;
  device?: DevicePreference;
  /** Default 'auto'. Ignored for float models. */
  floatPath?: FloatPathPreference;
  /**
   * Who runs an explicit 'fp32' float path: 'onnxruntime' (default) or 'tfjs' (XNNPACK on WASM). With
   * `floatPath: 'auto'` on WASM both executors are timed and the faster kept.
   */
  floatExecutor?: FloatExecutor;
}

export interface BackboneInfo {
  id: string;
  name: string;
  backend: string;
  fallbackReason: string;
  /** Why it runs there when the request said 'auto' ("auto: WASM measured faster on …"); '' otherwise. */
  placeReason: string;
  inputName: string;
  pooledOutput: string;
  spatialOutput: string;
  preprocess: PreprocessOptions;
  preprocessingId: string;
  /** 'fp32' / 'fp16' when the float path of an int8 graph runs, else 'off'. */
  floatPath: 'off' | FloatPrecision;
  /** Who runs the float path ('onnxruntime', or 'tfjs' for the XNNPACK executor); absent with floatPath 'off'. */
  floatExecutor?: FloatExecutor;
  /** Why that path ("auto: measured: float path (fp32) 40 ms vs int8 210 ms per image …"); '' for float models. */
  floatPathReason: string;
}

/** One image of a dataset with what evaluation needs to know about it. */
export interface ImageMeta {
  id: string;
  name: string;
  label: Label;
  split: Split;
  defectClass?: string;
  /** A generator made it (accepted synthetic defect). */
  synthetic: boolean;
  maskId?: string;
  sha256: string;
  /** Stored pixel size (heat maps are mapped back to it for pixel-level PRO and overlays). */
  width: number;
  height: number;
}

export interface DatasetFeatures {
  images: ImageMeta[];
  pooled: Float32Array[];
  spatial: FeatureMap[];
  /** How many came from the cache. */
  cached: number;
}

export interface FeaturesApi extends Cancellable, OrtDiagnostics {
  backbones(): Promise<BackboneManifestEntry[]>;
  loadBackbone(req: LoadBackboneRequest, progress?: ProgressFn): Promise<BackboneInfo>;
  backboneInfo(): Promise<BackboneInfo | null>;
  setPreprocess(p: PreprocessOptions): Promise<BackboneInfo>;
  extractImages(
    images: RasterImage[],
    pooledOnly?: boolean,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<Features>;
  extractDataset(
    datasetId: string,
    filter?: ImageFilter,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<DatasetFeatures>;
  releaseBackbone(): Promise<void>;
}

export class NoBackboneError extends DefectLabError {
  constructor() {
    super(
      'NoBackboneError',
      'no backbone is loaded',
      'load a backbone (or pick an ONNX file) in the train tab first',
    );
  }
}

export interface FeaturesEngineDeps {
  ort: OrtBackend;
  /** Opens the store (IndexedDB in the browser, fake-indexeddb in tests). */
  store?: () => Promise<DefectLabStore>;
  /** Decodes stored image bytes (`src/runtime/decode.ts`). */
  decode?: (bytes: Uint8Array, name: string) => Promise<{ raster: RasterImage }>;
  /**
   * What 'auto' means here, and why (the System panel's measured choice, `autoPlace()`); default: the door's
   * first backend.
   */
  autoDevice?: () => Promise<Backend | { backend: Backend; reason: string }>;
  /** Where "auto" keeps its float-path measurements (default: the origin's shared settings). */
  floatPathStore?: FloatPathStore;
}

export function imageMeta(r: ImageRecord): ImageMeta {
  return {
    id: r.id,
    name: r.name,
    label: r.label,
    split: r.split,
    defectClass: r.defectClass,
    synthetic: !!r.provenance,
    maskId: r.maskId,
    sha256: r.sha256,
    width: r.width,
    height: r.height,
  };
}

export class FeaturesEngine implements FeaturesApi {
  protected readonly jobs = new JobRegistry();
  protected backbone: Backbone | null = null;
  private storePromise: Promise<DefectLabStore> | null = null;
  private name = '';

  constructor(protected readonly deps: FeaturesEngineDeps) {}

  protected store(): Promise<DefectLabStore> {
    if (!this.deps.store)
      throw new DefectLabError('NoStoreError', 'this engine has no store', 'pass a store factory');
    this.storePromise ??= this.deps.store();
    return this.storePromise;
  }

  protected requireBackbone(): Backbone {
    if (!this.backbone) throw new NoBackboneError();
    return this.backbone;
  }

  async backbones(): Promise<BackboneManifestEntry[]> {
    return [...BACKBONES];
  }

  async loadBackbone(req: LoadBackboneRequest, progress?: ProgressFn): Promise<BackboneInfo> {
    progress?.({ stage: 'load backbone', done: 0, total: 1 });
    let entry = req.manifestId ? findBackbone(req.manifestId) : undefined;
    if (req.manifestId && !entry)
      throw new DefectLabError(
        'ModelNotFoundError',
        `no backbone ${req.manifestId} in models/manifests/backbones.json`,
        `use one of ${BACKBONES.map((b) => b.id).join(', ')} or pick an ONNX file`,
      );
    let bytes = req.bytes;
    if (!bytes) {
      const src = req.url ?? entry?.source.url ?? entry?.source.path;
      if (!src)
        throw new DefectLabError('ModelNotFoundError', 'no model bytes or URL given', 'pick an ONNX file');
      bytes = await fetchBytes(src);
    } else if (!entry) {
      entry = await identifyBackbone(bytes);
    }
    const auto = !req.device || req.device === 'auto' ? await this.autoDevice() : null;
    const device = auto ? auto.backend : (req.device as Backend);
    this.placeReason = auto?.reason ?? '';
    await this.backbone?.release();
    this.backbone = null;
    const opts = entry
      ? manifestLoadOptions(entry)
      : { id: `user:${req.name ?? 'model'}:${bytes.length}`, name: req.name ?? 'picked model' };
    const model = bytes;
    const load = (floatPath?: FloatPrecision, floatExecutor?: FloatExecutor) =>
      Backbone.load(model, { ...opts, ort: this.deps.ort, device, floatPath, floatExecutor });
    const chosen = await this.withFloatPath(
      req.floatPath ?? 'auto',
      device,
      entry?.sha256 ?? opts.id,
      load,
      req.floatExecutor,
    );
    this.backbone = chosen.backbone;
    this.floatPathReason = chosen.reason;
    this.name = opts.name ?? opts.id;
    progress?.({ stage: 'load backbone', done: 1, total: 1 });
    return this.info(this.backbone);
  }

  private placeReason = '';
  private floatPathReason = '';

  /**
   * Loads the backbone on the float path the preference asks for. 'auto' on an int8 graph in the browser times
   * both candidates on this device once (`timeBackbone`, stored through `floatPathStore`) and keeps the faster.
   */
  private async withFloatPath(
    pref: FloatPathPreference,
    device: Backend,
    modelId: string,
    load: (floatPath?: FloatPrecision, executor?: FloatExecutor) => Promise<Backbone>,
    executor?: FloatExecutor,
  ): Promise<{ backbone: Backbone; reason: string }> {
    const precision = async () =>
      chooseFloatPrecision(device, !!(await this.deps.ort.adapterFacts?.())?.shaderF16);
    if (pref === 'off') return { backbone: await load(), reason: '' };
    if (pref === 'fp32' || pref === 'fp16') {
      const p = pref === 'fp16' ? await precision() : { precision: 'fp32' as const, reason: '' };
      const backbone = await load(p.precision, p.precision === 'fp32' ? executor : undefined);
      return { backbone, reason: p.precision !== pref ? `fp16 asked; ${p.reason}` : '' };
    }
    const int8 = await load();
    if (!int8.info.quantizedGraph) return { backbone: int8, reason: '' };
    if (this.deps.ort.flavour === 'node')
      return {
        backbone: int8,
        reason:
          'auto: int8 graph (onnxruntime-node runs its int8 kernels natively; no float-path benchmark in Node)',
      };
    const store = this.deps.floatPathStore ?? sharedFloatPathStore;
    const key = floatPathKey(await currentDeviceKey(), modelId, device);
    let m = await store.load(key).catch(() => undefined);
    // On WASM the tfjs executor is a candidate too; a measurement from before it existed is taken again.
    const tfCandidate = device === 'wasm';
    if (m && tfCandidate && m.floatTfMs === undefined) m = undefined;
    let float: Backbone | null = null;
    let floatTf: Backbone | null = null;
    if (!m) {
      const p = (await precision()).precision;
      const measured: FloatPathMeasurement = {
        key,
        int8Ms: null,
        floatMs: null,
        precision: p,
        int8Backend: int8.backend,
        measuredAt: Date.now(),
      };
      try {
        float = await load(p);
        measured.floatBackend = float.backend;
      } catch (e) {
        measured.floatError = e instanceof Error ? e.message : String(e);
      }
      if (tfCandidate && p === 'fp32') {
        measured.floatTfMs = null;
        try {
          floatTf = await load('fp32', 'tfjs');
        } catch (e) {
          measured.floatTfError = e instanceof Error ? e.message : String(e);
        }
      }
      try {
        const list = [int8, float, floatTf].filter((b): b is Backbone => !!b);
        const ms = await timeBackbones(list, AUTO_TIMING_BATCH);
        measured.int8Ms = ms[0];
        if (float) measured.floatMs = ms[list.indexOf(float)];
        if (floatTf) measured.floatTfMs = ms[list.indexOf(floatTf)];
      } catch {
        // Time them one by one to learn which failed.
        for (const [b, k] of [
          [int8, 'int8'],
          [float, 'float'],
          [floatTf, 'floatTf'],
        ] as const) {
          if (!b) continue;
          try {
            measured[`${k}Ms`] = (await timeBackbones([b], AUTO_TIMING_BATCH))[0];
          } catch (err) {
            measured[`${k}Error`] = err instanceof Error ? err.message : String(err);
          }
        }
      }
      m = measured;
      await store.save(m).catch(() => undefined);
    }
    const d = decideFloatPath(m);
    const keep = d.floatPath === 'off' ? int8 : d.executor === 'tfjs' ? floatTf : float;
    for (const b of [int8, float, floatTf]) if (b && b !== keep) await b.release();
    return {
      backbone: keep ?? (await load(d.floatPath as FloatPrecision, d.executor)),
      reason: `auto: ${d.reason}`,
    };
  }

  private async autoDevice(): Promise<{ backend: Backend; reason: string }> {
    const a = this.deps.autoDevice ? await this.deps.autoDevice() : null;
    if (a) return typeof a === 'string' ? { backend: a, reason: '' } : a;
    const list = await this.deps.ort.availableBackends();
    return { backend: list[0] ?? 'cpu', reason: '' };
  }

  private info(b: Backbone): BackboneInfo {
    const s = b.session as { backend?: string; fallbackReason?: string };
    return {
      id: b.id,
      name: this.name,
      backend: s.backend ?? 'unknown',
      fallbackReason: s.fallbackReason ?? '',
      placeReason: this.placeReason,
      inputName: b.info.inputName,
      pooledOutput: b.info.pooledOutput,
      spatialOutput: b.info.spatialOutput,
      preprocess: b.preprocess,
      preprocessingId: preprocessingId(b.preprocess),
      floatPath: b.info.floatPath ?? 'off',
      ...(b.info.floatPath && b.info.floatPath !== 'off' ? { floatExecutor: b.info.floatExecutor } : {}),
      floatPathReason: this.floatPathReason,
    };
  }

  async backboneInfo(): Promise<BackboneInfo | null> {
    return this.backbone ? this.info(this.backbone) : null;
  }

  async setPreprocess(p: PreprocessOptions): Promise<BackboneInfo> {
    const b = this.requireBackbone();
    preprocessingId(p); // validates
    (b as { preprocess: PreprocessOptions }).preprocess = p;
    return this.info(b);
  }

  async extractImages(
    images: RasterImage[],
    pooledOnly = false,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<Features> {
    const b = this.requireBackbone();
    const job = this.jobs.start(jobId);
    try {
      return await b.extract(images, { pooledOnly, signal: job.signal, onProgress: progress });
    } finally {
      job.done();
    }
  }

  /** Features of a dataset's images (cached by backbone, sha256 and preprocessing), in `listImages` order. */
  async extractDataset(
    datasetId: string,
    filter?: ImageFilter,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<DatasetFeatures> {
    const job = this.jobs.start(jobId);
    try {
      return await this.datasetFeatures(datasetId, filter, job.signal, progress);
    } finally {
      job.done();
    }
  }

  /** `extractDataset` under a caller's job, so that a train or evaluate job's Stop also stops its extraction. */
  protected async datasetFeatures(
    datasetId: string,
    filter: ImageFilter | undefined,
    signal: CancelSignal,
    progress?: ProgressFn,
  ): Promise<DatasetFeatures> {
    const b = this.requireBackbone();
    const store = await this.store();
    const records = await store.listImages(datasetId, filter);
    const cache = new CachedFeatures(b, store);
    const feats = await cache.extract(
      records.map((r) => ({ sha256: r.sha256, load: () => this.decodeRecord(r) })),
      { signal, onProgress: progress },
    );
    return {
      images: records.map(imageMeta),
      pooled: feats.map((f) => f.pooled),
      spatial: feats.map((f) => (f.spatial ? { data: f.spatial.data, dims: f.spatial.dims } : emptyMap())),
      cached: cache.hits,
    };
  }

  protected async decodeRecord(r: ImageRecord): Promise<RasterImage> {
    if (!this.deps.decode)
      throw new DefectLabError('NoDecoderError', 'this engine cannot decode images', 'pass decodeImage');
    const bytes = new Uint8Array(await r.blob.arrayBuffer());
    return (await this.deps.decode(bytes, r.name)).raster;
  }

  async releaseBackbone(): Promise<void> {
    await this.backbone?.release();
    this.backbone = null;
  }

  cancel(jobId: string): void {
    this.jobs.cancel(jobId);
  }

  async ortSessions(): Promise<number | null> {
    return this.deps.ort.liveSessions?.() ?? null;
  }
}

function emptyMap(): FeatureMap {
  return { data: new Float32Array(0), dims: [0, 0, 0] };
}

async function fetchBytes(src: string): Promise<Uint8Array> {
  const res = await fetch(src);
  if (!res.ok)
    throw new DefectLabError(
      'ModelNotFoundError',
      `GET ${src} answered ${res.status}`,
      'check the URL, or download the file and pick it from disk',
    );
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * The features worker's `extractImages` / `extractDataset` as server `features` jobs: same arguments, same result
 * shapes, same progress callback and cancel-by-job-id, so a view holding the features API (or the experiments or
 * train client that extend it) can use it in place of the worker when System → Compute says "Server".
 *
 * The backbone is the one the tab loaded (its id and preprocessing, `backboneInfo()` of the local client); the
 * server loads its own copy from `<--models>/<backbone id>/model.onnx` with the same preprocessing, so the
 * features' cache key (backbone, image sha256, preprocessing) is the one the browser would write, and the Train tab
 * and the grid find them cached. Each stored record says `backend: "server <url>"`. Only images missing from the
 * cache are uploaded (their stored file bytes; up to 256 images or ~24 MB per job); a failed or stopped job stores nothing of its chunk.
 */
import type { ImageRecord, Label, Split } from '../core/dataset.ts';
import { DefectLabError } from '../core/errors.ts';
import type { RasterImage } from '../core/image.ts';
import type { PreprocessOptions } from '../core/preprocess.ts';
import type { ProgressFn } from '../core/progress.ts';
import { encodePng, sniffFormat } from '../runtime/decode.ts';
import type { DefectLabStore, ImageFilter } from '../runtime/db/types.ts';
import type { FeatureMap } from '../runtime/heads/spatial.ts';
import type { ServerClient } from './server-client.ts';
import { bytesToBase64 } from './server-synth.ts';

/** What the server needs of the loaded backbone (a structural part of the features worker's `BackboneInfo`). */
export interface BackboneRef {
  id: string;
  preprocess: PreprocessOptions;
  preprocessingId: string;
}

/** One image of a dataset, as the features worker's `ImageMeta`. */
export interface ServerImageMeta {
  id: string;
  name: string;
  label: Label;
  split: Split;
  defectClass?: string;
  synthetic: boolean;
  maskId?: string;
  sha256: string;
  width: number;
  height: number;
}

export class ServerModelError extends DefectLabError {
  constructor(url: string, id: string, have: string[], what: 'backbone' | 'diffusion model' = 'backbone') {
    super(
      'ServerModelError',
      `the server at ${url} has no ${what} folder ${JSON.stringify(id)} under its --models (it has ${have.join(', ') || 'none'})`,
      what === 'backbone'
        ? `put the backbone's ONNX file at <--models>/${id}/model.onnx on the server, or switch System → Compute to "This browser"`
        : `copy the model's folder (manifest.json and its ONNX files) to <--models>/${id} on the server, or switch System → Compute to "This browser"`,
    );
  }
}

/** The features of one job: pooled [D] and, when asked, spatial [C, h, w] per image, in upload order. */
interface JobFeatures {
  pooled: Float32Array[];
  spatial: FeatureMap[];
  backend: string;
  preprocessingId: string;
}

const CHUNK = 256;
const CHUNK_BYTES = 24 * 1024 * 1024;

/** A stored file as the server accepts it (PNG, JPEG, WebP, BMP as they are; anything else re-encoded). */
export async function uploadBytes(blob: Blob, decoded?: () => Promise<RasterImage>): Promise<string> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (sniffFormat(bytes) || !decoded) return bytesToBase64(bytes);
  return bytesToBase64(encodePng(await decoded(), 1));
}

export function imageMetaOf(r: ImageRecord): ServerImageMeta {
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

export class ServerFeatures {
  private running = new Map<string, AbortController>();
  private checked = new Set<string>();

  constructor(
    readonly client: ServerClient,
    private store: () => Promise<Pick<DefectLabStore, 'listImages' | 'getFeatures' | 'putFeatures'>>,
    /** The tab's loaded backbone (the local client's `backboneInfo`). */
    private backbone: () => Promise<BackboneRef | null>,
  ) {}

  /** What stored records and the provenance say about where the work ran. */
  get backendLabel(): string {
    return `server ${this.client.url}`;
  }

  private async requireBackbone(): Promise<BackboneRef> {
    const b = await this.backbone();
    if (!b)
      throw new DefectLabError(
        'NoBackboneError',
        'no backbone is loaded',
        'load a backbone in the Train tab first (the server runs the same one)',
      );
    return b;
  }

  /** The server's model file for a backbone id, checked once against its capabilities. */
  async modelFor(id: string): Promise<string> {
    if (!this.checked.has(id)) {
      const { capabilities } = await this.client.check();
      if (!capabilities.models.includes(id))
        throw new ServerModelError(this.client.url, id, capabilities.models);
      this.checked.add(id);
    }
    return `${id}/model.onnx`;
  }

  private async job(
    images: string[],
    b: BackboneRef,
    spatial: boolean,
    signal: AbortSignal,
    onProgress?: ProgressFn,
  ): Promise<JobFeatures> {
    const r = await this.client.run(
      {
        kind: 'features',
        model: await this.modelFor(b.id),
        images,
        spatial,
        preprocess: { ...b.preprocess, mean: [...b.preprocess.mean], std: [...b.preprocess.std] },
      },
      { signal, onProgress },
    );
    const meta = JSON.parse(new TextDecoder().decode(r.files['features.json'])) as {
      dim: number;
      ids: string[];
      backend: string;
      preprocessingId: string;
      spatialDims: [number, number, number] | null;
    };
    if (meta.preprocessingId !== b.preprocessingId)
      throw new DefectLabError(
        'ServerFeaturesError',
        `the server preprocessed as ${meta.preprocessingId}, this tab as ${b.preprocessingId}`,
        'update the server (an older one ignores "preprocess"), or switch System → Compute to "This browser"',
      );
    const f32 = (name: string) => {
      const bytes = r.files[name];
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    };
    const flat = f32('features.f32');
    const pooled = meta.ids.map((_, i) => flat.slice(i * meta.dim, (i + 1) * meta.dim));
    const maps: FeatureMap[] = [];
    if (spatial && meta.spatialDims) {
      const all = f32('spatial.f32');
      const n = meta.spatialDims[0] * meta.spatialDims[1] * meta.spatialDims[2];
      for (let i = 0; i < meta.ids.length; i++)
        maps.push({ data: all.slice(i * n, (i + 1) * n), dims: meta.spatialDims });
    }
    return { pooled, spatial: maps, backend: meta.backend, preprocessingId: meta.preprocessingId };
  }

  private start(jobId: string | undefined): { signal: AbortSignal; done: () => void } {
    const ctl = new AbortController();
    if (jobId) this.running.set(jobId, ctl);
    return { signal: ctl.signal, done: () => jobId && this.running.delete(jobId) };
  }

  /** As the worker's: features of images (pooled, and spatial unless `pooledOnly`), on the server. */
  async extractImages(
    images: RasterImage[],
    pooledOnly = false,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<{ pooled: Float32Array[]; spatial: FeatureMap[] }> {
    const b = await this.requireBackbone();
    const job = this.start(jobId);
    try {
      const pooled: Float32Array[] = [];
      const spatial: FeatureMap[] = [];
      for (let s = 0; s < images.length; s += CHUNK) {
        const chunk = images.slice(s, s + CHUNK).map((im) => bytesToBase64(encodePng(im, 1)));
        const f = await this.job(chunk, b, !pooledOnly, job.signal, (p) =>
          progress?.({ ...p, done: s + p.done, total: images.length }),
        );
        pooled.push(...f.pooled);
        spatial.push(...f.spatial);
      }
      return { pooled, spatial };
    } finally {
      job.done();
    }
  }

  /**
   * As the worker's: features of a stored dataset's images in `listImages` order, through the store's cache.
   * Missing ones are computed on the server and stored (pooled and spatial) under the browser's own keys.
   */
  async extractDataset(
    datasetId: string,
    filter?: ImageFilter,
    jobId?: string,
    progress?: ProgressFn,
  ): Promise<{ images: ServerImageMeta[]; pooled: Float32Array[]; spatial: FeatureMap[]; cached: number }> {
    const b = await this.requireBackbone();
    const store = await this.store();
    const records = await store.listImages(datasetId, filter);
    const key = (r: ImageRecord) => ({ backbone: b.id, sha256: r.sha256, preprocessing: b.preprocessingId });
    const got = await Promise.all(records.map((r) => store.getFeatures(key(r))));
    const todo = got.flatMap((f, i) => (f?.spatial ? [] : [i]));
    const cached = records.length - todo.length;
    const job = this.start(jobId);
    try {
      for (let s = 0; s < todo.length;) {
        // At most CHUNK images and ~CHUNK_BYTES of base64 per job, under the server's default 64 MiB body limit.
        const idx: number[] = [];
        const uploads: string[] = [];
        let bytes = 0;
        while (s + idx.length < todo.length && idx.length < CHUNK && (bytes < CHUNK_BYTES || !idx.length)) {
          const i = todo[s + idx.length];
          const u = await uploadBytes(records[i].blob);
          idx.push(i);
          uploads.push(u);
          bytes += u.length;
        }
        const f = await this.job(uploads, b, true, job.signal, (p) =>
          progress?.({
            stage: 'features',
            done: cached + s + p.done,
            total: records.length,
            unit: 'items',
            message: `${cached} cached · on ${this.backendLabel}`,
          }),
        );
        for (const [k, i] of idx.entries()) {
          const sp = f.spatial[k];
          const stored = {
            pooled: f.pooled[k],
            ...(sp
              ? {
                  spatial: {
                    data: sp.data,
                    dims: [sp.dims[0], sp.dims[1], sp.dims[2]] as [number, number, number],
                  },
                }
              : {}),
            backend: `${this.backendLabel} (${f.backend})`,
          };
          await store.putFeatures(key(records[i]), stored);
          got[i] = stored;
        }
        s += idx.length;
      }
      return {
        images: records.map(imageMetaOf),
        pooled: got.map((g) => g!.pooled),
        spatial: got.map((g) => (g!.spatial ? { data: g!.spatial.data, dims: g!.spatial.dims } : emptyMap())),
        cached,
      };
    } finally {
      job.done();
    }
  }

  /** As the worker's: stops that job (here: cancels its server job). */
  cancel(jobId: string): void {
    this.running.get(jobId)?.abort();
  }
}

function emptyMap(): FeatureMap {
  return { data: new Float32Array(0), dims: [0, 0, 0] };
}

/**
 * The model manager: downloads a manifest's files from a source into a `FileStore` with one overall progress bar
 * (bytes, rate, ETA computed from the manifest's sizes), resumes after a reload with Range requests from what is
 * already stored, verifies sha256 and the ONNX graphs (complete, matching the layout) before committing, lists
 * and purges cached models, and opens a model's files for the engine from the cache, the app's server, a hub or
 * files picked from disk (read in place, never copied).
 *
 * Runs wherever `fetch` exists (page, worker, Node): the store and `fetch` are injected.
 */
import { DefectLabError } from '../../core/errors.ts';
import { throwIfCancelled, type CancelSignal, type ProgressFn } from '../../core/progress.ts';
import {
  COMPONENT_NAMES,
  totalBytes,
  parseManifestText,
  type ComponentName,
  type ManifestFile,
  type ModelManifest,
} from './manifest.ts';
import { assertLayout } from './layout.ts';
import { inspectOnnx } from './onnx-inspect.ts';
import { createSha256 } from './sha256.ts';
import type { FileStore } from './store.ts';
import { checkStorageQuota } from '../ort.ts';

/** `navigator.storage.estimate()`'s shape: what the browser grants this origin and what it already uses. */
export type StorageEstimateFn = () => Promise<{ quota?: number; usage?: number }>;

/** The browser's estimate for persistent stores; none for memory (Node) or where the API is missing. */
function defaultEstimate(store: FileStore): StorageEstimateFn | undefined {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (store.kind === 'memory' || typeof storage?.estimate !== 'function') return undefined;
  return () => storage.estimate();
}

/** Where a model's files come from. */
export type ModelSource =
  /** The app's own server (`/models/<serverPath>`) or a hub (`https://huggingface.co/<repo>/resolve/main/`). */
  | { kind: 'url'; base: string }
  /** Files picked from disk (File System Access API / `<input webkitdirectory>`), keyed by manifest path. */
  | { kind: 'files'; files: Map<string, Blob> }
  /** Already downloaded into the store. */
  | { kind: 'cache' };

export class ChecksumError extends DefectLabError {
  constructor(file: string, expected: string, got: string) {
    super(
      'ChecksumError',
      `${file} has sha256 ${got.slice(0, 12)}… but the manifest says ${expected.slice(0, 12)}…; it was not cached`,
      'the file on the server differs from the one the manifest describes: re-export/re-download it, or update the manifest (npm run models:tiny for the tiny models)',
    );
  }
}

export class DownloadError extends DefectLabError {
  constructor(
    file: string,
    problem: string,
    fix = 'check the source URL and your connection, then press Download again: it resumes where it stopped',
  ) {
    super('DownloadError', `${file}: ${problem}`, fix);
  }
}

export class ModelNotCachedError extends DefectLabError {
  constructor(id: string, missing: string) {
    super(
      'ModelNotCachedError',
      `${id} is not fully cached (${missing} is missing)`,
      'download it in the Models tab first',
    );
  }
}

export interface DownloadProgress {
  /** Bytes stored (including what was stored before a reload). */
  done: number;
  total: number;
  /** Bytes per second over this session's transfer. */
  rate: number;
  etaSeconds: number | undefined;
  file: string;
  /** Bytes found already stored when this download started (resume). */
  resumedFrom: number;
}

export interface DownloadOptions {
  signal?: CancelSignal & Partial<AbortSignal>;
  onProgress?: (p: DownloadProgress) => void;
  /** Bytes per Range request (and per stored chunk). Default 8 MiB. */
  chunkBytes?: number;
}

const MANIFEST_KEY = '.manifest.json';

/** Joins a base URL and a manifest path (the base may or may not end in '/'). */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/?$/, '/')}${path.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Next Range to request for a file given what is stored: `[start, end]` inclusive, or null when complete.
 * Pure, so resume bookkeeping is unit-tested without a network.
 */
export function nextRange(stored: number, fileBytes: number, chunkBytes: number): [number, number] | null {
  if (stored >= fileBytes) return null;
  return [stored, Math.min(stored + chunkBytes, fileBytes) - 1];
}

/** Overall progress from per-file stored bytes; rate and ETA count only bytes moved in this session. */
export function overallProgress(
  manifest: ModelManifest,
  stored: Map<string, number>,
  resumedFrom: number,
  startedMs: number,
  nowMs: number,
  file: string,
): DownloadProgress {
  const total = totalBytes(manifest);
  let done = 0;
  for (const f of manifest.files) done += Math.min(stored.get(f.path) ?? 0, f.bytes);
  const moved = done - resumedFrom;
  const secs = Math.max((nowMs - startedMs) / 1000, 1e-3);
  const rate = moved / secs;
  return {
    done,
    total,
    rate,
    etaSeconds: done >= total ? 0 : rate > 0 ? (total - done) / rate : undefined,
    file,
    resumedFrom,
  };
}

/** Adapts download progress to the app-wide `Progress` shape. */
export function toProgress(p: DownloadProgress): Parameters<ProgressFn>[0] {
  return {
    stage: 'download',
    done: p.done,
    total: p.total,
    unit: 'bytes',
    etaSeconds: p.etaSeconds,
    message: p.file,
    detail: p,
  };
}

async function readBody(res: Response, signal?: CancelSignal): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    if (signal?.aborted) {
      await reader.cancel();
      throwIfCancelled(signal, 'the download');
    }
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    n += value.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Which component (if any) a file is the graph of. */
function componentOf(m: ModelManifest, path: string): ComponentName | undefined {
  return COMPONENT_NAMES.find((c) => m.components[c]?.file === path);
}

/** Checks a complete `.onnx` file: not truncated, and its graph fits the manifest layout. */
export function checkGraph(m: ModelManifest, path: string, bytes: Uint8Array): void {
  const comp = componentOf(m, path);
  if (!path.endsWith('.onnx')) return;
  const summary = inspectOnnx(bytes, `${m.id}/${path}`);
  if (comp) assertLayout(m.layout, comp, `${m.id}/${path}`, summary);
}

export class ModelManager {
  private readonly estimate: StorageEstimateFn | undefined;
  constructor(
    private readonly store: FileStore,
    private readonly fetchFn: typeof fetch = (...a) => fetch(...a),
    estimate?: StorageEstimateFn,
  ) {
    this.estimate = estimate ?? defaultEstimate(store);
  }

  private key(m: { id: string }, path: string): string {
    return `${m.id}/${path}`;
  }

  /**
   * Downloads every file not yet cached, resuming partial ones. Each file is verified (sha256, then for graphs
   * truncation and layout) before it becomes a cache entry; the manifest is stored last, marking the model
   * complete. On any error the failing file's partial bytes are dropped when they are known bad (checksum,
   * graph) and kept when the transfer merely stopped (network, cancel) so the next attempt resumes.
   */
  async download(manifest: ModelManifest, base: string, opts: DownloadOptions = {}): Promise<void> {
    const chunk = opts.chunkBytes ?? 8 * 1024 * 1024;
    const stored = new Map<string, number>();
    for (const f of manifest.files) {
      const complete = await this.store.size(this.key(manifest, f.path));
      stored.set(
        f.path,
        complete === f.bytes ? f.bytes : await this.store.partialSize(this.key(manifest, f.path)),
      );
    }
    const resumedFrom = [...stored.values()].reduce((a, b) => a + b, 0);
    // Refuse before the first byte when the rest cannot fit the quota (a half-downloaded model helps nobody).
    if (this.estimate)
      checkStorageQuota(manifest.id, totalBytes(manifest) - resumedFrom, await this.estimate());
    const started = Date.now();
    const report = (file: string) =>
      opts.onProgress?.(overallProgress(manifest, stored, resumedFrom, started, Date.now(), file));
    report('');
    for (const f of manifest.files) {
      const key = this.key(manifest, f.path);
      if ((await this.store.size(key)) === f.bytes) continue;
      let have = stored.get(f.path) ?? 0;
      if (have > f.bytes) {
        await this.store.discardPartial(key);
        have = 0;
      }
      const url = joinUrl(base, f.path);
      for (let range = nextRange(have, f.bytes, chunk); range; range = nextRange(have, f.bytes, chunk)) {
        throwIfCancelled(
          opts.signal,
          `the download of ${manifest.id}`,
          `${have} of ${f.bytes} bytes of ${f.path} are kept for resuming`,
        );
        let res: Response;
        try {
          res = await this.fetchFn(url, {
            headers: { Range: `bytes=${range[0]}-${range[1]}` },
            signal: opts.signal as AbortSignal | undefined,
          });
        } catch (e) {
          if (opts.signal?.aborted) throwIfCancelled(opts.signal, `the download of ${manifest.id}`);
          throw new DownloadError(`${manifest.id}/${f.path}`, `GET ${url} failed (${(e as Error).message})`);
        }
        let body: Uint8Array;
        if (res.status === 206) {
          const start = Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
          if (start !== range[0])
            throw new DownloadError(
              `${manifest.id}/${f.path}`,
              `the server answered range ${res.headers.get('content-range')} for bytes=${range[0]}-`,
            );
          body = await readBody(res, opts.signal);
        } else if (res.status === 200) {
          // The server ignores Range: take the slice we asked for from the full body.
          body = (await readBody(res, opts.signal)).subarray(range[0], range[1] + 1);
        } else if (res.status === 416) {
          throw new DownloadError(
            `${manifest.id}/${f.path}`,
            `the server has fewer bytes than the manifest's ${f.bytes} (416 at offset ${range[0]}): the file is truncated`,
            'the file on the server is incomplete: copy/export it again, or fix the manifest',
          );
        } else
          throw new DownloadError(
            `${manifest.id}/${f.path}`,
            `GET ${url} answered ${res.status} ${res.statusText}`,
          );
        if (body.length === 0)
          throw new DownloadError(
            `${manifest.id}/${f.path}`,
            `the server sent no bytes at offset ${range[0]} of ${f.bytes}: the file is shorter than the manifest says`,
            'the file on the server is incomplete: copy/export it again, or fix the manifest',
          );
        const expected = range[1] - range[0] + 1;
        const part = body.length > expected ? body.subarray(0, expected) : body;
        await this.store.appendPartial(key, have, part);
        have += part.length;
        stored.set(f.path, have);
        report(f.path);
      }
      await this.verifyAndCommit(manifest, f, key);
    }
    await this.store.put(
      this.key(manifest, MANIFEST_KEY),
      new TextEncoder().encode(JSON.stringify(manifest)),
    );
    report('');
  }

  private async verifyAndCommit(m: ModelManifest, f: ManifestFile, key: string): Promise<void> {
    const h = await createSha256();
    const parts: Uint8Array[] = [];
    const keepForGraph = f.path.endsWith('.onnx') && f.bytes <= 512 * 1024 * 1024;
    for await (const c of this.store.partialChunks(key)) {
      h.update(c);
      if (keepForGraph) parts.push(c);
    }
    const got = h.hex();
    if (got !== f.sha256) {
      await this.store.discardPartial(key);
      throw new ChecksumError(`${m.id}/${f.path}`, f.sha256, got);
    }
    if (keepForGraph) {
      try {
        checkGraph(m, f.path, concat(parts));
      } catch (e) {
        await this.store.discardPartial(key);
        throw e;
      }
    }
    await this.store.commit(key);
  }

  /** Cached (complete) models, with their manifests and stored bytes. */
  async listCached(): Promise<{ manifest: ModelManifest; bytes: number }[]> {
    const keys = await this.store.keys();
    const out: { manifest: ModelManifest; bytes: number }[] = [];
    for (const k of keys.filter((k) => k.endsWith('/' + MANIFEST_KEY))) {
      try {
        const manifest = parseManifestText(new TextDecoder().decode(await this.store.read(k)), k);
        let bytes = 0;
        for (const f of manifest.files)
          bytes += Math.max(0, await this.store.size(this.key(manifest, f.path)));
        out.push({ manifest, bytes });
      } catch {
        // A damaged entry is listed by purgeable id only through `partialIds`; skip it here.
      }
    }
    return out;
  }

  /** Bytes stored for a model, complete or partial (for "resume from N %"). */
  async storedBytes(m: ModelManifest): Promise<{ complete: boolean; bytes: number }> {
    let bytes = 0;
    let complete = (await this.store.size(this.key(m, MANIFEST_KEY))) > 0;
    for (const f of m.files) {
      const k = this.key(m, f.path);
      const s = await this.store.size(k);
      if (s === f.bytes) bytes += s;
      else {
        complete = false;
        bytes += await this.store.partialSize(k);
      }
    }
    return { complete, bytes };
  }

  /** Removes a model's files, partial downloads included. */
  async purge(id: string): Promise<void> {
    await this.store.remove(`${id}/`);
  }

  /** Opens a model's files from a source for the engine. */
  open(manifest: ModelManifest, source: ModelSource): ModelFiles {
    if (source.kind === 'cache') return new CachedFiles(this.store, manifest);
    if (source.kind === 'files') return new PickedFiles(manifest, source.files);
    return new UrlFiles(manifest, source.base, this.fetchFn);
  }
}

/** Read access to one model's files, wherever they are. */
export interface ModelFiles {
  readonly manifest: ModelManifest;
  read(path: string): Promise<Uint8Array>;
  /**
   * A URL onnxruntime can fetch the file from without this code holding its bytes: an object URL of the cached
   * Blob / picked File (no copy), or the server URL. For external data, whose files can exceed what one
   * ArrayBuffer holds (~2 GB). `release()` revokes an object URL once the session is created; null where the
   * platform has no object URLs (then `read` it is).
   */
  url?(path: string): Promise<{ url: string; release(): void } | null>;
}

/** An object URL for a Blob where the platform has them (browsers, workers, Node ≥ 16), else null. */
function objectUrl(blob: Blob): { url: string; release(): void } | null {
  if (typeof URL.createObjectURL !== 'function') return null;
  const url = URL.createObjectURL(blob);
  return { url, release: () => URL.revokeObjectURL(url) };
}

class CachedFiles implements ModelFiles {
  constructor(
    private readonly store: FileStore,
    readonly manifest: ModelManifest,
  ) {}
  async read(path: string): Promise<Uint8Array> {
    const key = `${this.manifest.id}/${path}`;
    if ((await this.store.size(key)) < 0) throw new ModelNotCachedError(this.manifest.id, path);
    return this.store.read(key);
  }
  async url(path: string): Promise<{ url: string; release(): void } | null> {
    const key = `${this.manifest.id}/${path}`;
    if ((await this.store.size(key)) < 0) throw new ModelNotCachedError(this.manifest.id, path);
    const blob = await this.store.blob(key);
    return objectUrl(blob);
  }
}

class PickedFiles implements ModelFiles {
  constructor(
    readonly manifest: ModelManifest,
    private readonly files: Map<string, Blob>,
  ) {}
  async read(path: string): Promise<Uint8Array> {
    return new Uint8Array(await this.file(path).arrayBuffer());
  }
  async url(path: string): Promise<{ url: string; release(): void } | null> {
    return objectUrl(this.file(path));
  }
  private file(path: string): Blob {
    const f = this.files.get(path) ?? [...this.files.entries()].find(([k]) => k.endsWith('/' + path))?.[1];
    if (!f)
      throw new DefectLabError(
        'ModelFileMissingError',
        `the picked folder has no ${path} for ${this.manifest.id}`,
        'pick the export folder itself (the one holding unet/, vae_decoder/, tokenizer/ …)',
      );
    const entry = this.manifest.files.find((x) => x.path === path);
    if (entry && f.size !== entry.bytes)
      throw new DownloadError(
        `${this.manifest.id}/${path}`,
        `the picked file has ${f.size} bytes, the manifest says ${entry.bytes}`,
        'pick the folder of the same export the manifest describes',
      );
    return f;
  }
}

class UrlFiles implements ModelFiles {
  constructor(
    readonly manifest: ModelManifest,
    private readonly base: string,
    private readonly fetchFn: typeof fetch,
  ) {}
  async read(path: string): Promise<Uint8Array> {
    const url = joinUrl(this.base, path);
    const res = await this.fetchFn(url);
    if (!res.ok) throw new DownloadError(`${this.manifest.id}/${path}`, `GET ${url} answered ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  async url(path: string): Promise<{ url: string; release(): void }> {
    return { url: joinUrl(this.base, path), release() {} };
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Where downloaded model files live. One interface, three implementations:
 * - `CacheStorageFileStore` (browser default): complete files as Cache Storage entries; a partial download is
 *   kept as numbered chunk entries, so a reload resumes from the last stored chunk.
 * - `OpfsFileStore` (files above 2 GB / external data): the Origin Private File System; a partial download is a
 *   `.partial` file written at offsets, committed by renaming.
 * - `MemoryFileStore`: Node unit tests and the server (no persistence).
 * Keys are `<modelId>/<path>`. Complete entries are only created by `commit` after verification, so a failed or
 * cancelled download never replaces or corrupts what is cached.
 */
import { env } from '../env.ts';

export interface FileStore {
  readonly kind: 'cache' | 'opfs' | 'memory';
  /** Bytes already stored for an unfinished download of `key` (0 when none). */
  partialSize(key: string): Promise<number>;
  /** Appends a chunk to the partial download; `offset` must equal `partialSize(key)`. */
  appendPartial(key: string, offset: number, chunk: Uint8Array): Promise<void>;
  /** The partial bytes in order, chunk by chunk (for hashing without holding the whole file). */
  partialChunks(key: string): AsyncIterable<Uint8Array>;
  /** Turns the partial download into the complete entry. */
  commit(key: string): Promise<void>;
  discardPartial(key: string): Promise<void>;
  /** Size of the complete entry, or -1. */
  size(key: string): Promise<number>;
  read(key: string): Promise<Uint8Array>;
  /** A complete entry as a Blob (no copy into JS memory; usable for object URLs of multi-GB external data). */
  blob(key: string): Promise<Blob>;
  /** Writes a small complete entry directly (manifests). */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Complete keys starting with `prefix`. */
  keys(prefix?: string): Promise<string[]>;
  /** Removes complete and partial entries under `prefix`. */
  remove(prefix: string): Promise<void>;
}

export class MemoryFileStore implements FileStore {
  readonly kind = 'memory' as const;
  private readonly complete = new Map<string, Uint8Array>();
  private readonly partial = new Map<string, Uint8Array[]>();

  async partialSize(key: string): Promise<number> {
    return (this.partial.get(key) ?? []).reduce((a, c) => a + c.length, 0);
  }
  async appendPartial(key: string, offset: number, chunk: Uint8Array): Promise<void> {
    const have = await this.partialSize(key);
    if (offset !== have)
      throw new RangeError(`appendPartial ${key}: offset ${offset} but ${have} bytes stored`);
    this.partial.set(key, [...(this.partial.get(key) ?? []), chunk.slice()]);
  }
  async *partialChunks(key: string): AsyncIterable<Uint8Array> {
    for (const c of this.partial.get(key) ?? []) yield c;
  }
  async commit(key: string): Promise<void> {
    const chunks = this.partial.get(key) ?? [];
    const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.complete.set(key, out);
    this.partial.delete(key);
  }
  async discardPartial(key: string): Promise<void> {
    this.partial.delete(key);
  }
  async size(key: string): Promise<number> {
    return this.complete.get(key)?.length ?? -1;
  }
  async read(key: string): Promise<Uint8Array> {
    const v = this.complete.get(key);
    if (!v) throw new Error(`${key} is not stored`);
    return v;
  }
  async blob(key: string): Promise<Blob> {
    return new Blob([(await this.read(key)) as Uint8Array<ArrayBuffer>]);
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.complete.set(key, bytes.slice());
  }
  async keys(prefix = ''): Promise<string[]> {
    return [...this.complete.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  async remove(prefix: string): Promise<void> {
    for (const k of [...this.complete.keys()]) if (k.startsWith(prefix)) this.complete.delete(k);
    for (const k of [...this.partial.keys()]) if (k.startsWith(prefix)) this.partial.delete(k);
  }
  /** Test helper: every key, complete and partial. */
  dump(): { complete: string[]; partial: string[] } {
    return { complete: [...this.complete.keys()].sort(), partial: [...this.partial.keys()].sort() };
  }
}

/** Cache Storage keys must be http(s) URLs; this host never resolves, it only namespaces our entries. */
const CACHE_ORIGIN = 'https://models.defectlab.invalid/';
const PART = '.part/';

export class CacheStorageFileStore implements FileStore {
  readonly kind = 'cache' as const;
  // The name comes from `env` when the store is made, so an app that sets `env.cache.models` first gets its own.
  constructor(private readonly cacheName = env.cache.models) {}

  private open(): Promise<Cache> {
    return caches.open(this.cacheName);
  }
  private url(key: string): string {
    return CACHE_ORIGIN + key.split('/').map(encodeURIComponent).join('/');
  }
  private keyOf(url: string): string {
    return url.slice(CACHE_ORIGIN.length).split('/').map(decodeURIComponent).join('/');
  }
  /** Partial chunks of `key`, sorted by offset. */
  private async parts(key: string): Promise<{ offset: number; req: Request }[]> {
    const cache = await this.open();
    const prefix = this.url(key) + PART;
    const reqs = (await cache.keys()).filter((r) => r.url.startsWith(prefix));
    return reqs
      .map((req) => ({ offset: Number(req.url.slice(prefix.length)), req }))
      .sort((a, b) => a.offset - b.offset);
  }

  async partialSize(key: string): Promise<number> {
    const cache = await this.open();
    let size = 0;
    for (const p of await this.parts(key)) {
      if (p.offset !== size) break; // a gap: everything after it is re-downloaded
      const res = await cache.match(p.req);
      size += Number(
        res?.headers.get('content-length') ?? (await res?.clone().arrayBuffer())?.byteLength ?? 0,
      );
    }
    return size;
  }
  async appendPartial(key: string, offset: number, chunk: Uint8Array): Promise<void> {
    const cache = await this.open();
    await cache.put(
      this.url(key) + PART + offset,
      new Response(chunk as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(chunk.length) } }),
    );
  }
  async *partialChunks(key: string): AsyncIterable<Uint8Array> {
    const cache = await this.open();
    for (const p of await this.parts(key)) {
      const res = await cache.match(p.req);
      if (res) yield new Uint8Array(await res.arrayBuffer());
    }
  }
  async commit(key: string): Promise<void> {
    const cache = await this.open();
    const parts = await this.parts(key);
    const blobs: Blob[] = [];
    for (const p of parts) {
      const res = await cache.match(p.req);
      if (res) blobs.push(await res.blob());
    }
    // Blob concatenation references the chunk blobs instead of copying them into JS memory.
    const whole = new Blob(blobs);
    await cache.put(
      this.url(key),
      new Response(whole, { headers: { 'content-length': String(whole.size) } }),
    );
    for (const p of parts) await cache.delete(p.req);
  }
  async discardPartial(key: string): Promise<void> {
    const cache = await this.open();
    for (const p of await this.parts(key)) await cache.delete(p.req);
  }
  async size(key: string): Promise<number> {
    const res = await (await this.open()).match(this.url(key));
    if (!res) return -1;
    const n = res.headers.get('content-length');
    return n ? Number(n) : (await res.blob()).size;
  }
  async read(key: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.blob(key)).arrayBuffer());
  }
  async blob(key: string): Promise<Blob> {
    const res = await (await this.open()).match(this.url(key));
    if (!res) throw new Error(`${key} is not in the model cache`);
    return res.blob();
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await (await this.open()).put(this.url(key), new Response(bytes as Uint8Array<ArrayBuffer>));
  }
  async keys(prefix = ''): Promise<string[]> {
    const all = (await (await this.open()).keys()).map((r) => this.keyOf(r.url));
    return all.filter((k) => k.startsWith(prefix) && !k.includes(PART)).sort();
  }
  async remove(prefix: string): Promise<void> {
    const cache = await this.open();
    for (const r of await cache.keys()) if (this.keyOf(r.url).startsWith(prefix)) await cache.delete(r);
  }
}

/** OPFS store for files too large for one Cache Storage entry / ArrayBuffer (external data above 2 GB). */
export class OpfsFileStore implements FileStore {
  readonly kind = 'opfs' as const;
  constructor(private readonly rootName = 'defectlab-models') {}

  private async dir(parts: string[], create: boolean): Promise<FileSystemDirectoryHandle> {
    let d = await (
      await navigator.storage.getDirectory()
    ).getDirectoryHandle(this.rootName, { create: true });
    for (const p of parts) d = await d.getDirectoryHandle(p, { create });
    return d;
  }
  private split(key: string): { dirs: string[]; name: string } {
    const parts = key.split('/');
    return { dirs: parts.slice(0, -1), name: parts[parts.length - 1] };
  }
  private async file(key: string, suffix: string, create: boolean): Promise<FileSystemFileHandle | null> {
    const { dirs, name } = this.split(key);
    try {
      return await (await this.dir(dirs, create)).getFileHandle(name + suffix, { create });
    } catch {
      return null;
    }
  }

  async partialSize(key: string): Promise<number> {
    const h = await this.file(key, '.partial', false);
    return h ? (await h.getFile()).size : 0;
  }
  async appendPartial(key: string, offset: number, chunk: Uint8Array): Promise<void> {
    const h = (await this.file(key, '.partial', true))!;
    const w = await h.createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: offset, data: chunk as Uint8Array<ArrayBuffer> });
    await w.close();
  }
  async *partialChunks(key: string): AsyncIterable<Uint8Array> {
    const h = await this.file(key, '.partial', false);
    if (!h) return;
    const reader = (await h.getFile()).stream().getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  }
  async commit(key: string): Promise<void> {
    const h = (await this.file(key, '.partial', false))!;
    const { name } = this.split(key);
    await (h as FileSystemFileHandle & { move(name: string): Promise<void> }).move(name);
  }
  async discardPartial(key: string): Promise<void> {
    const { dirs, name } = this.split(key);
    await (await this.dir(dirs, true)).removeEntry(name + '.partial').catch(() => undefined);
  }
  async size(key: string): Promise<number> {
    const h = await this.file(key, '', false);
    return h ? (await h.getFile()).size : -1;
  }
  async read(key: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.blob(key)).arrayBuffer());
  }
  async blob(key: string): Promise<Blob> {
    const h = await this.file(key, '', false);
    if (!h) throw new Error(`${key} is not in the model store`);
    return h.getFile();
  }
  async put(key: string, bytes: Uint8Array): Promise<void> {
    const h = (await this.file(key, '', true))!;
    const w = await h.createWritable();
    await w.write(bytes as Uint8Array<ArrayBuffer>);
    await w.close();
  }
  async keys(prefix = ''): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: FileSystemDirectoryHandle, path: string) => {
      for await (const [name, h] of (
        d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }
      ).entries()) {
        if (h.kind === 'directory') await walk(h as FileSystemDirectoryHandle, `${path}${name}/`);
        else if (!name.endsWith('.partial')) out.push(`${path}${name}`);
      }
    };
    await walk(await this.dir([], true), '');
    return out.filter((k) => k.startsWith(prefix)).sort();
  }
  async remove(prefix: string): Promise<void> {
    const id = prefix.split('/')[0];
    const root = await this.dir([], true);
    await root.removeEntry(id, { recursive: true }).catch(() => undefined);
  }
}

/** Files above this go to OPFS: one Cache Storage entry / ArrayBuffer cannot reliably hold them. */
export const OPFS_THRESHOLD_BYTES = 1.9 * 1024 ** 3;

/**
 * The store a model belongs in: OPFS when any file is above ~2 GB or the graphs use external data (and OPFS
 * exists), Cache Storage otherwise. The page and the worker call this with the same manifest, so they agree.
 */
export function storeFor(m: {
  files: { bytes: number }[];
  components: Record<string, { externalData?: string[] } | undefined>;
}): FileStore {
  const big =
    m.files.some((f) => f.bytes > OPFS_THRESHOLD_BYTES) ||
    Object.values(m.components).some((c) => (c?.externalData?.length ?? 0) > 0);
  const hasOpfs = typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
  return big && hasOpfs ? new OpfsFileStore() : new CacheStorageFileStore();
}

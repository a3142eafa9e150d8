/**
 * Streaming SHA-256 over hash-wasm (a well-kept, audited WASM build of the FIPS 180-4 digest) instead of the
 * hand-written one this file held (~150 MB/s: over half a minute for a 5 GB bundle). WebCrypto's
 * `crypto.subtle.digest` cannot be used: it hashes one whole buffer, while model files reach several GB (more
 * than one ArrayBuffer may hold) and arrive in chunks across page reloads, so verification must stream.
 *
 * hash-wasm instantiates its WASM module asynchronously, hence `createSha256()` is async; `update`/`hex` are
 * synchronous afterwards. Runs in the page, workers and Node (the bundle tool and the model manager share it).
 */
import { createSHA256, type IHasher } from 'hash-wasm';

/** An incremental hasher: `update` any number of chunks, then `hex` once. */
export interface Sha256 {
  update(data: Uint8Array): Sha256;
  /** Lower-case hex digest. The hasher cannot be updated afterwards. */
  hex(): string;
}

class WasmSha256 implements Sha256 {
  private done = false;
  constructor(private readonly h: IHasher) {}
  update(data: Uint8Array): this {
    if (this.done) throw new Error('sha256: update after hex()');
    this.h.update(data);
    return this;
  }
  hex(): string {
    this.done = true;
    return this.h.digest('hex');
  }
}

export async function createSha256(): Promise<Sha256> {
  const h = await createSHA256();
  h.init();
  return new WasmSha256(h);
}

/** SHA-256 of bytes, or of a stream of chunks (a file read piece by piece). */
export async function sha256Hex(data: Uint8Array | AsyncIterable<Uint8Array>): Promise<string> {
  const h = await createSha256();
  if (data instanceof Uint8Array) return h.update(data).hex();
  for await (const chunk of data) h.update(chunk);
  return h.hex();
}

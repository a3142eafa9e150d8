/**
 * Content hashes. SHA-256 goes through WebCrypto (`crypto.subtle`), present in browsers, workers and Node 20,
 * because it is native code (tens of MB/s faster than any JS implementation) and needs no dependency.
 */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/** Hex SHA-256 of the bytes, the identity of an image in the store (duplicates share it). */
export async function sha256Hex(bytes: Uint8Array | ArrayBuffer): Promise<string> {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  // digest() wants a BufferSource backed by a plain ArrayBuffer; a view over a SharedArrayBuffer is copied.
  const input = view.buffer instanceof ArrayBuffer ? (view as Uint8Array<ArrayBuffer>) : new Uint8Array(view);
  const digest = await crypto.subtle.digest('SHA-256', input);
  return toHex(new Uint8Array(digest));
}

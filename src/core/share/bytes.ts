/**
 * Byte helpers of the share-link format: base64url (RFC 4648 §5, no padding), CRC-32 (the zlib/PNG polynomial)
 * and unsigned LEB128 varints. Hand-written because they are a few lines each and must run unchanged in Node,
 * workers and the page (`Buffer` is Node-only; `btoa` works on binary strings and is slow for long inputs).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

export function toBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

/**
 * Decodes base64url strictly: the index of the first character outside the alphabet, `truncated` for a length
 * no encoder makes (4k + 1), and `strayBits` (with the bytes) when the unused trailing bits are not zero, which no
 * encoder makes either: a cut link or an altered last character, never a valid token.
 */
export function fromBase64Url(
  text: string,
): Uint8Array | { badAt: number } | { truncated: true } | { strayBits: Uint8Array } {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || LOOKUP[c] < 0) return { badAt: i };
  }
  if (text.length % 4 === 1) return { truncated: true };
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const v = LOOKUP[text.charCodeAt(i)];
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 255;
    }
  }
  if (acc & ((1 << bits) - 1)) return { strayBits: out.subarray(0, o) };
  return out.subarray(0, o);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 as zlib computes it (`zlib.crc32`, PNG chunks, zip entries). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Appends unsigned LEB128 (7 bits a byte, low first) to `out`. */
export function pushVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 128) {
    out.push((v % 128) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Reads one varint at `pos`; null when the bytes end inside it or it exceeds 2^53. */
export function readVarint(bytes: Uint8Array, pos: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = pos; i < bytes.length; i++) {
    value += (bytes[i] & 127) * scale;
    if (!(bytes[i] & 128)) return { value, next: i + 1 };
    scale *= 128;
    if (scale > 2 ** 53) return null;
  }
  return null;
}

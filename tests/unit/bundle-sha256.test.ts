/**
 * The streaming SHA-256 the model manager and the bundle tool share (hash-wasm): the known-answer vectors of
 * the SHA-256 standard (FIPS 180-2 appendix B / NIST CSHS examples: "abc", the 448-bit message, one million
 * "a"), the empty message, and node:crypto on lengths around the 64-byte block boundaries fed in odd pieces.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSha256, sha256Hex } from '../../src/runtime/models/sha256.ts';

const enc = new TextEncoder();

describe('sha256 (hash-wasm)', () => {
  it('matches the standard known-answer vectors', async () => {
    expect(await sha256Hex(enc.encode(''))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(await sha256Hex(enc.encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(await sha256Hex(enc.encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
    // One million 'a', streamed in 1000-byte chunks.
    async function* millionA() {
      const chunk = new Uint8Array(1000).fill(0x61);
      for (let i = 0; i < 1000; i++) yield chunk;
    }
    expect(await sha256Hex(millionA())).toBe(
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    );
  });

  it('equals node:crypto around the block boundaries, fed in odd pieces', async () => {
    for (const n of [1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 255);
      const h = await createSha256();
      for (let i = 0; i < n;) {
        const k = Math.min(n - i, 1 + ((i * 7) % 97));
        h.update(data.subarray(i, i + k));
        i += k;
      }
      expect(h.hex(), `length ${n}`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('refuses an update after the digest (a reused hasher would give a wrong sum silently)', async () => {
    const h = await createSha256();
    h.update(enc.encode('abc')).hex();
    expect(() => h.update(enc.encode('d'))).toThrow(/update after hex/);
  });
});

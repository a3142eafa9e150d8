/**
 * The share-link codec (`src/core/share/`): its byte helpers against Node's own implementations (Buffer's
 * base64url, zlib's CRC-32), mask run lengths against the real magnetic-tile masks (../shared, read in place) and
 * brute-force pixel comparison, a full DIAG setup with 4 real masks through encode → decode (and its link length,
 * printed and held under the 2,000-character target), and every way a link goes wrong: each single changed
 * character, every truncation, unknown versions, forged checksums over bad bodies, bad fields, and a version-1
 * link built here byte by byte from its documented layout (with Node's Buffer and zlib, not the app's helpers).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { errorInfo } from '../../src/core/errors.ts';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { countOn, decodeMaskPng } from '../../src/core/mask/index.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  SHARE_VERSION,
  crc32,
  decodeMaskRle,
  decodeSetup,
  encodeMaskRle,
  encodeSetup,
  fromBase64Url,
  pushVarint,
  readBundle,
  readVarint,
  shareUrl,
  summarizeSetup,
  toBase64Url,
  tokenFromHash,
  type WorkshopSetup,
} from '../../src/core/share/index.ts';
import { diagReferenceSetup } from '../../src/core/share/example.ts';

const MT = path.resolve(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');
const manifest = JSON.parse(readFileSync(path.join(MT, 'manifest.json'), 'utf8')) as {
  items: { mask: string | null; defect_class: string }[];
};

/** One real defect mask per class (blowhole, break, crack, fray, …): shapes a host would share. */
function realMasks(n: number): { name: string; mask: RasterImage }[] {
  const seen = new Set<string>();
  const out: { name: string; mask: RasterImage }[] = [];
  for (const i of manifest.items) {
    if (!i.mask || seen.has(i.defect_class) || out.length === n) continue;
    seen.add(i.defect_class);
    out.push({
      name: path.basename(i.mask),
      mask: decodeMaskPng(readFileSync(path.join(MT, i.mask)), i.mask),
    });
  }
  return out;
}

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return errorInfo(e).code;
  }
  return 'no error';
};

describe('byte helpers', () => {
  it('base64url matches Node Buffer for every length 0..70 and decodes back', () => {
    const rng = new Rng(3);
    for (let n = 0; n <= 70; n++) {
      const b = Uint8Array.from({ length: n }, () => rng.int(0, 256));
      const s = toBase64Url(b);
      expect(s).toBe(Buffer.from(b).toString('base64url'));
      expect(fromBase64Url(s)).toEqual(b);
    }
    expect(fromBase64Url('ab+c')).toEqual({ badAt: 2 });
    // Unused trailing bits must be zero: 'AB' decodes to one byte, 'AF' has a stray bit.
    expect(fromBase64Url('AF')).toEqual({ strayBits: Uint8Array.from([0]) });
    expect(fromBase64Url('AAAAA')).toEqual({ truncated: true });
  });

  it('CRC-32 equals zlib.crc32', () => {
    const rng = new Rng(5);
    for (const n of [0, 1, 7, 256, 4099]) {
      const b = Uint8Array.from({ length: n }, () => rng.int(0, 256));
      expect(crc32(b)).toBe(zlibCrc32(b));
    }
  });

  it('varints round-trip up to 2^53 and report a cut one', () => {
    for (const v of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
      const out: number[] = [];
      pushVarint(out, v);
      expect(readVarint(Uint8Array.from(out), 0)).toEqual({ value: v, next: out.length });
      if (out.length > 1) expect(readVarint(Uint8Array.from(out.slice(0, -1)), 0)).toBeNull();
    }
  });
});

describe('mask run lengths', () => {
  it('round-trip real magnetic-tile masks pixel for pixel and stay far smaller than the pixels', () => {
    for (const { mask } of realMasks(5)) {
      const rle = encodeMaskRle(mask);
      const back = decodeMaskRle(rle, mask.width, mask.height) as RasterImage;
      expect(typeof back).toBe('object');
      let diff = 0;
      for (let i = 0; i < mask.data.length; i++) if (back.data[i] !== (mask.data[i] ? 255 : 0)) diff++;
      expect(diff).toBe(0);
      expect(rle.length).toBeLessThan(mask.data.length / 20);
    }
  });

  it('round-trip edge masks (all on, all off, starting inside, one pixel) and random noise', () => {
    const rng = new Rng(11);
    const full = createRaster(9, 4, 1, 255);
    const empty = createRaster(9, 4, 1, 0);
    const noise = createRaster(31, 17, 1);
    for (let i = 0; i < noise.data.length; i++) noise.data[i] = rng.next() < 0.5 ? 255 : 0;
    const one = createRaster(1, 1, 1, 255);
    for (const m of [full, empty, noise, one]) {
      const back = decodeMaskRle(encodeMaskRle(m), m.width, m.height) as RasterImage;
      expect(Array.from(back.data)).toEqual(Array.from(m.data));
    }
  });

  it('refuse runs that do not cover the size exactly', () => {
    const m = createRaster(4, 4, 1, 255);
    const rle = encodeMaskRle(m);
    expect(decodeMaskRle(rle, 4, 5)).toMatch(/cover 16 of 20/);
    expect(decodeMaskRle(rle, 3, 4)).toMatch(/more than 12/);
    expect(decodeMaskRle(Uint8Array.from([0x80]), 4, 4)).toMatch(/middle of a number/);
    expect(decodeMaskRle(rle, 0, 4)).toMatch(/not a mask size/);
  });
});

describe('share links', () => {
  const masks = realMasks(4);
  const setup = diagReferenceSetup(masks);

  it('a full DIAG setup with 4 real masks survives the round trip and its link is under 2,000 characters', () => {
    const url = shareUrl('http://localhost:4173/', setup);
    const token = tokenFromHash(new URL(url).hash)!;
    const back = decodeSetup(token);
    // Masks come back binary 0/255 (the masks from PNG already are), the rest field for field.
    expect(back).toEqual(setup);
    expect(back.masks!.map((m) => countOn(m.mask))).toEqual(masks.map((m) => countOn(m.mask)));
    console.log(`share link of the DIAG reference setup with 4 masks: ${url.length} characters`);
    expect(url.length).toBeLessThan(2000);
    // Deterministic: the same setup, the same link (hosts can compare links).
    expect(shareUrl('http://localhost:4173/', setup)).toBe(url);
  });

  it('finds the token among other fragment keys and ignores fragments without one', () => {
    expect(tokenFromHash('#a=1&setup=XYZ&b=2')).toBe('XYZ');
    expect(tokenFromHash('#tab=data')).toBeNull();
    expect(tokenFromHash('')).toBeNull();
  });

  it('refuses every single changed character with a named error (never a different setup)', () => {
    const token = encodeSetup({
      generate: { generator: 'memseg', count: 8, seed: 7 },
      masks: masks.slice(0, 1),
    });
    const codes = new Set<string>();
    for (let i = 0; i < token.length; i++) {
      const c = token[i] === 'A' ? 'B' : 'A';
      codes.add(code(() => decodeSetup(token.slice(0, i) + c + token.slice(i + 1))));
    }
    expect(
      [...codes].every((c) => c.startsWith('ShareLink')),
      [...codes].join(),
    ).toBe(true);
    expect(codes.has('ShareLinkChecksumError')).toBe(true);
  });

  it('refuses every truncation as cut short', () => {
    const token = encodeSetup(setup);
    for (let n = 0; n < token.length; n += 7) {
      const c = code(() => decodeSetup(token.slice(0, n)));
      expect(
        c === 'ShareLinkTruncatedError' || (n === 0 && c === 'ShareLinkMalformedError'),
        `${n}: ${c}`,
      ).toBe(true);
    }
    expect(() => decodeSetup(token.slice(0, -40))).toThrow(/cut short .* — fix: copy the whole link again/);
  });

  it('names unknown versions, foreign characters and forged checksums over bad bodies', () => {
    const bytes = fromBase64Url(encodeSetup(setup)) as Uint8Array;
    for (const v of [0, SHARE_VERSION + 1, 200]) {
      const b = bytes.slice();
      b[0] = v;
      expect(code(() => decodeSetup(toBase64Url(b)))).toBe('ShareLinkVersionError');
    }
    expect(() => decodeSetup('AgM$$')).toThrow(/character 4 \("\$"\)/);
    // A body with a valid checksum that is not deflate data: a forger who recomputed the CRC still gets a message.
    const junk = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(code(() => decodeSetup(frameByHand(2, junk, 100)))).toBe('ShareLinkMalformedError');
  });

  it('names the field of a well-formed link with a wrong value', () => {
    const bad = { generate: { generator: 'memseg', count: '8', seed: 1 } } as unknown as WorkshopSetup;
    expect(() => decodeSetup(encodeSetup(bad))).toThrow(
      /ShareSetupError: the share link's setup.generate.count must be an integer/,
    );
    const badSha = { dataset: { url: 'https://x/a.zip', sha256: 'abc', size: 3 } } as WorkshopSetup;
    expect(() => decodeSetup(encodeSetup(badSha))).toThrow(/setup.dataset.sha256 must be 64/);
    const badGrid = { grid: { generators: ['memseg', 'magic'], nAug: [1], seeds: [0], heads: ['bce'] } };
    expect(() => decodeSetup(encodeSetup(badGrid as unknown as WorkshopSetup))).toThrow(
      /setup.grid.generators\[1\] must be one of none, memseg/,
    );
  });

  it('migrates a version-1 link (plain JSON body, prompts as one text, masks as run arrays)', () => {
    const m = masks[0].mask;
    const runs: number[] = [];
    let on = false;
    let run = 0;
    for (const v of m.data) {
      if (!!v !== on) {
        runs.push(run);
        on = !!v;
        run = 0;
      }
      run++;
    }
    runs.push(run);
    const v1 = {
      generator: 'memseg',
      count: 12,
      seed: 5,
      params: { probability: 1 },
      prompts: 'white marks on the wall\n copper metal scratches \n',
      negativePrompt: 'smooth',
      steps: 20,
      guidance: 7.5,
      strength: 0.9,
      masks: [{ name: 'blob', width: m.width, height: m.height, runs }],
    };
    const back = decodeSetup(frameByHand(1, Buffer.from(JSON.stringify(v1)), 0));
    expect(back.generate).toEqual({
      generator: 'memseg',
      count: 12,
      seed: 5,
      optionsFor: 'memseg',
      options: { probability: 1 },
      maskMode: 'library',
    });
    expect(back.diffusion).toMatchObject({
      prompts: ['white marks on the wall', 'copper metal scratches'],
      negativePrompt: 'smooth',
      steps: 20,
      guidanceScale: 7.5,
      strength: 0.9,
      seed: 5,
    });
    expect(Array.from(back.masks![0].mask.data)).toEqual(Array.from(m.data));
  });

  it('summarizes what it sets and what it downloads, with sizes', () => {
    const s = summarizeSetup(setup);
    expect(s.lines.join('\n')).toMatch(/white marks on the wall/);
    expect(s.lines.join('\n')).toMatch(/adds 4 masks/);
    expect(s.downloads.map((d) => d.id)).toEqual(['tiny-sdxl-inpaint', 'mobilenetv2-12-int8']);
    expect(s.downloadBytes).toBe(setup.models!.reduce((t, m) => t + (m.bytes ?? 0), 0));
  });
});

/** The documented frame built with Node's Buffer and zlib (independent of the app's helpers). */
function frameByHand(version: number, body: Uint8Array, inflated: number): string {
  const varint = (v: number) => {
    const o: number[] = [];
    while (v >= 128) {
      o.push((v & 127) | 128);
      v >>>= 7;
    }
    o.push(v);
    return o;
  };
  const head = Buffer.from([version, ...varint(body.length), ...varint(inflated)]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlibCrc32(Buffer.concat([head, body])));
  return Buffer.concat([head, crc, Buffer.from(body)]).toString('base64url');
}

describe('dataset bundles', () => {
  const bytes = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 255);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const stream = (b: Uint8Array, chunk = 1024) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < b.length; i += chunk) c.enqueue(b.slice(i, i + chunk));
        c.close();
      },
    });
  const d = { url: 'https://x.example/ds.zip', sha256: sha, size: bytes.length };

  it('reads a bundle whose size and sha256 (node:crypto) match, reporting bytes as they arrive', async () => {
    const seen: number[] = [];
    const out = await readBundle(d, stream(bytes), (n) => seen.push(n));
    expect(out).toEqual(bytes);
    expect(seen).toEqual([1024, 2048, 3072, 4096, 5000]);
  });

  it('refuses a changed byte, a short body and a longer body, naming the URL', async () => {
    const changed = bytes.slice();
    changed[100] ^= 1;
    await expect(readBundle(d, stream(changed))).rejects.toThrow(
      /DatasetBundleError: the dataset bundle https:\/\/x.example\/ds.zip has sha256/,
    );
    await expect(readBundle(d, stream(bytes.slice(0, 4000)))).rejects.toThrow(
      /ended after 4000 of 5000 bytes/,
    );
    const longer = new Uint8Array(6000);
    longer.set(bytes);
    await expect(readBundle(d, stream(longer))).rejects.toThrow(/larger than the 5000 bytes/);
  });
});

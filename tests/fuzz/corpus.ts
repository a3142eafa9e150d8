/**
 * The malformed-input corpus of every entry point (issue #15 item 2), pure and seeded.
 *
 * Case `i` of entry point `e` is drawn from its own stream, `new Rng(`${FUZZ_SEED}/${e}/${i}`)`, so a case does
 * not depend on how many cases come before it: the CI corpus (first 200) is a prefix of the full one (1,000), and
 * one failing case replays alone:
 *
 *   const c = caseAt('image', 417);          // the same bytes on every machine
 *   await decodeImage(c.input.bytes, c.input.name);
 *
 * or from the shell: `DL_FUZZ_ONLY=image:417 npx vitest run tests/fuzz/fuzz.test.ts` (the tests print the entry
 * point and index of every failure). Valid inputs are built here by code (encoders of the product and of fflate,
 * jpeg-js), then broken; the ONNX and model-manifest cases start from the tiny models, which the caller passes in
 * (`OnnxBases`) so this module reads no files.
 */
import { zipSync, deflateSync, type Zippable } from 'fflate';
import { encode as encodePngRaw } from 'fast-png';
import { encode as encodeJpegRaw } from 'jpeg-js';
import onnxProto from 'onnx-proto';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { encodeSetup } from '../../src/core/share/codec.ts';
import { diagReferenceSetup } from '../../src/core/share/example.ts';
import { crc32, pushVarint, toBase64Url } from '../../src/core/share/bytes.ts';
import type { WorkshopSetup } from '../../src/core/share/setup.ts';
import { encodePng } from '../../src/runtime/decode.ts';

const { onnx } = onnxProto;

/** Change it only on purpose: every recorded failure is named by this seed, the entry point and the index. */
export const FUZZ_SEED = 'defectlab-fuzz-15';

export const ENTRY_POINTS = [
  'image',
  'zip',
  'folder',
  'mask',
  'model-manifest',
  'onnx',
  'share',
  'grid',
  'server',
] as const;
export type EntryPoint = (typeof ENTRY_POINTS)[number];

/** Cases per entry point: 200 when `CI` is set (the `npm test` budget), 1,000 otherwise; `DL_FUZZ_N` overrides. */
export function corpusSize(env: Record<string, string | undefined> = process.env): number {
  if (env.DL_FUZZ_N) return Math.max(1, Number(env.DL_FUZZ_N) | 0);
  return env.CI && env.CI !== 'false' && env.CI !== '0' ? 200 : 1000;
}

export interface FuzzCase<T> {
  entry: EntryPoint;
  index: number;
  /** What the generator did, for the failure message. */
  what: string;
  input: T;
}

// ---- byte mutators

type Mut = (b: Uint8Array, rng: Rng) => { bytes: Uint8Array; what: string };

const copy = (b: Uint8Array) => new Uint8Array(b);

const truncate: Mut = (b, rng) => {
  const at = rng.int(0, b.length);
  return { bytes: b.slice(0, at), what: `truncated at ${at}/${b.length}` };
};
const flipBits: Mut = (b, rng) => {
  const out = copy(b);
  const k = 1 + rng.int(0, 8);
  for (let i = 0; i < k; i++) out[rng.int(0, out.length)] ^= 1 << rng.int(0, 8);
  return { bytes: out, what: `${k} bit flips` };
};
const flipHeader: Mut = (b, rng) => {
  const out = copy(b);
  const k = 1 + rng.int(0, 4);
  for (let i = 0; i < k; i++) out[rng.int(0, Math.min(out.length, 64))] ^= 1 << rng.int(0, 8);
  return { bytes: out, what: `${k} bit flips in the first 64 bytes` };
};
const randomBytes: Mut = (b, rng) => {
  const out = copy(b);
  const at = rng.int(0, out.length);
  const n = Math.min(out.length - at, 1 + rng.int(0, 64));
  for (let i = 0; i < n; i++) out[at + i] = rng.int(0, 256);
  return { bytes: out, what: `${n} random bytes at ${at}` };
};
const deleteRange: Mut = (b, rng) => {
  const at = rng.int(0, b.length);
  const n = 1 + rng.int(0, Math.max(1, Math.min(256, b.length - at)));
  const out = new Uint8Array(b.length - Math.min(n, b.length - at));
  out.set(b.subarray(0, at));
  out.set(b.subarray(at + n), at);
  return { bytes: out, what: `deleted ${n} bytes at ${at}` };
};
const insertGarbage: Mut = (b, rng) => {
  const at = rng.int(0, b.length + 1);
  const n = 1 + rng.int(0, 256);
  const out = new Uint8Array(b.length + n);
  out.set(b.subarray(0, at));
  for (let i = 0; i < n; i++) out[at + i] = rng.int(0, 256);
  out.set(b.subarray(at), at + n);
  return { bytes: out, what: `inserted ${n} bytes at ${at}` };
};
const BYTE_MUTATORS: Mut[] = [truncate, flipBits, flipHeader, randomBytes, deleteRange, insertGarbage];

function mutate(b: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } {
  return rng.choice(BYTE_MUTATORS)(b, rng);
}

/** Numbers that break header arithmetic: zero, negative as signed, huge, just past the limits. */
const EDGE_U32 = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 8193, 100_000, 65535, 65536, 3];
const EDGE_U16 = [0, 1, 0xffff, 0x8000, 8193, 3];

function setU32(b: Uint8Array, at: number, v: number, little: boolean): void {
  if (at + 4 <= b.length) new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, little);
}
function setU16(b: Uint8Array, at: number, v: number, little: boolean): void {
  if (at + 2 <= b.length)
    new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(at, v & 0xffff, little);
}

// ---- valid images built by code

function noise(rng: Rng, w: number, h: number, c: 1 | 3 | 4): RasterImage {
  const r = createRaster(w, h, c);
  for (let i = 0; i < r.data.length; i++) r.data[i] = rng.int(0, 256);
  return r;
}

/** An uncompressed BMP (8-bit palette gray, 24 or 32-bit), the layouts `decode.ts` reads. */
export function encodeBmp(img: RasterImage, bpp: 8 | 24 | 32): Uint8Array {
  const { width: w, height: h } = img;
  const stride = Math.ceil((w * bpp) / 32) * 4;
  const palBytes = bpp === 8 ? 256 * 4 : 0;
  const offset = 54 + palBytes;
  const out = new Uint8Array(offset + stride * h);
  const dv = new DataView(out.buffer);
  out[0] = 0x42;
  out[1] = 0x4d;
  dv.setUint32(2, out.length, true);
  dv.setUint32(10, offset, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, w, true);
  dv.setInt32(22, h, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, bpp, true);
  dv.setUint32(30, 0, true);
  if (bpp === 8) for (let i = 0; i < 256; i++) out.set([i, i, i, 0], 54 + 4 * i);
  const c = img.channels;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * c;
      const row = offset + (h - 1 - y) * stride;
      if (bpp === 8) out[row + x] = img.data[p];
      else {
        const s = row + x * (bpp / 8);
        out[s] = img.data[p + (c >= 3 ? 2 : 0)];
        out[s + 1] = img.data[p + (c >= 3 ? 1 : 0)];
        out[s + 2] = img.data[p];
        if (bpp === 32) out[s + 3] = 255;
      }
    }
  return out;
}

type ImageKind = 'png-gray' | 'png-rgb' | 'png-rgba' | 'png-16' | 'png-palette' | 'png-1bit' | 'jpeg' | 'bmp';
const IMAGE_KINDS: ImageKind[] = [
  'png-gray',
  'png-rgb',
  'png-rgba',
  'png-16',
  'png-palette',
  'png-1bit',
  'jpeg',
  'bmp',
];

function validImage(rng: Rng, kind: ImageKind, w: number, h: number): Uint8Array {
  switch (kind) {
    case 'png-gray':
      return encodePng(noise(rng, w, h, 1));
    case 'png-rgb':
      return encodePng(noise(rng, w, h, 3));
    case 'png-rgba':
      return encodePng(noise(rng, w, h, 4));
    case 'png-16': {
      const d = new Uint16Array(w * h);
      for (let i = 0; i < d.length; i++) d[i] = rng.int(0, 65536);
      return encodePngRaw({ width: w, height: h, channels: 1, depth: 16, data: d });
    }
    case 'png-palette': {
      const d = new Uint8Array(w * h);
      for (let i = 0; i < d.length; i++) d[i] = rng.int(0, 4);
      const palette: [number, number, number][] = [
        [0, 0, 0],
        [255, 255, 255],
        [200, 10, 10],
        [10, 200, 10],
      ];
      return encodePngRaw({ width: w, height: h, channels: 1, depth: 8, data: d, palette });
    }
    case 'png-1bit': {
      const rowBytes = Math.ceil(w / 8);
      const d = new Uint8Array(rowBytes * h);
      for (let i = 0; i < d.length; i++) d[i] = rng.int(0, 256);
      return encodePngRaw({ width: w, height: h, channels: 1, depth: 1, data: d });
    }
    case 'jpeg': {
      const img = noise(rng, w, h, 4);
      return encodeJpegRaw({ width: w, height: h, data: img.data }, 80).data;
    }
    case 'bmp':
      return encodeBmp(noise(rng, w, h, 3), rng.choice([8, 24, 32] as const));
  }
}

// ---- image decoder

export interface ImageInput {
  name: string;
  bytes: Uint8Array;
}

/** Header fields each format's size check reads: [offset, width | height | other, little-endian]. */
function breakHeader(kind: ImageKind, b: Uint8Array, rng: Rng): string {
  const out = b;
  if (kind.startsWith('png')) {
    const field = rng.choice([16, 20, 24, 25] as const);
    if (field >= 24) {
      // bit depth / colour type bytes: values fast-png does not know
      out[field] = rng.choice([0, 3, 5, 7, 9, 15, 16, 255]);
      return `PNG IHDR byte ${field} = ${out[field]}`;
    }
    const v = rng.choice(EDGE_U32);
    setU32(out, field, v, false);
    return `PNG ${field === 16 ? 'width' : 'height'} = ${v}`;
  }
  if (kind === 'bmp') {
    // Half the edits go to width and height, the fields the size check reads.
    const field = rng.bernoulli(0.5)
      ? rng.choice([18, 22] as const)
      : rng.choice([2, 10, 14, 28, 30, 46] as const);
    if (field === 28) {
      const v = rng.choice([0, 1, 4, 16, 48, 64, 0xffff]);
      setU16(out, 28, v, true);
      return `BMP bpp = ${v}`;
    }
    // Width and height are signed (a negative height is a top-down image): negative values get their share.
    const v =
      (field === 18 || field === 22) && rng.bernoulli(0.4)
        ? rng.choice([-1, -4, -(1 + rng.int(0, 40)), -0x7fffffff])
        : rng.choice(EDGE_U32);
    setU32(out, field, v, true);
    return `BMP u32 at ${field} = ${v | 0}`;
  }
  // JPEG: find SOF0 and set height/width/components.
  for (let p = 2; p + 9 < out.length; p++)
    if (out[p] === 0xff && out[p + 1] === 0xc0) {
      const which = rng.int(0, 3);
      if (which === 2) {
        out[p + 9] = rng.choice([0, 2, 5, 255]);
        return `JPEG components = ${out[p + 9]}`;
      }
      const v = rng.choice(EDGE_U16);
      setU16(out, p + (which === 0 ? 5 : 7), v, false);
      return `JPEG ${which === 0 ? 'height' : 'width'} = ${v}`;
    }
  return 'JPEG without SOF0';
}

const MAGICS: [string, number[]][] = [
  ['TIFF little-endian', [0x49, 0x49, 0x2a, 0x00]],
  ['TIFF big-endian', [0x4d, 0x4d, 0x00, 0x2a]],
  ['GIF', [0x47, 0x49, 0x46, 0x38, 0x39, 0x61]],
  ['PDF', [0x25, 0x50, 0x44, 0x46]],
  ['zip', [0x50, 0x4b, 0x03, 0x04]],
  ['WebP', [0x52, 0x49, 0x46, 0x46, 1, 0, 0, 0, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x4c]],
  ['PNG signature only', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['JPEG SOI only', [0xff, 0xd8, 0xff]],
  ['BMP magic only', [0x42, 0x4d]],
];

export function imageCase(index: number, seed = FUZZ_SEED): FuzzCase<ImageInput> {
  const rng = new Rng(`${seed}/image/${index}`);
  const kind = rng.choice(IMAGE_KINDS);
  const w = 1 + rng.int(0, 40);
  const h = 1 + rng.int(0, 40);
  const valid = validImage(rng, kind, w, h);
  const name = `fuzz-${index}.${kind.startsWith('png') ? 'png' : kind === 'jpeg' ? 'jpg' : 'bmp'}`;
  const style = rng.int(0, 10);
  let bytes: Uint8Array;
  let what: string;
  if (style < 5) {
    ({ bytes, what } = mutate(valid, rng));
  } else if (style < 8) {
    bytes = copy(valid);
    what = breakHeader(kind, bytes, rng);
  } else if (style < 9) {
    const [label, magic] = rng.choice(MAGICS);
    bytes = new Uint8Array(magic.length + rng.int(0, 200));
    bytes.set(magic);
    for (let i = magic.length; i < bytes.length; i++) bytes[i] = rng.int(0, 256);
    what = `${label} magic + ${bytes.length - magic.length} random bytes`;
  } else {
    bytes = rng.bernoulli(0.2) ? new Uint8Array(0) : valid.slice(0, rng.int(1, 34));
    what = `first ${bytes.length} bytes only`;
  }
  return { entry: 'image', index, what: `${kind} ${w}×${h}: ${what}`, input: { name, bytes } };
}

// ---- zip importer

export interface ZipInput {
  name: string;
  bytes: Uint8Array;
}

/** A run of zeros deflates ~1000×: the shape of a zip bomb (1 MiB keeps each case cheap; the limit is 100×). */
let bombEntry: Uint8Array | null = null;
function bombBytes(): Uint8Array {
  bombEntry ??= new Uint8Array(1024 * 1024);
  return bombEntry;
}

const TRAVERSAL_NAMES = [
  '../evil.png',
  '../../etc/passwd',
  '/abs/root.png',
  'C:/Windows/x.png',
  'C:\\Windows\\x.png',
  'good/../../../out.png',
  '\\\\server\\share\\x.png',
  'a/./../../b.png',
];

function smallDataset(rng: Rng, withManifest: boolean): Zippable {
  const files: Zippable = {};
  const items: Record<string, unknown>[] = [];
  const n = 1 + rng.int(0, 3);
  for (let i = 0; i < n; i++) {
    const w = 8 + rng.int(0, 16);
    const h = 8 + rng.int(0, 16);
    files[`img/${i}.png`] = encodePng(noise(rng, w, h, 1));
    items.push({ file: `img/${i}.png`, label: 'normal', split: 'train' });
  }
  if (withManifest) files['manifest.json'] = new TextEncoder().encode(JSON.stringify({ items }));
  return files;
}

/** Offsets of a zip's records with signature `sig` (local 0x04034b50, central 0x02014b50, end 0x06054b50). */
function findSig(b: Uint8Array, sig: number): number[] {
  const out: number[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i + 4 <= b.length; i++) if (dv.getUint32(i, true) === sig) out.push(i);
  return out;
}

const BAD_MANIFESTS = [
  '{',
  '',
  'null',
  '[]',
  '"items"',
  '{"items": 5}',
  '{"items": [5, null, "x"]}',
  '{"items": [{"file": 7}]}',
  '{"items": [{"file": "missing.png", "label": "normal"}]}',
  '{"items": [{"file": "img/0.png", "label": "weird", "split": "nowhere"}]}',
  '{"items": [{"file": "../img/0.png"}]}',
  '{"items": [{"file": "img/0.png", "mask": "img/nomask.png", "label": "defect"}]}',
  '{"items": [{"file": "img/0.png", "mask": "img/0.png", "label": "defect"}]}',
  '{"items": [{"file": "img/0.png", "label_name": 3, "defect_class": {"a": 1}}]}',
  '{"name": 5, "description": [], "items": []}',
  '\u0000\u0001\u0002',
  '{"items": [{"file": "img/0.png", "group": "' + 'g'.repeat(5000) + '"}]}',
  '{"items": [' + '{"file": "img/0.png"},'.repeat(300) + '{"file": "img/0.png"}]}',
];

export function zipCase(index: number, seed = FUZZ_SEED): FuzzCase<ZipInput> {
  const rng = new Rng(`${seed}/zip/${index}`);
  const style = rng.int(0, 10);
  const name = `fuzz-${index}.zip`;
  let bytes: Uint8Array;
  let what: string;
  if (style === 0) {
    // Declared sizes in the central directory rewritten: a ratio bomb or a lie about the size.
    bytes = copy(zipSync(smallDataset(rng, rng.bernoulli(0.5))));
    const cds = findSig(bytes, 0x02014b50);
    const cd = rng.choice(cds);
    const v = rng.choice([0, 1, 0x7fffffff, 0xffffffff, 1e6, 3e9 >>> 0]);
    const field = rng.choice([20, 24] as const); // compressed / uncompressed size
    setU32(bytes, cd + field, v, true);
    what = `central directory ${field === 20 ? 'compressed' : 'uncompressed'} size = ${v}`;
  } else if (style === 1) {
    const files: Zippable = smallDataset(rng, false);
    files['zeros.png'] = [bombBytes(), { level: 9 }];
    bytes = zipSync(files);
    what = 'a 1 MiB run of zeros (ratio ~1000) beside good images';
  } else if (style === 2) {
    const files: Zippable = smallDataset(rng, false);
    files[rng.choice(TRAVERSAL_NAMES)] = encodePng(noise(rng, 8, 8, 1));
    bytes = zipSync(files);
    what = 'a traversal name beside good images';
  } else if (style === 3) {
    const files: Zippable = smallDataset(rng, false);
    const m = rng.choice(BAD_MANIFESTS);
    files['manifest.json'] = new TextEncoder().encode(m);
    bytes = zipSync(files);
    what = `manifest.json = ${JSON.stringify(m.slice(0, 60))}`;
  } else if (style === 4) {
    // The end-of-central-directory record broken: entry count, offset or size.
    bytes = copy(zipSync(smallDataset(rng, true)));
    const eocd = findSig(bytes, 0x06054b50).pop() ?? bytes.length - 22;
    const field = rng.choice([8, 10, 12, 16] as const);
    const v = rng.choice(EDGE_U32);
    if (field <= 10) setU16(bytes, eocd + field, v, true);
    else setU32(bytes, eocd + field, v, true);
    what = `end record field ${field} = ${v}`;
  } else if (style === 5) {
    // A central directory entry's name length, extra length or local header offset broken.
    bytes = copy(zipSync(smallDataset(rng, true)));
    const cd = rng.choice(findSig(bytes, 0x02014b50));
    const field = rng.choice([10, 28, 30, 42] as const);
    const v = field === 42 ? rng.choice(EDGE_U32) : rng.choice(EDGE_U16);
    if (field === 42) setU32(bytes, cd + field, v, true);
    else setU16(bytes, cd + field, v, true);
    what = `central directory field ${field} = ${v}`;
  } else if (style === 6) {
    // Nested zip, a zip of only directories, an empty zip, a zip of non-images.
    const k = rng.int(0, 4);
    const files: Zippable =
      k === 0
        ? { 'inner.zip': zipSync(smallDataset(rng, true)) }
        : k === 1
          ? { 'a/': new Uint8Array(0), 'a/b/': new Uint8Array(0) }
          : k === 2
            ? {}
            : { 'README.txt': new TextEncoder().encode('hello'), 'x.png': new TextEncoder().encode('no') };
    bytes = zipSync(files);
    what = ['nested zip', 'directories only', 'empty zip', 'non-images named .png'][k];
  } else if (style === 8) {
    // A local file header that disagrees with the central directory: method, flags, sizes, name length.
    bytes = copy(zipSync(smallDataset(rng, rng.bernoulli(0.5)), { level: 6 }));
    const lh = rng.choice(findSig(bytes, 0x04034b50));
    const field = rng.choice([6, 8, 18, 22, 26, 28] as const);
    const v = field === 18 || field === 22 ? rng.choice(EDGE_U32) : rng.choice([...EDGE_U16, 8, 12, 14, 99]);
    if (field === 18 || field === 22) setU32(bytes, lh + field, v, true);
    else setU16(bytes, lh + field, v, true);
    what = `local header field ${field} = ${v}`;
  } else {
    ({ bytes, what } = mutate(zipSync(smallDataset(rng, rng.bernoulli(0.5)), { level: 6 }), rng));
  }
  return { entry: 'zip', index, what, input: { name, bytes } };
}

// ---- folder planner (MVTec / manifest / plain), run through the importer with the bytes

export interface FolderInput {
  entries: { path: string; bytes: Uint8Array }[];
}

const ODD_SEGMENTS = [
  'train',
  'test',
  'ground_truth',
  'good',
  'crack',
  'validation',
  '',
  '.',
  '..',
  '__MACOSX',
  '.DS_Store',
  'Thumbs.db',
  'é',
  ' ',
  'a'.repeat(300),
  'CON',
  'x\u0000y',
];

export function folderCase(index: number, seed = FUZZ_SEED): FuzzCase<FolderInput> {
  const rng = new Rng(`${seed}/folder/${index}`);
  const root = rng.choice(['', 'bottle/', 'cat/', 'a\\b\\', './']);
  const w = 8 + rng.int(0, 12);
  const h = 8 + rng.int(0, 12);
  const img = () => encodePng(noise(rng, w, h, 1));
  const entries: { path: string; bytes: Uint8Array }[] = [];
  const whats: string[] = [];
  // An MVTec skeleton to break.
  for (let i = 0; i < 1 + rng.int(0, 3); i++)
    entries.push({ path: `${root}train/good/${i}.png`, bytes: img() });
  const nDefect = rng.int(0, 3);
  for (let i = 0; i < nDefect; i++) {
    entries.push({ path: `${root}test/crack/${i}.png`, bytes: img() });
    const m = createRaster(w, h, 1);
    for (let k = 0; k < m.data.length; k++) m.data[k] = rng.bernoulli(0.2) ? 255 : 0;
    entries.push({ path: `${root}ground_truth/crack/${i}_mask.png`, bytes: encodePng(m) });
  }
  const edits = 1 + rng.int(0, 4);
  for (let e = 0; e < edits; e++) {
    const k = rng.int(0, 9);
    if (k === 0 && entries.length) {
      const x = entries.splice(rng.int(0, entries.length), 1)[0];
      whats.push(`removed ${x.path}`);
    } else if (k === 1) {
      const path = Array.from({ length: 1 + rng.int(0, 5) }, () => rng.choice(ODD_SEGMENTS)).join(
        rng.choice(['/', '\\']),
      );
      entries.push({ path: path + rng.choice(['.png', '.jpg', '', '.PNG', '.zip', '.json']), bytes: img() });
      whats.push(`odd path ${JSON.stringify(path.slice(0, 40))}`);
    } else if (k === 2) {
      const m = rng.choice(BAD_MANIFESTS);
      entries.push({ path: `${root}manifest.json`, bytes: new TextEncoder().encode(m) });
      whats.push(`manifest.json ${JSON.stringify(m.slice(0, 40))}`);
    } else if (k === 3) {
      entries.push({ path: `${root}ground_truth/crack/orphan_mask.png`, bytes: img() });
      whats.push('mask without image');
    } else if (k === 4 && entries.length) {
      const x = rng.choice(entries);
      x.bytes = mutate(x.bytes, rng).bytes;
      whats.push(`damaged ${x.path}`);
    } else if (k === 5 && entries.length) {
      entries.push({ ...rng.choice(entries) });
      whats.push('duplicate entry');
    } else if (k === 6) {
      entries.push({ path: rng.choice(TRAVERSAL_NAMES), bytes: img() });
      whats.push('traversal path');
    } else if (k === 7) {
      entries.push({ path: `${root}test/crack/empty.png`, bytes: new Uint8Array(0) });
      whats.push('empty file');
    } else {
      entries.push({ path: `${root}validation/${rng.choice(ODD_SEGMENTS)}/v.png`, bytes: img() });
      whats.push('validation class');
    }
  }
  return { entry: 'folder', index, what: whats.join('; '), input: { entries } };
}

// ---- mask PNGs

export interface MaskInput {
  /** The mask file's bytes. */
  bytes: Uint8Array;
  /** Size of the image the mask belongs to. */
  width: number;
  height: number;
}

export function maskCase(index: number, seed = FUZZ_SEED): FuzzCase<MaskInput> {
  const rng = new Rng(`${seed}/mask/${index}`);
  const width = 4 + rng.int(0, 28);
  const height = 4 + rng.int(0, 28);
  const style = rng.int(0, 9);
  const on = () => (rng.bernoulli(0.3) ? 255 : 0);
  let mw = width;
  let mh = height;
  let what: string;
  let bytes: Uint8Array;
  if (style === 0) {
    mw = Math.max(1, width + rng.choice([-3, -1, 1, 5, width]));
    mh = Math.max(1, height + rng.choice([-2, 0, 2, 7]));
    const m = createRaster(mw, mh, 1);
    for (let i = 0; i < m.data.length; i++) m.data[i] = on();
    bytes = encodePng(m);
    what = `wrong size ${mw}×${mh}`;
  } else if (style === 1) {
    const m = createRaster(width, height, 1);
    for (let i = 0; i < m.data.length; i++) m.data[i] = rng.int(0, 256);
    bytes = encodePng(m);
    what = 'non-binary gray';
  } else if (style === 2) {
    const d = new Uint8Array(width * height);
    const n = 1 + rng.int(0, 200);
    for (let i = 0; i < d.length; i++) d[i] = rng.int(0, 256);
    // A palette shorter than the indices used: out-of-range entries.
    const palette: [number, number, number][] = Array.from({ length: n }, () => [
      rng.int(0, 256),
      rng.int(0, 256),
      rng.int(0, 256),
    ]);
    bytes = encodePngRaw({ width, height, channels: 1, depth: 8, data: d, palette });
    what = `palette of ${n} with indices to 255`;
  } else if (style === 3) {
    const c = rng.choice([1, 2, 3, 4] as const);
    const d = new Uint16Array(width * height * c);
    for (let i = 0; i < d.length; i++) d[i] = rng.choice([0, 65535, 32767, 32768, 1]);
    bytes = encodePngRaw({ width, height, channels: c, depth: 16, data: d });
    what = `16-bit, ${c} channels`;
  } else if (style === 4) {
    const c = rng.choice([2, 3, 4] as const);
    const m = createRaster(width, height, c === 2 ? 4 : c);
    for (let i = 0; i < m.data.length; i++) m.data[i] = rng.int(0, 256);
    bytes =
      c === 2
        ? encodePngRaw({
            width,
            height,
            channels: 2,
            depth: 8,
            data: m.data.subarray(0, width * height * 2) as unknown as Uint8Array,
          })
        : encodePng(m);
    what = `${c} channels`;
  } else if (style === 5) {
    const depth = rng.choice([1, 2, 4] as const);
    const d = new Uint8Array(Math.ceil((width * depth) / 8) * height);
    for (let i = 0; i < d.length; i++) d[i] = rng.int(0, 256);
    bytes = encodePngRaw({ width, height, channels: 1, depth, data: d });
    what = `${depth}-bit gray`;
  } else if (style === 6) {
    bytes = validImage(rng, rng.choice(['jpeg', 'bmp'] as const), width, height);
    what = 'a JPEG or BMP mask';
  } else {
    const m = createRaster(width, height, 1);
    for (let i = 0; i < m.data.length; i++) m.data[i] = on();
    const r = mutate(encodePng(m), rng);
    bytes = r.bytes;
    what = `damaged PNG: ${r.what}`;
  }
  return {
    entry: 'mask',
    index,
    what: `mask for ${width}×${height}: ${what}`,
    input: { bytes, width, height },
  };
}

// ---- model manifests and ONNX graphs

/** The valid starting points: a tiny model's manifest (parsed JSON) and its component graphs by file path. */
export interface OnnxBases {
  manifest: Record<string, unknown>;
  graphs: Record<string, Uint8Array>;
}

export interface ManifestInput {
  text: string;
}

/** Replaces the value at a random path of a JSON value with a wrong one; returns the path. */
function breakJson(v: unknown, rng: Rng, depth = 0): { value: unknown; path: string } {
  const WRONG: unknown[] = [
    null,
    0,
    -1,
    1.5,
    1e308,
    '',
    'x',
    '../x',
    '/abs',
    [],
    {},
    true,
    'https://evil.example/x',
  ];
  if (depth > 0 && (v === null || typeof v !== 'object' || rng.bernoulli(0.25)))
    return { value: rng.choice(WRONG), path: '' };
  if (Array.isArray(v)) {
    if (v.length === 0 || rng.bernoulli(0.15))
      return { value: rng.bernoulli(0.5) ? [] : rng.choice(WRONG), path: '' };
    const i = rng.int(0, v.length);
    const r = breakJson(v[i], rng, depth + 1);
    const out = [...v];
    out[i] = r.value;
    return { value: out, path: `[${i}]${r.path}` };
  }
  if (v && typeof v === 'object') {
    const o = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(o);
    if (keys.length === 0) return { value: rng.choice(WRONG), path: '' };
    const k = rng.choice(keys);
    if (rng.bernoulli(0.2)) {
      delete o[k];
      return { value: o, path: `.${k} (deleted)` };
    }
    const r = breakJson(o[k], rng, depth + 1);
    o[k] = r.value;
    return { value: o, path: `.${k}${r.path}` };
  }
  return { value: rng.choice(WRONG), path: '' };
}

/** Text edits of a JSON document: truncation, a stray character, deep nesting, a huge number. */
function breakText(text: string, rng: Rng): { text: string; what: string } {
  const k = rng.int(0, 5);
  if (k === 0) {
    const at = rng.int(0, text.length);
    return { text: text.slice(0, at), what: `text cut at ${at}` };
  }
  if (k === 1) {
    const at = rng.int(0, text.length);
    const c = rng.choice([',', '}', ']', '"', '\\', '\u0000', 'NaN', '\ud800']);
    return { text: text.slice(0, at) + c + text.slice(at), what: `${JSON.stringify(c)} inserted at ${at}` };
  }
  if (k === 2) return { text: '['.repeat(20000) + ']'.repeat(20000), what: '20,000 nested arrays' };
  if (k === 3) return { text: text.replace(/\d+/, '1e400'), what: 'first number = 1e400' };
  return { text: rng.choice(['', ' ', 'null', '[]', '"manifest"', '{}', '\ufeff{}']), what: 'not an object' };
}

export function modelManifestCase(
  index: number,
  bases: OnnxBases,
  seed = FUZZ_SEED,
): FuzzCase<ManifestInput> {
  const rng = new Rng(`${seed}/model-manifest/${index}`);
  let text: string;
  let what: string;
  if (rng.bernoulli(0.7)) {
    let v: unknown = bases.manifest;
    const edits = 1 + rng.int(0, 3);
    const paths: string[] = [];
    for (let i = 0; i < edits; i++) {
      const r = breakJson(v, rng);
      v = r.value;
      paths.push(r.path || '(root)');
    }
    text = JSON.stringify(v);
    what = `fields broken: ${paths.join(', ')}`;
  } else ({ text, what } = breakText(JSON.stringify(bases.manifest), rng));
  return { entry: 'model-manifest', index, what, input: { text } };
}

export interface OnnxInput {
  /** The manifest's file path the bytes stand for (a component's graph). */
  path: string;
  bytes: Uint8Array;
}

/** Protobuf-level edits that stay decodable: wrong shapes and types, inputs renamed or removed, initialisers gone. */
function breakGraph(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph!;
  const k = rng.int(0, 7);
  let what: string;
  const io = rng.bernoulli(0.5) ? g.input! : g.output!;
  const side = io === g.input ? 'input' : 'output';
  if (k === 0 && g.initializer?.length) {
    const n = 1 + rng.int(0, g.initializer.length);
    g.initializer.splice(0, n);
    what = `${n} initialisers removed`;
  } else if (k === 1 && io.length) {
    const v = rng.choice(io);
    const dims = v.type?.tensorType?.shape?.dim ?? [];
    if (rng.bernoulli(0.5) && dims.length) dims.splice(rng.int(0, dims.length), 1);
    else dims.push(onnx.TensorShapeProto.Dimension.create({ dimValue: rng.choice([0, 1, 7, 2 ** 40]) }));
    what = `${side} ${v.name} rank changed to ${dims.length}`;
  } else if (k === 2 && io.length) {
    const v = rng.choice(io);
    const dims = v.type?.tensorType?.shape?.dim ?? [];
    if (dims.length) {
      const d = rng.int(0, dims.length);
      dims[d] = onnx.TensorShapeProto.Dimension.create({ dimValue: rng.choice([0, 2, 5, 9, 1e6]) });
    }
    what = `${side} ${v.name} dimension changed`;
  } else if (k === 3 && io.length) {
    const v = rng.choice(io);
    if (v.type?.tensorType) v.type.tensorType.elemType = rng.choice([0, 2, 7, 8, 11, 16, 99]);
    what = `${side} ${v.name} element type = ${v.type?.tensorType?.elemType}`;
  } else if (k === 4 && io.length) {
    const v = rng.choice(io);
    v.name = rng.choice(['', 'x', 'sample ', 'SAMPLE', v.name + '_']);
    what = `${side} renamed to ${JSON.stringify(v.name)}`;
  } else if (k === 5 && io.length) {
    io.splice(rng.int(0, io.length), 1);
    what = `one ${side} removed`;
  } else {
    model.graph = null;
    what = 'graph removed';
  }
  return { bytes: onnx.ModelProto.encode(model).finish(), what };
}

export function onnxCase(index: number, bases: OnnxBases, seed = FUZZ_SEED): FuzzCase<OnnxInput> {
  const rng = new Rng(`${seed}/onnx/${index}`);
  const path = rng.choice(Object.keys(bases.graphs).sort());
  const valid = bases.graphs[path];
  const r = rng.bernoulli(0.5) ? breakGraph(valid, rng) : mutate(valid, rng);
  return { entry: 'onnx', index, what: `${path}: ${r.what}`, input: { path, bytes: r.bytes } };
}

// ---- share links

export interface ShareInput {
  token: string;
}

/** The README's reference setup (every section filled: generate, diffusion, models, train, grid) with one mask. */
function sampleSetup(rng: Rng): WorkshopSetup {
  const m = createRaster(16, 12, 1);
  for (let i = 0; i < m.data.length; i++) m.data[i] = rng.bernoulli(0.3) ? 255 : 0;
  return diagReferenceSetup([{ name: 'scratch', mask: m }]);
}

/** A frame exactly as the codec writes one (version, lengths, CRC-32), around any body: past the checksum. */
function frameToken(version: number, body: Uint8Array, inflatedLength: number): string {
  const head: number[] = [version];
  pushVarint(head, body.length);
  pushVarint(head, inflatedLength);
  const all = new Uint8Array(head.length + body.length);
  all.set(head);
  all.set(body, head.length);
  const c = crc32(all);
  head.push(c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return toBase64Url(out);
}

function v2Body(json: string, tail: Uint8Array = new Uint8Array(0)): { body: Uint8Array; length: number } {
  const j = new TextEncoder().encode(json);
  const len: number[] = [];
  pushVarint(len, j.length);
  const plain = new Uint8Array(len.length + j.length + tail.length);
  plain.set(len);
  plain.set(j, len.length);
  plain.set(tail, len.length + j.length);
  return { body: deflateSync(plain), length: plain.length };
}

export function shareCase(index: number, seed = FUZZ_SEED): FuzzCase<ShareInput> {
  const rng = new Rng(`${seed}/share/${index}`);
  const valid = encodeSetup(sampleSetup(rng));
  const style = rng.int(0, 8);
  let token: string;
  let what: string;
  const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  if (style === 0) {
    token = valid.slice(0, rng.int(0, valid.length));
    what = `cut at ${token.length}/${valid.length}`;
  } else if (style === 1) {
    const at = rng.int(0, valid.length);
    token = valid.slice(0, at) + rng.choice([...ALPHA]) + valid.slice(at + 1);
    what = `character ${at} replaced`;
  } else if (style === 2) {
    const at = rng.int(0, valid.length);
    token = valid.slice(0, at) + rng.choice(['%', '+', '/', '=', ' ', '\u00e9', '#', '\n']) + valid.slice(at);
    what = `foreign character at ${at}`;
  } else if (style === 3) {
    const v = rng.choice([0, 3, 9, 255]);
    const { body, length } = v2Body('{}');
    token = frameToken(v, body, length);
    what = `version ${v}`;
  } else if (style === 4) {
    const n = rng.choice([8 * 1024 * 1024 + 1, 2 ** 31, 2 ** 53]);
    const { body } = v2Body('{}');
    token = frameToken(2, body, n);
    what = `claims to unpack to ${n} bytes`;
  } else if (style === 5) {
    // A sound frame around a broken setup: past every byte check, down to validateSetup.
    let broken = {
      value: {
        ...sampleSetup(rng),
        masks: rng.bernoulli(0.3) ? [{ name: 'm', w: 16, h: 12, n: 0 }] : [],
      } as unknown,
      path: '',
    };
    const paths: string[] = [];
    for (let e = 0; e < 1 + rng.int(0, 3); e++) {
      broken = breakJson(broken.value, rng);
      paths.push(broken.path || '(root)');
    }
    broken.path = paths.join(', ');
    const tail = new Uint8Array(rng.int(0, 40)).map(() => rng.int(0, 256));
    const { body, length } = v2Body(JSON.stringify(broken.value), tail);
    token = frameToken(2, body, length);
    what = `checksummed setup with ${broken.path || '(root)'} broken`;
  } else if (style === 6) {
    const k = rng.int(0, 3);
    if (k === 0) {
      token = 'A'.repeat(1 + rng.int(0, 3) * 4 + rng.int(0, 4) + (rng.bernoulli(0.5) ? 1_000_000 : 0));
      what = `${token.length} × "A"`;
    } else if (k === 1) {
      // A version-1 link (the first workshops' flat JSON) with fields broken: the migration path.
      const v1 = {
        generator: 'memseg',
        count: 12,
        seed: 5,
        params: { probability: 1 },
        prompts: 'white marks on the wall\n copper metal scratches',
        negativePrompt: 'smooth',
        steps: 20,
        guidance: 7.5,
        strength: 0.9,
        masks: [{ name: 'blob', width: 4, height: 2, runs: [3, 2, 3] }],
      };
      const broken = rng.bernoulli(0.8)
        ? JSON.stringify(breakJson(v1, rng).value)
        : rng.choice(['{', '[1,2]', '{"generate": 5}', '\u00ff\u00fe']);
      const body = new TextEncoder().encode(broken);
      token = frameToken(1, body, body.length);
      what = `version 1: ${broken.slice(0, 80)}`;
    } else {
      token = frameToken(
        2,
        new Uint8Array(20).map(() => rng.int(0, 256)),
        100,
      );
      what = 'version 2 with random deflate data';
    }
  } else {
    const { body, length } = v2Body(breakText(JSON.stringify({ title: 't' }), rng).text);
    token = frameToken(2, body, length);
    what = 'checksummed non-JSON settings';
  }
  return { entry: 'share', index, what, input: { token } };
}

// ---- grid configs

export interface GridInput {
  text: string;
}

/** A grid config the app accepts (docs/experiments.md's example), the starting point of the broken ones. */
export const VALID_GRID = {
  generators: ['memseg', 'random-walk'],
  nAug: [10, 20],
  seeds: [0, 1],
  heads: ['bce'],
  threshold: { mode: 'test-best-f1' },
  epochs: 3,
  data: 'tiles',
  title: 't',
};

export function gridCase(index: number, seed = FUZZ_SEED): FuzzCase<GridInput> {
  const rng = new Rng(`${seed}/grid/${index}`);
  let text: string;
  let what: string;
  if (rng.bernoulli(0.7)) {
    let v: unknown = VALID_GRID;
    const paths: string[] = [];
    for (let i = 0; i < 1 + rng.int(0, 3); i++) {
      const r = breakJson(v, rng);
      v = r.value;
      paths.push(r.path || '(root)');
    }
    if (rng.bernoulli(0.15) && v && typeof v === 'object')
      (v as Record<string, unknown>)[rng.choice(['sweep', 'diffusion', 'headOptions', 'fewShot', 'stream'])] =
        rng.choice<unknown>([{}, [], 5, { a: [1] }, 'x', null, { model: 7, steps: -1 }]);
    if (rng.bernoulli(0.1) && v && typeof v === 'object')
      (v as Record<string, unknown>).seeds = Array.from({ length: 100_000 }, (_, i) => i);
    text = JSON.stringify(v);
    what = `fields broken: ${paths.join(', ')}`;
  } else ({ text, what } = breakText(JSON.stringify(VALID_GRID), rng));
  return { entry: 'grid', index, what, input: { text } };
}

// ---- dispatch

export type InputOf<E extends EntryPoint> = E extends 'image'
  ? ImageInput
  : E extends 'zip'
    ? ZipInput
    : E extends 'folder'
      ? FolderInput
      : E extends 'mask'
        ? MaskInput
        : E extends 'model-manifest'
          ? ManifestInput
          : E extends 'onnx'
            ? OnnxInput
            : E extends 'share'
              ? ShareInput
              : E extends 'grid'
                ? GridInput
                : never;

/** Case `index` of a byte/text entry point (the server's requests are in `server-corpus.ts`). */
export function caseAt<E extends Exclude<EntryPoint, 'server'>>(
  entry: E,
  index: number,
  bases?: OnnxBases,
  seed = FUZZ_SEED,
): FuzzCase<InputOf<E>> {
  const need = () => {
    if (!bases) throw new Error(`${entry} cases start from a tiny model: pass its OnnxBases`);
    return bases;
  };
  const c =
    entry === 'image'
      ? imageCase(index, seed)
      : entry === 'zip'
        ? zipCase(index, seed)
        : entry === 'folder'
          ? folderCase(index, seed)
          : entry === 'mask'
            ? maskCase(index, seed)
            : entry === 'model-manifest'
              ? modelManifestCase(index, need(), seed)
              : entry === 'onnx'
                ? onnxCase(index, need(), seed)
                : entry === 'share'
                  ? shareCase(index, seed)
                  : gridCase(index, seed);
  return c as FuzzCase<InputOf<E>>;
}

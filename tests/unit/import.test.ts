import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { zipSync, type Zippable } from 'fflate';
import { encode as encodeJpegRaw } from 'jpeg-js';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import type { DefectLabStore } from '../../src/runtime/db/types.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { planImport } from '../../src/core/import/plan.ts';
import { unzipArchive } from '../../src/core/import/zip.ts';
import {
  ImportEngine,
  type ImportProgressDetail,
  type ImportReport,
  type ImportSource,
} from '../../workers/import.engine.ts';
import { halfRecords } from './db-integrity.ts';

const MAGNETIC = join(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');

let counter = 0;
const opened: { store: DefectLabStore; name: string }[] = [];
async function setup(): Promise<{ store: DefectLabStore; engine: ImportEngine; datasetId: string }> {
  const name = `import-test-${process.pid}-${counter++}`;
  const store = await openStore(name);
  opened.push({ store, name });
  const ds = await store.createDataset({ name: 'D', source: 'files' });
  return { store, engine: new ImportEngine(store), datasetId: ds.id };
}
afterEach(async () => {
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await deleteStore(name);
  }
});

/** A seeded noise image as PNG bytes (distinct seeds → distinct sha256). */
function png(seed: number, w = 24, h = 16, c: 1 | 3 = 1): Uint8Array {
  const r = createRaster(w, h, c);
  const rng = new Rng(seed);
  for (let i = 0; i < r.data.length; i++) r.data[i] = rng.int(0, 256);
  return encodePng(r);
}

function maskPng(w = 24, h = 16): Uint8Array {
  const m = createRaster(w, h, 1);
  for (let y = 2; y < 6; y++) for (let x = 3; x < 9; x++) m.data[y * w + x] = 255;
  return encodePng(m);
}

/** Everything stored in a dataset, as comparable data (ids, fields, bytes of images and masks). */
async function snapshot(store: DefectLabStore, datasetId: string) {
  const images = await store.listImages(datasetId);
  return Promise.all(
    images.map(async (r) => ({
      id: r.id,
      name: r.name,
      label: r.label,
      split: r.split,
      sha256: r.sha256,
      maskId: r.maskId ?? null,
      bytes: Buffer.from(await r.blob.arrayBuffer()).toString('base64'),
      mask: r.maskId
        ? Buffer.from(await (await store.getMask(r.maskId))!.blob.arrayBuffer()).toString('base64')
        : null,
    })),
  );
}

/** Imports two good images first, so every bad-input test can check that stored data is unchanged. */
async function withExisting() {
  const s = await setup();
  const first = await s.engine.importFiles(s.datasetId, {
    entries: [
      { path: 'keep-a.png', data: png(1) },
      { path: 'keep-b.png', data: png(2) },
    ],
  });
  expect(first.added).toBe(2);
  return { ...s, before: await snapshot(s.store, s.datasetId) };
}

/** The rejected entry for `file`, asserting the message names the file and the reason. */
function rejectedFor(report: ImportReport, file: string, kind: string, reason: RegExp) {
  const r = report.rejected.find((x) => x.file === file);
  expect(r, `no rejection for ${file} in ${JSON.stringify(report.rejected)}`).toBeDefined();
  expect(r!.kind).toBe(kind);
  expect(r!.reason).toMatch(reason);
  expect(r!.message.startsWith(`ImportError: ${file}: `)).toBe(true);
  expect(r!.message).toMatch(/ — fix: \S/);
  return r!;
}

/** After a batch with bad items: earlier records identical, the good newcomer(s) stored. */
async function expectUnchangedPlus(
  store: DefectLabStore,
  datasetId: string,
  before: Awaited<ReturnType<typeof snapshot>>,
  addedNames: string[],
) {
  const after = await snapshot(store, datasetId);
  for (const rec of before) expect(after.find((a) => a.id === rec.id)).toEqual(rec);
  expect(after.length).toBe(before.length + addedNames.length);
  expect(
    after
      .filter((a) => !before.some((b) => b.id === a.id))
      .map((a) => a.name)
      .sort(),
  ).toEqual([...addedNames].sort());
}

describe('bad input: each refused with file + reason, the rest continues, stored data unchanged', () => {
  it('a non-image file', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'readme.txt', data: new TextEncoder().encode('not an image') },
        { path: 'good.png', data: png(10) },
      ],
    });
    rejectedFor(r, 'readme.txt', 'not-image', /not a PNG, JPEG, WebP or BMP image/);
    expect(r.added).toBe(1);
    await expectUnchangedPlus(store, datasetId, before, ['good.png']);
  });

  it('a truncated PNG and a truncated JPEG', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const p = png(11, 64, 64, 3);
    const rgba = new Uint8Array(32 * 32 * 4).fill(90);
    const jpg = new Uint8Array(encodeJpegRaw({ width: 32, height: 32, data: rgba }, 90).data);
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'cut.png', data: p.subarray(0, p.length - 40) },
        { path: 'cut.jpg', data: jpg.subarray(0, jpg.length >> 1) },
        { path: 'fine.jpg', data: jpg },
      ],
    });
    rejectedFor(r, 'cut.png', 'truncated', /truncated PNG/);
    rejectedFor(r, 'cut.jpg', 'truncated', /truncated JPEG/);
    await expectUnchangedPlus(store, datasetId, before, ['fine.jpg']);
  });

  it('a zero-byte file', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'zero.png', data: new Uint8Array(0) },
        { path: 'ok.png', data: png(12) },
      ],
    });
    rejectedFor(r, 'zero.png', 'empty', /empty file \(0 bytes\)/);
    await expectUnchangedPlus(store, datasetId, before, ['ok.png']);
  });

  it('an image over 8192 px on a side and one over 64 MP', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const wide = encodePng(createRaster(8193, 2, 1));
    const big = new Uint8Array(png(13));
    new DataView(big.buffer).setUint32(16, 8100);
    new DataView(big.buffer).setUint32(20, 8000);
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'wide.png', data: wide },
        { path: 'big.png', data: big },
        { path: 'ok.png', data: png(14) },
      ],
    });
    rejectedFor(r, 'wide.png', 'too-large', /8193×2 .*limit is 8192 px on a side/);
    rejectedFor(r, 'big.png', 'too-large', /8100×8000 \(64\.8 MP\).*64 MP/);
    await expectUnchangedPlus(store, datasetId, before, ['ok.png']);
  });

  it('a zip bomb by ratio (> 100), refused before inflating, the rest of the archive imported', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const zip = zipSync({
      'bomb.png': [new Uint8Array(20 * 1024 * 1024), { level: 9 }],
      'ok.png': [png(15), { level: 0 }],
    });
    const r = await engine.importFiles(datasetId, { zip, name: 'upload.zip' });
    rejectedFor(
      r,
      'upload.zip/bomb.png',
      'zip-bomb',
      /zip bomb: .* expands to 20\.0 MiB \(ratio \d+ > 100\)/,
    );
    await expectUnchangedPlus(store, datasetId, before, ['ok.png']);
  });

  it('a zip bomb by total size (> 2 GiB declared), refused from the central directory', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    // 23 stored entries of 1 MiB random bytes, each declaring 99 MiB (ratio 99, under 100): 2.2 GiB in all.
    const rng = new Rng(3);
    const files: Zippable = { 'ok.png': [png(16), { level: 0 }] };
    for (let i = 0; i < 23; i++) {
      const b = new Uint8Array(1024 * 1024);
      for (let k = 0; k < b.length; k += 4) new DataView(b.buffer).setUint32(k, rng.nextUint32());
      files[`part-${String(i).padStart(2, '0')}.bin`] = [b, { level: 0 }];
    }
    const zip = zipSync(files);
    patchCentralSizes(zip, (name) => (name.startsWith('part-') ? 99 * 1024 * 1024 : null));
    const r = await engine.importFiles(datasetId, { zip, name: 'huge.zip' });
    const bombs = r.rejected.filter((x) => x.kind === 'zip-bomb');
    expect(bombs.length).toBeGreaterThan(0);
    rejectedFor(r, bombs[0].file, 'zip-bomb', /expands past the 2\.00 GiB limit/);
    // The entries under the limit are inflated; being non-images they are refused as such — not stored.
    expect(r.rejected.some((x) => x.kind === 'not-image')).toBe(true);
    await expectUnchangedPlus(store, datasetId, before, ['ok.png']);
  });

  it('a zip entry that inflates past its declared size is stopped while inflating', () => {
    const zip = zipSync({ 'liar.png': [new Uint8Array(300_000).fill(7), { level: 9 }], 'ok.png': png(17) });
    // Declare 1000 bytes: ratio looks harmless, the stream counts and stops it.
    patchCentralSizes(zip, (name) => (name === 'liar.png' ? 1000 : null));
    const r = unzipArchive(zip, 'liar.zip');
    expect(r.entries.map((e) => e.path)).toEqual(['ok.png']);
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0].file).toBe('liar.zip/liar.png');
    expect(r.rejected[0].reason).toMatch(/expands past its declared 1000 B/);
  });

  it('path-traversal names in a zip are refused and never extracted', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const zip = zipSync({
      '../evil.png': png(18),
      '/abs.png': png(19),
      'a/../../up.png': png(20),
      'ok.png': png(21),
    });
    const r = await engine.importFiles(datasetId, { zip, name: 'trav.zip' });
    rejectedFor(r, 'trav.zip/../evil.png', 'path-traversal', /".." segment/);
    rejectedFor(r, 'trav.zip//abs.png', 'path-traversal', /absolute path/);
    rejectedFor(r, 'trav.zip/a/../../up.png', 'path-traversal', /".." segment/);
    await expectUnchangedPlus(store, datasetId, before, ['ok.png']);
  });

  it('a mask whose size differs from its image (MVTec layout)', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const zip = zipSync({
      'train/good/000.png': png(30),
      'test/crack/000.png': png(31),
      'test/crack/001.png': png(32),
      'ground_truth/crack/000_mask.png': maskPng(10, 10),
      'ground_truth/crack/001_mask.png': maskPng(),
    });
    const r = await engine.importFiles(datasetId, { zip, name: 'mv.zip' });
    expect(r.layout).toBe('mvtec');
    rejectedFor(
      r,
      'ground_truth/crack/000_mask.png',
      'mask-size',
      /mask is 10×10 but its image test\/crack\/000\.png is 24×16/,
    );
    await expectUnchangedPlus(store, datasetId, before, ['train/good/000.png', 'test/crack/001.png']);
  });

  it('a mask whose size differs from its image (manifest layout)', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const masksBefore = (await store.listMasks(datasetId)).length;
    const manifest = {
      items: [
        { file: 'images/ok.png', label: 0, split: 'train', mask: null },
        { file: 'images/bad.png', label: 1, split: 'test', mask: 'masks/bad_mask.png' },
        { file: 'images/good.png', label: 1, split: 'test', mask: 'masks/good_mask.png' },
      ],
    };
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'mt/manifest.json', data: new TextEncoder().encode(JSON.stringify(manifest)) },
        { path: 'mt/images/ok.png', data: png(33) },
        { path: 'mt/images/bad.png', data: png(34) },
        { path: 'mt/images/good.png', data: png(35) },
        { path: 'mt/masks/bad_mask.png', data: maskPng(16, 24) },
        { path: 'mt/masks/good_mask.png', data: maskPng() },
      ],
    });
    expect(r.layout).toBe('manifest');
    expect(r.rejected).toHaveLength(1);
    rejectedFor(
      r,
      'mt/masks/bad_mask.png',
      'mask-size',
      /mask is 16×24 but its image mt\/images\/bad\.png is 24×16/,
    );
    // The refused item is stored neither as an image nor as a stray mask; the two good ones go in.
    await expectUnchangedPlus(store, datasetId, before, ['mt/images/ok.png', 'mt/images/good.png']);
    expect((await store.listMasks(datasetId)).length).toBe(masksBefore + 1);
  });

  it('a manifest naming missing files (image and mask)', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const manifest = {
      items: [
        { file: 'images/a.png', label: 0, split: 'train', mask: null },
        { file: 'images/gone.png', label: 0, split: 'train', mask: null },
        { file: 'images/b.png', label: 1, split: 'test', mask: 'masks/b_missing_mask.png' },
      ],
    };
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'ds/manifest.json', data: new TextEncoder().encode(JSON.stringify(manifest)) },
        { path: 'ds/images/a.png', data: png(40) },
        { path: 'ds/images/b.png', data: png(41) },
      ],
    });
    expect(r.layout).toBe('manifest');
    rejectedFor(
      r,
      'ds/images/gone.png',
      'missing-file',
      /listed in ds\/manifest\.json but not among the imported files/,
    );
    rejectedFor(r, 'ds/masks/b_missing_mask.png', 'missing-file', /mask of ds\/images\/b\.png is listed/);
    // b.png is listed with a mask that is missing, so the item is refused as a whole; a.png goes in.
    await expectUnchangedPlus(store, datasetId, before, ['ds/images/a.png']);
  });

  it('duplicates (same sha256) are reported, not stored twice — within the batch and against the store', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const r = await engine.importFiles(datasetId, {
      entries: [
        { path: 'again-a.png', data: png(1) },
        { path: 'new.png', data: png(50) },
        { path: 'new-copy.png', data: png(50) },
      ],
    });
    expect(r.duplicates.map((d) => [d.name, d.existingName])).toEqual([
      ['again-a.png', 'keep-a.png'],
      ['new-copy.png', 'new.png'],
    ]);
    expect(r.message).toMatch(/Imported 1 image \(2 duplicates skipped\)/);
    await expectUnchangedPlus(store, datasetId, before, ['new.png']);
  });
});

/** Rewrites the uncompressed-size field of central-directory entries (a lying header, as a bomb would have). */
function patchCentralSizes(zip: Uint8Array, size: (name: string) => number | null): void {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let p = 0; p + 46 <= zip.length; p++) {
    if (dv.getUint32(p, true) !== 0x02014b50) continue;
    const nameLen = dv.getUint16(p + 28, true);
    const name = new TextDecoder().decode(zip.subarray(p + 46, p + 46 + nameLen));
    const s = size(name);
    if (s !== null) dv.setUint32(p + 24, s, true);
  }
}

describe('layouts', () => {
  it('plans MVTec (several categories, masks matched by stem, side files ignored)', () => {
    const e = (path: string) => ({ path });
    const plan = planImport([
      e('bottle/train/good/000.png'),
      e('bottle/test/good/000.png'),
      e('bottle/test/broken_large/000.png'),
      e('bottle/test/broken_large/001.png'),
      e('bottle/ground_truth/broken_large/000_mask.png'),
      e('bottle/license.txt'),
      e('cable/train/good/000.png'),
      e('cable/ground_truth/bent_wire/009_mask.png'),
      e('__MACOSX/bottle/._000.png'),
      e('.DS_Store'),
    ]);
    expect(plan.layout).toBe('mvtec');
    const byFile = Object.fromEntries(plan.items.map((i) => [i.file, i]));
    expect(Object.keys(byFile).sort()).toEqual([
      'bottle/test/broken_large/000.png',
      'bottle/test/broken_large/001.png',
      'bottle/test/good/000.png',
      'bottle/train/good/000.png',
      'cable/train/good/000.png',
    ]);
    expect(byFile['bottle/train/good/000.png']).toMatchObject({ label: 'normal', split: 'train' });
    expect(byFile['bottle/test/good/000.png']).toMatchObject({ label: 'normal', split: 'test' });
    expect(byFile['bottle/test/broken_large/000.png']).toMatchObject({
      label: 'defect',
      split: 'test',
      defectClass: 'broken_large',
      maskFile: 'bottle/ground_truth/broken_large/000_mask.png',
    });
    expect(byFile['bottle/test/broken_large/001.png'].maskFile).toBeUndefined();
    expect(plan.ignored).toEqual(['bottle/license.txt']);
    expect(plan.rejected.map((r) => [r.file, r.kind])).toEqual([
      ['cable/ground_truth/bent_wire/009_mask.png', 'not-in-layout'],
    ]);
  });

  it('imports an MVTec zip built with fflate: labels, splits, classes and binary masks', async () => {
    const { store, engine, datasetId } = await setup();
    const soft = createRaster(24, 16, 1);
    soft.data.fill(90);
    soft.data.fill(200, 0, 24);
    const zip = zipSync({
      'screw/train/good/000.png': png(60),
      'screw/train/good/001.png': png(61),
      'screw/test/good/000.png': png(62),
      'screw/test/scratch_head/000.png': png(63),
      'screw/test/thread_top/000.png': png(64, 24, 16, 3),
      'screw/ground_truth/scratch_head/000_mask.png': maskPng(),
      // A soft (non-binary) mask is thresholded at 128.
      'screw/ground_truth/thread_top/000_mask.png': encodePng(soft),
    });
    const r = await engine.importFiles(datasetId, { zip, name: 'screw.zip' });
    expect([r.layout, r.added, r.rejected.length]).toEqual(['mvtec', 5, 0]);
    const c = await store.countImages(datasetId);
    expect(c.byLabelSplit['normal/train']).toBe(2);
    expect(c.byLabelSplit['normal/test']).toBe(1);
    expect(c.byLabelSplit['defect/test']).toBe(2);
    expect(c.masks).toBe(2);
    const thread = (await store.listImages(datasetId)).find(
      (i) => i.name === 'screw/test/thread_top/000.png',
    )!;
    expect([thread.defectClass, thread.channels, thread.width, thread.height]).toEqual([
      'thread_top',
      3,
      24,
      16,
    ]);
    const mask = await store.getMask(thread.maskId!);
    const decoded = await decodeImage(new Uint8Array(await mask!.blob.arrayBuffer()), 'm');
    expect(decoded.raster.channels).toBe(1);
    expect(new Set(decoded.raster.data)).toEqual(new Set([0, 255]));
    expect(decoded.raster.data.slice(0, 24).every((v) => v === 255)).toBe(true);
    expect(decoded.raster.data.slice(24).every((v) => v === 0)).toBe(true);
    // Thumbnails are PNGs of the image, longest side ≤ 128.
    const th = await decodeImage(new Uint8Array(await thread.thumbnail.arrayBuffer()), 't');
    expect([th.raster.width, th.raster.height]).toEqual([24, 16]);
  });

  it('imports the real magnetic-tile folder (manifest): 210 images, 60 masks, labels/splits/groups as listed', async () => {
    const { store, engine } = await setup();
    const entries = readFolder(MAGNETIC);
    const manifest = JSON.parse(readFileSync(join(MAGNETIC, 'manifest.json'), 'utf8')) as {
      dataset: string;
      items: {
        file: string;
        label_name: string;
        split: string;
        mask: string | null;
        defect_class: string;
        group: string;
        width: number;
        height: number;
      }[];
    };
    const progress: number[] = [];
    const { dataset, report } = await engine.importIntoNewDataset(
      null,
      { entries },
      {
        onProgress: (p) => progress.push(p.done),
      },
    );
    expect(report.layout).toBe('manifest');
    expect(report.rejected).toEqual([]);
    expect(report.added).toBe(210);
    expect(dataset.name).toBe(manifest.dataset);
    expect(dataset.source).toBe('files-manifest');
    expect(dataset.description).toMatch(/citation: Huang Y\., Qiu C\., Yuan K\./);
    expect((await store.getDataset(dataset.id))?.description).toBe(dataset.description);
    expect(report.meta?.description).toMatch(/Surface defect saliency of magnetic tile/);
    expect(progress.at(-1)).toBe(210);
    const counts = await store.countImages(dataset.id);
    expect(counts.total).toBe(210);
    expect(counts.masks).toBe(60);
    expect(counts.byLabelSplit['normal/train']).toBe(100);
    expect(counts.byLabelSplit['normal/test']).toBe(50);
    expect(counts.byLabelSplit['defect/test']).toBe(50);
    // fewshot defects are training material: stored in the train split.
    expect(counts.byLabelSplit['defect/train']).toBe(10);
    const stored = new Map((await store.listImages(dataset.id)).map((r) => [r.name, r]));
    for (const it of manifest.items) {
      const r = stored.get(it.file)!;
      expect(r, it.file).toBeDefined();
      expect(r.label).toBe(it.label_name);
      expect(r.split).toBe(it.split === 'fewshot' ? 'train' : it.split);
      expect(r.defectClass).toBe(it.defect_class);
      expect(r.group).toBe(it.group);
      expect([r.width, r.height, r.channels]).toEqual([it.width, it.height, 1]);
      expect(Boolean(r.maskId)).toBe(it.mask !== null);
    }
    // The stored bytes are the original file, byte for byte.
    const one = manifest.items[0];
    const bytes = new Uint8Array(await stored.get(one.file)!.blob.arrayBuffer());
    expect(Buffer.compare(bytes, readFileSync(join(MAGNETIC, one.file)))).toBe(0);
  });

  it('imports the same folder as a zip (a lone .zip entry is the dataset itself)', async () => {
    const { store, engine, datasetId } = await setup();
    const files: Zippable = {};
    for (const e of readFolder(MAGNETIC)) files[`magnetic-tile-compact/${e.path}`] = e.data as Uint8Array;
    const zip = zipSync(files, { level: 1 });
    const r = await engine.importFiles(datasetId, {
      entries: [{ path: 'magnetic.zip', data: new Blob([zip]) }],
    });
    expect([r.layout, r.added, r.rejected.length]).toEqual(['manifest', 210, 0]);
    expect((await store.countImages(datasetId)).masks).toBe(60);
  });
});

function readFolder(dir: string): ImportSource[] {
  const out: ImportSource[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: relative(dir, p), data: new Uint8Array(readFileSync(p)) });
    }
  };
  walk(dir);
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

describe('engine: batches, progress, cancel, quota', () => {
  it('reports progress with count, bytes and ETA, storing one transaction per batch', async () => {
    const { store, engine, datasetId } = await setup();
    const entries = Array.from({ length: 10 }, (_, i) => ({ path: `p${i}.png`, data: png(100 + i) }));
    const seen: { done: number; bytes?: number; eta?: number }[] = [];
    const r = await engine.importFiles(
      datasetId,
      { entries },
      {
        batchSize: 4,
        onProgress: (p) => seen.push({ done: p.done, bytes: p.bytes, eta: p.etaSeconds }),
      },
    );
    expect(r.added).toBe(10);
    expect(seen[0].done).toBe(0);
    expect(seen.at(-1)).toMatchObject({ done: 10, eta: 0 });
    expect(seen.at(-1)!.bytes).toBe(entries.reduce((s, e) => s + e.data.length, 0));
    expect(seen.some((s) => s.eta !== undefined && s.eta > 0)).toBe(true);
    expect((await store.countImages(datasetId)).total).toBe(10);
  });

  it('progress names the dataset and, after each committed batch, the images stored so far (the live grid)', async () => {
    const { store, engine } = await setup();
    const entries = Array.from({ length: 10 }, (_, i) => ({ path: `g${i}.png`, data: png(700 + i) }));
    const seen: { done: number; detail: ImportProgressDetail; inStore: Promise<number> }[] = [];
    const { dataset, report } = await engine.importIntoNewDataset(
      'Live',
      { entries },
      {
        batchSize: 4,
        onProgress: (p) => {
          const detail = p.detail as ImportProgressDetail;
          seen.push({
            done: p.done,
            detail,
            inStore: store.countImages(detail.datasetId).then((c) => c.total),
          });
        },
      },
    );
    expect(report.added).toBe(10);
    // The new dataset is named from the first message on, before anything is stored.
    expect(seen[0].detail).toEqual({ datasetId: dataset.id, stored: 0 });
    expect(seen.every((s) => s.detail.datasetId === dataset.id)).toBe(true);
    const stored = seen.map((s) => s.detail.stored);
    expect([...new Set(stored)]).toEqual([0, 4, 8, 10]);
    // Batches are reported as they commit, while later items are still being prepared.
    expect(seen.find((s) => s.detail.stored === 4)!.done).toBeLessThan(10);
    // A count is never ahead of the store.
    for (const s of seen) expect(await s.inStore).toBeGreaterThanOrEqual(s.detail.stored);
    // The profile accounts for every item and batch.
    expect(report.profile.items).toBe(10);
    expect(report.profile.batches).toBe(3);
    expect(report.profile.decodeMs).toBeGreaterThan(0);
  });

  it('cancel keeps the batches already stored and says so', async () => {
    const { store, engine, datasetId } = await setup();
    const entries = Array.from({ length: 20 }, (_, i) => ({ path: `c${i}.png`, data: png(200 + i) }));
    const r = await engine.importFiles(
      datasetId,
      { entries },
      {
        jobId: 'job-c',
        batchSize: 5,
        onProgress: (p) => {
          if (p.done === 12) engine.cancel('job-c');
        },
      },
    );
    expect(r.cancelled).toBe(true);
    // Batches of 5: two were stored before the cancel at item 12; the partial third is dropped.
    expect(r.added).toBe(10);
    expect(r.message).toMatch(/^Import cancelled: 10 images imported before the cancel are kept/);
    expect((await store.listImages(datasetId)).length).toBe(10);
  });

  it('a batch whose transaction is aborted mid-write (tab closed) leaves no half records; re-importing completes it', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const dbName = opened.at(-1)!.name;
    // Every image has a mask, so a torn batch could leave a mask without its image or the reverse.
    const entries: ImportSource[] = [];
    const manifest = { items: [] as { file: string; label: number; split: string; mask: string }[] };
    for (let i = 0; i < 9; i++) {
      entries.push({ path: `images/t${i}.png`, data: png(400 + i) });
      entries.push({ path: `masks/t${i}_mask.png`, data: maskPng() });
      manifest.items.push({
        file: `images/t${i}.png`,
        label: 1,
        split: 'test',
        mask: `masks/t${i}_mask.png`,
      });
    }
    entries.push({ path: 'manifest.json', data: new TextEncoder().encode(JSON.stringify(manifest)) });

    // The browser aborts a closing page's transactions between any two requests. Here: in the 2nd batch of 3,
    // right after the 5th mask was written, before its image record.
    const proto = IDBObjectStore.prototype;
    const realAdd = proto.add;
    let maskAdds = 0;
    proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
      const req = realAdd.apply(this, args);
      if (this.name === 'masks' && ++maskAdds === 5) this.transaction.abort();
      return req;
    };
    let r: ImportReport;
    try {
      r = await engine.importFiles(datasetId, { entries }, { batchSize: 3 });
    } finally {
      proto.add = realAdd;
    }
    expect(r.stopped?.code).toBe('StorageError');
    expect(r.stopped?.message).toMatch(/while storing 3 image\(s\).*rolled back/);
    expect(r.added).toBe(3);
    expect(await halfRecords(dbName)).toEqual([]);
    await expectUnchangedPlus(store, datasetId, before, ['images/t0.png', 'images/t1.png', 'images/t2.png']);
    // Every stored image of the first batch has its mask; nothing of batches 2 and 3 is there.
    expect((await store.countImages(datasetId)).masks).toBe(3);

    // Importing the same files again stores the rest and skips the first batch as duplicates.
    const again = await engine.importFiles(datasetId, { entries }, { batchSize: 3 });
    expect(again.added).toBe(6);
    expect(again.duplicates.map((d) => d.name).sort()).toEqual([
      'images/t0.png',
      'images/t1.png',
      'images/t2.png',
    ]);
    expect((await store.countImages(datasetId)).masks).toBe(9);
    expect(await halfRecords(dbName)).toEqual([]);
  });

  it('a QuotaExceededError stops the import with a named message and keeps earlier batches and data', async () => {
    const { store, engine, datasetId, before } = await withExisting();
    const proto = IDBObjectStore.prototype;
    const realAdd = proto.add;
    let calls = 0;
    proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
      // Batches of 4: the 6th image record (2nd batch) hits a full disk.
      if (this.name === 'images' && ++calls === 6)
        throw new DOMException('Quota exceeded', 'QuotaExceededError');
      return realAdd.apply(this, args);
    };
    let r: ImportReport;
    try {
      const entries = Array.from({ length: 12 }, (_, i) => ({ path: `q${i}.png`, data: png(300 + i) }));
      r = await engine.importFiles(datasetId, { entries }, { batchSize: 4 });
    } finally {
      proto.add = realAdd;
    }
    expect(r.stopped?.code).toBe('StorageQuotaError');
    expect(r.stopped?.message).toMatch(/storage quota exceeded while storing 4 image\(s\)/);
    expect(r.added).toBe(4);
    expect(r.message).toMatch(
      /^Import stopped: StorageQuotaError: .* 4 images imported before the stop are kept/,
    );
    await expectUnchangedPlus(store, datasetId, before, ['q0.png', 'q1.png', 'q2.png', 'q3.png']);
  });
});

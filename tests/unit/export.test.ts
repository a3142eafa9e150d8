import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { encode as encodeJpegRaw } from 'jpeg-js';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import type { DefectLabStore } from '../../src/runtime/db/types.ts';
import { encodePng } from '../../src/runtime/decode.ts';
import { createRaster } from '../../src/core/image.ts';
import { Rng } from '../../src/core/rng.ts';
import { sha256Hex } from '../../src/core/hash.ts';
import { exportLayout, safeSegment, type ExportManifest } from '../../src/core/export/mvtec.ts';
import { ImportEngine, type ImportSource } from '../../workers/import.engine.ts';

const MAGNETIC = join(import.meta.dirname, '../../../shared/data/magnetic-tile-compact');

let counter = 0;
const opened: { store: DefectLabStore; name: string }[] = [];
async function setup() {
  const name = `export-test-${process.pid}-${counter++}`;
  const store = await openStore(name);
  opened.push({ store, name });
  return { store, engine: new ImportEngine(store) };
}
afterEach(async () => {
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await deleteStore(name);
  }
});

function png(seed: number, w = 20, h = 12, c: 1 | 3 = 1): Uint8Array<ArrayBuffer> {
  const r = createRaster(w, h, c);
  const rng = new Rng(seed);
  for (let i = 0; i < r.data.length; i++) r.data[i] = rng.int(0, 256);
  return encodePng(r);
}

function mask(w = 20, h = 12, seed = 0): Uint8Array<ArrayBuffer> {
  const m = createRaster(w, h, 1);
  for (let i = seed; i < m.data.length; i += 7) m.data[i] = 255;
  return encodePng(m);
}

/** Everything a user would lose in a bad round trip, keyed by image name. */
async function contents(store: DefectLabStore, datasetId: string) {
  const out = new Map<string, unknown>();
  for (const r of await store.listImages(datasetId)) {
    const m = r.maskId ? await store.getMask(r.maskId) : undefined;
    out.set(r.name, {
      mime: r.mime,
      size: [r.width, r.height, r.channels],
      sha256: r.sha256,
      bytesSha: await sha256Hex(new Uint8Array(await r.blob.arrayBuffer())),
      label: r.label,
      split: r.split,
      defectClass: r.defectClass ?? null,
      group: r.group ?? null,
      provenance: r.provenance ?? null,
      mask: m ? await sha256Hex(new Uint8Array(await m.blob.arrayBuffer())) : null,
    });
  }
  return out;
}

describe('export', () => {
  it('lays out MVTec folders + manifest and re-imports without loss (labels, splits, masks, groups, provenance)', async () => {
    const { store, engine } = await setup();
    const src = await store.createDataset({ name: 'Mixed', source: 'files', description: 'a test set' });
    const rgba = new Uint8Array(16 * 8 * 4).fill(120);
    const jpg = new Uint8Array(encodeJpegRaw({ width: 16, height: 8, data: rgba }, 90).data);
    const manifest = {
      items: [
        { file: 'a/000.png', label: 0, split: 'train', group: 'g1' },
        // Same base name in another folder: the export must keep both.
        { file: 'b/000.png', label: 0, split: 'test', group: 'g2' },
        {
          file: 'c/scratch.png',
          label_name: 'defect',
          split: 'test',
          mask: 'm/scratch.png',
          defect_class: 'scratch',
        },
        { file: 'c/fewshot.png', label: 1, split: 'fewshot', mask: 'm/fewshot.png', defect_class: 'crack' },
        { file: 'c/val.png', label: 1, split: 'val', defect_class: 'dent' },
        { file: 'c/photo.jpg', label: null, split: 'train' },
      ],
    };
    const entries: ImportSource[] = [
      { path: 'manifest.json', data: new TextEncoder().encode(JSON.stringify(manifest)) },
      { path: 'a/000.png', data: png(1) },
      { path: 'b/000.png', data: png(2) },
      { path: 'c/scratch.png', data: png(3) },
      { path: 'm/scratch.png', data: mask(20, 12, 1) },
      { path: 'c/fewshot.png', data: png(4, 20, 12, 3) },
      { path: 'm/fewshot.png', data: mask(20, 12, 2) },
      { path: 'c/val.png', data: png(5) },
      { path: 'c/photo.jpg', data: jpg },
    ];
    const first = await engine.importFiles(src.id, { entries });
    expect([first.added, first.rejected.length]).toEqual([6, 0]);
    // A generated sample with full provenance.
    const samplePng = png(9);
    await store.acceptSamples(src.id, [
      {
        png: new Blob([samplePng]),
        width: 20,
        height: 12,
        channels: 1,
        thumbnail: new Blob([samplePng]),
        sha256: await sha256Hex(samplePng),
        mask: { blob: new Blob([mask(20, 12, 3)]), width: 20, height: 12 },
        provenance: {
          generator: 'sdxl-inpaint',
          parameters: { steps: 30, guidance: 7.5 },
          seed: 42,
          prompt: 'a scratch on brushed metal',
          negativePrompt: 'blurry',
          sourceImageId: 'src-1',
          maskId: 'mask-1',
          modelId: 'sdxl-inpaint-fp16',
          createdAt: 1700000000000,
        },
        split: 'test',
      },
    ]);
    const before = await contents(store, src.id);
    expect(before.size).toBe(7);

    const zip = await engine.exportDataset(src.id);
    const files = unzipSync(zip);
    const names = Object.keys(files).sort();
    expect(names).toContain('manifest.json');
    expect(names).toContain('train/good/a__000.png');
    expect(names).toContain('test/good/b__000.png');
    expect(names).toContain('test/scratch/c__scratch.png');
    expect(names).toContain('ground_truth/scratch/c__scratch_mask.png');
    expect(names).toContain('train/crack/c__fewshot.png');
    expect(names).toContain('validation/dent/c__val.png');
    expect(names).toContain('unlabeled/train/c__photo.jpg');
    expect(names.filter((n) => n.startsWith('ground_truth/')).length).toBe(3);
    const m = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as ExportManifest;
    expect([m.dataset, m.description, m.source, m.items.length]).toEqual(['Mixed', 'a test set', 'files', 7]);
    const gen = m.items.find((i) => i.provenance)!;
    expect(gen.provenance).toMatchObject({
      generator: 'sdxl-inpaint',
      seed: 42,
      prompt: 'a scratch on brushed metal',
    });
    expect(gen.file.startsWith('test/defect/')).toBe(true);

    const again = await store.createDataset({ name: 'Re-imported', source: 'zip' });
    const r = await engine.importFiles(again.id, { zip, name: 'export.zip' });
    expect([r.layout, r.added, r.rejected.length, r.duplicates.length]).toEqual(['manifest', 7, 0, 0]);
    expect(await contents(store, again.id)).toEqual(before);
  });

  it('round-trips the real magnetic-tile dataset (210 images, 60 masks) without loss', async () => {
    const { store, engine } = await setup();
    const entries: ImportSource[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else entries.push({ path: relative(MAGNETIC, p), data: new Uint8Array(readFileSync(p)) });
      }
    };
    walk(MAGNETIC);
    const { dataset } = await engine.importIntoNewDataset(null, { entries });
    const before = await contents(store, dataset.id);
    expect(before.size).toBe(210);
    const zip = await engine.exportDataset(dataset.id);
    const { dataset: back, report } = await engine.importIntoNewDataset(null, { zip, name: 'mt.zip' });
    expect([report.added, report.rejected.length]).toEqual([210, 0]);
    expect(back.name).toBe(dataset.name);
    expect((await store.countImages(back.id)).masks).toBe(60);
    expect(await contents(store, back.id)).toEqual(before);
  });

  it('keeps exported paths unique and safe', () => {
    const item = (name: string) => ({
      name,
      mime: 'image/png',
      bytes: new Uint8Array([1]),
      width: 1,
      height: 1,
      channels: 1 as const,
      sha256: name,
      label: 'normal' as const,
      split: 'train' as const,
    });
    const { files, manifest } = exportLayout({ name: 'x', source: 'files' }, [
      item('a.png'),
      item('A.png'),
      item('a.png'),
      item('../../etc/passwd.png'),
    ]);
    const paths = manifest.items.map((i) => i.file);
    expect(new Set(paths.map((p) => p.toLowerCase())).size).toBe(4);
    for (const p of paths) expect(p.split('/').every((s) => s !== '..' && s !== '')).toBe(true);
    expect(files.size).toBe(5);
    expect(safeSegment('a:b*c?.png')).toBe('a_b_c_.png');
    // The zip of a layout unzips to the same files.
    const z = unzipSync(zipSync(Object.fromEntries(files)));
    expect(Object.keys(z).sort()).toEqual([...files.keys()].sort());
  });
});

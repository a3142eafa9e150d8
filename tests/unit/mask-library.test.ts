import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import type { DefectLabStore } from '../../src/runtime/db/types.ts';
import { createRaster } from '../../src/core/image.ts';
import { sha256Hex } from '../../src/core/hash.ts';
import { countOn, isBinaryMask, pixelsOutside } from '../../src/core/mask/index.ts';
import { memsegDefect, randomPerlinMask } from '../../src/core/synth/index.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import {
  addRandomRegions,
  applyMaskToImages,
  featherOf,
  importDefectMasks,
  listLibrary,
  readMask,
  regionMaskOf,
  saveLibraryMask,
  saveRegionMask,
  maskBlob,
} from '../../src/ui/generate/library.ts';
import { acceptIntoStore } from '../../src/ui/generate/accept.ts';

let n = 0;
const opened: { store: DefectLabStore; name: string }[] = [];
async function fresh(): Promise<{ store: DefectLabStore; ds: string }> {
  const name = `mask-lib-${process.pid}-${n++}`;
  const store = await openStore(name);
  opened.push({ store, name });
  const d = await store.createDataset({ name: 't', source: 'test' });
  return { store, ds: d.id };
}
afterEach(async () => {
  for (const { store, name } of opened.splice(0)) {
    store.close();
    await deleteStore(name);
  }
});

/** A textured gray test image, so generators have something to scramble. */
function tile(w: number, h: number) {
  const img = createRaster(w, h, 1);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data[y * w + x] = 60 + ((x * 7 + y * 13) % 120);
  return img;
}

function square(w: number, h: number, x0: number, y0: number, s: number) {
  const m = createRaster(w, h, 1);
  for (let y = y0; y < y0 + s; y++) for (let x = x0; x < x0 + s; x++) m.data[y * w + x] = 255;
  return m;
}

async function addImage(store: DefectLabStore, ds: string, i: number, extra: Record<string, unknown> = {}) {
  const bytes = new Uint8Array([137, 80, 78, 71, i, 1, 2]);
  const r = await store.addImages(ds, [
    {
      name: `img-${i}.png`,
      blob: new Blob([bytes]),
      mime: 'image/png',
      width: 32,
      height: 16,
      channels: 1,
      sha256: await sha256Hex(bytes),
      thumbnail: new Blob([bytes]),
      label: 'normal',
      split: 'train',
      ...extra,
    },
  ]);
  return r.added[0];
}

describe('mask library', () => {
  it('saves, lists and reads back a mask exactly; refuses an empty one', async () => {
    const { store, ds } = await fresh();
    const m = square(32, 16, 4, 4, 6);
    const rec = await saveLibraryMask(store, ds, m, 'my region');
    const list = await listLibrary(store, ds);
    expect(list.map((r) => r.name)).toEqual(['my region']);
    expect(list[0].kind).toBe('library');
    expect((await readMask(rec)).data).toEqual(m.data);
    await expect(saveLibraryMask(store, ds, createRaster(4, 4, 1), 'empty')).rejects.toThrow(
      /at least one painted/,
    );
    expect(await listLibrary(store, ds)).toHaveLength(1);
  });

  it('reads masks stored in other layouts (RGB, soft values) as binary', async () => {
    const rgb = createRaster(4, 2, 3);
    rgb.data.set([
      200, 200, 200, 10, 10, 10, 255, 255, 255, 0, 0, 0, 127, 127, 127, 128, 128, 128, 0, 0, 0, 90, 90, 90,
    ]);
    const m = await readMask({ id: 'x', name: 'rgb.png', blob: new Blob([new Uint8Array(encodePng(rgb))]) });
    expect(m.channels).toBe(1);
    expect([...m.data]).toEqual([255, 0, 255, 0, 0, 255, 0, 0]);
    await expect(
      readMask({ id: 'y', name: 'junk.png', blob: new Blob([new Uint8Array([1, 2, 3])]) }),
    ).rejects.toThrow(/junk\.png/);
  });

  it('applies one mask to many images at each image size, replacing earlier regions', async () => {
    const { store, ds } = await fresh();
    const a = await addImage(store, ds, 1);
    const b = await addImage(store, ds, 2, { width: 64, height: 32 });
    const m = square(32, 16, 0, 0, 8); // top-left quarter of the height
    const recs = await applyMaskToImages(store, ds, m, [a, b]);
    expect(recs.map((r) => [r.width, r.height])).toEqual([
      [32, 16],
      [64, 32],
    ]);
    const big = await readMask((await regionMaskOf(store, ds, b.id))!);
    expect(countOn(big)).toBe(16 * 16); // 8×8 scaled ×2
    expect(isBinaryMask(big)).toBe(true);
    await saveRegionMask(store, ds, a, square(32, 16, 10, 2, 3));
    const regions = (await store.listMasks(ds, 'region')).filter((r) => r.imageId === a.id);
    expect(regions).toHaveLength(1);
    expect(countOn(await readMask(regions[0]))).toBe(9);
  });

  it('keeps the painter’s feather σ with library and region masks; the stored mask stays binary', async () => {
    const { store, ds } = await fresh();
    const m = square(32, 16, 4, 4, 6);
    const lib = await saveLibraryMask(store, ds, m, 'soft', 2.5);
    const back = (await listLibrary(store, ds))[0];
    expect(featherOf(back)).toBe(2.5);
    expect(featherOf(await store.getMask(lib.id))).toBe(2.5);
    expect(isBinaryMask(await readMask(back))).toBe(true);
    expect((await readMask(back)).data).toEqual(m.data);
    // Saved without a σ (or by an older version): 0, the binary mask.
    expect(featherOf(await saveLibraryMask(store, ds, m, 'hard'))).toBe(0);
    expect(featherOf(undefined)).toBe(0);
    await expect(saveLibraryMask(store, ds, m, 'bad', -1)).rejects.toThrow(
      /featherSigma must be a number in \[0, 64\]/,
    );

    const img = await addImage(store, ds, 1);
    await saveRegionMask(store, ds, img, m, 4);
    expect(featherOf(await regionMaskOf(store, ds, img.id))).toBe(4);
    // Re-saving the region with σ 0 replaces the record: no stale σ.
    await saveRegionMask(store, ds, img, m, 0);
    expect(featherOf(await regionMaskOf(store, ds, img.id))).toBe(0);
    const other = await addImage(store, ds, 2, { width: 64, height: 32 });
    const applied = await applyMaskToImages(store, ds, m, [img, other], 1.5);
    expect(applied.map(featherOf)).toEqual([1.5, 1.5]);
    // A label mask never carries a generation feather.
    expect(featherOf({ ...back, kind: 'label' })).toBe(0);
  });

  it('adds seeded random Perlin regions', async () => {
    const { store, ds } = await fresh();
    const recs = await addRandomRegions(store, ds, 32, 16, 3, 'r');
    expect(recs).toHaveLength(3);
    const masks = await Promise.all(recs.map(readMask));
    for (const m of masks) expect(countOn(m)).toBeGreaterThan(0);
    expect(masks[0].data).not.toEqual(masks[1].data);
    const again = await addRandomRegions(store, ds, 32, 16, 1, 'r');
    expect((await readMask(again[0])).data).toEqual(masks[0].data);
    // They are randomPerlinMask's (MemSeg's rotated draw), named with the draw.
    const direct = randomPerlinMask(32, 16, {}, 'r:0');
    expect(masks[0].data).toEqual(direct.mask.data);
    expect(recs[0].name).toBe(
      `perlin ${direct.params.perlin_scale.join('×')} ${Math.round(direct.params.angle)}° (seed r:0, ${(100 * direct.params.coverage).toFixed(1)}%)`,
    );
    await expect(addRandomRegions(store, ds, 32, 16, 0, 'r')).rejects.toThrow(
      /count must be an integer in \[1, 100\]/,
    );
  });

  it('imports real defect label masks once; generated defects and normals are left out', async () => {
    const { store, ds } = await fresh();
    const label = square(32, 16, 2, 2, 4);
    await addImage(store, ds, 1, {
      label: 'defect',
      mask: { blob: maskBlob(label), width: 32, height: 16 },
    });
    await addImage(store, ds, 2);
    await addImage(store, ds, 3, {
      label: 'defect',
      mask: { blob: maskBlob(label), width: 32, height: 16 },
      provenance: { generator: 'memseg', parameters: {}, seed: 1, createdAt: 0 },
    });
    const first = await importDefectMasks(store, ds);
    expect(first.added.map((m) => m.name)).toEqual(['defect: img-1.png']);
    expect((await readMask(first.added[0])).data).toEqual(label.data);
    const second = await importDefectMasks(store, ds);
    expect(second.added).toHaveLength(0);
    expect(second.skipped).toBe(1);
  });
});

describe('accepting staged samples', () => {
  it('stores defect images with provenance and their exact mask, inside the region', async () => {
    const { store, ds } = await fresh();
    const src = tile(48, 40);
    const region = square(48, 40, 8, 8, 24);
    const staged = [11, 12, 13].map((seed) => {
      const r = memsegDefect(src, { region_mask: region }, seed);
      return {
        image: r.image,
        mask: r.mask,
        provenance: {
          generator: 'memseg',
          parameters: { p_texture: 0.5 },
          seed,
          sourceImageId: 'src-1',
          createdAt: 1,
        },
      };
    });
    const added = await acceptIntoStore(store, ds, staged);
    expect(added).toHaveLength(3);
    const counts = await store.countImages(ds);
    expect(counts.byLabel.defect).toBe(3);
    expect(counts.generated.memseg).toBe(3);
    for (const [i, rec] of added.entries()) {
      expect(rec.provenance?.seed).toBe(staged[i].provenance.seed);
      expect(rec.provenance?.sourceImageId).toBe('src-1');
      const mask = await readMask((await store.getMask(rec.maskId!))!);
      expect(mask.data).toEqual(staged[i].mask.data);
      expect(countOn(mask)).toBeGreaterThan(0);
      expect(pixelsOutside(mask, region)).toBe(0);
      const img = await decodeImage(new Uint8Array(await rec.blob.arrayBuffer()), rec.name);
      expect(img.raster.data).toEqual(staged[i].image.data);
      expect(rec.sha256).toBe(await sha256Hex(new Uint8Array(await rec.blob.arrayBuffer())));
    }
  });
});

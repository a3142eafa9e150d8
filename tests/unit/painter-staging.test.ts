import 'fake-indexeddb/auto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createRaster } from '../../src/core/image.ts';
import { countOn, pixelsOutside } from '../../src/core/mask/index.ts';
import { memsegDefect, MEMSEG_SCHEMA } from '../../src/core/synth/index.ts';
import { app, getStore } from '../../src/ui/state.svelte.ts';
import {
  acceptStaged,
  clearDecided,
  decideAtCursor,
  rejectStaged,
  stageSamples,
  staging,
} from '../../src/ui/generate/staging.svelte.ts';
import { readMask } from '../../src/ui/generate/library.ts';
import {
  NoTextureImagesError,
  formDefaults,
  generatorOptions,
  pickTextureImages,
  provenanceOptions,
  sampleIds,
  sampleProvenance,
  takesTextures,
  type TextureRef,
} from '../../src/ui/generate/plan.ts';
import { BLUR_SCHEMA } from '../../src/core/synth/index.ts';

function tile(w: number, h: number) {
  const img = createRaster(w, h, 1);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data[y * w + x] = 50 + ((x * 5 + y * 11) % 140);
  return img;
}
const region = (() => {
  const m = createRaster(40, 32, 1);
  for (let y = 6; y < 26; y++) for (let x = 8; x < 32; x++) m.data[y * 40 + x] = 255;
  return m;
})();

function stage(n: number) {
  const src = tile(40, 32);
  stageSamples(
    Array.from({ length: n }, (_, i) => {
      const r = memsegDefect(src, { region_mask: region }, 100 + i);
      return {
        image: r.image,
        mask: r.mask,
        provenance: sampleProvenance({
          generator: 'memseg',
          options: { p_texture: 0.5 },
          params: r.params,
          seed: 100 + i,
          batchSeed: 7,
          maskMode: 'painted',
          sourceImageId: 'src',
        }),
      };
    }),
  );
}

let datasetId = '';
beforeEach(async () => {
  staging.items = [];
  staging.cursor = 0;
  staging.saving = [];
  const store = await getStore();
  datasetId = (await store.createDataset({ name: `staging-${Math.random()}`, source: 'test' })).id;
  app.datasetId = datasetId;
});

describe('staging strip', () => {
  it('A/R act on the cursor and move to the next pending item; accepted samples land in the store', async () => {
    stage(8);
    expect(staging.items.every((s) => s.status === 'pending' && s.datasetId === datasetId)).toBe(true);
    const rev = app.revision;
    await decideAtCursor('accept');
    await decideAtCursor('accept');
    await decideAtCursor('reject');
    expect(staging.items.map((s) => s.status).slice(0, 4)).toEqual([
      'accepted',
      'accepted',
      'rejected',
      'pending',
    ]);
    expect(staging.cursor).toBe(3);
    // Decided by button out of order; the keyboard then skips what is no longer pending.
    await acceptStaged([staging.items[3].id, staging.items[4].id]);
    rejectStaged([staging.items[5].id]);
    await decideAtCursor('accept'); // cursor 3 is decided → acts on item 6
    await decideAtCursor('reject'); // → item 7
    expect(staging.items.map((s) => s.status)).toEqual([
      'accepted',
      'accepted',
      'rejected',
      'accepted',
      'accepted',
      'rejected',
      'accepted',
      'rejected',
    ]);
    expect(app.revision).toBeGreaterThan(rev);
    // Deciding twice does nothing.
    await acceptStaged([staging.items[2].id]);
    rejectStaged([staging.items[0].id]);
    expect(staging.items[2].status).toBe('rejected');
    expect(staging.items[0].status).toBe('accepted');

    const store = await getStore();
    const stored = await store.listImages(datasetId, { generator: 'memseg' });
    expect(stored).toHaveLength(5);
    const accepted = staging.items.filter((s) => s.status === 'accepted');
    expect(new Set(stored.map((s) => s.id))).toEqual(new Set(accepted.map((s) => s.imageId)));
    for (const rec of stored) {
      expect(rec.label).toBe('defect');
      expect(rec.provenance?.sourceImageId).toBe('src');
      expect((rec.provenance?.parameters as { batchSeed: number }).batchSeed).toBe(7);
      const m = await readMask((await store.getMask(rec.maskId!))!);
      expect(countOn(m)).toBeGreaterThan(0);
      expect(pixelsOutside(m, region)).toBe(0);
    }
    clearDecided();
    expect(staging.items).toHaveLength(0);
  });
});

describe('generation form helpers', () => {
  it('sampleIds: seeded, without replacement, independent of input order', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `id-${i}`);
    const a = sampleIds(ids, 5, 3);
    expect(a).toHaveLength(5);
    expect(new Set(a).size).toBe(5);
    expect(sampleIds([...ids].reverse(), 5, 3)).toEqual(a);
    expect(sampleIds(ids, 5, 4)).not.toEqual(a);
    expect(sampleIds(ids, 50, 3)).toHaveLength(20);
  });

  it('formDefaults: every editable option of the schema, masks and textures left to the pickers', () => {
    const d = formDefaults(MEMSEG_SCHEMA);
    expect(Object.keys(d)).not.toContain('region_mask');
    expect(Object.keys(d)).not.toContain('textures');
    expect(d.p_texture).toBe(0.5);
    expect(d.blend_factor).toEqual([0.15, 1]);
    // The defaults are valid options: the generator accepts them as they are.
    expect(() => memsegDefect(tile(40, 32), d, 1)).not.toThrow();
  });

  it('generatorOptions: only this generator’s keys, texture images in its images option', () => {
    const tex = [createRaster(5, 5, 3, 10), createRaster(7, 3, 1, 200)];
    // A value left over from another generator (blur's sigma) is dropped; an edited one is kept.
    const opts = generatorOptions(MEMSEG_SCHEMA, { p_texture: 1, sigma: [1, 2] }, tex);
    expect(opts.p_texture).toBe(1);
    expect(opts).not.toHaveProperty('sigma');
    expect(opts.textures).toEqual(tex);
    expect(opts.textures).not.toBe(tex); // a copy: the form's list is not handed over
    // No texture images: the option keeps its default (procedural textures).
    expect(generatorOptions(MEMSEG_SCHEMA, {})).not.toHaveProperty('textures');
    // A generator without an images option never gets one.
    expect(generatorOptions(BLUR_SCHEMA, {}, tex)).not.toHaveProperty('textures');
    expect(takesTextures(MEMSEG_SCHEMA)).toBe(true);
    expect(takesTextures(BLUR_SCHEMA)).toBe(false);
    // The result runs: every sample takes its source from the given images.
    const src = tile(40, 32);
    for (let seed = 0; seed < 6; seed++) {
      const r = memsegDefect(src, opts, seed);
      expect(r.params.source).toBe('texture');
      expect([0, 1]).toContain((r.params.texture as { image_index: number }).image_index);
    }
    // Provenance keeps the count, never the pixels.
    expect(provenanceOptions(MEMSEG_SCHEMA, opts).textures).toBe(2);
    expect(JSON.stringify(provenanceOptions(MEMSEG_SCHEMA, opts)).length).toBeLessThan(2000);
  });

  it('pickTextureImages: seeded, real non-source images only, a named error when none is left', () => {
    const imgs = [
      { id: 'a' },
      { id: 'b' },
      { id: 'c' },
      { id: 'd' },
      { id: 'g', provenance: { generator: 'memseg' } },
    ];
    const p = pickTextureImages(imgs, ['a'], 2, 9);
    expect(p).toHaveLength(2);
    for (const i of p) expect(['b', 'c', 'd']).toContain(i.id);
    expect(pickTextureImages([...imgs].reverse(), ['a'], 2, 9)).toEqual(p);
    // Drawn independently of the source draw with the same seed, and different seeds differ somewhere.
    const draws = new Set(
      Array.from({ length: 8 }, (_, s) => JSON.stringify(pickTextureImages(imgs, ['a'], 2, s))),
    );
    expect(draws.size).toBeGreaterThan(1);
    expect(
      pickTextureImages(imgs, ['a'], 10, 1)
        .map((i) => i.id)
        .sort(),
    ).toEqual(['b', 'c', 'd']);
    expect(() => pickTextureImages(imgs, ['a', 'b', 'c', 'd'], 2, 1)).toThrow(NoTextureImagesError);
    expect(() => pickTextureImages(imgs, ['a', 'b', 'c', 'd'], 2, 1)).toThrow(/— fix: import more images/);
    expect(() => pickTextureImages(imgs, [], 0, 1)).toThrow(/texture image count must be an integer/);
  });

  it('sampleProvenance records the texture source, the list and which texture the sample used', () => {
    const src = tile(40, 32);
    const refs: TextureRef[] = [
      { kind: 'dataset', imageId: 'img-7', name: 'seven.png' },
      { kind: 'dataset', imageId: 'img-9', name: 'nine.png' },
    ];
    const opts = generatorOptions(MEMSEG_SCHEMA, { p_texture: 1 }, [
      createRaster(4, 4, 1, 30),
      createRaster(4, 4, 1, 220),
    ]);
    const used = new Set<string>();
    for (let seed = 0; seed < 12; seed++) {
      const r = memsegDefect(src, opts, seed);
      const prov = sampleProvenance({
        generator: 'memseg',
        options: provenanceOptions(MEMSEG_SCHEMA, opts),
        params: r.params,
        seed,
        batchSeed: 1,
        maskMode: 'none',
        textureMode: 'dataset',
        textures: refs,
        featherSigma: 3,
      });
      const k = (r.params.texture as { image_index: number }).image_index;
      expect(prov.parameters.texture).toEqual(refs[k]);
      expect(prov.parameters.textureSource).toBe('dataset');
      expect(prov.parameters.textureImages).toEqual(refs);
      expect(prov.parameters.featherSigma).toBe(3);
      used.add((prov.parameters.texture as { imageId: string }).imageId);
      expect(structuredClone(prov)).toEqual(prov); // stored in IndexedDB
    }
    expect(used).toEqual(new Set(['img-7', 'img-9']));
    // Procedural textures: the kind is in the drawn params, no image is named.
    const proc = memsegDefect(src, { p_texture: 1 }, 1);
    const prov = sampleProvenance({
      generator: 'memseg',
      options: {},
      params: proc.params,
      seed: 1,
      batchSeed: 1,
      maskMode: 'none',
      textureMode: 'procedural',
      textures: [],
    });
    expect(prov.parameters.texture).toBeUndefined();
    expect(prov.parameters.textureSource).toBe('procedural');
    expect((prov.parameters.drawn as { texture: { kind: string } }).texture.kind).toBeTruthy();
    expect(prov.parameters).not.toHaveProperty('featherSigma');
  });
});

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
import { formDefaults, sampleIds, sampleProvenance } from '../../src/ui/generate/plan.ts';

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
});

import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import {
  generateSampleDataset,
  paintDefect,
  renderSurface,
  SURFACE_FAMILIES,
} from '../../src/core/sample-data/index.ts';
import { Rng } from '../../src/core/rng.ts';
import { sha256Hex } from '../../src/core/hash.ts';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import { ImportEngine } from '../../workers/import.engine.ts';

async function digest(images: ReturnType<typeof generateSampleDataset>): Promise<string> {
  const parts: string[] = [];
  for (const s of images) {
    parts.push(s.name, await sha256Hex(new Uint8Array(s.image.data.buffer)));
    if (s.mask) parts.push(await sha256Hex(new Uint8Array(s.mask.data.buffer)));
  }
  return sha256Hex(new TextEncoder().encode(parts.join('|')));
}

describe('procedural sample dataset', () => {
  it('has 3 families × (20 train normals + 8 test normals + 6 test defects) of 256² RGB', () => {
    const s = generateSampleDataset();
    expect(s.length).toBe(102);
    for (const f of SURFACE_FAMILIES) {
      const fam = s.filter((x) => x.family === f);
      expect(fam.filter((x) => x.label === 'normal' && x.split === 'train').length).toBe(20);
      expect(fam.filter((x) => x.label === 'normal' && x.split === 'test').length).toBe(8);
      const defects = fam.filter((x) => x.label === 'defect');
      expect(defects.length).toBe(6);
      expect(defects.every((d) => d.split === 'test' && d.mask)).toBe(true);
      expect(new Set(defects.map((d) => d.defectClass))).toEqual(new Set(['scratch', 'spot', 'crack']));
    }
    for (const x of s) expect([x.image.width, x.image.height, x.image.channels]).toEqual([256, 256, 3]);
    expect(new Set(s.map((x) => x.name)).size).toBe(102);
  });

  it('is deterministic: same seed → same pixels; another seed → different pixels', async () => {
    const opts = { size: 64, trainNormals: 2, testNormals: 1, defectsPerKind: 1 };
    const a = await digest(generateSampleDataset({ ...opts, seed: 7 }));
    const b = await digest(generateSampleDataset({ ...opts, seed: 7 }));
    const c = await digest(generateSampleDataset({ ...opts, seed: 8 }));
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    // Forked streams: dropping a family leaves the others' images unchanged.
    const all = generateSampleDataset({ ...opts, seed: 7 });
    const onlyTiles = generateSampleDataset({ ...opts, seed: 7, families: ['tiles'] });
    const tiles = all.filter((x) => x.family === 'tiles');
    expect(onlyTiles.map((x) => Array.from(x.image.data.slice(0, 64)))).toEqual(
      tiles.map((x) => Array.from(x.image.data.slice(0, 64))),
    );
  });

  it('normal images of a family vary (seeded variation, not copies)', () => {
    const s = generateSampleDataset({ size: 64, testNormals: 0, defectsPerKind: 0, trainNormals: 4 });
    for (const f of SURFACE_FAMILIES) {
      const fam = s.filter((x) => x.family === f);
      const keys = new Set(fam.map((x) => Array.from(x.image.data.slice(0, 300)).join(',')));
      expect(keys.size).toBe(4);
    }
  });

  it('defect masks are binary, non-empty, small, and mark exactly where the image changed visibly', () => {
    for (const family of SURFACE_FAMILIES)
      for (const kind of ['scratch', 'spot', 'crack'] as const)
        for (let seed = 0; seed < 5; seed++) {
          const rng = new Rng(`${family}-${kind}-${seed}`);
          const surface = renderSurface(family, 128, rng);
          const { image, mask } = paintDefect(surface, kind, rng);
          expect(mask.channels).toBe(1);
          let on = 0;
          let changedOutside = 0;
          let nonBinary = 0;
          let invisible = 0;
          for (let p = 0; p < 128 * 128; p++) {
            const v = mask.data[p];
            if (v !== 0 && v !== 255) nonBinary++;
            let diff = 0;
            for (let k = 0; k < 3; k++)
              diff = Math.max(diff, Math.abs(image.data[3 * p + k] - surface.data[3 * p + k]));
            if (v) {
              on++;
              // Alpha ≥ 0.5 towards a colour ≥ ~30 levels away: a visible change.
              if (diff <= 5) invisible++;
            } else if (diff > 0) changedOutside++;
          }
          expect(nonBinary).toBe(0);
          expect(invisible).toBe(0);
          expect(on).toBeGreaterThan(3);
          expect(on / (128 * 128)).toBeLessThan(0.2);
          // Outside the mask only the anti-aliased rim changes, a thin band around the defect.
          expect(changedOutside).toBeLessThan(on * 3 + 200);
        }
  });

  it('is stored through the import engine like any import, in well under the first-run budget', async () => {
    const store = await openStore(`sample-test-${process.pid}`);
    try {
      const engine = new ImportEngine(store);
      const t0 = performance.now();
      const { dataset, report } = await engine.createSampleDataset();
      const seconds = (performance.now() - t0) / 1000;
      expect(report.rejected).toEqual([]);
      expect(report.added).toBe(102);
      expect(dataset.source).toBe('sample');
      const c = await store.countImages(dataset.id);
      expect(c.byLabelSplit['normal/train']).toBe(60);
      expect(c.byLabelSplit['normal/test']).toBe(24);
      expect(c.byLabelSplit['defect/test']).toBe(18);
      expect(c.masks).toBe(18);
      const img = (await store.listImages(dataset.id, { label: 'defect' }))[0];
      expect([img.group, img.defectClass !== undefined]).toEqual([img.name.split('/')[0], true]);
      // Not a timing assertion on shared CI: a generous bound that catches an accidental 10× regression.
      expect(seconds).toBeLessThan(60);
    } finally {
      store.close();
      await deleteStore(`sample-test-${process.pid}`);
    }
  });
});

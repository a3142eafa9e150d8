/**
 * Real data, end to end (Node): MobileNetV2-int8 features of ../shared/data/magnetic-tile-compact (read in place),
 * (a) zero-shot BCE on normals + 100 MemSeg defects, (b) few-shot with the 10 real defects, (c) CSE (synthetic
 * defects made on the fly), and the k-NN / mean-distance baselines, each over 4 seeds, scored on the 100 test
 * images. The same run as `npm run experiment:mt` except for the CSE epochs (2 here, 10 there): about 90 s of
 * CPU time; the timeout is generous because the machine is shared.
 */
import { describe, expect, it } from 'vitest';
import { syntheticOnlyWarning } from '../../src/core/experiments/index.ts';
import { runRealData } from '../../server/realdata.ts';

describe('real magnetic-tile run (4 seeds)', () => {
  it('prints the table; few-shot BCE reaches mean AP ≥ 0.6', { timeout: 1_800_000 }, async () => {
    // PatchCore and the masked head have their own real-tile tests (patchcore-realdata, masked); CI time.
    const r = await runRealData({ seeds: [0, 1, 2, 3], cseEpochs: 2, skipPatchcore: true });
    const row = (prefix: string) => r.table.find((t) => t.label.startsWith(prefix));
    for (const p of ['(a)', '(b)', '(c)', 'baseline: k-NN', 'baseline: cosine distance to mean']) {
      expect(row(p), p).toBeDefined();
      expect(row(p)?.failed, `${p} failed cells`).toBe(0);
      expect(row(p)?.stats.ap.n).toBe(4);
    }
    // 100 test images scored in every cell.
    expect(r.cells.every((c) => c.scores?.length === 100)).toBe(true);
    // The bar for the few-shot row on real photos.
    expect(row('(b)')?.stats.ap.mean).toBeGreaterThanOrEqual(0.6);
    // Every row beats chance (AP of a random ranking = 50 defects / 100 images = 0.5) on real data.
    for (const t of r.table) expect(t.stats.auroc.mean, t.label).toBeGreaterThan(0.5);
    // Thresholds of (a) come from synthetic validation defects: labelled and warned.
    expect(row('(a)')?.thresholdSource).toBe('val:synthetic');
    const a = r.cells.find((c) => c.thresholdSource === 'val:synthetic')!;
    expect(a.warnings).toContain(syntheticOnlyWarning(a.metrics!.valAp, a.metrics!.ap));
    // Per-class metrics for the five magnetic-tile defect classes (10 test defects each), in the printed table.
    expect(Object.keys(row('(b)')?.perClass ?? {}).length).toBe(5);
    expect(row('(b)')?.perClass.MT_Crack?.n).toBe(10);
    expect(r.markdown).toMatch(/\| \(b\) few-shot/);
    expect(r.markdown).toMatch(/\| setting \| MT_Blowhole \(n = 10\) \|/);
    console.log(r.markdown);
  });
});

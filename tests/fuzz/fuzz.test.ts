/**
 * Issue #15 item 2: every entry point gets its generated malformed corpus (fixed seed, `corpus.ts`): 1,000 cases
 * each, 200 under `CI` (`corpusSize`). Required: zero crashes (every failure a named `DefectLabError` whose
 * message is `Name: problem — fix: …`, every import rejection with its fix), zero unhandled rejections or uncaught
 * exceptions (process-level handlers), and the store unchanged (digest of every record of every object store
 * before and after; importers add whole records to their target dataset only).
 *
 * Replay one case: `DL_FUZZ_ONLY=zip:417 npx vitest run tests/fuzz/fuzz.test.ts` (a failure prints `entry:index`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_POINTS, corpusSize, type EntryPoint } from './corpus.ts';
import { fuzzEntry, openFuzzContext, type EntryResult, type FuzzContext } from './entries.ts';

const N = corpusSize();
const only = process.env.DL_FUZZ_ONLY?.split(':');

let ctx: FuzzContext;
beforeAll(async () => {
  ctx = await openFuzzContext();
});
afterAll(async () => {
  await ctx?.close();
});

function report(r: EntryResult): string {
  return [
    `${r.entry}: ${r.cases} cases, ${r.accepted} accepted, ${r.rejected} rejected, ${r.crashes.length} crashes`,
    ...r.crashes.slice(0, 8),
    ...r.unhandled.slice(0, 4),
    ...r.storeProblems.slice(0, 8),
  ].join('\n');
}

/** What each corpus must reach, so a generator that stops producing malformed input is noticed. */
const MUST_REJECT_WITH: Partial<Record<EntryPoint, string[]>> = {
  image: ['ImportError'],
  zip: ['ImportError:zip-bomb', 'ImportError:path-traversal', 'ImportError:zip-corrupt'],
  folder: ['ImportError:path-traversal', 'ImportError:missing-file', 'ImportError:manifest-invalid'],
  mask: ['MaskDecodeError', 'ImportError:mask-size'],
  'model-manifest': ['ManifestError'],
  onnx: ['TruncatedModelError', 'LayoutMismatchError'],
  share: ['ShareLinkTruncatedError', 'ShareLinkChecksumError', 'ShareLinkVersionError', 'ShareSetupError'],
  grid: ['GridConfigError'],
  server: ['400', '404', '413', '415', '422'],
};

describe(`fuzzing every entry point (${N} cases each, seed in corpus.ts)`, () => {
  for (const entry of ENTRY_POINTS) {
    if (only && only[0] !== entry) continue;
    it(`${entry}: no crash, no unhandled rejection, store unchanged`, { timeout: 300_000 }, async () => {
      const r = await fuzzEntry(entry, N, ctx, only?.[1] !== undefined ? Number(only[1]) : undefined);
      expect(r.crashes, report(r)).toEqual([]);
      expect(r.unhandled, report(r)).toEqual([]);
      expect(r.storeProblems, report(r)).toEqual([]);
      expect(r.cases).toBe(only?.[1] !== undefined ? 1 : N);
      if (only?.[1] !== undefined) return;
      // The corpus is malformed: most cases must be refused, and by the errors the entry point is meant to raise.
      expect(r.rejected, report(r)).toBeGreaterThan(N / 2);
      // Small corpora (DL_FUZZ_N) need not reach every error.
      for (const code of N >= 200 ? (MUST_REJECT_WITH[entry] ?? []) : [])
        expect(
          Object.keys(r.byCode).some((k) => k === code || k.startsWith(`${code}:`)),
          `${entry} never rejected with ${code}: ${JSON.stringify(r.byCode)}`,
        ).toBe(true);
    });
  }
});

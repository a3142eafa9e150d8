/**
 * `npm run bench faults`: the full fuzz corpus of every entry point (issue #15 item 2; 1,000 cases each, or
 * `DL_FUZZ_N`), with the same runners and checks as `tests/fuzz/fuzz.test.ts`, printing per entry point the cases
 * fuzzed, how many were accepted (still usable input) and refused (named error with a fix), the crashes, the
 * unhandled rejections, whether the data stored before came back unchanged (store digest), and the errors that answered. These are
 * the figures of the README's reliability section. A crash, an unhandled rejection or a store change is reported
 * as `error` (so the bench exits 1) with the replayable `entry:index` of the first cases.
 *
 * The slowest case is given as a multiple of the median case of the same entry point in the same run (a
 * near-hang shows as a large ratio), never as seconds.
 */
// The fuzzed server runs experiment jobs, which train tfjs heads: Node needs the module hooks the server installs.
import '../server/register.ts';
import { ENTRY_POINTS, FUZZ_SEED } from '../tests/fuzz/corpus.ts';
import { fuzzEntry, openFuzzContext } from '../tests/fuzz/entries.ts';

export async function run(): Promise<Record<string, unknown>> {
  const n = process.env.DL_FUZZ_N ? Math.max(1, Number(process.env.DL_FUZZ_N) | 0) : 1000;
  const ctx = await openFuzzContext();
  const entries: Record<string, unknown> = {};
  let cases = 0;
  let crashes = 0;
  try {
    for (const entry of ENTRY_POINTS) {
      const r = await fuzzEntry(entry, n, ctx);
      cases += r.cases;
      crashes += r.crashes.length;
      const bad = [...r.crashes, ...r.unhandled, ...r.storeProblems];
      entries[entry] = {
        cases: r.cases,
        accepted: r.accepted,
        rejectedNamed: r.rejected,
        crashes: r.crashes.length,
        unhandledRejections: r.unhandled.length,
        // Nothing stored before changed or vanished, no half records; importers added whole records to their
        // target dataset only (`recordsAdded`), so their digest after differs by exactly those.
        storedDataUnchanged: r.storeProblems.length === 0,
        recordsAdded: r.recordsAdded,
        digestBefore: r.digestBefore.slice(0, 16),
        digestAfter: r.digestAfter.slice(0, 16),
        byError: r.byCode,
        slowestCase: {
          index: r.slowest.index,
          timesMedian: r.medianMs > 0 ? Number((r.slowest.ms / r.medianMs).toFixed(1)) : null,
        },
        ...(bad.length ? { error: bad.slice(0, 5).join(' | ') } : {}),
      };
      process.stderr.write(`bench faults: ${entry} ${r.cases} cases, ${r.crashes.length} crashes\n`);
    }
  } finally {
    await ctx.close();
  }
  return {
    seed: FUZZ_SEED,
    casesPerEntryPoint: n,
    entryPoints: ENTRY_POINTS.length,
    cases,
    crashes,
    entries,
  };
}

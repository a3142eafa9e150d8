// `npm run test:faults`: every check of issue #15, headless, in one command.
// 1. The fuzz suite (tests/fuzz): every entry point's seeded malformed corpus — 200 cases each when CI is set
//    (what `npm test` and .ci/run run), 1,000 otherwise; DL_FUZZ_N overrides — plus the regressions it found.
// 2. The Playwright fault specs in tests/e2e/faults (workers killed mid-job, device loss, reload mid-batch, two
//    tabs, quota, interrupted downloads), when that folder holds specs. They run against the production build in
//    DL_DIST (default dist), built first when it has no index.html.
// Each step runs even if an earlier one failed; the exit code is non-zero when any failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const ci = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0';
const n = process.env.DL_FUZZ_N ?? (ci ? '200' : '1000');
const dist = process.env.DL_DIST ?? 'dist';
const faultSpecs = 'tests/e2e/faults';

const hasSpecs = (dir) =>
  existsSync(dir) && readdirSync(dir, { recursive: true }).some((f) => String(f).endsWith('.spec.ts'));

const steps = [[`fuzz (${n} cases per entry point)`, 'npx vitest run tests/fuzz', { DL_FUZZ_N: n }]];
if (hasSpecs(faultSpecs)) {
  if (!existsSync(join(dist, 'index.html')))
    steps.push([`build ${dist}`, `npm run models:tiny && npx vite build --outDir ${dist}`, {}]);
  steps.push(['fault injection (Playwright)', `npx playwright test ${faultSpecs}`, {}]);
} else console.log(`test:faults: no specs in ${faultSpecs} yet; running the fuzz suite only`);

const failed = [];
for (const [name, cmd, env] of steps) {
  const t0 = Date.now();
  console.log(`\n=== ${name}: ${cmd}`);
  const r = spawnSync(cmd, { stdio: 'inherit', shell: true, env: { ...process.env, ...env } });
  const ok = r.status === 0;
  console.log(`=== ${name}: ${ok ? 'ok' : 'FAILED'} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (!ok) failed.push(name);
}
if (failed.length) console.log(`\ntest:faults failed: ${failed.join(', ')}`);
else console.log('\ntest:faults: all passed');
process.exit(failed.length ? 1 : 0);

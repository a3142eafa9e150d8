// `npm test`: everything CI runs, in order — static checks, unit tests, production build, browser tests.
// Each step runs even if an earlier one failed, so one report lists every problem; the exit code is non-zero
// when any step failed. It ends with the wall time of every step and the total (also written to
// .test-report/timings.json), a warning when the total passes 20 minutes, and "N passed, N failed" over all
// test cases as the last line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ensureDeps } from './ensure-deps.mjs';
import { failedTestLines } from './failed-tests.mjs';
import { ensureChromium } from './ensure-chromium.mjs';

const tStart = Date.now();
ensureDeps();
ensureChromium();
mkdirSync('.test-report', { recursive: true });
for (const f of ['.test-report/unit.json', '.test-report/e2e.json', '.test-report/timings.json'])
  rmSync(f, { force: true });

const steps = [
  ['tiny models', 'npm run models:tiny'],
  ['typecheck', 'npm run typecheck'],
  ['lint', 'npm run lint'],
  [
    'unit tests',
    'npx vitest run --reporter=default --reporter=json --outputFile.json=.test-report/unit.json',
  ],
  ['build', 'npx vite build'],
  ['browser tests', 'npx playwright test'],
];

// .ci/run must finish well inside 30 minutes on 2 cores; past this the report warns, so a slow step is noticed
// while there is still room.
const WARN_TOTAL_SECONDS = 20 * 60;
const timings = [];
const failed = [];
for (const [name, cmd] of steps) {
  const t0 = Date.now();
  console.log(`\n=== ${name}: ${cmd}`);
  const r = spawnSync(cmd, {
    stdio: 'inherit',
    shell: true,
    env: { ...process.env, CI: process.env.CI ?? 'true' },
  });
  const seconds = (Date.now() - t0) / 1000;
  console.log(`=== ${name}: ${r.status === 0 ? 'ok' : 'FAILED'} (${seconds.toFixed(0)} s)`);
  timings.push({ step: name, seconds: Math.round(seconds), ok: r.status === 0 });
  if (r.status !== 0) failed.push(name);
}
// Wall time from the start of the script: includes dependency and Chromium checks before the steps.
const totalSeconds = Math.round((Date.now() - tStart) / 1000);
const width = Math.max(...timings.map((t) => t.step.length));
console.log('\nWall time per step:');
for (const t of timings)
  console.log(`  ${t.step.padEnd(width)}  ${String(t.seconds).padStart(5)} s${t.ok ? '' : '  (failed)'}`);
console.log(
  `  ${'total'.padEnd(width)}  ${String(totalSeconds).padStart(5)} s (${(totalSeconds / 60).toFixed(1)} min)`,
);
if (totalSeconds > WARN_TOTAL_SECONDS)
  console.log(
    `WARNING: the tests took ${(totalSeconds / 60).toFixed(1)} min, over the ${WARN_TOTAL_SECONDS / 60} min warning line; ` +
      '.ci/run must finish well inside 30 min on 2 cores — fix: make the slowest step above faster (smaller ' +
      'fixtures, fewer browser round trips) before adding more.',
  );
writeFileSync(
  '.test-report/timings.json',
  JSON.stringify({ steps: timings, totalSeconds, warnAboveSeconds: WARN_TOTAL_SECONDS }, null, 2) + '\n',
);

let passed = 0;
let failures = 0;
let skipped = 0;
const readReport = (file) => (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null);
const unitReport = readReport('.test-report/unit.json');
const e2eReport = readReport('.test-report/e2e.json');
if (unitReport) {
  const u = unitReport;
  passed += u.numPassedTests ?? 0;
  failures += u.numFailedTests ?? 0;
  skipped += (u.numPendingTests ?? 0) + (u.numTodoTests ?? 0);
}
if (e2eReport) {
  const e = e2eReport;
  passed += e.stats?.expected ?? 0;
  failures += (e.stats?.unexpected ?? 0) + (e.stats?.flaky ?? 0);
  skipped += e.stats?.skipped ?? 0;
}
const failedTests = failedTestLines(unitReport, e2eReport);
if (failedTests.length) console.log(`\nFailed tests:\n${failedTests.map((t) => `  ${t}`).join('\n')}`);
if (failed.length) console.log(`\nFailed steps: ${failed.join(', ')}`);
console.log(
  `\n${passed} passed, ${failures + (failed.length && !failures ? 1 : 0)} failed${skipped ? `, ${skipped} skipped` : ''}`,
);
process.exit(failed.length ? 1 : 0);

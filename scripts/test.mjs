// `npm test`: everything CI runs, in order — static checks, unit tests, production build, browser tests.
// Each step runs even if an earlier one failed, so one report lists every problem; the exit code is non-zero
// when any step failed. The last line is "N passed, N failed" over all test cases.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { ensureDeps } from './ensure-deps.mjs';
import { ensureChromium } from './ensure-chromium.mjs';

ensureDeps();
ensureChromium();
mkdirSync('.test-report', { recursive: true });
for (const f of ['.test-report/unit.json', '.test-report/e2e.json']) rmSync(f, { force: true });

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

const failed = [];
for (const [name, cmd] of steps) {
  const t0 = Date.now();
  console.log(`\n=== ${name}: ${cmd}`);
  const r = spawnSync(cmd, {
    stdio: 'inherit',
    shell: true,
    env: { ...process.env, CI: process.env.CI ?? 'true' },
  });
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  console.log(`=== ${name}: ${r.status === 0 ? 'ok' : 'FAILED'} (${secs} s)`);
  if (r.status !== 0) failed.push(name);
}

let passed = 0;
let failures = 0;
let skipped = 0;
if (existsSync('.test-report/unit.json')) {
  const u = JSON.parse(readFileSync('.test-report/unit.json', 'utf8'));
  passed += u.numPassedTests ?? 0;
  failures += u.numFailedTests ?? 0;
  skipped += (u.numPendingTests ?? 0) + (u.numTodoTests ?? 0);
}
if (existsSync('.test-report/e2e.json')) {
  const e = JSON.parse(readFileSync('.test-report/e2e.json', 'utf8'));
  passed += e.stats?.expected ?? 0;
  failures += (e.stats?.unexpected ?? 0) + (e.stats?.flaky ?? 0);
  skipped += e.stats?.skipped ?? 0;
}
if (failed.length) console.log(`\nFailed steps: ${failed.join(', ')}`);
console.log(
  `\n${passed} passed, ${failures + (failed.length && !failures ? 1 : 0)} failed${skipped ? `, ${skipped} skipped` : ''}`,
);
process.exit(failed.length ? 1 : 0);

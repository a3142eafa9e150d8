// CI keeps only the log's tail, so `npm test` names each failing test again at the end with its error's first line.
import { relative } from 'node:path';

const firstLine = (msg) =>
  String(msg ?? '')
    // Reporters colour their messages; the escapes would garble the summary.
    // eslint-disable-next-line no-control-regex
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .find((l) => l.trim())
    ?.trim()
    .slice(0, 240) ?? '';

/** One line per failing test from vitest's and Playwright's JSON reports (either may be null). */
export function failedTestLines(unit, e2e, cwd = process.cwd()) {
  const out = [];
  for (const file of unit?.testResults ?? []) {
    const rel = relative(cwd, file.name ?? '');
    const asserts = file.assertionResults ?? [];
    for (const a of asserts)
      if (a.status === 'failed')
        out.push(`unit  ${rel} › ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
    if (file.status === 'failed' && !asserts.some((a) => a.status === 'failed'))
      out.push(`unit  ${rel}: ${firstLine(file.message)}`);
  }
  const walk = (suite) => {
    for (const spec of suite.specs ?? [])
      for (const t of spec.tests ?? [])
        if (t.status === 'unexpected' || t.status === 'flaky') {
          const err = (t.results ?? []).map((r) => r.error?.message).find(Boolean);
          out.push(`e2e   ${spec.file}:${spec.line} › ${spec.title} (${t.status}): ${firstLine(err)}`);
        }
    for (const child of suite.suites ?? []) walk(child);
  };
  for (const suite of e2e?.suites ?? []) walk(suite);
  return out;
}

/**
 * `npm run bench [topic…]`: runs every `bench/<topic>.ts` (each exports `run()`), or only the named topics, and
 * prints one JSON object `{ machine, results: { topic: … } }`. Figures are for this machine; compare runs on the
 * same machine only.
 *
 * Exits 1 when a topic failed: its `run()` threw, or its result holds a string `error` anywhere (a topic that
 * catches a part's failure to keep its other figures reports it that way). `skipped` with a reason is not a
 * failure. The JSON is printed either way, so the figures that did run are not lost.
 */
import { readdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = import.meta.dirname;
// A figure is only as good as the machine's quiet: the load average goes into the JSON at both ends.
const loadavgStart = loadavg();
const wanted = process.argv.slice(2);
const topics = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .filter((t) => wanted.length === 0 || wanted.includes(t))
  .sort();

/** Paths (`topic.part.error`) of every string `error` in a result. */
function errorsIn(value: unknown, path: string): string[] {
  if (!value || typeof value !== 'object') return [];
  const own =
    'error' in value && typeof (value as { error: unknown }).error === 'string'
      ? [`${path}: ${(value as { error: string }).error}`]
      : [];
  return [
    ...own,
    ...Object.entries(value).flatMap(([k, v]) => (k === 'error' ? [] : errorsIn(v, `${path}.${k}`))),
  ];
}

const results: Record<string, unknown> = {};
for (const t of wanted.filter((w) => !topics.includes(w)))
  results[t] = { error: `no bench/${t}.ts — fix: name one of the files in bench/ (without .ts)` };
for (const topic of topics) {
  const mod = (await import(pathToFileURL(resolve(dir, `${topic}.ts`)).href)) as {
    run: () => Promise<Record<string, unknown>>;
  };
  const t0 = performance.now();
  try {
    results[topic] = { ...(await mod.run()), benchSeconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    results[topic] = { error: e instanceof Error ? e.message : String(e) };
  }
  process.stderr.write(`bench: ${topic} done\n`);
}
const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memGiB: totalmem() / 2 ** 30,
  node: process.version,
  loadavgStart,
  loadavgEnd: loadavg(),
};
console.log(JSON.stringify({ machine, results }, null, 2));
const failures = Object.entries(results).flatMap(([t, r]) => errorsIn(r, t));
if (failures.length) {
  process.stderr.write(`bench: ${failures.length} failed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
  process.exitCode = 1;
}
// A bench that loaded tfjs-wasm (heads, patchcore) leaves handles that keep Node's event loop alive; exit once stdout
// has drained so `npm run bench` ends with its JSON instead of hanging.
process.stdout.write('', () => process.exit());

/**
 * `npm run bench [topic…]`: runs every `bench/<topic>.ts` (each exports `run()`), or only the named topics, and
 * prints one JSON object `{ machine, results: { topic: … } }`. Figures are for this machine; compare runs on the
 * same machine only.
 */
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = import.meta.dirname;
const wanted = process.argv.slice(2);
const topics = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .filter((t) => wanted.length === 0 || wanted.includes(t))
  .sort();

const results: Record<string, unknown> = {};
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
};
console.log(JSON.stringify({ machine, results }, null, 2));

/**
 * `npm run models -- <command>`: the bundle tool's command line.
 *
 *   npm run models -- inspect <model.onnx | export-dir> [--json]
 *   npm run models -- prepare <export-dir | model.onnx> --out <bundle-dir> [--fp16] [--quantize int4|int8]
 *       [--block 32] [--keep-io fp32] [--max-part 1GB] [--id <id>] [--name <name>] [--vae-fp16-fix]
 *       [--server-path <folder under /models/>] [--hub owner/name] [--json]
 *   npm run models -- verify <bundle-dir> [--json]
 *
 * Exit codes: 0 done, 1 a named failure (message with its fix on stderr), 2 a usage error.
 */
import { resolve } from 'node:path';
import { DefectLabError } from '../../src/core/errors.ts';
import { UsageError } from './errors.ts';
import { formatInspect, inspect } from './inspect.ts';
import { prepare, type PrepareOptions } from './prepare.ts';
import { verify } from './verify.ts';
import { formatBytes } from './writer.ts';

const BOOL_FLAGS = new Set(['fp16', 'json', 'vae-fp16-fix']);
const VALUE_FLAGS = new Set([
  'out',
  'quantize',
  'block',
  'keep-io',
  'max-part',
  'id',
  'name',
  'server-path',
  'hub',
]);

export function parseArgs(argv: readonly string[]): {
  command: string;
  positional: string[];
  flags: Record<string, string | true>;
} {
  const [command = 'help', ...rest] = argv;
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [k, inline] = a.slice(2).split('=', 2);
    if (BOOL_FLAGS.has(k)) flags[k] = true;
    else if (VALUE_FLAGS.has(k)) {
      const v = inline ?? rest[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`--${k} needs a value`);
      flags[k] = v;
    } else throw new UsageError(`unknown flag --${k}`);
  }
  return { command, positional, flags };
}

/** "1GB", "512MB", "64MiB", "1000000" → bytes (KB/MB/GB decimal, KiB/MiB/GiB binary). */
export function parseSize(s: string, flag = '--max-part'): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`${flag} ${s}: expected a size such as 1GB, 512MB or 64MiB`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mul: Record<string, number> = {
    b: 1,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
  };
  return Math.round(Number(m[1]) * mul[unit]);
}

export function prepareOptions(flags: Record<string, string | true>): PrepareOptions {
  const str = (k: string) => (typeof flags[k] === 'string' ? (flags[k] as string) : undefined);
  const q = str('quantize');
  if (q !== undefined && q !== 'int4' && q !== 'int8')
    throw new UsageError(`--quantize ${q}: expected int4 or int8`);
  const keepIo = str('keep-io');
  if (keepIo !== undefined && keepIo !== 'fp32') throw new UsageError(`--keep-io ${keepIo}: expected fp32`);
  const block = str('block');
  if (block !== undefined && (!/^\d+$/.test(block) || q !== 'int4'))
    throw new UsageError(`--block ${block}: expected a number, and only with --quantize int4`);
  return {
    out: str('out') ?? '',
    fp16: flags.fp16 === true,
    quantize: q as PrepareOptions['quantize'],
    block: block ? Number(block) : undefined,
    keepIo: keepIo as PrepareOptions['keepIo'],
    maxPart: str('max-part') ? parseSize(str('max-part')!) : undefined,
    id: str('id'),
    name: str('name'),
    vaeFp16Fix: flags['vae-fp16-fix'] === true,
    serverPath: str('server-path'),
    hub: str('hub'),
  };
}

const HELP = `usage: npm run models -- <command>
  inspect <model.onnx | export-dir> [--json]
  prepare <export-dir | model.onnx> --out <bundle-dir> [--fp16] [--quantize int4|int8] [--block 32]
          [--keep-io fp32] [--max-part 1GB] [--id ID] [--name NAME] [--vae-fp16-fix] [--server-path DIR]
          [--hub owner/name] [--json]
  verify <bundle-dir> [--json]
docs/models.md has the recipes per tier.`;

export async function main(
  argv: readonly string[],
  log = (s: string) => process.stdout.write(s + '\n'),
): Promise<number> {
  const { command, positional, flags } = parseArgs(argv);
  const json = flags.json === true;
  const need = (what: string) => {
    if (!positional[0]) throw new UsageError(`${command} needs ${what}`);
    return positional[0];
  };
  switch (command) {
    case 'inspect': {
      const r = await inspect(need('a model.onnx or an export folder'));
      log(json ? JSON.stringify(r, null, 2) : formatInspect(r));
      return 0;
    }
    case 'prepare': {
      const r = await prepare(need('an export folder or a model.onnx'), prepareOptions(flags));
      if (json) log(JSON.stringify(r, null, 2));
      else {
        log(
          `wrote ${r.out} (${r.files.length} files, weights ${formatBytes(r.bytesIn)} → graphs and parts ${formatBytes(r.bytesOut)}, largest part ${formatBytes(r.largestPart)}) in ${r.seconds.toFixed(1)} s, peak RSS ${formatBytes(r.peakRss)}`,
        );
        for (const [c, n] of Object.entries(r.notes)) log(`  ${c}: ${n}`);
        log(`next: npm run models -- verify ${r.out}`);
      }
      return 0;
    }
    case 'verify': {
      const r = await verify(resolve(need('a bundle folder')));
      if (json) log(JSON.stringify(r, null, 2));
      else {
        log(`${r.id}: ${r.files} files (${formatBytes(r.bytes)}) match their sha256`);
        for (const [c, v] of Object.entries(r.components))
          log(
            `  ${c}: loads on ${v.backend}, tiny run finite (${v.outputs.length} outputs, ${v.ms.toFixed(0)} ms)`,
          );
      }
      return 0;
    }
    case 'help':
    case '--help':
      log(HELP);
      return 0;
    default:
      throw new UsageError(`unknown command ${command} (inspect, prepare, verify)`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof UsageError ? 2 : e instanceof DefectLabError ? 1 : 1;
    if (!(e instanceof DefectLabError) && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
  }
}

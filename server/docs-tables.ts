/**
 * `npm run docs:tables`: the result tables in README.md and docs/*.md are written by the code, never by hand.
 * Each generated block sits between marker comments naming a committed run and a part of its Markdown:
 *
 *   <!-- results:mt:main:begin -->      (parts: main = provenance + table + warnings, per-class, or none = all)
 *   <!-- prettier-ignore-start -->
 *   …renderResult(docs/runs/mt/result.json, 'main')…
 *   <!-- prettier-ignore-end -->
 *   <!-- results:mt:main:end -->
 *
 *   npm run docs:tables                                    rewrite every block from docs/runs/NAME/result.json
 *   npm run docs:tables -- --check                         exit 1 naming each stale block (the unit test does this)
 *   npm run docs:tables -- --run mt --from DIR/result.json  first copy a new run's result.json to docs/runs/mt/
 *
 * The prettier-ignore pair keeps `npm run format` from re-padding the tables, which would break the byte-for-byte
 * comparison in tests/unit/docs-tables.test.ts.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DefectLabError } from '../src/core/errors.ts';
import {
  parseResultFile,
  renderResult,
  RESULT_PARTS,
  type ResultFile,
  type ResultPart,
} from '../src/core/experiments/index.ts';

/** The repository root (this file is server/docs-tables.ts). */
export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
/** Committed runs: docs/runs/NAME/result.json. */
export const RUNS_DIR = 'docs/runs';

/** A marker problem in a doc: names the file, the line and what to write instead. */
export class DocBlockError extends DefectLabError {
  constructor(file: string, line: number, problem: string, fix: string) {
    super('DocBlockError', `${file}:${line}: ${problem}`, fix);
  }
}

export interface DocBlock {
  /** Run name: its result.json is docs/runs/NAME/result.json. */
  run: string;
  part: ResultPart;
  /** 1-based line of the begin marker. */
  line: number;
  /** Offsets of the text between the begin marker's line and the end marker. */
  start: number;
  end: number;
  body: string;
}

const MARKER = /<!-- results:([a-z0-9-]+)(?::([a-z-]+))?:(begin|end) -->/g;

/** The generated blocks of one Markdown file, in order. Unpaired or nested markers throw with the line. */
export function findBlocks(text: string, file: string): DocBlock[] {
  const lineOf = (i: number) => text.slice(0, i).split('\n').length;
  const blocks: DocBlock[] = [];
  let open: { run: string; part: ResultPart; line: number; start: number; tag: string } | undefined;
  for (const m of text.matchAll(MARKER)) {
    const [tag, run, partName, kind] = m;
    const at = m.index;
    const part = (partName ?? 'all') as ResultPart;
    if (partName !== undefined && (partName === 'all' || !RESULT_PARTS.includes(part)))
      throw new DocBlockError(
        file,
        lineOf(at),
        `unknown part "${partName}" in ${tag}`,
        `use one of ${RESULT_PARTS.filter((p) => p !== 'all').join(', ')}, or no part for the whole run`,
      );
    if (kind === 'begin') {
      if (open)
        throw new DocBlockError(
          file,
          lineOf(at),
          `${tag} opens inside the block begun on line ${open.line}`,
          `close that block first with ${open.tag.replace(':begin', ':end')}`,
        );
      const eol = text.indexOf('\n', at);
      open = { run, part, line: lineOf(at), start: eol < 0 ? text.length : eol + 1, tag };
    } else {
      if (!open || open.run !== run || open.part !== part)
        throw new DocBlockError(
          file,
          lineOf(at),
          `${tag} closes no open block${open ? ` (line ${open.line} opened ${open.tag})` : ''}`,
          'pair every <!-- results:NAME[:PART]:begin --> with the same NAME[:PART]:end marker',
        );
      blocks.push({
        run,
        part,
        line: open.line,
        start: open.start,
        end: at,
        body: text.slice(open.start, at),
      });
      open = undefined;
    }
  }
  if (open)
    throw new DocBlockError(
      file,
      open.line,
      `${open.tag} is never closed`,
      `add ${open.tag.replace(':begin', ':end')} after the block`,
    );
  return blocks;
}

/** What goes between the markers: the rendered Markdown, fenced off from prettier. */
export function blockBody(markdown: string): string {
  return `<!-- prettier-ignore-start -->\n\n${markdown}\n\n<!-- prettier-ignore-end -->\n`;
}

/** The file's text with every block re-rendered from `load(run)`; also the blocks whose text changed. */
export function rewriteBlocks(
  text: string,
  file: string,
  load: (run: string, block: DocBlock) => ResultFile,
): { text: string; stale: DocBlock[] } {
  const blocks = findBlocks(text, file);
  const stale: DocBlock[] = [];
  let out = '';
  let pos = 0;
  for (const b of blocks) {
    const body = blockBody(renderResult(load(b.run, b), b.part));
    if (body !== b.body) stale.push(b);
    out += text.slice(pos, b.start) + body;
    pos = b.end;
  }
  return { text: out + text.slice(pos), stale };
}

/** README.md and every docs/*.md, relative to `root`. */
export function docFiles(root = ROOT): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

/** Loads docs/runs/NAME/result.json under `root`, once per run; a missing run names the doc that wants it. */
export function runLoader(root = ROOT): (run: string, block: DocBlock, file: string) => ResultFile {
  const cache = new Map<string, ResultFile>();
  return (run, block, file) => {
    const hit = cache.get(run);
    if (hit) return hit;
    const path = join(RUNS_DIR, run, 'result.json');
    if (!existsSync(join(root, path)))
      throw new DocBlockError(
        file,
        block.line,
        `block "${run}" has no committed run (${path} is missing)`,
        `run npm run experiment:mt -- --out DIR, then npm run docs:tables -- --run ${run} --from DIR/result.json`,
      );
    const r = parseResultFile(readFileSync(join(root, path), 'utf8'), path);
    cache.set(run, r);
    return r;
  };
}

/** Rewrites (or, with `check`, only compares) every doc's blocks; returns "file:line run:part" of stale blocks. */
export function updateDocs(root = ROOT, check = false): { files: string[]; stale: string[] } {
  const load = runLoader(root);
  const stale: string[] = [];
  const files = docFiles(root);
  for (const file of files) {
    const path = join(root, file);
    const text = readFileSync(path, 'utf8');
    const r = rewriteBlocks(text, file, (run, b) => load(run, b, file));
    for (const b of r.stale) stale.push(`${file}:${b.line} ${b.run}:${b.part}`);
    if (!check && r.text !== text) writeFileSync(path, r.text);
  }
  return { files, stale };
}

export function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      check: { type: 'boolean', default: false },
      run: { type: 'string' },
      from: { type: 'string' },
    },
  });
  if ((values.run === undefined) !== (values.from === undefined)) {
    console.error(
      'DocBlockError: --run and --from go together — fix: npm run docs:tables -- --run mt --from DIR/result.json',
    );
    return 2;
  }
  if (values.run !== undefined && values.from !== undefined) {
    if (!/^[a-z0-9-]+$/.test(values.run)) {
      console.error(
        `DocBlockError: --run ${values.run}: not a run name — fix: use lower-case letters, digits and dashes (e.g. mt)`,
      );
      return 2;
    }
    // Parse before copying: a broken file must not replace a good committed run.
    parseResultFile(readFileSync(values.from, 'utf8'), values.from);
    const dest = join(ROOT, RUNS_DIR, values.run, 'result.json');
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(values.from, dest);
    console.error(`copied ${values.from} to ${relative(ROOT, dest)}`);
  }
  const { files, stale } = updateDocs(ROOT, values.check);
  if (values.check) {
    for (const s of stale) console.error(`stale: ${s}`);
    if (stale.length) {
      console.error('DocBlockError: generated blocks differ from their runs — fix: npm run docs:tables');
      return 1;
    }
    console.error(`${files.length} docs checked: every generated block matches its run`);
    return 0;
  }
  console.error(`${stale.length} block(s) rewritten; ${files.length} docs read (${files.join(', ')})`);
  return 0;
}

if (process.argv[1]?.endsWith('server/docs-tables.ts')) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  }
}

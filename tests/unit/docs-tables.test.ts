/**
 * The docs show only what the code prints: every `<!-- results:NAME[:PART]:begin/end -->` block in README.md and
 * docs/*.md must equal `renderResult` of the committed run docs/runs/NAME/result.json byte for byte, so a hand
 * edit of a table fails here. The committed table is also checked against its own cells by a brute-force mean
 * and sample std written below (not `meanStd`), and the prose around the blocks may quote no result number the
 * blocks do not contain. The CLI's `--out` is run on a tiny folder to show that its table.md is the same render.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  blockBody,
  docFiles,
  DocBlockError,
  findBlocks,
  rewriteBlocks,
  ROOT,
  runLoader,
  updateDocs,
} from '../../server/docs-tables.ts';
import { main as cli } from '../../server/cli.ts';
import {
  aggregate,
  parseResultFile,
  renderResult,
  ResultFileError,
  type CellResult,
  type ResultFile,
} from '../../src/core/experiments/index.ts';
import { createRaster } from '../../src/core/image.ts';
import { encodePng } from '../../src/runtime/decode.ts';

const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const committed = (run: string): ResultFile =>
  parseResultFile(read(`docs/runs/${run}/result.json`), `docs/runs/${run}/result.json`);

/** Table lines of a Markdown text (header and separator dropped), split into trimmed cells. */
function tableRows(md: string): string[][] {
  return md
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| setting |') && !/^\|( --- \|)+$/.test(l))
    .map((l) => l.slice(2, -2).split(' | '));
}

/** mean ± sample std (n − 1) the long way, to three decimals as the tables print them. */
function bruteStat(values: number[], digits: number): string {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return '—';
  let sum = 0;
  for (const x of v) sum += x;
  const mean = sum / v.length;
  if (v.length === 1) return mean.toFixed(digits);
  let ss = 0;
  for (const x of v) ss += (x - mean) * (x - mean);
  return `${mean.toFixed(digits)} ± ${Math.sqrt(ss / (v.length - 1)).toFixed(digits)}`;
}

describe('generated doc blocks', () => {
  it('README.md and docs/results.md embed the committed run unchanged', () => {
    const blocks = (f: string) => findBlocks(read(f), f).map((b) => `${b.run}:${b.part}`);
    expect(blocks('README.md')).toEqual(['mt:main']);
    expect(blocks('docs/results.md')).toEqual(['mt:main', 'mt:per-class']);
    const r = committed('mt');
    for (const f of ['README.md', 'docs/results.md'])
      for (const b of findBlocks(read(f), f))
        expect(b.body, `${f}:${b.line}`).toBe(blockBody(renderResult(r, b.part)));
    // The same comparison over every doc, as `npm run docs:tables -- --check` makes it.
    expect(updateDocs(ROOT, true).stale).toEqual([]);
    expect(docFiles()).toEqual(expect.arrayContaining(['README.md', 'docs/results.md']));
  });

  it('a hand-edited number in a block is reported stale and rewritten back', () => {
    const text = read('docs/results.md');
    const r = committed('mt');
    const ap = r.table[0].stats.ap.mean.toFixed(3);
    const edited = text.replace(`| ${r.table[0].label} | 4 | ${ap}`, `| ${r.table[0].label} | 4 | 0.999`);
    expect(edited).not.toBe(text);
    const load = runLoader();
    const out = rewriteBlocks(edited, 'docs/results.md', (run, b) => load(run, b, 'docs/results.md'));
    expect(out.stale.map((b) => b.part)).toEqual(['main']);
    expect(out.text).toBe(text);
  });

  it('the committed table is the aggregate of its cells (brute-force mean ± sample std)', () => {
    const r = committed('mt');
    const again = aggregate(r.cells);
    expect(again.length).toBe(r.table.length);
    const rows = tableRows(renderResult(r, 'main'));
    const metrics = ['ap', 'auroc', 'f1', 'mcc', 'fpr', 'valAp'] as const;
    expect(rows.length).toBe(r.table.length);
    r.table.forEach((row, i) => {
      // aggregate groups in first-appearance order: the i-th group is the i-th committed row.
      const cells = r.cells.filter((c) => sameRow(c, again[i]));
      expect(cells.length, row.label).toBe(row.seeds.length);
      expect(rows[i][0]).toBe(row.label);
      expect(rows[i][1]).toBe(String(cells.filter((c) => c.status === 'done').length));
      metrics.forEach((m, j) =>
        expect(rows[i][2 + j], `${row.label} ${m}`).toBe(
          bruteStat(
            cells.map((c) => c.metrics?.[m] ?? NaN),
            3,
          ),
        ),
      );
    });
  });

  it('docs/results.md per-class table: every row carries its own per-class AP, AUROC and recall', () => {
    const f = 'docs/results.md';
    const text = read(f);
    const block = findBlocks(text, f).find((b) => b.part === 'per-class');
    expect(block).toBeDefined();
    const r = committed('mt');
    const header = block!.body.split('\n').find((l) => l.startsWith('| setting'))!;
    const classes = header
      .slice(2, -2)
      .split(' | ')
      .slice(1)
      .map((h) => /^(\S+) \(n = (\d+)\)$/.exec(h));
    expect(classes.map((m) => m?.[1])).toEqual([
      'MT_Blowhole',
      'MT_Break',
      'MT_Crack',
      'MT_Fray',
      'MT_Uneven',
    ]);
    for (const m of classes) expect(m?.[2]).toBe('10');
    const rows = tableRows(block!.body);
    expect(rows.map((row) => row[0])).toEqual(r.table.map((t) => t.label));
    const main = tableRows(findBlocks(text, f).find((b) => b.part === 'main')!.body);
    rows.forEach((row, i) => {
      const cells = r.cells.filter((c) => sameRow(c, r.table[i]));
      expect(row.length).toBe(1 + classes.length);
      classes.forEach((m, j) => {
        const k = m![1];
        const per = (key: 'ap' | 'auroc' | 'recall') => cells.map((c) => c.perClass?.[k]?.[key] ?? NaN);
        expect(row[1 + j], `${row[0]} ${k}`).toBe(
          `AP ${bruteStat(per('ap'), 3)} · AUROC ${bruteStat(per('auroc'), 3)} · R ${bruteStat(per('recall'), 2)}`,
        );
        // The hand-edited table put the main table's AP/AUROC/F1 under class headers.
        for (const v of main[i].slice(2)) expect(row[1 + j]).not.toBe(v);
      });
    });
  });

  it('prose outside the blocks quotes no result number the blocks do not print', () => {
    // Decimals standing alone: "Apache-2.0" or "v20.20.2" are names, not results.
    const decimals = (s: string) => s.match(/(?<![\w.-])\d+\.\d+(?![\w.])/g) ?? [];
    for (const f of ['README.md', 'docs/results.md']) {
      const text = read(f);
      const blocks = findBlocks(text, f);
      const inBlocks = new Set(blocks.flatMap((b) => decimals(b.body)));
      let prose = '';
      let pos = 0;
      for (const b of blocks) {
        prose += text.slice(pos, b.start);
        pos = b.end;
      }
      prose += text.slice(pos);
      // Code fences hold commands (versions, paths), not results.
      prose = prose.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
      const foreign = decimals(prose).filter((d) => !inBlocks.has(d));
      expect(foreign, f).toEqual([]);
    }
  });

  it('bad markers and missing runs name the file, the line and the fix', () => {
    expect(() => findBlocks('a\n<!-- results:mt:main:begin -->\nx\n', 'X.md')).toThrow(
      /DocBlockError: X\.md:2: <!-- results:mt:main:begin --> is never closed — fix: add <!-- results:mt:main:end -->/,
    );
    expect(() =>
      findBlocks('<!-- results:mt:table:begin -->\n<!-- results:mt:table:end -->', 'X.md'),
    ).toThrow(/X\.md:1: unknown part "table".*fix: use one of main, per-class/);
    expect(() => findBlocks('<!-- results:mt:begin -->\n<!-- results:mt:main:end -->', 'X.md')).toThrow(
      DocBlockError,
    );
    const load = runLoader(mkdtempSync(join(tmpdir(), 'dl-docs-none-')));
    expect(() =>
      rewriteBlocks('<!-- results:nope:begin -->\n<!-- results:nope:end -->\n', 'R.md', (run, b) =>
        load(run, b, 'R.md'),
      ),
    ).toThrow(
      /R\.md:1: block "nope" has no committed run \(docs\/runs\/nope\/result\.json is missing\) — fix:/,
    );
    expect(() => parseResultFile('{"table": []}', 'r.json')).toThrow(ResultFileError);
    expect(() => parseResultFile('{"table": []}', 'r.json')).toThrow(/r\.json: "cells" is missing/);
    expect(() => parseResultFile('nope', 'r.json')).toThrow(/r\.json: not JSON/);
  });

  it(
    'CLI --out writes table.md = the render of its result.json, and docs:tables puts it into a doc',
    { timeout: 300_000 },
    async () => {
      const data = tinyFolder();
      const dir = mkdtempSync(join(tmpdir(), 'dl-docs-cli-'));
      const grid = join(dir, 'grid.json');
      writeFileSync(
        grid,
        JSON.stringify({
          data,
          backbone: join(ROOT, 'models/tiny/tiny-resnet/model.onnx'),
          generators: ['memseg'],
          nAug: [4],
          seeds: [0, 1],
          heads: ['bce'],
          epochs: 2,
        }),
      );
      const out = join(dir, 'out');
      const [log, error] = [console.log, console.error];
      console.log = () => {};
      console.error = () => {};
      let code: number;
      try {
        code = await cli(['experiment', '--config', grid, '--out', out, '--device', 'cpu']);
      } finally {
        console.log = log;
        console.error = error;
      }
      expect(code).toBe(0);
      const json = readFileSync(join(out, 'result.json'), 'utf8');
      const r = parseResultFile(json, 'result.json');
      expect(r.config).toBe(grid);
      expect(r.machine).toMatch(/CPU cores.*Node v/);
      const md = readFileSync(join(out, 'table.md'), 'utf8');
      expect(md).toBe(`${renderResult(r)}\n`);
      expect(md).toMatch(/\| setting \| scratch \(n = 2\) \|/);
      // A doc in a scratch repository: the block is filled from the run, then found current.
      const repo = mkdtempSync(join(tmpdir(), 'dl-docs-repo-'));
      mkdirSync(join(repo, 'docs/runs/tiny'), { recursive: true });
      cpSync(join(out, 'result.json'), join(repo, 'docs/runs/tiny/result.json'));
      writeFileSync(
        join(repo, 'README.md'),
        '# x\n\n<!-- results:tiny:begin -->\nhand-written\n<!-- results:tiny:end -->\n',
      );
      expect(updateDocs(repo, true).stale).toEqual(['README.md:3 tiny:all']);
      updateDocs(repo);
      expect(readFileSync(join(repo, 'README.md'), 'utf8')).toBe(
        `# x\n\n<!-- results:tiny:begin -->\n${blockBody(md.trimEnd())}<!-- results:tiny:end -->\n`,
      );
      expect(updateDocs(repo, true).stale).toEqual([]);
    },
  );
});

function sameRow(
  c: CellResult,
  row: { generator: string; nAug: number; head: string; fewShot: boolean },
): boolean {
  return (
    c.config.generator === row.generator &&
    c.config.nAug === row.nAug &&
    c.config.head === row.head &&
    c.config.fewShot === row.fewShot
  );
}

/** An MVTec-layout folder: train/good, test/good, test/scratch with masks (2 scratches, as small as it gets). */
function tinyFolder(): string {
  const root = mkdtempSync(join(tmpdir(), 'dl-docs-mvtec-'));
  for (const d of ['train/good', 'test/good', 'test/scratch', 'ground_truth/scratch'])
    mkdirSync(join(root, d), { recursive: true });
  const tile = (seed: number, scratch: boolean) => {
    const img = createRaster(32, 32, 3, 0);
    for (let i = 0; i < img.data.length; i++) img.data[i] = 80 + ((i * 7 + seed * 31) % 60);
    const mask = createRaster(32, 32, 1, 0);
    if (scratch)
      for (let x = 4; x < 28; x++) {
        const p = (10 + (seed % 8)) * 32 + x;
        mask.data[p] = 255;
        for (let ch = 0; ch < 3; ch++) img.data[p * 3 + ch] = 250;
      }
    return { img, mask };
  };
  for (let i = 0; i < 10; i++)
    writeFileSync(join(root, `train/good/${i}.png`), encodePng(tile(i, false).img));
  for (let i = 0; i < 4; i++)
    writeFileSync(join(root, `test/good/${i}.png`), encodePng(tile(50 + i, false).img));
  for (let i = 0; i < 2; i++) {
    const t = tile(80 + i, true);
    writeFileSync(join(root, `test/scratch/${i}.png`), encodePng(t.img));
    writeFileSync(join(root, `ground_truth/scratch/${i}_mask.png`), encodePng(t.mask));
  }
  return root;
}

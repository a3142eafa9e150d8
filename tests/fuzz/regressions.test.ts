/**
 * Failures the fuzzer found (issue #15 item 2), kept as cases by their corpus index so they replay exactly, each
 * checked against the named error that now answers it. Each of these failed on the code before its fix.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGridConfigText } from '../../src/core/experiments/config.ts';
import { ImportError } from '../../src/core/import/errors.ts';
import { unzipArchive } from '../../src/core/import/zip.ts';
import { decodeImage } from '../../src/runtime/decode.ts';
import { checkGraph } from '../../src/runtime/models/manager.ts';
import { TruncatedModelError } from '../../src/runtime/models/onnx-inspect.ts';
import { ManifestError, parseManifestText } from '../../src/runtime/models/manifest.ts';
import { readManifest } from '../../server/node-engine.ts';
import { caseAt } from './corpus.ts';
import { namedErrorProblem, openFuzzContext, type FuzzContext } from './entries.ts';

let ctx: FuzzContext;
beforeAll(async () => {
  ctx = await openFuzzContext();
});
afterAll(async () => {
  await ctx?.close();
});

describe('regressions found by the fuzzer', () => {
  it('image:324, image:722 — a BMP with a negative width is a corrupt ImportError, not InvalidArgumentError', async () => {
    for (const i of [324, 722]) {
      const c = caseAt('image', i);
      expect(c.what).toMatch(/^bmp .*BMP u32 at 18 = -\d+$/);
      const e = await decodeImage(c.input.bytes, c.input.name).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(ImportError);
      expect((e as ImportError).kind).toBe('corrupt');
      expect((e as ImportError).message).toContain(c.input.name);
      expect(namedErrorProblem(e)).toBeNull();
    }
  });

  it('zip:2, 23, 66, 114 — a damaged end record or central directory is refused by name, not imported as nothing', async () => {
    for (const i of [2, 23, 66, 114]) {
      const c = caseAt('zip', i);
      expect(() => unzipArchive(c.input.bytes, c.input.name), c.what).toThrow(
        /zip-corrupt|damaged zip archive/,
      );
      const r = await ctx.engine.importFiles(ctx.targetId, { zip: c.input.bytes, name: c.input.name });
      expect(r.added, c.what).toBe(0);
      expect(
        r.rejected.map((x) => x.kind),
        c.what,
      ).toEqual(['zip-corrupt']);
      expect(r.rejected[0].message).toMatch(
        /^ImportError: fuzz-\d+\.zip: damaged zip archive \(.+\) — fix: ./,
      );
    }
  });

  it('zip:109, zip:131 — an empty archive, or one of folders only, says so', async () => {
    for (const [i, reason] of [
      [109, /the archive is empty/],
      [131, /only folders/],
    ] as const) {
      const c = caseAt('zip', i);
      const r = await ctx.engine.importFiles(ctx.targetId, { zip: c.input.bytes, name: c.input.name });
      expect(
        r.rejected.map((x) => x.kind),
        c.what,
      ).toEqual(['empty']);
      expect(r.rejected[0].reason).toMatch(reason);
    }
  });

  it('folder:83 — a pick left with no files, or with OS litter only, names why nothing was imported', async () => {
    const c = caseAt('folder', 83);
    expect(c.input.entries).toEqual([]);
    const r = await ctx.engine.importFiles(ctx.targetId, { entries: [] });
    expect(r.rejected.map((x) => x.kind)).toEqual(['empty']);
    expect(r.rejected[0].message).toMatch(
      /^ImportError: the picked files: no files to import — fix: pick the folder/,
    );
    const litter = await ctx.engine.importFiles(ctx.targetId, {
      entries: [
        { path: 'shots/__MACOSX/._a.png', data: new Uint8Array([1, 2]) },
        { path: 'shots/.DS_Store', data: new Uint8Array([3]) },
      ],
    });
    expect(litter.added).toBe(0);
    expect(litter.rejected.map((x) => x.kind)).toEqual(['empty']);
    expect(litter.rejected[0].reason).toMatch(/^no image files to import \(2 files of OS litter/);
  });

  it('onnx:6, 15, 20 — a graph with initialisers removed fails the model check (ORT would fail later, unnamed)', async () => {
    for (const i of [6, 15, 20]) {
      const c = caseAt('onnx', i, ctx.bases);
      expect(c.what).toMatch(/initialisers removed$/);
      const m = ctx.bases.manifest as unknown as Parameters<typeof checkGraph>[0];
      expect(() => checkGraph(m, c.input.path, c.input.bytes)).toThrow(TruncatedModelError);
      expect(() => checkGraph(m, c.input.path, c.input.bytes)).toThrow(
        /reads ".+", which no initializer, graph input or node provides\) — fix: /,
      );
    }
    // The intact graphs still pass.
    for (const [path, bytes] of Object.entries(ctx.bases.graphs))
      checkGraph(ctx.bases.manifest as unknown as Parameters<typeof checkGraph>[0], path, bytes);
  });

  it('grid configs: a field error carries one "— fix:": the example config, then the fix of the field', () => {
    const text = JSON.stringify({ generators: ['cutpaste'], seeds: [0], heads: ['bce'] });
    let e: unknown;
    try {
      parseGridConfigText(text, 'grid.json');
    } catch (x) {
      e = x;
    }
    expect(namedErrorProblem(e)).toBeNull();
    const m = (e as Error).message;
    expect(m.split(' — fix: ')).toHaveLength(2);
    expect(m).toMatch(
      /^GridConfigError: grid\.json: generators\[\] must be .*got "cutpaste" — fix: paste a grid config .*; for this field: pass generators\[\] as /,
    );
  });

  it('model manifests: text that is not JSON is a ManifestError naming the file (the CLI and server read these)', async () => {
    expect(() => parseManifestText('{"format": "defectlab-model/1",', 'cut/manifest.json')).toThrow(
      ManifestError,
    );
    expect(() => parseManifestText('{', 'cut/manifest.json')).toThrow(
      /^ManifestError: cut\/manifest\.json: is not JSON/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'dl-fuzz-manifest-'));
    writeFileSync(join(dir, 'manifest.json'), '{"format": "defectlab-model/1", "id": ');
    const e = await readManifest(dir).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ManifestError);
    expect(namedErrorProblem(e)).toBeNull();
  });
});

/**
 * Runs an entry point's corpus (`corpus.ts`, `server-corpus.ts`) through the product code and classifies each
 * case: `accepted` (the input was usable after all: a flipped bit in pixel data), `rejected` with a named error
 * carrying a fix, or a `crash` (anything else: an unnamed error, an error without a fix, an import report that
 * hides an unexpected failure, a result that breaks its own contract). Around the corpus: a digest of the whole
 * store before and after (nothing already stored may change or vanish; importers may add only to the dataset
 * they were pointed at, only whole records), and process-level handlers that count unhandled rejections and
 * uncaught exceptions. Shared by `tests/fuzz/fuzz.test.ts` (asserts) and `bench/faults.ts` (counts).
 */
import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DefectLabError } from '../../src/core/errors.ts';
import { createRaster } from '../../src/core/image.ts';
import { planImport } from '../../src/core/import/plan.ts';
import { normalizePath } from '../../src/core/import/paths.ts';
import { parseGridConfigText } from '../../src/core/experiments/config.ts';
import { decodeMaskPng } from '../../src/core/mask/png.ts';
import { decodeSetup } from '../../src/core/share/codec.ts';
import { validateSetup } from '../../src/core/share/setup.ts';
import { decodeImage, encodePng } from '../../src/runtime/decode.ts';
import { deleteStore, openStore } from '../../src/runtime/db/store.ts';
import type { DefectLabStore } from '../../src/runtime/db/types.ts';
import { checkGraph, ModelManager } from '../../src/runtime/models/manager.ts';
import { parseManifestText, type ModelManifest } from '../../src/runtime/models/manifest.ts';
import { sha256Hex } from '../../src/runtime/models/sha256.ts';
import { MemoryFileStore } from '../../src/runtime/models/store.ts';
import { ImportEngine, type ImportReport } from '../../workers/import.engine.ts';
import { decodePngFast } from '../../workers/import.png.ts';
import { buildServer } from '../../server/app.ts';
import { diffusionHandler, localModels, nodeDiffusionEngine } from '../../server/diffusion.ts';
import { halfRecords } from '../unit/db-integrity.ts';
import { TINY_MODELS, datasetFolder, listen, tempRoot } from '../unit/server-fixtures.ts';
import { caseAt, type EntryPoint, type FuzzCase, type OnnxBases } from './corpus.ts';
import { compareDigests, digestHash, storeDigest } from './digest.ts';
import { BODY_LIMIT, TRAVERSALS, send, serverCase } from './server-corpus.ts';

export type Outcome =
  { kind: 'accepted' } | { kind: 'rejected'; code: string } | { kind: 'crash'; detail: string };

export interface EntryResult {
  entry: EntryPoint;
  cases: number;
  accepted: number;
  rejected: number;
  /** `entry:index what → detail`, one per crashed case (empty is the requirement). */
  crashes: string[];
  /** Rejections by error code (or import reject kind). */
  byCode: Record<string, number>;
  unhandled: string[];
  /** Records changed or removed, records added where they may not be, half records left (empty = unchanged). */
  storeProblems: string[];
  digestBefore: string;
  digestAfter: string;
  /** Whole records the corpus added to its target dataset (importers only; the digest changes by these). */
  recordsAdded: number;
  /** The slowest case (a near-hang shows here first) and the median case time, in this run. */
  slowest: { index: number; ms: number };
  medianMs: number;
  /** Every case's time in ms, by case order (for the median; not printed). */
  caseMs: number[];
}

/** Null when `e` is a named error with a fix in the project's shape (`Name: problem — fix: what to do`). */
export function namedErrorProblem(e: unknown): string | null {
  if (!(e instanceof DefectLabError)) {
    const err = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return `unnamed error ${err.slice(0, 300)}${e instanceof Error && e.stack ? `\n${e.stack.split('\n').slice(1, 4).join('\n')}` : ''}`;
  }
  if (!e.fix.trim()) return `${e.code} without a fix: ${e.message}`;
  if (e.name !== e.code || !/^[A-Z]\w*Error: .+ — fix: .+/s.test(e.message))
    return `message not in the "Name: problem — fix: …" shape: ${e.message.slice(0, 300)}`;
  if (e.message.split(' — fix: ').length > 2) return `two fixes in one message: ${e.message.slice(0, 300)}`;
  // A bug of ours (TypeError, RangeError…) wrapped in a named error still is a bug; a library's complaint about
  // the bytes it was given (fast-png, jpeg-js, fflate) is the expected cause of a "corrupt file" error.
  for (let c: unknown = e.cause; c; c = (c as { cause?: unknown }).cause) {
    if (!(c instanceof Error) || c instanceof DefectLabError) continue;
    // The first frame with a file (native frames such as `new Uint8Array (<anonymous>)` say nothing of whose).
    const frame = c.stack?.split('\n').find((l) => /^\s+at /.test(l) && /\//.test(l)) ?? '';
    if (/^(TypeError|RangeError|ReferenceError)$/.test(c.name) && !frame.includes('node_modules'))
      return `${e.code} wraps a bug of ours: ${c.name}: ${c.message} ${frame.trim()}`;
  }
  return null;
}

/**
 * Runs `f`: accepted, or rejected by a named error with a fix whose code is one of `allowed` (the errors the
 * entry point documents: an `InvalidArgumentError` from deep inside a decoder names an internal argument, not
 * the user's file, so it counts as a crash).
 */
async function classify(f: () => unknown | Promise<unknown>, allowed: readonly string[]): Promise<Outcome> {
  try {
    await f();
    return { kind: 'accepted' };
  } catch (e) {
    const p = namedErrorProblem(e);
    if (p) return { kind: 'crash', detail: p };
    const code = (e as DefectLabError).code;
    if (!allowed.includes(code))
      return {
        kind: 'crash',
        detail: `${code} is not an error this entry point raises: ${(e as Error).message}`,
      };
    return { kind: 'rejected', code };
  }
}

/** An import report is a crash when it hides an unexpected failure or a rejection has no fix. */
function importOutcome(r: ImportReport): Outcome {
  if (r.stopped) return { kind: 'crash', detail: `import stopped: ${r.stopped.code}: ${r.stopped.message}` };
  for (const x of r.rejected) {
    // The engine's catch-all for errors that are not ImportErrors (a decoder bug) must never be reached.
    if (x.reason.startsWith('could not be read ('))
      return { kind: 'crash', detail: `unexpected error inside the import: ${x.message}` };
    if (!/ — fix: ./.test(x.message))
      return { kind: 'crash', detail: `rejection without a fix: ${x.message}` };
  }
  // Refused by name when anything was refused (the good files of a partly bad archive are still imported).
  if (r.rejected.length) return { kind: 'rejected', code: `ImportError:${r.rejected[0].kind}` };
  if (r.added > 0 || r.duplicates.length > 0) return { kind: 'accepted' };
  // Nothing stored, nothing refused, nothing set aside: the user is told nothing about what went wrong.
  if (r.ignored.length === 0)
    return { kind: 'crash', detail: `imported nothing and named no reason: "${r.message}"` };
  return { kind: 'rejected', code: 'only-side-files' };
}

// ---- the context: a store with data worth keeping, and the tiny model the model cases start from

export interface FuzzContext {
  dbName: string;
  store: DefectLabStore;
  engine: ImportEngine;
  /** The dataset the import corpora are pointed at; the other ("kept") dataset must stay as it was. */
  targetId: string;
  bases: OnnxBases;
  /** The tiny model's files by manifest path, served by the fake origin of the download cases. */
  modelFiles: Map<string, Uint8Array>;
  close(): Promise<void>;
}

const TINY_MODEL = join(TINY_MODELS, 'tiny-sd-inpaint');

function readTree(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), new Uint8Array(readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

let contexts = 0;

export async function openFuzzContext(): Promise<FuzzContext> {
  const dbName = `fuzz-${process.pid}-${contexts++}`;
  const store = await openStore(dbName);
  const engine = new ImportEngine(store);
  // Data a user would not want to lose: a labelled dataset with masks, a run, a setting.
  const kept = await store.createDataset({ name: 'kept', source: 'files' });
  const img = (seed: number) => {
    const r = createRaster(20, 16, 1);
    for (let i = 0; i < r.data.length; i++) r.data[i] = (i * 7 + seed * 31) % 251;
    return encodePng(r);
  };
  const mask = createRaster(20, 16, 1);
  for (let i = 0; i < 40; i++) mask.data[i] = 255;
  const r = await engine.importFiles(kept.id, {
    entries: [
      { path: 'train/good/0.png', data: img(1) },
      { path: 'train/good/1.png', data: img(2) },
      { path: 'test/crack/0.png', data: img(3) },
      { path: 'ground_truth/crack/0_mask.png', data: encodePng(mask) },
    ],
  });
  if (r.added !== 3) throw new Error(`fuzz context: the kept dataset imported ${r.added} of 3 images`);
  await store.putRun({
    id: 'kept-run',
    datasetId: kept.id,
    createdAt: 1,
    kind: 'train',
    config: {},
    metrics: { auroc: 0.5 },
  } as unknown as Parameters<DefectLabStore['putRun']>[0]);
  const target = await store.createDataset({ name: 'fuzz target', source: 'files' });
  const modelFiles = readTree(TINY_MODEL);
  const manifest = JSON.parse(new TextDecoder().decode(modelFiles.get('manifest.json')!)) as Record<
    string,
    unknown
  >;
  const graphs: Record<string, Uint8Array> = {};
  for (const [p, b] of modelFiles) if (p.endsWith('.onnx')) graphs[p] = b;
  return {
    dbName,
    store,
    engine,
    targetId: target.id,
    bases: { manifest, graphs },
    modelFiles,
    async close() {
      store.close();
      await deleteStore(dbName);
    },
  };
}

// ---- one case per entry point

async function runImage(c: FuzzCase<{ name: string; bytes: Uint8Array }>): Promise<Outcome> {
  const got: { raster?: Awaited<ReturnType<typeof decodeImage>>['raster'] } = {};
  const o = await classify(async () => {
    got.raster = (await decodeImage(c.input.bytes, c.input.name)).raster;
  }, ['ImportError']);
  if (o.kind === 'accepted' && got.raster) {
    const { width, height, channels, data } = got.raster;
    if (data.length !== width * height * channels || width < 1 || height < 1)
      return { kind: 'crash', detail: `decoded ${width}×${height}×${channels} with ${data.length} samples` };
  }
  // The import's PNG fast path never throws, and where it answers for a file decodeImage takes, it answers the
  // same raster (it may take a file whose broken ancillary chunk fast-png refuses: its pixels are intact).
  let fast: Awaited<ReturnType<typeof decodePngFast>>;
  try {
    fast = await decodePngFast(c.input.bytes);
  } catch (e) {
    return { kind: 'crash', detail: `decodePngFast threw ${e instanceof Error ? e.message : String(e)}` };
  }
  if (fast && got.raster) {
    const r = got.raster;
    const same =
      fast.width === r.width &&
      fast.height === r.height &&
      fast.channels === r.channels &&
      Buffer.from(fast.data).equals(Buffer.from(r.data));
    if (!same) return { kind: 'crash', detail: 'decodePngFast and decodeImage decoded different rasters' };
  }
  return o;
}

async function runMask(ctx: FuzzContext, c: FuzzCase<{ bytes: Uint8Array; width: number; height: number }>) {
  const { bytes, width, height } = c.input;
  // 1. The mask library's decoder: a binary mask or a MaskDecodeError.
  const got: { mask?: ReturnType<typeof decodeMaskPng> } = {};
  const direct = await classify(() => {
    got.mask = decodeMaskPng(bytes, `mask-${c.index}.png`);
  }, ['MaskDecodeError']);
  if (direct.kind === 'crash') return direct;
  if (got.mask) {
    const m = got.mask;
    if (m.channels !== 1 || m.data.length !== m.width * m.height || m.data.some((v) => v !== 0 && v !== 255))
      return { kind: 'crash' as const, detail: 'decodeMaskPng returned a non-binary or misshapen mask' };
  }
  // 2. The importer: an MVTec defect with this ground-truth mask.
  const image = createRaster(width, height, 1);
  for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 13 + c.index * 101) % 256;
  const r = await ctx.engine.importFiles(ctx.targetId, {
    entries: [
      { path: `m${c.index}/train/good/a.png`, data: encodePng(createRaster(width, height, 1)) },
      { path: `m${c.index}/test/crack/0.png`, data: encodePng(image) },
      { path: `m${c.index}/ground_truth/crack/0_mask.png`, data: bytes },
    ],
  });
  const o = importOutcome(r);
  if (o.kind === 'crash') return o;
  // Whatever the file was, a stored mask is binary and the size of its image.
  for (const id of r.addedIds) {
    const rec = await ctx.store.getImage(id);
    if (!rec?.maskId) continue;
    const m = await ctx.store.getMask(rec.maskId);
    if (!m) return { kind: 'crash' as const, detail: `image ${rec.name} points to a missing mask` };
    const raster = decodeMaskPng(new Uint8Array(await m.blob.arrayBuffer()));
    if (raster.width !== rec.width || raster.height !== rec.height)
      return {
        kind: 'crash' as const,
        detail: `stored mask ${raster.width}×${raster.height} for ${rec.width}×${rec.height}`,
      };
  }
  const maskRejected = r.rejected.find((x) => x.file.endsWith('_mask.png'));
  return maskRejected ? { kind: 'rejected' as const, code: `ImportError:${maskRejected.kind}` } : direct;
}

async function runFolder(ctx: FuzzContext, c: FuzzCase<{ entries: { path: string; bytes: Uint8Array }[] }>) {
  // The plan alone: pure, never throws, and names only files that were given.
  let plan: ReturnType<typeof planImport>;
  try {
    plan = planImport(c.input.entries.map((e) => ({ path: e.path, bytes: e.bytes })));
  } catch (e) {
    return {
      kind: 'crash' as const,
      detail: `planImport threw: ${namedErrorProblem(e) ?? (e as Error).message}`,
    };
  }
  const given = new Set(c.input.entries.map((e) => normalizePath(e.path)));
  for (const it of plan.items)
    if (!given.has(it.file) || (it.maskFile && !given.has(it.maskFile)))
      return {
        kind: 'crash' as const,
        detail: `plan names ${it.file} / ${it.maskFile}, which were not given`,
      };
  for (const x of plan.rejected)
    if (!/ — fix: ./.test(x.message))
      return { kind: 'crash' as const, detail: `rejection without a fix: ${x.message}` };
  const r = await ctx.engine.importFiles(ctx.targetId, {
    entries: c.input.entries.map((e) => ({ path: e.path, data: e.bytes })),
  });
  return importOutcome(r);
}

async function runModelManifest(c: FuzzCase<{ text: string }>): Promise<Outcome> {
  return classify(() => parseManifestText(c.input.text, 'manifest.json'), ['ManifestError']);
}

/** The tiny model's manifest with `path` standing for `bytes`: its size and sha256 agree, so checks go deeper. */
async function manifestFor(ctx: FuzzContext, path: string, bytes: Uint8Array): Promise<ModelManifest> {
  const m = structuredClone(ctx.bases.manifest) as unknown as ModelManifest;
  m.id = 'fuzz-model';
  m.files = m.files.map((f) => (f.path === path ? { ...f, bytes: bytes.length, sha256: '' } : f));
  const f = m.files.find((x) => x.path === path);
  if (f) f.sha256 = await sha256Hex(bytes);
  return m;
}

const GRAPH_ERRORS = ['TruncatedModelError', 'LayoutMismatchError'];

async function runOnnx(ctx: FuzzContext, c: FuzzCase<{ path: string; bytes: Uint8Array }>): Promise<Outcome> {
  const { path, bytes } = c.input;
  const manifest = await manifestFor(ctx, path, bytes);
  // 1. The graph check alone.
  const direct = await classify(() => checkGraph(manifest, path, bytes), GRAPH_ERRORS);
  if (direct.kind === 'crash') return direct;
  // 2. The whole download: served from a fake origin; a graph that fails its check is never committed, and the
  //    model is never marked complete.
  if (bytes.length === 0) return direct; // the manifest cannot list a 0-byte file; checked by (1)
  const files = new MemoryFileStore();
  const served = new Map(ctx.modelFiles);
  served.set(path, bytes);
  const fetchFn = (async (url: string | URL) => {
    const p = String(url).replace(/^https:\/\/models\.invalid\//, '');
    const b = served.get(p);
    return b
      ? new Response(b as Uint8Array<ArrayBuffer>, { status: 200 })
      : new Response('', { status: 404 });
  }) as typeof fetch;
  const mgr = new ModelManager(files, fetchFn, async () => ({ quota: 1e12, usage: 0 }));
  const download = await classify(
    () => mgr.download(manifest, 'https://models.invalid/'),
    [...GRAPH_ERRORS, 'ChecksumError', 'DownloadError'],
  );
  if (download.kind === 'crash') return download;
  const keys = await files.keys();
  if (download.kind === 'rejected') {
    if (keys.includes('fuzz-model/manifest.json'))
      return { kind: 'crash', detail: 'a failed download left the model marked complete' };
    if (direct.kind === 'rejected' && keys.includes(`fuzz-model/${path}`))
      return { kind: 'crash', detail: `the bad graph ${path} was committed to the cache` };
  } else if (direct.kind === 'rejected')
    return { kind: 'crash', detail: 'the download accepted a graph that checkGraph refuses' };
  return direct.kind === 'rejected' ? direct : download;
}

async function runShare(c: FuzzCase<{ token: string }>): Promise<Outcome> {
  return classify(() => {
    const s = decodeSetup(c.input.token);
    // What decodes must be a whole setup: validating it again must pass.
    validateSetup(s);
  }, [
    'ShareLinkMalformedError',
    'ShareLinkTruncatedError',
    'ShareLinkChecksumError',
    'ShareLinkVersionError',
    'ShareSetupError',
  ]);
}

async function runGrid(c: FuzzCase<{ text: string }>): Promise<Outcome> {
  return classify(() => parseGridConfigText(c.input.text, 'fuzz.json'), ['GridConfigError']);
}

// ---- the server (its store is the datasets folder on disk: digested file by file)

function folderDigest(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, n.name);
      if (n.isSymbolicLink()) out.set(relative(root, p), 'link');
      else if (n.isDirectory()) walk(p);
      else out.set(relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

async function fuzzServer(n: number, only?: number): Promise<EntryResult> {
  const datasets = tempRoot('dl-fuzz-');
  const app = buildServer({
    options: {
      datasets,
      models: TINY_MODELS,
      device: 'cpu',
      bodyLimitBytes: BODY_LIMIT,
      rateLimit: 1_000_000,
    },
    diffusion: diffusionHandler(nodeDiffusionEngine(), localModels(TINY_MODELS, 'cpu')),
  });
  datasetFolder(datasets, 'tiles');
  const outside = tempRoot('dl-fuzz-outside-');
  datasetFolder(outside, 'secret');
  symlinkSync(join(outside, 'secret'), join(datasets, 'linked-out'));
  mkdirSync(join(datasets, 'empty'), { recursive: true });
  const base = await listen(app);
  const before = folderDigest(datasets);
  const outsideBefore = folderDigest(outside);
  const res = emptyResult('server', digestOf(before));
  try {
    await withUnhandled(res, async () => {
      for (const i of indices(n, only)) {
        const c = serverCase(i);
        const t0 = performance.now();
        const o = await serverOutcome(base, datasets, c.input);
        record(res, c, o, performance.now() - t0);
      }
    });
    const h = await fetch(`${base}/api/health`);
    if (h.status !== 200) res.crashes.push(`server: /api/health answers ${h.status} after the corpus`);
  } finally {
    await app.close();
  }
  const after = folderDigest(datasets);
  res.digestAfter = digestOf(after);
  for (const [k, v] of before)
    if (after.get(k) !== v) res.storeProblems.push(`datasets/${k} changed or removed`);
  for (const [k, v] of folderDigest(outside))
    if (outsideBefore.get(k) !== v) res.storeProblems.push(`outside/${k} written`);
  return res;
}

function digestOf(m: Map<string, string>): string {
  const h = createHash('sha256');
  for (const [k, v] of [...m.entries()].sort()) h.update(`${k}\u0000${v}\n`);
  return h.digest('hex');
}

async function serverOutcome(
  base: string,
  datasets: string,
  r: Parameters<typeof send>[1],
): Promise<Outcome> {
  const res = await send(base, r);
  if (res.status < 400 || res.status >= 500)
    return { kind: 'crash', detail: `answered ${res.status}: ${res.body.slice(0, 200)}` };
  if (!res.body) return { kind: 'rejected', code: String(res.status) }; // 413 answered before the body was sent
  let b: Record<string, unknown>;
  try {
    b = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    return { kind: 'crash', detail: `not JSON: ${res.body.slice(0, 200)}` };
  }
  if (Object.keys(b).sort().join() !== 'code,fix,message' || typeof b.fix !== 'string' || !b.fix)
    return { kind: 'crash', detail: `not { code, message, fix }: ${res.body.slice(0, 200)}` };
  // What the client sent may be echoed (its own traversal string); the server's folders may not.
  let text = `${String(b.message)} ${String(b.fix)}`;
  for (const t of TRAVERSALS) text = text.split(t).join('');
  text = text.split(r.path).join('');
  if (
    text.includes(datasets) ||
    text.includes(TINY_MODELS) ||
    text.includes(process.cwd()) ||
    /\/(tmp|home|root|work|usr|etc)\/|\n\s+at /.test(text)
  )
    return { kind: 'crash', detail: `leaks a path: ${text.slice(0, 300)}` };
  return { kind: 'rejected', code: String(res.status) };
}

// ---- the loop

function emptyResult(entry: EntryPoint, digestBefore: string): EntryResult {
  return {
    entry,
    cases: 0,
    accepted: 0,
    rejected: 0,
    crashes: [],
    byCode: {},
    unhandled: [],
    storeProblems: [],
    digestBefore,
    digestAfter: '',
    recordsAdded: 0,
    slowest: { index: -1, ms: 0 },
    medianMs: 0,
    caseMs: [],
  };
}

function record(res: EntryResult, c: FuzzCase<unknown>, o: Outcome, ms: number): void {
  res.cases++;
  res.caseMs.push(ms);
  const sorted = [...res.caseMs].sort((a, b) => a - b);
  res.medianMs = sorted[sorted.length >> 1];
  if (ms > res.slowest.ms) res.slowest = { index: c.index, ms: Math.round(ms) };
  if (o.kind === 'accepted') res.accepted++;
  else if (o.kind === 'rejected') {
    res.rejected++;
    res.byCode[o.code] = (res.byCode[o.code] ?? 0) + 1;
  } else res.crashes.push(`${c.entry}:${c.index} ${c.what.slice(0, 200)} → ${o.detail}`);
}

function indices(n: number, only?: number): number[] {
  return only === undefined ? Array.from({ length: n }, (_, i) => i) : [only];
}

/** Runs `f` with process-level handlers that record every unhandled rejection and uncaught exception. */
async function withUnhandled(res: EntryResult, f: () => Promise<void>): Promise<void> {
  const onRejection = (reason: unknown) =>
    res.unhandled.push(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
  const onException = (e: Error) => res.unhandled.push(`uncaught exception: ${e.stack ?? e.message}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  try {
    await f();
    // Rejections surface after the microtask queue drains: give them a turn of the event loop.
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  }
}

/** Where an import corpus may add records: the target dataset's images and masks, and nowhere else. */
async function checkStore(
  ctx: FuzzContext,
  before: Awaited<ReturnType<typeof storeDigest>>,
  res: EntryResult,
) {
  const after = await storeDigest(ctx.dbName);
  res.digestAfter = digestHash(after);
  const d = compareDigests(before, after);
  res.recordsAdded = d.added.length;
  res.storeProblems.push(...d.changed.map((k) => `changed: ${k}`), ...d.removed.map((k) => `removed: ${k}`));
  const targetImages = new Set((await ctx.store.listImages(ctx.targetId)).map((i) => JSON.stringify(i.id)));
  const targetMasks = new Set((await ctx.store.listMasks(ctx.targetId)).map((m) => JSON.stringify(m.id)));
  for (const a of d.added) {
    const ok =
      (a.store === 'images' && targetImages.has(a.key)) || (a.store === 'masks' && targetMasks.has(a.key));
    if (!ok) res.storeProblems.push(`added outside the target dataset: ${a.store} ${a.key}`);
  }
  res.storeProblems.push(...(await halfRecords(ctx.dbName)).map((p) => `half record: ${p}`));
}

/**
 * Runs `n` cases (or only case `only`) of one entry point. The store's digest is taken before and after; the
 * import entry points empty their target dataset first, so each corpus starts from the same store.
 */
export async function fuzzEntry(
  entry: EntryPoint,
  n: number,
  ctx: FuzzContext,
  only?: number,
): Promise<EntryResult> {
  if (entry === 'server') return fuzzServer(n, only);
  const imports = entry === 'zip' || entry === 'folder' || entry === 'mask';
  if (imports) {
    const ids = (await ctx.store.listImages(ctx.targetId)).map((i) => i.id);
    if (ids.length) await ctx.store.deleteImages(ids);
  }
  const before = await storeDigest(ctx.dbName);
  const res = emptyResult(entry, digestHash(before));
  await withUnhandled(res, async () => {
    for (const i of indices(n, only)) {
      const c = caseAt(entry, i, ctx.bases);
      const t0 = performance.now();
      let o: Outcome;
      try {
        o =
          entry === 'image'
            ? await runImage(c as FuzzCase<{ name: string; bytes: Uint8Array }>)
            : entry === 'zip'
              ? importOutcome(
                  await ctx.engine.importFiles(ctx.targetId, {
                    zip: (c.input as { bytes: Uint8Array }).bytes,
                    name: (c.input as { name: string }).name,
                  }),
                )
              : entry === 'folder'
                ? await runFolder(ctx, c as FuzzCase<{ entries: { path: string; bytes: Uint8Array }[] }>)
                : entry === 'mask'
                  ? await runMask(ctx, c as FuzzCase<{ bytes: Uint8Array; width: number; height: number }>)
                  : entry === 'model-manifest'
                    ? await runModelManifest(c as FuzzCase<{ text: string }>)
                    : entry === 'onnx'
                      ? await runOnnx(ctx, c as FuzzCase<{ path: string; bytes: Uint8Array }>)
                      : entry === 'share'
                        ? await runShare(c as FuzzCase<{ token: string }>)
                        : await runGrid(c as FuzzCase<{ text: string }>);
      } catch (e) {
        // The runner's own calls (an importer that throws instead of reporting) count as the product's crash.
        o = { kind: 'crash', detail: `threw out of the entry point: ${namedErrorProblem(e) ?? String(e)}` };
      }
      record(res, c, o, performance.now() - t0);
    }
  });
  await checkStore(ctx, before, res);
  if (!imports && res.digestAfter !== res.digestBefore && res.storeProblems.length === 0)
    res.storeProblems.push('the store changed under a corpus that stores nothing');
  return res;
}

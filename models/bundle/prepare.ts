/**
 * `prepare <export-dir | model.onnx> --out <bundle-dir> [--fp16] [--quantize int4|int8] [--block 32]
 * [--keep-io fp32] [--max-part 1GB]`: converts an optimum diffusion export (or one classifier graph) into a
 * bundle the app's model manager downloads, verifies and loads: converted graphs, external data in parts under
 * the limit, tokenizer/scheduler files, and `manifest.json` (`defectlab-model/1` with a `bundle` section).
 *
 * Everything is written into `<bundle-dir>.tmp-<pid>` beside the target and renamed at the end, so a failed or
 * interrupted run leaves nothing half-written where the app (or a static server) would look; the target must
 * not exist yet. Every source graph is checked (complete, external data present, layout) before anything is
 * written.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { inspectOnnx } from '../../src/runtime/models/onnx-inspect.ts';
import { assertLayout } from '../../src/runtime/models/layout.ts';
import {
  MANIFEST_FORMAT,
  requiredComponents,
  validateManifest,
  type BundleInfo,
  type ComponentName,
  type ManifestComponent,
  type ModelDtype,
  type ModelLayoutName,
  type ModelManifest,
} from '../../src/runtime/models/manifest.ts';
import { createSha256 } from '../../src/runtime/models/sha256.ts';
import { exportConfig } from '../../src/runtime/models/from-export.ts';
import { BundleError, UsageError } from './errors.ts';
import { convertToFp16 } from './fp16.ts';
import { loadModel, type LoadedModel } from './onnx.ts';
import { QUANTIZED_OPS, dequantizeInt8, quantizeInt4, quantizeInt8 } from './quantize.ts';
import { writeGraph, type WrittenFile } from './writer.ts';

export const TOOL = 'defectlab-bundle';
export const TOOL_VERSION = '1.0.0';
/** Format of a classifier bundle's manifest (diffusion bundles use the app's `defectlab-model/1`). */
export const CLASSIFIER_FORMAT = 'defectlab-classifier/1';

export interface PrepareOptions {
  out: string;
  fp16?: boolean;
  quantize?: 'int4' | 'int8';
  /** int4 block size along K. */
  block?: number;
  /** Keep graph inputs/outputs float32 (Casts at the boundary) in an fp16 bundle. */
  keepIo?: 'fp32';
  /** Largest external-data part in bytes (default 1 GB). */
  maxPart?: number;
  id?: string;
  name?: string;
  /** The SDXL VAE decoder overflows in fp16 unless it carries the fp16-fix weights; say that it does. */
  vaeFp16Fix?: boolean;
  /** Folder under the app's `/models/` the bundle is served from (default `<id>/`). */
  serverPath?: string;
  /** Hugging Face repo (`owner/name`) the bundle will be uploaded to. */
  hub?: string;
}

export interface PrepareResult {
  out: string;
  kind: 'diffusion' | 'classifier';
  files: WrittenFile[];
  /** Weight bytes read / written. */
  bytesIn: number;
  bytesOut: number;
  largestPart: number;
  seconds: number;
  /** Peak resident memory of this process so far (bytes). */
  peakRss: number;
  notes: Partial<Record<string, string>>;
}

export interface ClassifierManifest {
  format: typeof CLASSIFIER_FORMAT;
  id: string;
  name: string;
  layout: 'classifier';
  dtype: ModelDtype;
  license: string;
  source: string;
  model: ManifestComponent;
  /** Number of classes of the logits output. */
  classes: number | null;
  files: WrittenFile[];
  bundle: BundleInfo;
}

export const DEFAULT_MAX_PART = 1_000_000_000;

function componentDtype(lm: LoadedModel, fp16: boolean): ModelDtype {
  const ops = new Set((lm.model.graph?.node ?? []).map((n) => n.opType ?? ''));
  if (ops.has('MatMulNBits')) return 'int4';
  if (ops.has('DequantizeLinear') || ops.has('MatMulInteger') || ops.has('ConvInteger')) return 'int8';
  return fp16 ? 'float16' : 'float32';
}

/** Applies the requested passes to one graph; returns what it did, for the manifest's notes. */
function convert(lm: LoadedModel, o: PrepareOptions, fp16: boolean): string {
  const notes: string[] = [];
  const quantized = (lm.model.graph?.node ?? []).some(
    (n) => QUANTIZED_OPS.has(n.opType ?? '') || n.opType === 'DequantizeLinear',
  );
  if (o.quantize === 'int4') {
    const r = quantizeInt4(lm, { blockSize: o.block ?? 32 });
    notes.push(
      `int4 MatMulNBits (block ${o.block ?? 32}): ${fmt(r.quantized) || 'no MatMul/Gemm with a constant weight'}; convs stay float`,
    );
  } else if (o.quantize === 'int8') {
    const r = quantizeInt8(lm);
    notes.push(
      `int8 weight-only QDQ: ${fmt(r.quantized) || 'nothing to quantize'}; DequantizeLinear is checked at run time on WebGPU (src/runtime/ort-selfcheck.ts) and the graph runs on WASM/CPU where that kernel is wrong`,
    );
  } else if (quantized) {
    const r = dequantizeInt8(lm);
    notes.push(`dequantized to float: ${fmt(r.quantized)}; each op's output clipped to its int8 range`);
  }
  if (fp16) {
    const r = convertToFp16(lm, { keepIo: o.keepIo === 'fp32' });
    notes.push(
      `fp16 (${r.convertedInitializers} initializers${o.keepIo ? ', fp32 I/O' : ''}); fp32 kept for ${fmt(r.keptFp32) || 'nothing'}`,
    );
  }
  return notes.join('; ') || 'copied (float32)';
}

function fmt(r: Record<string, number>): string {
  return Object.entries(r)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}

/** What a folder or file is: a diffusion export (and its layout) or a single classifier graph. */
export function detectInput(
  path: string,
): { kind: 'diffusion'; layout: ModelLayoutName } | { kind: 'classifier'; file: string } {
  if (!existsSync(path))
    throw new BundleError(
      'ModelFileMissingError',
      `${path} does not exist`,
      'pass an optimum export folder (with unet/model.onnx) or an .onnx file',
    );
  if (statSync(path).isFile()) return { kind: 'classifier', file: path };
  if (existsSync(join(path, 'unet/model.onnx')))
    return {
      kind: 'diffusion',
      layout: existsSync(join(path, 'text_encoder_2/model.onnx')) ? 'sdxl-inpaint' : 'sd-inpaint',
    };
  if (existsSync(join(path, 'model.onnx'))) return { kind: 'classifier', file: join(path, 'model.onnx') };
  throw new BundleError(
    'LayoutMismatchError',
    `${path} holds neither unet/model.onnx (a diffusion export) nor model.onnx (a classifier)`,
    'point prepare at the optimum export folder itself (the one with unet/, vae_decoder/, tokenizer/ …)',
  );
}

async function readJson(p: string): Promise<Record<string, unknown> | null> {
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new BundleError(
      'ManifestError',
      `${p} is not valid JSON (${(e as Error).message})`,
      'fix or delete the file',
    );
  }
}

function tierOf(o: PrepareOptions): string {
  if (o.quantize) return o.fp16 ? `${o.quantize}-fp16` : o.quantize;
  return o.fp16 ? 'fp16' : 'fp32';
}

export async function prepare(input: string, o: PrepareOptions): Promise<PrepareResult> {
  const t0 = performance.now();
  if (!o.out) throw new UsageError('prepare needs --out <bundle-dir>');
  if (o.quantize && o.quantize !== 'int4' && o.quantize !== 'int8')
    throw new UsageError(`--quantize ${String(o.quantize)}: expected int4 or int8`);
  if (o.keepIo && o.keepIo !== 'fp32') throw new UsageError(`--keep-io ${String(o.keepIo)}: expected fp32`);
  const maxPart = o.maxPart ?? DEFAULT_MAX_PART;
  if (!Number.isFinite(maxPart) || maxPart < 4096)
    throw new UsageError(`--max-part ${maxPart}: expected a size of at least 4 KB (e.g. 1GB, 512MB)`);
  const out = resolve(o.out);
  if (existsSync(out))
    throw new BundleError(
      'OutputExistsError',
      `${out} exists already; prepare never overwrites a bundle`,
      'remove it or pass another --out',
    );
  const what = detectInput(input);
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(out), { recursive: true });
  await mkdir(tmp);
  // Ctrl-C or a kill mid-run: remove the temp folder before exiting, so nothing half-written stays behind.
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(tmp, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r =
      what.kind === 'classifier'
        ? await prepareClassifier(what.file, tmp, o, maxPart)
        : await prepareDiffusion(resolve(input), what.layout, tmp, o, maxPart);
    await rename(tmp, out);
    const parts = r.files.filter((f) => !f.path.endsWith('.onnx') && /onnx_data$/.test(f.path));
    return {
      out,
      kind: what.kind,
      files: r.files,
      bytesIn: r.bytesIn,
      bytesOut: r.files.filter((f) => /\.onnx(_data)?$/.test(f.path)).reduce((a, f) => a + f.bytes, 0),
      largestPart: Math.max(0, ...parts.map((f) => f.bytes)),
      seconds: (performance.now() - t0) / 1000,
      peakRss: peakRss(),
      notes: r.notes,
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Peak resident memory of this process. Linux's `VmHWM` rather than `getrusage`'s maxrss, which survives
 * `execve`: a tool spawned by a big parent (a test runner) would report the parent's peak.
 */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

async function hashFile(path: string): Promise<string> {
  const h = await createSha256();
  const { createReadStream } = await import('node:fs');
  for await (const c of createReadStream(path, { highWaterMark: 8 << 20 })) h.update(c as Uint8Array);
  return h.hex();
}

async function copyHashed(src: string, root: string, rel: string): Promise<WrittenFile> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await copyFile(src, join(root, rel));
  return { path: rel, bytes: statSync(src).size, sha256: await hashFile(src) };
}

function weightBytes(lm: LoadedModel): number {
  let n = 0;
  for (const d of lm.data.values()) n += d.kind === 'bytes' ? d.bytes.length : d.length;
  return n;
}

async function prepareDiffusion(
  dir: string,
  layout: ModelLayoutName,
  tmp: string,
  o: PrepareOptions,
  maxPart: number,
): Promise<{ files: WrittenFile[]; bytesIn: number; notes: Partial<Record<ComponentName, string>> }> {
  const src = (await readJson(join(dir, 'manifest.json'))) as ModelManifest | null;
  const srcManifest = src ? validateManifest(src, join(dir, 'manifest.json')) : null;
  const comps = requiredComponents(layout);
  // Every source graph is checked before anything is converted: complete, external data present, layout.
  for (const c of comps) {
    const file = join(dir, c, 'model.onnx');
    if (!existsSync(file))
      throw new BundleError(
        'ModelFileMissingError',
        `${file} is missing`,
        `export the whole ${layout} pipeline (docs/models.md)`,
      );
    const s = inspectOnnx(new Uint8Array(await readFile(file)), file);
    assertLayout(layout, c, file, s);
  }
  const sdxl = layout === 'sdxl-inpaint';
  const files: WrittenFile[] = [];
  const components: ModelManifest['components'] = {};
  const notes: Partial<Record<ComponentName, string>> = {};
  let bytesIn = 0;
  let largestTensorBytes = 0;
  let shaderF16 = false;
  for (const c of comps) {
    const lm = await loadModel(join(dir, c, 'model.onnx'));
    bytesIn += weightBytes(lm);
    // The SDXL VAE overflows fp16 in its decoder's up-blocks (NaN images) unless it carries the fp16-fix
    // weights (madebyollin/sdxl-vae-fp16-fix): it stays fp32 unless told it has them.
    const fp16 = !!o.fp16 && !(sdxl && c === 'vae_decoder' && !o.vaeFp16Fix);
    let note = convert(lm, o, fp16);
    if (o.fp16 && !fp16)
      note +=
        '; kept fp32: the SDXL VAE decoder overflows in fp16 (pass --vae-fp16-fix with the fp16-fix VAE weights)';
    if (o.fp16 && sdxl && c === 'vae_decoder' && o.vaeFp16Fix)
      note += '; fp16 (--vae-fp16-fix: the export carries the fp16-fix VAE)';
    const dtype = componentDtype(lm, fp16);
    const w = await writeGraph(lm, tmp, c, { maxPart, external: lm.externalFiles.length > 0 });
    const s = inspectOnnx(new Uint8Array(await readFile(join(tmp, c, 'model.onnx'))), `${c}/model.onnx`);
    // The conversion must not change the graph's contract with the pipeline.
    assertLayout(layout, c, join(tmp, c, 'model.onnx'), s);
    largestTensorBytes = Math.max(largestTensorBytes, s.largestTensorBytes);
    shaderF16 ||= s.usesFp16;
    files.push(...w.files);
    components[c] = {
      file: `${c}/model.onnx`,
      dtype,
      inputs: s.inputs,
      outputs: s.outputs,
      ...(w.externalData.length ? { externalData: w.externalData } : {}),
    };
    notes[c] = note;
  }
  const tokenizers = sdxl ? ['tokenizer', 'tokenizer_2'] : ['tokenizer'];
  for (const t of tokenizers)
    for (const f of ['vocab.json', 'merges.txt']) {
      const p = join(dir, t, f);
      if (!existsSync(p))
        throw new BundleError(
          'ModelFileMissingError',
          `${p} is missing`,
          'copy the tokenizer folders of the export too',
        );
      files.push(await copyHashed(p, tmp, `${t}/${f}`));
    }
  const schedPath = join(dir, 'scheduler/scheduler_config.json');
  if (existsSync(schedPath)) files.push(await copyHashed(schedPath, tmp, 'scheduler/scheduler_config.json'));
  const scheduler = srcManifest?.config.scheduler ??
    (await readJson(schedPath)) ?? { _class_name: 'EulerDiscreteScheduler' };
  const vae =
    (await readJson(join(dir, 'vae_decoder/config.json'))) ??
    (await readJson(join(dir, 'vae_encoder/config.json')));
  const tier = tierOf(o);
  const baseId = srcManifest?.id ?? basename(dir);
  const id = o.id ?? `${baseId.replace(/-(fp32|fp16|int8|int4)$/, '')}-${tier}`;
  const manifest: ModelManifest = {
    format: MANIFEST_FORMAT,
    id,
    name: o.name ?? `${srcManifest?.name ?? baseId} — ${tier} bundle`,
    layout,
    dtype: o.quantize ?? (o.fp16 ? 'float16' : 'float32'),
    resolution: srcManifest?.resolution ?? (sdxl ? 1024 : 512),
    license: srcManifest?.license ?? (sdxl ? 'openrail++' : 'creativeml-openrail-m'),
    source: `${srcManifest?.source ?? `optimum ONNX export in ${dir}`}; converted by npm run models -- prepare (${tier})`,
    ...(o.serverPath ? { serverPath: o.serverPath.replace(/\/?$/, '/') } : {}),
    ...(o.hub ? { hub: { repo: o.hub, revision: 'main' } } : {}),
    gpu: { largestTensorBytes, shaderF16 },
    config: srcManifest?.config ?? exportConfig(layout, vae, scheduler as Record<string, unknown>),
    tokenizer: { vocab: 'tokenizer/vocab.json', merges: 'tokenizer/merges.txt' },
    ...(sdxl ? { tokenizer2: { vocab: 'tokenizer_2/vocab.json', merges: 'tokenizer_2/merges.txt' } } : {}),
    components,
    files: files.map((f) => ({ path: f.path, bytes: f.bytes, sha256: f.sha256 })),
    bundle: bundleInfo(o, maxPart, srcManifest?.id ?? dir, notes),
  };
  const valid = validateManifest(JSON.parse(JSON.stringify(manifest)), `${id} (generated)`);
  await writeFile(join(tmp, 'manifest.json'), JSON.stringify(valid, null, 2) + '\n');
  return { files, bytesIn, notes };
}

function bundleInfo(
  o: PrepareOptions,
  maxPart: number,
  from: string,
  notes: BundleInfo['notes'],
): BundleInfo {
  return {
    tool: TOOL,
    version: TOOL_VERSION,
    options: {
      fp16: !!o.fp16,
      quantize: o.quantize ?? null,
      block: o.quantize === 'int4' ? (o.block ?? 32) : null,
      keepIo: o.keepIo ?? null,
      maxPart,
      vaeFp16Fix: !!o.vaeFp16Fix,
    },
    from,
    ...(notes ? { notes } : {}),
  };
}

async function prepareClassifier(
  file: string,
  tmp: string,
  o: PrepareOptions,
  maxPart: number,
): Promise<{ files: WrittenFile[]; bytesIn: number; notes: Record<string, string> }> {
  const lm = await loadModel(file);
  const bytesIn = weightBytes(lm);
  const note = convert(lm, o, !!o.fp16);
  const w = await writeGraph(lm, tmp, '', { maxPart, external: lm.externalFiles.length > 0 });
  const s = inspectOnnx(new Uint8Array(await readFile(join(tmp, 'model.onnx'))), 'model.onnx');
  const logits = s.outputs[0];
  const classes = logits && typeof logits.shape[1] === 'number' ? logits.shape[1] : null;
  const id =
    o.id ??
    `${basename(file)
      .replace(/\.onnx$/, '')
      .replace(/-int8$/, '')}-${tierOf(o)}`;
  const manifest: ClassifierManifest = {
    format: CLASSIFIER_FORMAT,
    id,
    name: o.name ?? `${basename(file)} — ${tierOf(o)} bundle`,
    layout: 'classifier',
    dtype: componentDtype(lm, !!o.fp16),
    license: 'as the source model',
    source: `${file}; converted by npm run models -- prepare (${tierOf(o)})`,
    model: {
      file: 'model.onnx',
      dtype: componentDtype(lm, !!o.fp16),
      inputs: s.inputs,
      outputs: s.outputs,
      ...(w.externalData.length ? { externalData: w.externalData } : {}),
    },
    classes,
    files: w.files,
    bundle: bundleInfo(o, maxPart, file, undefined),
  };
  await writeFile(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return { files: w.files, bytesIn, notes: { model: note } };
}

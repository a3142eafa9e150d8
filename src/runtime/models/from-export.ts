/**
 * Writes a manifest for an optimum ONNX export folder (Node only):
 *
 *   npx tsx src/runtime/models/from-export.ts <export-dir> --id sdxl-inpaint-fp16 --layout sdxl-inpaint \
 *     --resolution 1024 [--hub owner/repo] [--license openrail++] [--source "…"] [--out models/manifests/<id>.json]
 *
 * It hashes every file (streaming through hash-wasm, so multi-GB external data is fine), reads each graph's I/O with
 * `inspectOnnx`, checks it against the layout (a wrong export fails here, not in the browser), picks up
 * external-data files and the scheduler/VAE config the export ships, and prints or writes the manifest.
 */
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { inspectOnnx } from './onnx-inspect.ts';
import { sha256Hex } from './sha256.ts';
import { assertLayout } from './layout.ts';
import {
  MANIFEST_FORMAT,
  requiredComponents,
  validateManifest,
  type ManifestComponent,
  type ModelDtype,
  type ModelLayoutName,
  type ModelManifest,
} from './manifest.ts';

export interface FromExportOptions {
  id: string;
  layout: ModelLayoutName;
  resolution?: number;
  name?: string;
  hub?: string;
  license?: string;
  source?: string;
}

async function sha256File(path: string): Promise<string> {
  return sha256Hex(createReadStream(path, { highWaterMark: 8 << 20 }) as AsyncIterable<Uint8Array>);
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

const KEEP = /(\.onnx|\.onnx_data|\.onnx\.data|\.data|\.bin|vocab\.json|merges\.txt)$/;

/**
 * A manifest's `config` for an export: the VAE's scaling factor and latent channels from its `config.json` (the
 * layout's defaults without one), CLIP's 77 tokens and pad ids, the export's scheduler config.
 */
export function exportConfig(
  layout: ModelLayoutName,
  vae: Record<string, unknown> | null,
  scheduler: Record<string, unknown>,
): ModelManifest['config'] {
  const sdxl = layout === 'sdxl-inpaint';
  return {
    vaeScalingFactor: Number(vae?.scaling_factor ?? (sdxl ? 0.13025 : 0.18215)),
    latentChannels: Number(vae?.latent_channels ?? 4),
    vaeDownsample: 8,
    maxTokens: 77,
    padTokenId: 49407,
    ...(sdxl ? { padTokenId2: 0 } : {}),
    scheduler,
  };
}

export async function manifestFromExport(dir: string, o: FromExportOptions): Promise<ModelManifest> {
  const root = resolve(dir);
  const paths = (await walk(root))
    .map((p) => relative(root, p).split('\\').join('/'))
    .filter((p) => KEEP.test(p));
  const files = [];
  for (const p of paths.sort())
    files.push({ path: p, bytes: (await stat(join(root, p))).size, sha256: await sha256File(join(root, p)) });
  const components: ModelManifest['components'] = {};
  let fp16 = false;
  for (const name of requiredComponents(o.layout)) {
    const file = `${name}/model.onnx`;
    if (!existsSync(join(root, file)))
      throw new Error(`${root} has no ${file}: is this an optimum ${o.layout} export?`);
    const s = inspectOnnx(new Uint8Array(await readFile(join(root, file))), `${o.id}/${file}`);
    assertLayout(o.layout, name, `${o.id}/${file}`, s);
    fp16 ||= s.usesFp16;
    const ops = s.ops.join(' ');
    const dtype: ModelDtype = /MatMulNBits/.test(ops)
      ? 'int4'
      : /DequantizeLinear|DynamicQuantize|MatMulInteger|QLinear/.test(ops)
        ? 'int8'
        : s.usesFp16
          ? 'float16'
          : 'float32';
    const comp: ManifestComponent = { file, dtype, inputs: s.inputs, outputs: s.outputs };
    if (s.externalFiles.length) comp.externalData = s.externalFiles.map((f) => `${name}/${f}`);
    components[name] = comp;
  }
  const readJson = async (p: string) =>
    existsSync(join(root, p))
      ? (JSON.parse(await readFile(join(root, p), 'utf8')) as Record<string, unknown>)
      : null;
  const scheduler = (await readJson('scheduler/scheduler_config.json')) ?? {
    _class_name: 'EulerDiscreteScheduler',
  };
  const vae = (await readJson('vae_decoder/config.json')) ?? (await readJson('vae_encoder/config.json'));
  const dtypes = new Set(Object.values(components).map((c) => c!.dtype));
  const sdxl = o.layout === 'sdxl-inpaint';
  const m: ModelManifest = {
    format: MANIFEST_FORMAT,
    id: o.id,
    name: o.name ?? o.id,
    layout: o.layout,
    dtype: dtypes.size === 1 ? [...dtypes][0] : 'mixed',
    resolution: o.resolution ?? (sdxl ? 1024 : 512),
    license: o.license ?? (sdxl ? 'openrail++' : 'creativeml-openrail-m'),
    source: o.source ?? `optimum ONNX export in ${dir}`,
    ...(o.hub ? { hub: { repo: o.hub, revision: 'main' } } : {}),
    gpu: {
      largestTensorBytes: 0,
      shaderF16: fp16,
    },
    config: exportConfig(o.layout, vae, scheduler),
    tokenizer: { vocab: 'tokenizer/vocab.json', merges: 'tokenizer/merges.txt' },
    ...(sdxl ? { tokenizer2: { vocab: 'tokenizer_2/vocab.json', merges: 'tokenizer_2/merges.txt' } } : {}),
    components,
    files,
  };
  for (const name of requiredComponents(o.layout)) {
    const s = inspectOnnx(new Uint8Array(await readFile(join(root, `${name}/model.onnx`))));
    m.gpu!.largestTensorBytes = Math.max(m.gpu!.largestTensorBytes, s.largestTensorBytes);
  }
  return validateManifest(JSON.parse(JSON.stringify(m)), `${o.id} (generated)`);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const dir = process.argv[2];
  const id = arg('id');
  const layout = arg('layout') as ModelLayoutName | undefined;
  if (!dir || !id || (layout !== 'sdxl-inpaint' && layout !== 'sd-inpaint')) {
    console.error(
      'usage: tsx src/runtime/models/from-export.ts <export-dir> --id <id> --layout sdxl-inpaint|sd-inpaint [--resolution N] [--hub owner/repo] [--out file]',
    );
    process.exit(2);
  }
  const m = await manifestFromExport(dir, {
    id,
    layout,
    resolution: arg('resolution') ? Number(arg('resolution')) : undefined,
    hub: arg('hub'),
    license: arg('license'),
    source: arg('source'),
    name: arg('name'),
  });
  const text = JSON.stringify(m, null, 2) + '\n';
  const out = arg('out');
  if (out) await writeFile(out, text);
  else process.stdout.write(text);
}

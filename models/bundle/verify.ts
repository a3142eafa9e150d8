/**
 * `verify <bundle-dir>`: what the app's model manager will check, and a little more, before a bundle is hosted:
 * every file's size and sha256 (streamed), each graph complete and its I/O equal to the manifest's and fitting
 * the layout, each graph loading in onnxruntime-node (its external-data parts included) and a tiny run giving
 * finite outputs. The first failure throws a named error that names the file.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeBackend } from '../../src/runtime/ort-node.ts';
import { assertLayout } from '../../src/runtime/models/layout.ts';
import { ChecksumError } from '../../src/runtime/models/manager.ts';
import {
  validateManifest,
  type ComponentName,
  type ManifestComponent,
  type ModelManifest,
} from '../../src/runtime/models/manifest.ts';
import { inspectOnnx } from '../../src/runtime/models/onnx-inspect.ts';
import { createSha256 } from '../../src/runtime/models/sha256.ts';
import { floatToHalf, toFloat32, type TensorLike, type ValueInfo } from '../../src/core/tensor.ts';
import { BundleError } from './errors.ts';
import { CLASSIFIER_FORMAT, type ClassifierManifest } from './prepare.ts';

export interface VerifyReport {
  id: string;
  files: number;
  bytes: number;
  components: Record<string, { backend: string; outputs: string[]; ms: number }>;
}

/** A size for a symbolic dimension in the tiny run: batch 1, 77 tokens, 64-px images, 8×8 latents. */
function concreteShape(v: ValueInfo): number[] {
  const image = v.shape.length === 4 && v.shape[1] === 3;
  return v.shape.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    const name = String(d);
    if (i === 0 || /batch/i.test(name)) return 1;
    if (/seq|token/i.test(name)) return 77;
    if (v.shape.length === 4) return image ? 64 : 8;
    return 1;
  });
}

/** Deterministic inputs of the declared types: smooth floats in [−1, 1], token ids, a mid timestep. */
function tinyInput(v: ValueInfo): TensorLike {
  const dims = concreteShape(v);
  const n = dims.reduce((a, b) => a * b, 1);
  const wave = (i: number) => Math.sin(i * 0.37) * 0.8;
  switch (v.type) {
    case 'int64':
      return {
        type: 'int64',
        dims,
        data: BigInt64Array.from({ length: n }, (_, i) => BigInt(v.name === 'timestep' ? 500 : i % 97)),
      };
    case 'int32':
      return {
        type: 'int32',
        dims,
        data: Int32Array.from({ length: n }, (_, i) => (i === 0 ? 49406 : i === 1 ? 49407 : i % 97)),
      };
    case 'float16': {
      const h = Uint16Array.from({ length: n }, (_, i) => floatToHalf(wave(i)));
      return { type: 'float16', dims, data: h };
    }
    default:
      return { type: 'float32', dims, data: Float32Array.from({ length: n }, (_, i) => wave(i)) };
  }
}

/** Output values as numbers (fp16 bit patterns decoded; integer outputs are finite by construction). */
function outputValues(t: TensorLike): ArrayLike<number> {
  if (t.type === 'float32' || t.type === 'float16') return toFloat32(t);
  return [];
}

function sameIo(a: readonly ValueInfo[], b: readonly ValueInfo[]): string | null {
  const key = (l: readonly ValueInfo[]) => JSON.stringify(l.map((v) => [v.name, v.type, v.shape]));
  return key(a) === key(b) ? null : `the graph has ${key(a)}, the manifest says ${key(b)}`;
}

async function hashFile(path: string): Promise<string> {
  const h = await createSha256();
  for await (const c of createReadStream(path, { highWaterMark: 8 << 20 })) h.update(c as Uint8Array);
  return h.hex();
}

export async function verify(dir: string): Promise<VerifyReport> {
  const mPath = join(dir, 'manifest.json');
  if (!existsSync(mPath))
    throw new BundleError(
      'ManifestError',
      `${mPath} is missing`,
      'point verify at a folder written by npm run models -- prepare',
    );
  const raw = JSON.parse(await readFile(mPath, 'utf8')) as { format?: string };
  const classifier = raw.format === CLASSIFIER_FORMAT;
  const m = classifier ? (raw as ClassifierManifest) : validateManifest(raw, mPath);
  const report: VerifyReport = { id: m.id, files: 0, bytes: 0, components: {} };
  for (const f of m.files) {
    const p = join(dir, f.path);
    if (!existsSync(p))
      throw new BundleError(
        'ModelFileMissingError',
        `${p} is listed in the manifest but missing`,
        'copy the whole bundle folder, or prepare it again',
      );
    const size = statSync(p).size;
    if (size !== f.bytes)
      throw new BundleError(
        'ChecksumError',
        `${p} has ${size} bytes, the manifest says ${f.bytes}`,
        'copy the file again, or prepare the bundle again',
      );
    const got = await hashFile(p);
    if (got !== f.sha256) throw new ChecksumError(p, f.sha256, got);
    report.files++;
    report.bytes += size;
  }
  const comps: [string, ManifestComponent][] = classifier
    ? [['model', (m as ClassifierManifest).model]]
    : (Object.entries((m as ModelManifest).components) as [ComponentName, ManifestComponent][]);
  for (const [name, c] of comps) {
    const file = join(dir, c.file);
    const bytes = new Uint8Array(await readFile(file));
    const s = inspectOnnx(bytes, file);
    for (const io of ['inputs', 'outputs'] as const) {
      const problem = sameIo(s[io], c[io]);
      if (problem)
        throw new BundleError(
          'ManifestError',
          `${file}: ${io} differ from the manifest: ${problem}`,
          'prepare the bundle again (the manifest and the graph come from different runs)',
        );
    }
    if (!classifier)
      assertLayout((m as { layout: 'sdxl-inpaint' | 'sd-inpaint' }).layout, name as ComponentName, file, s);
    const baseDir = c.file.includes('/') ? c.file.slice(0, c.file.lastIndexOf('/') + 1) : '';
    const externalData = (c.externalData ?? []).map((p) => ({
      path: p.slice(baseDir.length),
      data: join(dir, p),
    }));
    const t0 = performance.now();
    const session = await nodeBackend.createSession(bytes, {
      name: `${m.id}/${c.file}`,
      backend: 'cpu',
      ...(externalData.length ? { externalData } : {}),
    });
    try {
      const feeds: Record<string, TensorLike> = {};
      for (const v of s.inputs) feeds[v.name] = tinyInput(v);
      const outs = await session.run(feeds);
      for (const [k, t] of Object.entries(outs)) {
        const data = outputValues(t);
        for (let i = 0; i < data.length; i++)
          if (!Number.isFinite(data[i]))
            throw new BundleError(
              'NonFiniteOutputError',
              `${file}: output ${k} has ${data[i]} at index ${i} on a tiny run`,
              'the conversion broke the graph numerically: prepare without --fp16 (or with --keep-io fp32), or report the model',
            );
      }
      report.components[name] = {
        backend: session.backend,
        outputs: Object.keys(outs),
        ms: performance.now() - t0,
      };
    } finally {
      await session.release();
    }
  }
  return report;
}

/**
 * Writes a converted graph: `model.onnx` plus its weights, inline when they are small, else as ONNX external
 * data split into parts no larger than `maxPart` (`model.onnx_data`, or `model.part1.onnx_data`, … when more
 * than one part is needed), each tensor at a 64-byte aligned offset. Tensors are produced, written and hashed
 * one at a time (plain copies in 8 MiB chunks), so memory stays near the largest tensor; every file's sha256 is
 * computed while it is written.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSha256, type Sha256 } from '../../src/runtime/models/sha256.ts';
import { BundleError } from './errors.ts';
import { dataChunks, dataLength, onnx, readData, type LoadedModel } from './onnx.ts';

export interface WrittenFile {
  /** Path relative to the bundle root. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface WriteOptions {
  /** Largest external-data part, bytes. */
  maxPart: number;
  /** Store weights externally even when they would fit inline (the source did). */
  external: boolean;
}

const ALIGN = 64;
/** Tensors below this stay inline even in external mode (onnx's `size_threshold` default). */
const INLINE_BELOW = 1024;

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}

class PartWriter {
  private fd: number;
  private pos = 0;
  private constructor(
    readonly path: string,
    private readonly h: Sha256,
  ) {
    this.fd = openSync(path, 'w');
  }
  static async open(path: string): Promise<PartWriter> {
    return new PartWriter(path, await createSha256());
  }
  get size(): number {
    return this.pos;
  }
  write(b: Uint8Array): void {
    for (let o = 0; o < b.length;) o += writeSync(this.fd, b, o, b.length - o, this.pos + o);
    this.h.update(b);
    this.pos += b.length;
  }
  align(): number {
    const pad = (ALIGN - (this.pos % ALIGN)) % ALIGN;
    if (pad) this.write(new Uint8Array(pad));
    return this.pos;
  }
  close(): string {
    closeSync(this.fd);
    return this.h.hex();
  }
}

/**
 * Writes `lm` as `<root>/<dir>/model.onnx` (+ parts). Returns the files written (graph first) and the
 * external-data paths, both relative to `root`.
 */
export async function writeGraph(
  lm: LoadedModel,
  root: string,
  dir: string,
  opts: WriteOptions,
): Promise<{ files: WrittenFile[]; externalData: string[] }> {
  const g = lm.model.graph!;
  const inits = g.initializer ?? [];
  const sizes = inits.map((t) => dataLength(lm.data.get(t.name ?? '')!));
  const total = sizes.reduce((a, b) => a + b, 0);
  const external = opts.external || total > opts.maxPart;
  await mkdir(join(root, dir), { recursive: true });

  // Plan the parts first: each tensor's part and offset are known before any byte is written.
  const plan: { part: number; offset: number }[] = [];
  const partSizes: number[] = [];
  if (external)
    inits.forEach((t, i) => {
      if (sizes[i] < INLINE_BELOW) return plan.push({ part: -1, offset: 0 });
      if (sizes[i] > opts.maxPart)
        throw new BundleError(
          'PartLimitError',
          `${lm.file}: initializer ${t.name} has ${formatBytes(sizes[i])}, more than --max-part ${formatBytes(opts.maxPart)} (a tensor cannot span parts)`,
          `raise --max-part to at least ${formatBytes(sizes[i])}, or quantize (--quantize int4|int8) to shrink the tensor`,
        );
      let p = partSizes.length - 1;
      const at = p >= 0 ? Math.ceil(partSizes[p] / ALIGN) * ALIGN : 0;
      if (p < 0 || at + sizes[i] > opts.maxPart) {
        partSizes.push(0);
        p++;
      }
      const offset = Math.ceil(partSizes[p] / ALIGN) * ALIGN;
      partSizes[p] = offset + sizes[i];
      plan.push({ part: p, offset });
    });
  const partName = (p: number) =>
    partSizes.length === 1 ? 'model.onnx_data' : `model.part${p + 1}.onnx_data`;

  const rel = (name: string) => (dir ? `${dir}/${name}` : name);
  const parts: PartWriter[] = [];
  for (let p = 0; p < partSizes.length; p++) parts.push(await PartWriter.open(join(root, dir, partName(p))));
  const files: WrittenFile[] = [];
  try {
    inits.forEach((t, i) => {
      const d = lm.data.get(t.name ?? '')!;
      const where = plan[i];
      if (!external || where.part < 0) {
        t.rawData = readData(d);
        return;
      }
      const w = parts[where.part];
      w.align();
      if (w.size !== where.offset)
        throw new Error(`internal: ${t.name} planned at ${where.offset}, writer at ${w.size}`);
      let n = 0;
      for (const chunk of dataChunks(d)) {
        w.write(chunk);
        n += chunk.length;
      }
      if (n !== sizes[i]) throw new Error(`internal: ${t.name} produced ${n} bytes, planned ${sizes[i]}`);
      t.dataLocation = 1;
      t.rawData = new Uint8Array(0);
      t.externalData = [
        { key: 'location', value: partName(where.part) },
        { key: 'offset', value: String(where.offset) },
        { key: 'length', value: String(sizes[i]) },
      ];
      // Lazy producers may hold the converted tensor; drop the reference so it can be collected.
      lm.data.set(t.name ?? '', { kind: 'bytes', bytes: new Uint8Array(0) });
    });
  } finally {
    for (const [p, w] of parts.entries()) {
      const sha256 = w.close();
      files.push({ path: rel(partName(p)), bytes: w.size, sha256 });
    }
  }
  const bytes = onnx.ModelProto.encode(lm.model).finish();
  await writeFile(join(root, dir, 'model.onnx'), bytes);
  const h = await createSha256();
  files.unshift({ path: rel('model.onnx'), bytes: bytes.length, sha256: h.update(bytes).hex() });
  return { files, externalData: files.slice(1).map((f) => f.path) };
}

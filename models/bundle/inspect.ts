/**
 * `inspect <model.onnx | export-dir>`: what a graph (or each graph of an export) is — inputs/outputs with dtypes
 * and shapes, opsets, an operator histogram, parameter count and bytes per dtype, external-data files — and which
 * layout it matches: `sdxl-inpaint` / `sd-inpaint` for an export (every component checked by the app's own
 * layout rules), `classifier` for one image graph with `[batch, classes]` logits.
 */
import { existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { layoutProblems } from '../../src/runtime/models/layout.ts';
import {
  requiredComponents,
  type ComponentName,
  type ModelLayoutName,
} from '../../src/runtime/models/manifest.ts';
import { inspectOnnx } from '../../src/runtime/models/onnx-inspect.ts';
import type { ValueInfo } from '../../src/core/tensor.ts';
import { BundleError } from './errors.ts';
import { TYPE_NAME, dataLength, dimsOf, elementCount, loadModel, num } from './onnx.ts';
import { readFile } from 'node:fs/promises';

export interface GraphReport {
  file: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opsets: Record<string, number>;
  /** Op type (with its domain when not the default one) → node count. */
  ops: Record<string, number>;
  parameters: number;
  /** dtype → { count (elements), bytes }. */
  dtypes: Record<string, { parameters: number; bytes: number }>;
  externalData: string[];
  /** Ops that mean the graph is quantized, with counts. */
  quantizedOps: Record<string, number>;
}

export interface InspectReport {
  path: string;
  /** The layout it matches, or null with `problems` saying why none does. */
  layout: ModelLayoutName | 'classifier' | null;
  problems: string[];
  /** Classes of a classifier's logits. */
  classes?: number;
  graphs: Record<string, GraphReport>;
}

const QUANT =
  /^(com\.microsoft\.)?(QLinear\w+|QuantizeLinear|DequantizeLinear|MatMulInteger|ConvInteger|DynamicQuantizeLinear|MatMulNBits)$/;

export async function inspectGraph(file: string, root = ''): Promise<GraphReport> {
  const lm = await loadModel(file);
  const s = inspectOnnx(new Uint8Array(await readFile(file)), file);
  const ops: Record<string, number> = {};
  for (const n of lm.model.graph?.node ?? []) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : (n.opType ?? '');
    ops[key] = (ops[key] ?? 0) + 1;
  }
  const dtypes: GraphReport['dtypes'] = {};
  let parameters = 0;
  for (const t of lm.model.graph?.initializer ?? []) {
    const type = TYPE_NAME[num(t.dataType)] ?? String(t.dataType);
    const count = elementCount(dimsOf(t));
    dtypes[type] ??= { parameters: 0, bytes: 0 };
    dtypes[type].parameters += count;
    dtypes[type].bytes += dataLength(lm.data.get(t.name ?? '')!);
    parameters += count;
  }
  return {
    file: root ? relative(root, file) : file,
    inputs: s.inputs,
    outputs: s.outputs,
    opsets: s.opsets,
    ops: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1])),
    parameters,
    dtypes,
    externalData: lm.externalFiles.map((f) => relative(root || join(file, '..'), f)),
    quantizedOps: Object.fromEntries(Object.entries(ops).filter(([k]) => QUANT.test(k))),
  };
}

/** A single graph is a classifier when it takes one image `[B, 3, H, W]` and gives `[B, classes]` logits. */
function classifierOf(g: GraphReport): { classes: number } | string {
  const img = g.inputs.find(
    (v) => v.shape.length === 4 && (v.shape[1] === 3 || typeof v.shape[1] !== 'number'),
  );
  const logits = g.outputs.find((v) => v.shape.length === 2);
  if (!img)
    return `no image input [batch, 3, H, W] (inputs: ${g.inputs.map((v) => `${v.name} [${v.shape}]`).join(', ')})`;
  if (!logits)
    return `no [batch, classes] output (outputs: ${g.outputs.map((v) => `${v.name} [${v.shape}]`).join(', ')})`;
  return { classes: typeof logits.shape[1] === 'number' ? logits.shape[1] : -1 };
}

export async function inspect(path: string): Promise<InspectReport> {
  if (!existsSync(path))
    throw new BundleError(
      'ModelFileMissingError',
      `${path} does not exist`,
      'pass an .onnx file or an export folder',
    );
  if (statSync(path).isFile() || !existsSync(join(path, 'unet/model.onnx'))) {
    const file = statSync(path).isFile() ? path : join(path, 'model.onnx');
    if (!existsSync(file))
      throw new BundleError(
        'LayoutMismatchError',
        `${path} holds neither unet/model.onnx nor model.onnx`,
        'pass an .onnx file or an optimum export folder',
      );
    const g = await inspectGraph(file);
    const c = classifierOf(g);
    return typeof c === 'string'
      ? { path, layout: null, problems: [c], graphs: { model: g } }
      : { path, layout: 'classifier', problems: [], classes: c.classes, graphs: { model: g } };
  }
  const layout: ModelLayoutName = existsSync(join(path, 'text_encoder_2/model.onnx'))
    ? 'sdxl-inpaint'
    : 'sd-inpaint';
  const graphs: Record<string, GraphReport> = {};
  const problems: string[] = [];
  for (const c of requiredComponents(layout) as ComponentName[]) {
    const file = join(path, c, 'model.onnx');
    if (!existsSync(file)) {
      problems.push(`${c}/model.onnx is missing`);
      continue;
    }
    const g = await inspectGraph(file, path);
    graphs[c] = g;
    for (const p of layoutProblems(layout, c, g)) problems.push(`${c}: ${p}`);
  }
  return { path, layout: problems.length ? null : layout, problems, graphs };
}

/** A readable summary of a report (the CLI prints this; `--json` prints the report itself). */
export function formatInspect(r: InspectReport): string {
  const lines = [
    `${r.path}: ${r.layout ? `matches ${r.layout}` : 'matches no layout'}${r.classes ? ` (${r.classes} classes)` : ''}`,
  ];
  for (const p of r.problems) lines.push(`  ! ${p}`);
  for (const [name, g] of Object.entries(r.graphs)) {
    lines.push(
      `${name} (${g.file}): opsets ${Object.entries(g.opsets)
        .map(([d, v]) => `${d || 'ai.onnx'} ${v}`)
        .join(', ')}`,
    );
    for (const v of g.inputs) lines.push(`  in  ${v.name}: ${v.type} [${v.shape.join(', ')}]`);
    for (const v of g.outputs) lines.push(`  out ${v.name}: ${v.type} [${v.shape.join(', ')}]`);
    lines.push(
      `  parameters ${g.parameters.toLocaleString('en')}: ${Object.entries(g.dtypes)
        .map(([t, d]) => `${t} ${d.parameters.toLocaleString('en')} (${(d.bytes / 1e6).toFixed(2)} MB)`)
        .join(', ')}`,
    );
    lines.push(
      `  ops: ${Object.entries(g.ops)
        .map(([k, v]) => `${k}×${v}`)
        .join(' ')}`,
    );
    if (Object.keys(g.quantizedOps).length)
      lines.push(
        `  quantized: ${Object.entries(g.quantizedOps)
          .map(([k, v]) => `${k}×${v}`)
          .join(' ')}`,
      );
    if (g.externalData.length) lines.push(`  external data: ${g.externalData.join(', ')}`);
  }
  return lines.join('\n');
}

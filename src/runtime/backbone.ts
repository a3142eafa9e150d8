/**
 * Frozen backbones for features: load an ONNX image classifier, rewrite its graph so it also outputs a pooled
 * feature vector and one spatial feature map, and extract both for RasterImages in batches.
 *
 * The graph rewrite (onnx-proto, at load time, nothing stored) finds the last global pooling:
 * - `GlobalAveragePool` (float models): pooled = its output `[B, C, 1, 1]`, spatial = its input `[B, C, h, w]`;
 * - `QLinearGlobalAveragePool` (int8 models such as MobileNetV2-12-int8): both are dequantized with their own
 *   scale/zero-point (`DequantizeLinear(464_quantized, 464_scale, 464_zero_point)` is the same values as the
 *   README's `472_quantized` reshape), reusing an existing DequantizeLinear of the input when there is one;
 * - no global pool but a `Flatten` (ResNet exports with a 7×7 `AveragePool`): pooled = the Flatten output,
 *   spatial = the input of the pooling node before it.
 * The original outputs stay first and unchanged, so the classifier's logits are still there (tests compare them
 * to the unrewritten model).
 *
 * Feature taps: any number of named intermediate maps (the manifest's `taps`, e.g. MobileNetV2's stride-8/16/32
 * block outputs, each dequantized with its own scale/zero-point) become extra outputs of the same session, so
 * one run gives every map a head asks for. With `dynamicInput` the input's H/W become symbolic and the graph's
 * stored intermediate shapes are dropped (onnxruntime re-infers them): convolutions do not care about the size,
 * so the backbone runs at an image's own resolution (`extractTaps` with `resolution`).
 *
 * Runtime access goes through the ORT door (`OrtBackend` from `ort-node.ts` / `ort-web.ts`); this module imports
 * only its types, so it runs in Node, a worker or the page.
 */
import onnxProto from 'onnx-proto';
import { DefectLabError, InvalidArgumentError } from '../core/errors.ts';
import { type RasterImage, createRaster, crop } from '../core/image.ts';
import {
  type PreprocessOptions,
  imagenetPreprocess,
  preprocessBatch,
  preprocessingId,
  resizeForBackbone,
} from '../core/preprocess.ts';
import {
  type InputResolution,
  framePreprocess,
  resolutionId,
  stitchTiles,
  tilePlan,
} from '../core/resolution.ts';
import { type CancelSignal, type ProgressFn, throwIfCancelled } from '../core/progress.ts';
import { type SessionLike, float32, toFloat32 } from '../core/tensor.ts';
import { sha256Hex } from '../core/hash.ts';
import type { DefectLabStore, StoredFeatures } from './db/types.ts';
import type { FeatureMap } from './heads/spatial.ts';
import type { Backend, OrtBackend } from './ort.ts';
import {
  type FloatPathReport,
  type FloatPrecision,
  type FloatRounding,
  floatPath,
  isQuantizedOps,
} from './dequantize.ts';
// The attribute lets Node's own ESM loader (Playwright's test process, which runs server jobs in e2e) read it.
import backbonesJson from '../../models/manifests/backbones.json' with { type: 'json' };

const { onnx } = onnxProto;
type ModelProtoT = InstanceType<typeof onnx.ModelProto>;
type NodeProtoT = onnxProto.onnx.INodeProto;
type ValueInfoT = onnxProto.onnx.IValueInfoProto;

/** A model file that cannot be turned into a feature extractor. */
export class BackboneGraphError extends DefectLabError {
  constructor(name: string, problem: string) {
    super(
      'BackboneGraphError',
      `${name}: ${problem}`,
      'pick an ONNX image classifier with a global average pool before its classifier (MobileNet, ResNet, EfficientNet exports)',
    );
  }
}

/** What the rewrite found and added. */
export interface FeatureGraphInfo {
  inputName: string;
  /** Input shape as declared (symbolic dims as strings). */
  inputShape: (number | string)[];
  /** The model's own outputs (logits), unchanged. */
  originalOutputs: string[];
  /** Output holding pooled features, `[B, C]` or `[B, C, 1, 1]`. */
  pooledOutput: string;
  /** Output holding the spatial map `[B, C, h, w]`. */
  spatialOutput: string;
  /** 'int8' when the pooled features come from a quantized pooling node. */
  quantized: boolean;
  /** Graph output of each feature tap, by tap name (float, `[B, C, h, w]`). */
  tapOutputs: Record<string, string>;
  /** Whether the input's H/W were made symbolic (any input size runs). */
  dynamicInput: boolean;
  /**
   * 'fp32' / 'fp16' when the session runs the float path of a quantized graph (`dequantize.ts`), 'off' when it
   * runs the graph as it is. Output names (taps, pooled, spatial) are the same either way.
   */
  floatPath?: 'off' | FloatPrecision;
  /** Who runs the graph when a float path is on (`LoadBackboneOptions.floatExecutor`). */
  floatExecutor?: FloatExecutor;
  /** With a float path: whether activations are rounded to their int8 grid ('int8') or not ('none'). */
  floatRounding?: FloatRounding;
  /** The graph has quantized ops (QLinear*, QDQ), so a float path is a candidate for it. */
  quantizedGraph?: boolean;
}

const FEATURE_SUFFIX = '__defectlab';

/**
 * A manifest's (or caller's) choice of spatial map instead of the pool's input, e.g. MobileNetV2's 96×14×14
 * stride-16 output (finer, lighter, but measured worse for the CSE and spatial heads on the magnetic tiles; see
 * models/manifests/backbones.json). `scale`/`zeroPoint` name the quantization initializers of an int8 tensor.
 */
export interface SpatialTensorSpec {
  tensor: string;
  scale?: string;
  zeroPoint?: string;
}

/** A named intermediate map: `365_quantized` (+ scale/zero point) as `s8`. */
export interface FeatureTapSpec extends SpatialTensorSpec {
  name: string;
  /** Input pixels per map cell (8, 16, 32), for documentation and grid checks. */
  stride?: number;
}

export interface RewriteOptions {
  taps?: readonly FeatureTapSpec[];
  /** Make the input's H/W symbolic (`height`, `width`) so any size runs. */
  dynamicInput?: boolean;
}

function shapeOf(vi: ValueInfoT): (number | string)[] {
  const dims = vi.type?.tensorType?.shape?.dim ?? [];
  return dims.map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? Number(d.dimValue) : -1));
}

function floatOutput(name: string) {
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } });
}

/**
 * Adds the pooled and spatial feature outputs to an ONNX classifier. Returns the new model bytes and what was
 * found. Pure (bytes in, bytes out), so it runs in Node and in the browser.
 */
export function rewriteForFeatures(
  bytes: Uint8Array,
  name = 'model',
  spatialTensor?: SpatialTensorSpec,
  extra: RewriteOptions = {},
): { bytes: Uint8Array; info: FeatureGraphInfo } {
  let model: ModelProtoT;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new BackboneGraphError(name, `is not an ONNX model (${(e as Error).message})`);
  }
  const g = model.graph;
  if (!g || !g.node?.length) throw new BackboneGraphError(name, 'has an empty graph');
  const nodes = g.node;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const inputs = (g.input ?? []).filter((i) => !inits.has(i.name));
  const preferred = ['pixel_values', 'data', 'input', 'images', 'x'];
  const input = preferred.map((p) => inputs.find((i) => i.name === p)).find(Boolean) ?? inputs[0];
  if (!input?.name) throw new BackboneGraphError(name, 'has no image input');
  const consumers = (t: string) => nodes.filter((n) => n.input?.includes(t));
  const producer = (t: string) => nodes.find((n) => n.output?.includes(t));
  const added: NodeProtoT[] = [];
  const dequant = (x: string, scale: string, zp: string): string => {
    const existing = consumers(x).find((n) => n.opType === 'DequantizeLinear');
    if (existing?.output?.[0]) return existing.output[0];
    const out = `${x}${FEATURE_SUFFIX}_float`;
    added.push(
      onnx.NodeProto.create({
        opType: 'DequantizeLinear',
        input: [x, scale, zp],
        output: [out],
        name: `${out}_node`,
      }),
    );
    return out;
  };

  let pooled: string;
  let spatial: string;
  let quantized = false;
  const lastIndex = (pred: (n: NodeProtoT) => boolean) => {
    for (let i = nodes.length - 1; i >= 0; i--) if (pred(nodes[i])) return i;
    return -1;
  };
  const gi = lastIndex((n) => n.opType === 'GlobalAveragePool' || n.opType === 'QLinearGlobalAveragePool');
  if (gi >= 0) {
    const gap = nodes[gi];
    const [x, xScale, xZp, yScale, yZp] = gap.input ?? [];
    if (gap.opType === 'QLinearGlobalAveragePool') {
      quantized = true;
      spatial = dequant(x, xScale, xZp);
      pooled = dequant(gap.output![0], yScale, yZp);
    } else {
      spatial = x;
      pooled = gap.output![0];
    }
  } else {
    const fi = lastIndex((n) => n.opType === 'Flatten');
    if (fi < 0) throw new BackboneGraphError(name, 'has neither a GlobalAveragePool nor a Flatten node');
    const flat = nodes[fi];
    pooled = flat.output![0];
    const pool = producer(flat.input![0]);
    if (!pool || !['AveragePool', 'ReduceMean', 'MaxPool', 'GlobalMaxPool'].includes(pool.opType ?? ''))
      throw new BackboneGraphError(name, `the Flatten node ${flat.name} is not fed by a pooling node`);
    spatial = pool.input![0];
  }
  // One dequantized output per quantized tensor: the spatial map and a tap may name the same tensor (the CSE
  // test's stride-16 map is tap s16), and two float nodes of one name make an invalid graph.
  const floats = new Map<string, string>();
  const floatOf = (spec: SpatialTensorSpec, what: string): string => {
    const known = floats.get(`${spec.tensor}|${spec.scale ?? ''}|${spec.zeroPoint ?? ''}`);
    if (known) return known;
    const out = floatOfNew(spec, what);
    floats.set(`${spec.tensor}|${spec.scale ?? ''}|${spec.zeroPoint ?? ''}`, out);
    return out;
  };
  const floatOfNew = (spec: SpatialTensorSpec, what: string): string => {
    if (!nodes.some((n) => n.output?.includes(spec.tensor)))
      throw new BackboneGraphError(name, `has no tensor named ${spec.tensor} (${what})`);
    if (!!spec.scale !== !!spec.zeroPoint)
      throw new BackboneGraphError(
        name,
        `${what}: give both scale and zeroPoint of ${spec.tensor}, or neither`,
      );
    for (const q of [spec.scale, spec.zeroPoint])
      if (q && !inits.has(q)) throw new BackboneGraphError(name, `has no initializer named ${q} (${what})`);
    return spec.scale && spec.zeroPoint ? dequant(spec.tensor, spec.scale, spec.zeroPoint) : spec.tensor;
  };
  if (spatialTensor) spatial = floatOf(spatialTensor, 'from the manifest');
  const tapOutputs: Record<string, string> = {};
  for (const t of extra.taps ?? []) {
    if (!t.name) throw new BackboneGraphError(name, `a feature tap on ${t.tensor} has no name`);
    if (tapOutputs[t.name]) throw new BackboneGraphError(name, `two feature taps are named ${t.name}`);
    tapOutputs[t.name] = floatOf(t, `feature tap ${t.name}`);
  }
  g.node = [...nodes, ...added];
  const originalOutputs = (g.output ?? []).map((o) => o.name!);
  const existing = new Set(originalOutputs);
  for (const t of [pooled, spatial, ...Object.values(tapOutputs)])
    if (!existing.has(t)) {
      g.output!.push(floatOutput(t));
      existing.add(t);
    }
  const dynamicInput = !!extra.dynamicInput;
  if (dynamicInput) {
    const dims = input.type?.tensorType?.shape?.dim;
    if (!dims || dims.length !== 4) throw new BackboneGraphError(name, 'has no [N, C, H, W] image input');
    dims[2] = { dimParam: 'height' };
    dims[3] = { dimParam: 'width' };
    // Stored intermediate shapes were inferred at the export's fixed size; stale ones would contradict a
    // different input size, and onnxruntime infers them again anyway.
    g.valueInfo = [];
    for (const o of g.output ?? []) {
      const od = o.type?.tensorType?.shape?.dim;
      if (od && od.length === 4) o.type!.tensorType!.shape = null;
    }
  }
  return {
    bytes: onnx.ModelProto.encode(model).finish(),
    info: {
      inputName: input.name,
      inputShape: shapeOf(input),
      originalOutputs,
      pooledOutput: pooled,
      spatialOutput: spatial,
      quantized,
      tapOutputs,
      dynamicInput,
      quantizedGraph: isQuantizedOps(nodes.map((n) => n.opType ?? '')),
    },
  };
}

/** One backbone of `models/manifests/backbones.json`. */
export interface BackboneManifestEntry {
  id: string;
  name: string;
  /** Where the ONNX file comes from: a local path (Node, dev server `/models/…`), a hub URL, or the user's pick. */
  source: { kind: 'local' | 'url' | 'user'; path?: string; url?: string };
  /** Known input names to try (`pixel_values` for Hugging Face exports, `data` for the ONNX zoo, `input`). */
  inputNames?: string[];
  /** Input resolution and normalization the backbone was trained with. */
  preprocess: PreprocessOptions;
  spatialTensor?: SpatialTensorSpec;
  /** Named intermediate maps heads may ask for (PatchCore, mask-supervised heads). */
  taps?: FeatureTapSpec[];
  /** Pooled feature size and spatial map size at the manifest's resolution. */
  featureDim?: number;
  spatial?: [number, number, number];
  license?: string;
  sha256?: string;
  sizeBytes?: number;
  notes?: string;
}

export interface ExtractOptions {
  batchSize?: number;
  signal?: CancelSignal;
  onProgress?: ProgressFn;
  /** Skip the spatial map (smaller results when only pooled features are needed). */
  pooledOnly?: boolean;
}

export interface Features {
  /** `[D]` per image. */
  pooled: Float32Array[];
  /** `[C, h, w]` per image (absent with `pooledOnly`). */
  spatial: FeatureMap[];
}

export interface LoadBackboneOptions {
  /** Stable id for cache keys ('mobilenetv2-12-int8', or 'user:<sha256>' for a picked file). */
  id: string;
  ort: OrtBackend;
  device?: Backend;
  preprocess?: PreprocessOptions;
  /** Which tensor is the spatial map (from the manifest); default: the input of the last global pool. */
  spatialTensor?: SpatialTensorSpec;
  /** Named intermediate maps to expose (from the manifest). */
  taps?: readonly FeatureTapSpec[];
  /** Make the input's H/W symbolic so `extractTaps` can run other sizes than the preprocessing's. */
  dynamicInput?: boolean;
  /**
   * Run the float path of a quantized (QLinear* / QDQ) graph: weights dequantized, float ops, fp16 storage with
   * 'fp16' (`dequantize.ts`; choose with `chooseFloatPrecision`). A float graph is unchanged by 'fp32'.
   */
  floatPath?: FloatPrecision;
  /** With `floatPath`: 'int8' rounds every activation to its int8 grid (features ≈ the int8 graph's). */
  floatRounding?: FloatRounding;
  /**
   * Who runs the float path on WASM: onnxruntime-web (default) or tfjs-backend-wasm's XNNPACK kernels
   * (`onnx-tf.ts`; fp32 only, the op set it lists). Ignored without `floatPath`.
   */
  floatExecutor?: FloatExecutor;
  name?: string;
}

/** Who runs a float path: onnxruntime (the ORT door) or the tfjs executor (`onnx-tf.ts`, XNNPACK on WASM). */
export type FloatExecutor = 'onnxruntime' | 'tfjs';

export interface TapExtractOptions {
  /** Tap names to return (default: every tap the backbone was loaded with). */
  taps?: readonly string[];
  /** Input geometry (default: the backbone's fixed preprocessing). */
  resolution?: InputResolution;
  batchSize?: number;
  signal?: CancelSignal;
  onProgress?: ProgressFn;
}

/** One image's maps, by tap name, and the frame they cover (draw heat maps through `frame`). */
export interface TapFeatures {
  maps: Record<string, FeatureMap>;
  frame: PreprocessOptions;
}

/** A loaded backbone: one session over the rewritten graph. */
export class Backbone {
  private constructor(
    readonly id: string,
    readonly session: SessionLike & { backend?: Backend; fallbackReason?: string },
    readonly info: FeatureGraphInfo,
    readonly preprocess: PreprocessOptions,
  ) {}

  /** What the float path rewrote (null when the graph runs as it is). */
  floatReport: FloatPathReport | null = null;

  static async load(model: Uint8Array, o: LoadBackboneOptions): Promise<Backbone> {
    const label = o.name ?? o.id;
    const rewritten = rewriteForFeatures(model, label, o.spatialTensor, {
      taps: o.taps,
      dynamicInput: o.dynamicInput,
    });
    let { bytes } = rewritten;
    const info: FeatureGraphInfo = { ...rewritten.info, floatPath: 'off' };
    let report: FloatPathReport | null = null;
    if (o.floatPath) {
      // After the feature rewrite: its DequantizeLinear outputs (taps, pooled, spatial) become Identities of the
      // float twins, so every output keeps its name.
      const fp = floatPath(bytes, o.floatPath, label, o.floatRounding);
      if (Object.keys(fp.report.rewritten).length || o.floatPath === 'fp16') {
        bytes = fp.bytes;
        report = fp.report;
        info.floatPath = o.floatPath;
        info.floatRounding = fp.report.rounding;
      }
    }
    const tfjs = o.floatExecutor === 'tfjs' && info.floatPath !== 'off';
    if (tfjs && info.floatPath !== 'fp32')
      throw new DefectLabError(
        'FloatPathError',
        `${label}: the tfjs executor runs fp32 float paths only, not ${info.floatPath}`,
        'choose float path fp32, or the onnxruntime executor',
      );
    // Loaded on demand: only this path pulls tfjs into the features worker.
    const session = tfjs
      ? await (await import('./onnx-tf.ts')).OnnxTfSession.create(bytes, label)
      : await o.ort.createSession(bytes, { backend: o.device, name: label });
    info.floatExecutor = tfjs ? 'tfjs' : 'onnxruntime';
    const [, , h, w] = info.inputShape;
    const pre =
      o.preprocess ??
      imagenetPreprocess(typeof w === 'number' && w > 0 ? w : 224, typeof h === 'number' && h > 0 ? h : 224);
    const b = new Backbone(o.id, session, info, pre);
    b.floatReport = report;
    return b;
  }

  /**
   * The feature cache's backbone key: the id, plus the float path when one runs (its features differ from the
   * int8 graph's by the int8 rounding, so the two must never share cached rows).
   */
  get cacheId(): string {
    const p = this.info.floatPath ?? 'off';
    if (p === 'off') return this.id;
    return `${this.id}|float:${p}${this.info.floatRounding === 'int8' ? '+int8-rounding' : ''}`;
  }

  /** Where it runs ('webgpu', 'wasm', 'cpu') and why, when that is not what was asked. */
  get backend(): string {
    return this.session.backend ?? 'unknown';
  }

  /** `preprocessingId` of this backbone's preprocessing; with `id`, the feature-cache key. */
  get preprocessingId(): string {
    return preprocessingId(this.preprocess);
  }

  /** Runs one batch; returns the requested outputs as float32 with their dims. */
  async runBatch(images: readonly RasterImage[], outputs: readonly string[], pre = this.preprocess) {
    const { data, dims } = preprocessBatch(images, pre);
    const res = await this.session.run({ [this.info.inputName]: float32(data, dims) }, outputs);
    return Object.fromEntries(outputs.map((n) => [n, { data: toFloat32(res[n]), dims: res[n].dims }]));
  }

  /** Pooled `[D]` and spatial `[C, h, w]` features per image, in batches. */
  async extract(images: readonly RasterImage[], o: ExtractOptions = {}): Promise<Features> {
    const bs = Math.max(1, o.batchSize ?? 8);
    const pooled: Float32Array[] = [];
    const spatial: FeatureMap[] = [];
    const outs = o.pooledOnly ? [this.info.pooledOutput] : [this.info.pooledOutput, this.info.spatialOutput];
    for (let s = 0; s < images.length; s += bs) {
      throwIfCancelled(o.signal, 'feature extraction', `${s} of ${images.length} images done`);
      const batch = images.slice(s, s + bs);
      const r = await this.runBatch(batch, outs);
      const p = r[this.info.pooledOutput];
      const d = p.data.length / batch.length;
      for (let i = 0; i < batch.length; i++) pooled.push(p.data.slice(i * d, (i + 1) * d));
      if (!o.pooledOnly) {
        const sp = r[this.info.spatialOutput];
        const [, c, h, w] = sp.dims;
        const n = c * h * w;
        for (let i = 0; i < batch.length; i++)
          spatial.push({ data: sp.data.slice(i * n, (i + 1) * n), dims: [c, h, w] });
      }
      o.onProgress?.({ stage: 'features', done: s + batch.length, total: images.length, unit: 'items' });
    }
    return { pooled, spatial };
  }

  /** Tap names this backbone exposes. */
  get taps(): string[] {
    return Object.keys(this.info.tapOutputs);
  }

  /**
   * Named intermediate maps `[C, h, w]` per image, at the chosen input resolution. Images whose frames have the
   * same size share a batch; `tile` runs each tile and stitches the maps (cells under two tiles averaged).
   */
  async extractTaps(images: readonly RasterImage[], o: TapExtractOptions = {}): Promise<TapFeatures[]> {
    const names = o.taps ?? this.taps;
    if (names.length === 0)
      throw new InvalidArgumentError(
        'taps',
        `tap names of ${this.id} (load it with the manifest's taps)`,
        'none',
      );
    for (const t of names)
      if (!this.info.tapOutputs[t])
        throw new InvalidArgumentError('tap', `one of ${this.taps.join(', ') || '(none loaded)'}`, t);
    const res = o.resolution ?? { mode: 'fixed' };
    const frames = images.map((img) => framePreprocess(res, this.preprocess, img.width, img.height));
    const [, , fh, fw] = this.info.inputShape;
    if (!this.info.dynamicInput && frames.some((f) => f.width !== fw || f.height !== fh))
      throw new InvalidArgumentError(
        'resolution',
        `the model's fixed ${fw}×${fh} input (or load the backbone with dynamicInput: true)`,
        resolutionId(res),
      );
    const outs = names.map((t) => this.info.tapOutputs[t]);
    const bs = Math.max(1, o.batchSize ?? 8);
    const result: TapFeatures[] = new Array(images.length);
    const split = (r: Record<string, { data: Float32Array; dims: readonly number[] }>, k: number) => {
      const maps: Record<string, FeatureMap> = {};
      names.forEach((t, j) => {
        const { data, dims } = r[outs[j]];
        const [, c, h, w] = dims;
        maps[t] = { data: data.slice(k * c * h * w, (k + 1) * c * h * w), dims: [c, h, w] };
      });
      return maps;
    };
    // Same-size frames batch together (a batch is one tensor).
    const groups = new Map<string, number[]>();
    frames.forEach((f, i) => {
      const key = `${f.width}x${f.height}`;
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    let done = 0;
    for (const idx of groups.values()) {
      for (let s = 0; s < idx.length; s += bs) {
        throwIfCancelled(o.signal, 'feature extraction', `${done} of ${images.length} images done`);
        const part = idx.slice(s, s + bs);
        const frame = frames[part[0]];
        if (res.mode === 'tile') {
          for (const i of part)
            result[i] = { maps: await this.tiled(images[i], frame, res.overlap ?? 0, names, outs), frame };
        } else {
          const r = await this.runBatch(
            part.map((i) => images[i]),
            outs,
            frame,
          );
          part.forEach((i, k) => (result[i] = { maps: split(r, k), frame }));
        }
        done += part.length;
        o.onProgress?.({ stage: 'features', done, total: images.length, unit: 'items' });
      }
    }
    return result;
  }

  private async tiled(
    img: RasterImage,
    frame: PreprocessOptions,
    overlap: number,
    names: readonly string[],
    outs: string[],
  ) {
    const sized = resizeForBackbone(img, frame);
    const boxes = tilePlan(frame.width, frame.height, overlap);
    const tilePre = { ...frame, width: boxes[0].size, height: boxes[0].size };
    const crops = boxes.map((b) => crop(sized, { x: b.x, y: b.y, width: b.size, height: b.size }));
    const r = await this.runBatch(crops, outs, tilePre);
    const maps: Record<string, FeatureMap> = {};
    names.forEach((t, j) => {
      const { data, dims } = r[outs[j]];
      const [, c, h, w] = dims;
      const tiles = boxes.map((_, k) => ({
        data: data.subarray(k * c * h * w, (k + 1) * c * h * w),
        dims: [c, h, w] as [number, number, number],
      }));
      maps[t] = stitchTiles(tiles, boxes, frame.width, frame.height);
    });
    return maps;
  }

  /** The classifier's own outputs (ImageNet logits), `[N, K]` rows. */
  async logits(images: readonly RasterImage[]): Promise<Float32Array[]> {
    const name = this.info.originalOutputs[0];
    const r = await this.runBatch(images, [name]);
    const k = r[name].data.length / images.length;
    return images.map((_, i) => r[name].data.slice(i * k, (i + 1) * k));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * Milliseconds per image of `batch` synthetic images at each backbone's input size through its session (pooled +
 * spatial, as `extract` asks): one warm-up run each, then `rounds` rounds that run every backbone once in turn,
 * best round kept per backbone. Interleaved, so a burst of load from another tab or worker hits every candidate
 * alike: what "auto" compares a float path with the int8 graph by.
 */
export async function timeBackbones(list: readonly Backbone[], batch = 2, rounds = 3): Promise<number[]> {
  const inputs = list.map((b) => {
    const { width, height } = b.preprocess;
    const img = createRaster(width, height, 3);
    for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 2654435761) >>> 24;
    return Array.from({ length: batch }, () => img);
  });
  const once = (k: number) =>
    list[k].runBatch(inputs[k], [list[k].info.pooledOutput, list[k].info.spatialOutput]);
  for (let k = 0; k < list.length; k++) await once(k);
  const best = list.map(() => Infinity);
  for (let r = 0; r < rounds; r++)
    for (let k = 0; k < list.length; k++) {
      const t0 = performance.now();
      await once(k);
      best[k] = Math.min(best[k], (performance.now() - t0) / batch);
    }
  return best;
}

/** An image with its content hash (the store's `ImageRecord.sha256`), the cache key's image part. */
export interface KeyedImage {
  sha256: string;
  load(): Promise<RasterImage> | RasterImage;
}

/** Hash of decoded pixels, for images that have no stored bytes (generated on the fly). */
export async function rasterSha256(img: RasterImage): Promise<string> {
  const head = new TextEncoder().encode(`${img.width}x${img.height}x${img.channels}:`);
  const all = new Uint8Array(head.length + img.data.length);
  all.set(head);
  all.set(img.data, head.length);
  return sha256Hex(all);
}

/**
 * Feature extraction through the store's cache, keyed by (backbone id, image sha256, preprocessing id):
 * cached images are not decoded nor run again, so re-running costs nothing.
 */
export class CachedFeatures {
  hits = 0;
  misses = 0;
  constructor(
    readonly backbone: Backbone,
    readonly store: Pick<DefectLabStore, 'getFeatures' | 'putFeatures'>,
  ) {}

  async extract(items: readonly KeyedImage[], o: ExtractOptions = {}): Promise<StoredFeatures[]> {
    const pre = this.backbone.preprocessingId;
    const key = (sha256: string) => ({ backbone: this.backbone.cacheId, sha256, preprocessing: pre });
    const out: (StoredFeatures | undefined)[] = await Promise.all(
      items.map((it) => this.store.getFeatures(key(it.sha256))),
    );
    const todo = out.flatMap((f, i) => (f && (o.pooledOnly || f.spatial) ? [] : [i]));
    this.hits += items.length - todo.length;
    this.misses += todo.length;
    const bs = Math.max(1, o.batchSize ?? 8);
    for (let s = 0; s < todo.length; s += bs) {
      throwIfCancelled(o.signal, 'feature extraction', `${s} of ${todo.length} new images done`);
      const idx = todo.slice(s, s + bs);
      const images = await Promise.all(idx.map((i) => items[i].load()));
      const f = await this.backbone.extract(images, { ...o, batchSize: bs, onProgress: undefined });
      for (let k = 0; k < idx.length; k++) {
        const sp = f.spatial[k];
        const stored: StoredFeatures = {
          pooled: f.pooled[k],
          ...(sp ? { spatial: { data: sp.data, dims: [sp.dims[0], sp.dims[1], sp.dims[2]] } } : {}),
        };
        out[idx[k]] = stored;
        await this.store.putFeatures(key(items[idx[k]].sha256), stored);
      }
      o.onProgress?.({
        stage: 'features',
        done: items.length - todo.length + s + idx.length,
        total: items.length,
        unit: 'items',
        message: `${this.hits} cached`,
      });
    }
    return out as StoredFeatures[];
  }
}

/**
 * Tap maps through the store's feature cache, one record per (backbone, image sha256, preprocessing + tap +
 * resolution), so a head asking for `s16` + `s32` reuses what another head extracted for `s16`, and a different
 * resolution never collides. The store's record shape is the pooled/spatial one: the map goes in `spatial`, and
 * `pooled` holds the frame `[width, height]` it covers (a cached native-resolution map must say its frame without
 * decoding the image again).
 */
export class CachedTaps {
  hits = 0;
  misses = 0;
  constructor(
    readonly backbone: Backbone,
    readonly store: Pick<DefectLabStore, 'getFeatures' | 'putFeatures'>,
  ) {}

  private key(sha256: string, tap: string, res: InputResolution) {
    return {
      backbone: this.backbone.cacheId,
      sha256,
      preprocessing: `${this.backbone.preprocessingId}|tap:${tap}|${resolutionId(res)}`,
    };
  }

  async extract(items: readonly KeyedImage[], o: TapExtractOptions = {}): Promise<TapFeatures[]> {
    const taps = o.taps ?? this.backbone.taps;
    const res = o.resolution ?? { mode: 'fixed' };
    const out: TapFeatures[] = new Array(items.length);
    const todo: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const got = await Promise.all(
        taps.map((t) => this.store.getFeatures(this.key(items[i].sha256, t, res))),
      );
      if (got.every((g) => g?.spatial && g.pooled.length === 2)) {
        const [w, h] = got[0]!.pooled;
        const frame = framePreprocess(res, this.backbone.preprocess, w, h);
        const maps: Record<string, FeatureMap> = {};
        taps.forEach((t, k) => (maps[t] = got[k]!.spatial!));
        out[i] = { maps, frame: { ...frame, width: w, height: h } };
        this.hits++;
      } else {
        todo.push(i);
        this.misses++;
      }
    }
    const bs = Math.max(1, o.batchSize ?? 8);
    for (let s = 0; s < todo.length; s += bs) {
      throwIfCancelled(o.signal, 'feature extraction', `${s} of ${todo.length} new images done`);
      const idx = todo.slice(s, s + bs);
      const images = await Promise.all(idx.map((i) => items[i].load()));
      const f = await this.backbone.extractTaps(images, { ...o, taps, batchSize: bs, onProgress: undefined });
      for (let k = 0; k < idx.length; k++) {
        out[idx[k]] = f[k];
        for (const t of taps) {
          const m = f[k].maps[t];
          await this.store.putFeatures(this.key(items[idx[k]].sha256, t, res), {
            pooled: Float32Array.of(f[k].frame.width, f[k].frame.height),
            spatial: { data: m.data, dims: [m.dims[0], m.dims[1], m.dims[2]] },
          });
        }
      }
      o.onProgress?.({
        stage: 'features',
        done: items.length - todo.length + s + idx.length,
        total: items.length,
        unit: 'items',
        message: `${this.hits} cached`,
      });
    }
    return out;
  }
}

export function validateManifest(entries: unknown): BackboneManifestEntry[] {
  if (!Array.isArray(entries))
    throw new InvalidArgumentError('backbones manifest', 'an array of backbones', entries);
  return entries.map((e, i) => {
    const b = e as BackboneManifestEntry;
    if (!b?.id || !b.source || !b.preprocess)
      throw new InvalidArgumentError(`backbones[${i}]`, 'an entry with id, source and preprocess', e);
    return b;
  });
}

/** The backbones of `models/manifests/backbones.json`. */
export const BACKBONES: readonly BackboneManifestEntry[] = validateManifest(backbonesJson);

export function findBackbone(id: string): BackboneManifestEntry | undefined {
  return BACKBONES.find((b) => b.id === id);
}

/** The manifest entry whose sha256 matches picked bytes (a user's copy of a known model), if any. */
export async function identifyBackbone(bytes: Uint8Array): Promise<BackboneManifestEntry | undefined> {
  const sha = await sha256Hex(bytes);
  return BACKBONES.find((b) => b.sha256 === sha);
}

/** `Backbone.load` options from a manifest entry. */
export function manifestLoadOptions(
  e: BackboneManifestEntry,
): Pick<LoadBackboneOptions, 'id' | 'preprocess' | 'spatialTensor' | 'taps' | 'name'> {
  return { id: e.id, preprocess: e.preprocess, spatialTensor: e.spatialTensor, taps: e.taps, name: e.name };
}

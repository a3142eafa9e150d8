/**
 * Export of a trained head as a real tfjs layers model: `model.json` (format 'layers-model', loadable with
 * `tf.loadLayersModel` from @tensorflow/tfjs-layers), `weights.bin`, and `metadata.json` (backbone,
 * preprocessing, threshold, head kind, input/output layout and, for CSE, the centroids and the score rule).
 *
 * The heads train as explicit tfjs-core variables (see common.ts); here their weights are rebuilt as standard
 * Keras layers. Feature standardization `(x − mean) / std` is folded into the first dense/1×1-conv layer
 * (`W' = W / std`, `b' = b − (mean / std)·W`), which is exact in real arithmetic, so the exported model equals the
 * app's head up to float32 rounding. Inputs are what the backbone gives: pooled rows `[N, D]` (BCE) or feature
 * maps `[N, C, H, W]` (spatial, CSE; channels-first like the ONNX output). A Permute layer turns maps
 * channels-last first: tfjs's BatchNormalization with `axis: 1` gives wrong numbers on the CPU backend (its
 * kernel broadcasts the statistics along the last axis only), and channels-last is tfjs's native layout.
 *
 * tfjs-layers is loaded lazily through the tfjs door (`loadTfLayers`): only exporting needs it.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { loadTfLayers, tf, type LayersModel, type SymbolicTensor, type TfLayers } from '../tf.ts';
import { type HeadArtifacts, decodeHead } from './common.ts';
import { poolGrid } from './cse.ts';

export interface ExportedFile {
  name: string;
  data: Uint8Array;
}

/** The file names inside an export (model.json references weights.bin by this relative path). */
export const EXPORT_FILES = {
  model: 'model.json',
  weights: 'weights.bin',
  metadata: 'metadata.json',
} as const;

/** How the exported model is used: inputs, outputs and (CSE) the score rule. Part of metadata.json. */
export interface ExportedHeadSpec {
  kind: HeadArtifacts['kind'];
  input: {
    shape: number[];
    layout: 'ND' | 'NCHW';
    features: 'pooled' | 'spatial';
    /** CSE trained on the paper's two maps: the backbone's stride-16 map + its upsampled stride-32 map. */
    fused?: string;
  };
  /** Model outputs in `model.outputs` order. */
  outputs: { name: string; shape: number[]; meaning: string }[];
  /** CSE: unit-norm centroids `[k][E]`; score per location = min_k (1 − cos(e, c_k)), per image = max. */
  centroids?: number[][];
  score: string;
}

type Tfl = TfLayers;

/** A head weight read back to the CPU (async: WebGPU has no cheap synchronous read). */
interface Weight {
  data: Float32Array;
  shape: number[];
}
type Weights = Record<string, Weight>;

const tensorOf = (w: Weight, shape = w.shape) => tf.tensor(w.data, shape);

/** Folds standardization into a `[fanIn, fanOut]` kernel and its bias. */
function foldStandardization(
  kernel: Float32Array,
  bias: Float32Array,
  fanIn: number,
  fanOut: number,
  mean: readonly number[],
  std: readonly number[],
): { kernel: Float32Array; bias: Float32Array } {
  const k = new Float32Array(kernel.length);
  const b = Float64Array.from(bias);
  for (let i = 0; i < fanIn; i++) {
    const inv = 1 / std[i];
    for (let j = 0; j < fanOut; j++) {
      const w = kernel[i * fanOut + j] * inv;
      k[i * fanOut + j] = w;
      b[j] -= mean[i] * w;
    }
  }
  return { kernel: k, bias: Float32Array.from(b) };
}

function setWeights(layer: { setWeights(w: tf.Tensor[]): void }, ws: tf.Tensor[]): void {
  layer.setWeights(ws);
  ws.forEach((w) => w.dispose());
}

/** Builds the tfjs layers model of a head and the spec of its inputs and outputs. */
export async function headToLayersModel(
  a: HeadArtifacts,
): Promise<{ model: LayersModel; spec: ExportedHeadSpec }> {
  if (a.kind !== 'bce' && a.kind !== 'spatial' && a.kind !== 'cse')
    throw new InvalidArgumentError(
      'head kind',
      'bce, spatial or cse (a layers model); a PatchCore memory bank or a masked head on feature taps is no layers model — keep it in the app, or re-train a BCE/spatial/CSE head to export',
      a.kind,
    );
  const tfl: Tfl = await loadTfLayers();
  const decoded = decodeHead(a, a.kind);
  const t: Weights = {};
  try {
    for (const [k, v] of Object.entries(decoded))
      t[k] = { data: Float32Array.from(await v.data()), shape: v.shape };
  } finally {
    Object.values(decoded).forEach((x) => x.dispose());
  }
  if (a.kind === 'bce') return buildBce(tfl, a, t);
  if (a.kind === 'spatial') return buildSpatial(tfl, a, t);
  return buildCse(tfl, a, t);
}

function buildBce(tfl: Tfl, a: HeadArtifacts, t: Weights) {
  const c = a.config as { dim: number; hidden: number; mean: number[]; std: number[] };
  const input = tfl.input({ shape: [c.dim], name: 'features' });
  let out: SymbolicTensor;
  if (c.hidden > 0) {
    const f = foldStandardization(t.w1.data, t.b1.data, c.dim, c.hidden, c.mean, c.std);
    const l1 = tfl.layers.dense({ units: c.hidden, activation: 'relu', name: 'hidden' });
    const l2 = tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'score' });
    out = l2.apply(l1.apply(input)) as typeof out;
    setWeights(l1, [tf.tensor2d(f.kernel, [c.dim, c.hidden]), tf.tensor1d(f.bias)]);
    setWeights(l2, [tensorOf(t.w2), tensorOf(t.b2)]);
  } else {
    const f = foldStandardization(t.w2.data, t.b2.data, c.dim, 1, c.mean, c.std);
    const l = tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'score' });
    out = l.apply(input) as typeof out;
    setWeights(l, [tf.tensor2d(f.kernel, [c.dim, 1]), tf.tensor1d(f.bias)]);
  }
  const spec: ExportedHeadSpec = {
    kind: 'bce',
    input: { shape: [c.dim], layout: 'ND', features: 'pooled' },
    outputs: [{ name: 'score', shape: [1], meaning: 'defect probability (sigmoid of the logit)' }],
    score: 'outputs[0][n][0] is the image score; defect when score ≥ threshold',
  };
  return { model: tfl.model({ inputs: input, outputs: out, name: 'defectlab_bce' }), spec };
}

function buildSpatial(tfl: Tfl, a: HeadArtifacts, t: Weights) {
  const c = a.config as { dims: [number, number, number]; mean: number[]; std: number[] };
  const [C, H, W] = c.dims;
  const input = tfl.input({ shape: [C, H, W], name: 'feature_map' });
  const nhwc = tfl.layers.permute({ dims: [2, 3, 1], name: 'to_nhwc' }).apply(input);
  const conv = tfl.layers.conv2d({ filters: 1, kernelSize: 1, name: 'logits' });
  const map = conv.apply(nhwc) as SymbolicTensor; // [N, H, W, 1]
  const heat = tfl.layers.reshape({ targetShape: [H, W], name: 'heatmap' }).apply(map) as SymbolicTensor;
  const mx = tfl.layers.globalMaxPooling2d({ name: 'max_pool' }).apply(map);
  const av = tfl.layers.globalAveragePooling2d({ name: 'mean_pool' }).apply(map);
  const both = tfl.layers.concatenate({ name: 'pooled' }).apply([mx as SymbolicTensor, av as SymbolicTensor]);
  const dense = tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'score' });
  const score = dense.apply(both) as SymbolicTensor;
  const f = foldStandardization(t.w.data, t.b.data, C, 1, c.mean, c.std);
  setWeights(conv, [tf.tensor4d(f.kernel, [1, 1, C, 1]), tf.tensor1d(f.bias)]);
  setWeights(dense, [tensorOf(t.pool, [2, 1]), tensorOf(t.c)]);
  const spec: ExportedHeadSpec = {
    kind: 'spatial',
    input: { shape: [C, H, W], layout: 'NCHW', features: 'spatial' },
    outputs: [
      { name: 'score', shape: [1], meaning: 'defect probability of the image' },
      { name: 'heatmap', shape: [H, W], meaning: 'per-location defect logit (the heat map)' },
    ],
    score: 'outputs[0][n][0] is the image score; defect when score ≥ threshold',
  };
  return {
    model: tfl.model({ inputs: input, outputs: [score, heat], name: 'defectlab_spatial' }),
    spec,
  };
}

function buildCse(tfl: Tfl, a: HeadArtifacts, t: Weights) {
  const c = a.config as {
    dims: [number, number, number];
    options: { hidden: number; embedDim: number; pool?: number; fusion?: boolean };
    mean: number[];
    std: number[];
    centroids: number[][];
  };
  if (!c.centroids?.length)
    throw new InvalidArgumentError('CSE head centroids', 'fitted (train the head first)', 0);
  const [C, H0, W0] = c.dims;
  const { hidden: Hd, embedDim: E } = c.options;
  // The head's average pool after the embedder (absent in heads saved before it existed: none).
  const g = poolGrid(H0, W0, c.options.pool ?? 1);
  const [H, W] = [g.h, g.w];
  const input = tfl.input({ shape: [C, H0, W0], name: 'feature_map' });
  const nhwc = tfl.layers.permute({ dims: [2, 3, 1], name: 'to_nhwc' }).apply(input);
  const conv1 = tfl.layers.conv2d({ filters: Hd, kernelSize: 1, name: 'conv1' });
  // Same epsilon as the head's tf.batchNorm (cse.ts BN_EPS); inference uses the running statistics.
  const bn = tfl.layers.batchNormalization({ axis: -1, epsilon: 1e-5, name: 'bn' });
  const relu = tfl.layers.reLU({ name: 'relu' });
  const conv2 = tfl.layers.conv2d({ filters: E, kernelSize: 1, name: 'embedding' });
  const raw = conv2.apply(relu.apply(bn.apply(conv1.apply(nhwc)))) as SymbolicTensor; // [N, H0, W0, E]
  const emb =
    g.k > 1
      ? (tfl.layers
          .averagePooling2d({ poolSize: g.k, strides: g.k, padding: 'valid', name: 'pool' })
          .apply(raw) as SymbolicTensor)
      : raw; // [N, H, W, E]
  const f = foldStandardization(t.w1.data, t.b1.data, C, Hd, c.mean, c.std);
  setWeights(conv1, [tf.tensor4d(f.kernel, [1, 1, C, Hd]), tf.tensor1d(f.bias)]);
  // Keras BatchNormalization weight order: gamma, beta, moving mean, moving variance.
  setWeights(bn, [tensorOf(t.gamma), tensorOf(t.beta), tensorOf(t.runMean), tensorOf(t.runVar)]);
  setWeights(conv2, [tensorOf(t.w2, [1, 1, Hd, E]), tensorOf(t.b2)]);
  const spec: ExportedHeadSpec = {
    kind: 'cse',
    input: {
      shape: [C, H0, W0],
      layout: 'NCHW',
      features: 'spatial',
      ...(c.options.fusion
        ? {
            fused:
              'channels = tap s16, then tap s32 bilinearly upsampled to the s16 grid (align_corners = true)',
          }
        : {}),
    },
    outputs: [
      {
        name: 'embedding',
        shape: [H, W, E],
        meaning: 'per-location embedding, channels-last (not normalized)',
      },
    ],
    centroids: c.centroids,
    score:
      'per location: d = min over centroids c_k of 1 − (e · c_k) / |e| (e = the embedding at that location, c_k unit-norm); the heat map is d on the H×W grid; the image score is max(d); defect when score ≥ threshold',
  };
  return { model: tfl.model({ inputs: input, outputs: emb, name: 'defectlab_cse' }), spec };
}

/**
 * The three files of an exported head. `metadata` (backbone, preprocessing, threshold, …) is written to
 * metadata.json together with the model spec, and copied into model.json's `userDefinedMetadata`.
 */
export async function exportHeadFiles(
  a: HeadArtifacts,
  metadata: Record<string, unknown>,
): Promise<ExportedFile[]> {
  const { model, spec } = await headToLayersModel(a);
  let saved: tf.io.ModelArtifacts | null = null;
  try {
    await model.save(
      tf.io.withSaveHandler(async (art) => {
        saved = art;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
  } finally {
    model.dispose();
  }
  const art = saved as tf.io.ModelArtifacts | null;
  if (!art?.weightSpecs || !art.weightData)
    throw new InvalidArgumentError('exported model', 'topology and weights from model.save', 'nothing');
  const meta = { ...metadata, kind: a.kind, format: 'tfjs layers-model', model: spec };
  // Same JSON layout as tfjs's own http/file save handlers write.
  const modelJson = {
    modelTopology: art.modelTopology,
    format: art.format ?? 'layers-model',
    generatedBy: art.generatedBy,
    convertedBy: art.convertedBy ?? null,
    weightsManifest: [{ paths: [`./${EXPORT_FILES.weights}`], weights: art.weightSpecs }],
    userDefinedMetadata: { defectlab: meta },
  };
  const enc = new TextEncoder();
  const weights = tf.io.concatenateArrayBuffers(art.weightData as ArrayBuffer | ArrayBuffer[]);
  return [
    { name: EXPORT_FILES.model, data: enc.encode(JSON.stringify(modelJson)) },
    { name: EXPORT_FILES.weights, data: new Uint8Array(weights) },
    { name: EXPORT_FILES.metadata, data: enc.encode(JSON.stringify(meta, null, 1)) },
  ];
}

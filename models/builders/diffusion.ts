/**
 * Builds the tiny diffusion-inpainting test models (`npm run models:tiny` → `models/tiny/<id>/…`): fixed random
 * weights (seeded `Rng`), a few KB per graph, and exactly the I/O names, ranks and dtypes of an optimum ONNX export
 * of SDXL-inpaint / SD-inpaint, so the pipeline, the model manager and the runtime are exercised against the real
 * contract without downloading gigabytes.
 *
 * Models (all 64×64 pixels → 8×8 latents):
 * - `tiny-sdxl-inpaint`: text_encoder (input_ids [B,77] int32 → last_hidden_state [B,77,768], pooler_output
 *   [B,768], hidden_states.0..3 [B,77,768]), text_encoder_2 (→ text_embeds [B,1280], last_hidden_state
 *   [B,77,1280], hidden_states.0..3), unet (sample [B,9,h,w], timestep int64 [1], encoder_hidden_states
 *   [B,77,2048], text_embeds [B,1280], time_ids [B,6] → out_sample [B,4,h,w]; its first conv takes 9 channels,
 *   the case that broke on 'onnxruntime-web/webgpu'), vae_encoder (sample [B,3,H,W] → latent_sample
 *   [B,4,H/8,W/8]), vae_decoder (latent_sample → sample [B,3,8h,8w]).
 * - `tiny-sdxl-inpaint-int4`: the same, but its unet stores the conditioning projection as int4 `MatMulNBits`
 *   (com.microsoft) and its 9-channel conv weight as int8 + `DequantizeLinear` (QDQ). The fp32 model holds the
 *   dequantized values of those very weights, so the two must agree to float rounding.
 * - `tiny-sdxl-inpaint-int8`: the same, but its unet is in onnxruntime `quantize_dynamic` form: conv_in as
 *   `DynamicQuantizeLinear` + `ConvInteger` (uint8 weights), the conditioning projection as `DynamicQuantizeLinear`
 *   + `MatMulInteger` (int8, per column). Its weights dequantize exactly to the fp32 model's, so the difference
 *   is the run-time rounding of activations (bounded in the tests, not float-exact).
 * - `tiny-sdxl-inpaint-fp16`: the fp32 model converted to fp16 weights, I/O and compute (`fp16.ts`), as an
 *   optimum `--dtype fp16` export is: WebGPU needs shader-f16 for it; onnxruntime's CPU/WASM kernels run it.
 * - `tiny-sdxl-inpaint-int4-fp16`: the int4 model with fp16 activations (every graph through `fp16.ts`; the
 *   quantized weights stay int4/int8, their scales become fp16): the int4-weights/fp16-activations tier. Its
 *   fp16 twin is `tiny-sdxl-inpaint-fp16`.
 * - `tiny-sd-inpaint-extdata`: `tiny-sd-inpaint` with its unet and VAE decoder weights in ONNX external data
 *   (`<component>/model.onnx_data`, `external.ts`), the format of every model above 2 GB.
 * - `tiny-sd-inpaint`: SD-1.5-style: one text_encoder (last_hidden_state [B,77,768], pooler_output), unet without
 *   added conditioning (timestep float32 scalar), the same VAE.
 *
 * Width tricks keep the files small while the interfaces keep their real widths: the encoders compute in 8–16
 * channels and `Tile` up to 768/1280; the unet averages its 2048-wide conditioning down before projecting.
 * A tiny CLIP-format tokenizer (byte-level vocab + a few merges, BOS/EOS at 49406/49407) ships with each model.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Rng } from '../../src/core/rng.ts';
import { bytesToUnicode } from '../../src/core/diffusion/tokenizer.ts';
import { GraphBuilder, randomWeights } from './graph.ts';
import { toFp16 } from './fp16.ts';
import { toExternalData } from './external.ts';
import type { ModelManifest, ManifestFile, ComponentName } from '../../src/runtime/models/manifest.ts';

const TOKENS = 77;
/** Hidden width the tiny encoders compute in. */
const HID = 8;
const HID2 = 16;
/** Channels inside the tiny unet. */
const UC = 8;
/** Tiny encoder depth: hidden_states.0 (embeddings) … hidden_states.LAYERS. */
const LAYERS = 3;
export const TINY_RESOLUTION = 64;

// Every Conv states all its attributes, as exporters do: onnxruntime-web's WebGPU kernels do not fill in
// defaults for missing dilations/strides ("dilations should be 2D").
const CONV3 = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 };
const CONV1 = { kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1], dilations: [1, 1], group: 1 };

export const TINY_SCHEDULER = {
  _class_name: 'EulerDiscreteScheduler',
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  prediction_type: 'epsilon',
  steps_offset: 1,
  timestep_spacing: 'leading',
  interpolation_type: 'linear',
  use_karras_sigmas: false,
} as const;

/** CLIP-style text encoder. `hidden` is the internal width, `width` the exported one. */
function textEncoder(
  seed: number,
  opts: {
    hidden: number;
    width: number;
    pooled: 'pooler_output' | 'text_embeds' | 'both';
    hiddenStates: boolean;
  },
): Uint8Array {
  const rng = new Rng(seed);
  const g = new GraphBuilder('text_encoder');
  const ids = g.input('input_ids', 'int32', ['batch_size', 'sequence_length']);
  const rep = opts.width / opts.hidden;
  // Token embedding: ids mod 64 index a 64-row table (the real vocabulary has 49408 rows). The modulo is
  // spelled id − 64·(id ÷ 64) in int32 because onnxruntime-web's WebGPU provider has no Mod kernel, and a
  // CPU-placed node would make the WebGPU parity test cover less than a real CLIP encoder.
  const table = g.init('embed.weight', randomWeights(rng, 64 * opts.hidden, 1), [64, opts.hidden]);
  const pos = g.init('pos.weight', randomWeights(rng, TOKENS * opts.hidden, 0.1), [TOKENS, opts.hidden]);
  const k64 = g.init('k64', Int32Array.of(64), []);
  const idx = g.op('Sub', [ids, g.op('Mul', [g.op('Div', [ids, k64]), k64])]);
  let h = g.op('Add', [g.op('Gather', [table, idx], { axis: 0 }), pos]);
  const widen = (x: string, name: string) => g.op('Tile', [x, g.ints('tile', [1, 1, rep])], {}, name);
  const hs: string[] = [h];
  for (let l = 0; l < LAYERS; l++) {
    const w = g.init(
      `layer${l}.weight`,
      randomWeights(rng, opts.hidden * opts.hidden, 1 / Math.sqrt(opts.hidden)),
      [opts.hidden, opts.hidden],
    );
    h = g.op('Add', [h, g.op('Tanh', [g.op('MatMul', [h, w])])]);
    hs.push(h);
  }
  const last = g.op(
    'LayerNormalization',
    [
      h,
      g.init('ln.scale', new Float32Array(opts.hidden).fill(1), [opts.hidden]),
      g.init('ln.bias', new Float32Array(opts.hidden), [opts.hidden]),
    ],
    { axis: -1, epsilon: { float: 1e-5 } },
  );
  const pooledSmall = g.op('ReduceMean', [last, g.ints('axes', [1])], { keepdims: 0 });
  const pooledWide = g.op('Tile', [pooledSmall, g.ints('tile', [1, rep])]);
  const wantsText = opts.pooled === 'text_embeds' || opts.pooled === 'both';
  if (wantsText) {
    // SDXL encoder 2's projection: a [width] diagonal scale stands in for the 1280×1280 matrix.
    const proj = g.init(
      'text_projection',
      Float32Array.from(randomWeights(rng, opts.width, 0.5), (v) => 1 + v),
      [opts.width],
    );
    g.output(g.op('Mul', [pooledWide, proj], {}, 'text_embeds'), 'float32', ['batch_size', opts.width]);
  }
  g.output(widen(last, 'last_hidden_state'), 'float32', ['batch_size', 'sequence_length', opts.width]);
  if (opts.pooled !== 'text_embeds')
    g.output(g.op('Identity', [pooledWide], {}, 'pooler_output'), 'float32', ['batch_size', opts.width]);
  if (opts.hiddenStates)
    hs.forEach((x, i) =>
      g.output(widen(x, `hidden_states.${i}`), 'float32', ['batch_size', 'sequence_length', opts.width]),
    );
  return g.toModel({ opset: 18 });
}

/** Quantizes K×N fp32 weights to MatMulNBits' int4 layout: B [N, K/bs, bs/2] uint8, scales [N·K/bs]. */
export function quantizeInt4(w: Float32Array, K: number, N: number, blockSize: number) {
  const nBlocks = K / blockSize;
  const packed = new Uint8Array(N * nBlocks * (blockSize / 2));
  const scales = new Float32Array(N * nBlocks);
  const dequant = new Float32Array(K * N);
  for (let n = 0; n < N; n++)
    for (let b = 0; b < nBlocks; b++) {
      let maxAbs = 0;
      for (let k = 0; k < blockSize; k++) maxAbs = Math.max(maxAbs, Math.abs(w[(b * blockSize + k) * N + n]));
      const scale = Math.fround(maxAbs / 7 || 1);
      scales[n * nBlocks + b] = scale;
      for (let k = 0; k < blockSize; k++) {
        const kk = b * blockSize + k;
        // Symmetric int4 around the default zero point 8 (no zero_points input).
        const q = Math.max(0, Math.min(15, Math.round(w[kk * N + n] / scale) + 8));
        dequant[kk * N + n] = Math.fround((q - 8) * scale);
        const byte = n * nBlocks * (blockSize / 2) + b * (blockSize / 2) + (k >> 1);
        packed[byte] |= k & 1 ? q << 4 : q;
      }
    }
  return { packed, scales, dequant, nBlocks };
}

/** int8 symmetric per-tensor quantization for a QDQ weight. */
function quantizeInt8(w: Float32Array) {
  let maxAbs = 0;
  for (const v of w) maxAbs = Math.max(maxAbs, Math.abs(v));
  const scale = Math.fround(maxAbs / 127 || 1);
  const q = Int8Array.from(w, (v) => Math.max(-127, Math.min(127, Math.round(v / scale))));
  const dequant = Float32Array.from(q, (v) => Math.fround(v * scale));
  return { q, scale, dequant };
}

/**
 * onnxruntime's `quantize_dynamic` form of `x · W` (W given as its int8 codes `wq` [K, N] with per-column scales):
 * `DynamicQuantizeLinear(x) → (xq uint8, xs, xz)`, `MatMulInteger(xq, wq, xz, 0) → int32`, `Cast → float`,
 * `× (xs · w_scale)`. The activation is quantized at run time from its own min/max, which is where the error of an
 * int8-dynamic model comes from (weights here dequantize exactly).
 */
export function dynamicQuantMatMul(
  g: GraphBuilder,
  x: string,
  wq: Int8Array,
  wScale: Float32Array,
  K: number,
  N: number,
  prefix: string,
): string {
  const [xq, xs, xz] = g.opMulti('DynamicQuantizeLinear', [x], 3);
  const mi = g.op('MatMulInteger', [
    xq,
    g.init(`${prefix}.weight_quantized`, wq, [K, N]),
    xz,
    g.init(`${prefix}.weight_zero_point`, new Int8Array(N), [N]),
  ]);
  const scale = g.op('Mul', [xs, g.init(`${prefix}.weight_scale`, wScale, [N])]);
  return g.op('Mul', [g.op('Cast', [mi], { to: 1 }), scale]);
}

/**
 * `quantize_dynamic`'s Conv: `DynamicQuantizeLinear(x)`, `ConvInteger(xq, wq uint8, xz, w_zp) → int32`, Cast,
 * `× (xs · w_scale)` (ConvInteger has no bias input: add it after). uint8 weights with a zero point (the QUInt8
 * form every onnxruntime ConvInteger kernel accepts).
 */
export function dynamicQuantConv(
  g: GraphBuilder,
  x: string,
  w: { q: Uint8Array; zeroPoint: number; scale: number; dims: number[] },
  attrs: typeof CONV3,
  prefix: string,
): string {
  const [xq, xs, xz] = g.opMulti('DynamicQuantizeLinear', [x], 3);
  const ci = g.op(
    'ConvInteger',
    [
      xq,
      g.init(`${prefix}.weight_quantized`, w.q, w.dims, 'uint8'),
      xz,
      g.init(`${prefix}.weight_zero_point`, Uint8Array.of(w.zeroPoint), [], 'uint8'),
    ],
    attrs,
  );
  const scale = g.op('Mul', [xs, g.init(`${prefix}.weight_scale`, Float32Array.of(w.scale), [])]);
  return g.op('Mul', [g.op('Cast', [ci], { to: 1 }), scale]);
}

/** How the tiny unet stores its quantizable weights. */
export type UnetQuant = 'none' | 'int4' | 'int8-dynamic';

/**
 * The tiny unet: conv_in (9 → UC, 3×3) + time embedding + conditioning → SiLU → conv (UC → UC) → SiLU →
 * conv_out (UC → 4). Quantized forms of conv_in and the conditioning projection, all dequantizing to exactly the
 * fp32 weights (so `tiny-sdxl-inpaint` is every variant's fp32 twin):
 * - `int4`: conv_in as int8 QDQ (`DequantizeLinear`), the projection as int4 `MatMulNBits`;
 * - `int8-dynamic`: `quantize_dynamic`'s form — conv_in as `DynamicQuantizeLinear` + `ConvInteger`, the
 *   projection as `DynamicQuantizeLinear` + `MatMulInteger` (int8 per-column). Activations are quantized at run
 *   time, so this variant differs from fp32 by activation rounding, not float rounding. The int8 weights use 7
 *   bits (`reduce_range`), which onnxruntime's x86 u8s8 kernels need to avoid int16 saturation.
 */
function unet(seed: number, opts: { sdxl: boolean; quant: UnetQuant }): Uint8Array {
  const rng = new Rng(seed);
  const g = new GraphBuilder('unet');
  const sample = g.input('sample', 'float32', ['batch', 9, 'height', 'width']);
  const timestep = opts.sdxl ? g.input('timestep', 'int64', [1]) : g.input('timestep', 'float32', []);
  const ctxWidth = opts.sdxl ? 2048 : 768;
  const ehs = g.input('encoder_hidden_states', 'float32', ['batch', 'sequence', ctxWidth]);
  const textEmbeds = opts.sdxl ? g.input('text_embeds', 'float32', ['batch', 1280]) : '';
  const timeIds = opts.sdxl ? g.input('time_ids', 'float32', ['batch', 6]) : '';

  const convInW = randomWeights(rng, UC * 9 * 9, 0.15);
  const q8 = quantizeInt8(convInW);
  // Drawn here (the rng order fixes every later weight) but added after the weight, as before.
  const convInBias = randomWeights(rng, UC, 0.05);
  const bias = () => g.init('conv_in.bias', convInBias, [UC]);
  let x: string;
  if (opts.quant === 'int8-dynamic') {
    // The int8 codes shifted by 128 into uint8 with zero point 128: the same dequantized values.
    const q = Uint8Array.from(q8.q, (v) => v + 128);
    x = dynamicQuantConv(
      g,
      sample,
      { q, zeroPoint: 128, scale: q8.scale, dims: [UC, 9, 3, 3] },
      CONV3,
      'conv_in',
    );
    x = g.op('Add', [x, g.op('Reshape', [bias(), g.ints('shape', [1, -1, 1, 1])])]);
  } else {
    let convIn: string;
    if (opts.quant === 'int4') {
      const wq = g.init('conv_in.weight_quantized', q8.q, [UC, 9, 3, 3]);
      convIn = g.op('DequantizeLinear', [
        wq,
        g.init('conv_in.weight_scale', Float32Array.of(q8.scale), []),
        g.init('conv_in.weight_zp', Int8Array.of(0), []),
      ]);
    } else convIn = g.init('conv_in.weight', q8.dequant, [UC, 9, 3, 3]);
    x = g.op('Conv', [sample, convIn, bias()], { ...CONV3 });
  }

  // Sinusoidal time embedding, one frequency per channel: works for a scalar, [1] or [B] timestep.
  const tf = g.op('Cast', [timestep], { to: 1 });
  const t2 = g.op('Reshape', [tf, g.ints('shape', [-1, 1])]);
  const freqs = g.init(
    'time.freqs',
    Float32Array.from({ length: UC }, (_, i) => Math.exp(-i * 0.9) / 50),
    [1, UC],
  );
  const temb = g.op('Reshape', [g.op('Sin', [g.op('Mul', [t2, freqs])]), g.ints('shape', [-1, UC, 1, 1])]);
  x = g.op('Add', [x, temb]);

  // Conditioning: the 2048-wide context averaged over tokens, folded to 16 and projected to UC channels.
  const ctx = g.op('ReduceMean', [ehs, g.ints('axes', [1])], { keepdims: 0 });
  const folded = g.op(
    'ReduceMean',
    [g.op('Reshape', [ctx, g.ints('shape', [0, ctxWidth / 16, 16])]), g.ints('axes', [1])],
    { keepdims: 0 },
  );
  const K = 16;
  const projW = randomWeights(rng, K * UC, 0.6);
  const q4 = quantizeInt4(projW, K, UC, 16);
  // int8 codes per column: MatMulNBits' one block per column (block 16 = K) times 8, scale / 8 — the same
  // dequantized values in 7 bits ([-64, 56]), i.e. quantize_dynamic's reduce_range: onnxruntime's x86 u8s8
  // kernels add pairs of uint8·int8 products in int16 and saturate with full-range int8 weights (a test with
  // codes in [-128, 127] is off by 25 % against the ONNX spec).
  const int8Codes = () =>
    Int8Array.from({ length: K * UC }, (_, i) => Math.round(q4.dequant[i] / q4.scales[i % UC]) * 8);
  const cond =
    opts.quant === 'int8-dynamic'
      ? dynamicQuantMatMul(
          g,
          folded,
          int8Codes(),
          q4.scales.map((v) => v / 8),
          K,
          UC,
          'cond.proj',
        )
      : opts.quant === 'int4'
        ? g.op(
            'MatMulNBits',
            [
              folded,
              g.init('cond.proj.qweight', q4.packed, [UC, q4.nBlocks, 8], 'uint8'),
              g.init('cond.proj.scales', q4.scales, [UC * q4.nBlocks]),
            ],
            { K, N: UC, bits: 4, block_size: 16 },
            undefined,
            { domain: 'com.microsoft' },
          )
        : g.op('MatMul', [folded, g.init('cond.proj.weight', q4.dequant, [K, UC])]);
  let c = cond;
  if (opts.sdxl) {
    const te = g.op(
      'ReduceMean',
      [g.op('Reshape', [textEmbeds, g.ints('shape', [0, 80, 16])]), g.ints('axes', [1])],
      { keepdims: 0 },
    );
    const teW = g.init('add_embed.text', randomWeights(rng, 16 * UC, 0.3), [16, UC]);
    const tiW = g.init('add_embed.time', randomWeights(rng, 6 * UC, 0.002), [6, UC]);
    c = g.op('Add', [c, g.op('Add', [g.op('MatMul', [te, teW]), g.op('MatMul', [timeIds, tiW])])]);
  }
  x = g.op('Add', [x, g.op('Reshape', [c, g.ints('shape', [-1, UC, 1, 1])])]);
  const silu = (v: string) => g.op('Mul', [v, g.op('Sigmoid', [v])]);
  x = silu(x);
  x = g.op(
    'Conv',
    [
      x,
      g.init('mid.weight', randomWeights(rng, UC * UC * 9, 0.12), [UC, UC, 3, 3]),
      g.init('mid.bias', randomWeights(rng, UC, 0.05), [UC]),
    ],
    CONV3,
  );
  x = silu(x);
  const out = g.op(
    'Conv',
    [
      x,
      g.init('conv_out.weight', randomWeights(rng, 4 * UC * 9, 0.12), [4, UC, 3, 3]),
      g.init('conv_out.bias', new Float32Array(4), [4]),
    ],
    CONV3,
    'out_sample',
  );
  g.output(out, 'float32', ['batch', 4, 'height', 'width']);
  return g.toModel({ opset: 18, ...(opts.quant === 'int4' ? { domains: { 'com.microsoft': 1 } } : {}) });
}

/** VAE encoder: 8×8 average pooling (the real one downsamples by 8), a 1×1 conv to 4 latent channels. */
function vaeEncoder(seed: number): Uint8Array {
  const rng = new Rng(seed);
  const g = new GraphBuilder('vae_encoder');
  const x = g.input('sample', 'float32', ['batch', 3, 'height', 'width']);
  const p = g.op('AveragePool', [x], { kernel_shape: [8, 8], strides: [8, 8], pads: [0, 0, 0, 0] });
  const h = g.op('Tanh', [
    g.op('Conv', [p, g.init('enc.w1', randomWeights(rng, UC * 3, 0.8), [UC, 3, 1, 1])], CONV1),
  ]);
  const z = g.op(
    'Conv',
    [h, g.init('enc.w2', randomWeights(rng, 4 * UC, 2), [4, UC, 1, 1])],
    CONV1,
    'latent_sample',
  );
  g.output(z, 'float32', ['batch', 4, 'latent_height', 'latent_width']);
  return g.toModel({ opset: 18 });
}

/** VAE decoder: 3×3 conv, nearest ×8 upsampling, 3×3 conv to RGB, tanh into [-1, 1]. */
function vaeDecoder(seed: number): Uint8Array {
  const rng = new Rng(seed);
  const g = new GraphBuilder('vae_decoder');
  const z = g.input('latent_sample', 'float32', ['batch', 4, 'latent_height', 'latent_width']);
  let h = g.op('Conv', [z, g.init('dec.w1', randomWeights(rng, UC * 4 * 9, 0.3), [UC, 4, 3, 3])], {
    ...CONV3,
  });
  h = g.op('Mul', [h, g.op('Sigmoid', [h])]);
  h = g.op('Resize', [h, '', g.init('dec.scales', Float32Array.of(1, 1, 8, 8), [4])], { mode: 'nearest' });
  const y = g.op(
    'Tanh',
    [
      g.op('Conv', [h, g.init('dec.w2', randomWeights(rng, 3 * UC * 9, 0.3), [3, UC, 3, 3])], {
        ...CONV3,
      }),
    ],
    {},
    'sample',
  );
  g.output(y, 'float32', ['batch', 3, 'height', 'width']);
  return g.toModel({ opset: 18 });
}

/** A CLIP-format tokenizer small enough to ship with tiny models: every byte is a token, plus a few merges. */
export function tinyTokenizer(): { vocab: string; merges: string } {
  const bytes = bytesToUnicode();
  const vocab: Record<string, number> = {};
  bytes.forEach((c, i) => (vocab[c] = i));
  bytes.forEach((c, i) => (vocab[`${c}</w>`] = 256 + i));
  const pairs = [
    ['t', 'h'],
    ['th', 'e</w>'],
    ['e', 'r'],
    ['a', 'l</w>'],
    ['o', 'n'],
    ['i', 'n'],
    ['e', 's</w>'],
    ['w', 'h'],
    ['c', 'o'],
    ['m', 'e'],
  ];
  let next = 512;
  for (const [a, b] of pairs) vocab[a + b] = next++;
  vocab['<|startoftext|>'] = 49406;
  vocab['<|endoftext|>'] = 49407;
  const merges = ['#version: 0.2', ...pairs.map((p) => p.join(' '))].join('\n') + '\n';
  return { vocab: JSON.stringify(vocab), merges };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface TinySpec {
  id: string;
  name: string;
  layout: 'sdxl-inpaint' | 'sd-inpaint';
  dtype: ModelManifest['dtype'];
  components: Partial<Record<ComponentName, Uint8Array>>;
  /** Components whose weights (initializers of 64 bytes or more) go to `<component>/model.onnx_data`. */
  externalData?: ComponentName[];
}

function specs(): TinySpec[] {
  const vaeE = vaeEncoder(401);
  const vaeD = vaeDecoder(402);
  const sdUnet = unet(302, { sdxl: false, quant: 'none' });
  const sdTextEncoder = textEncoder(201, {
    hidden: HID,
    width: 768,
    pooled: 'pooler_output',
    hiddenStates: false,
  });
  const te1 = textEncoder(101, { hidden: HID, width: 768, pooled: 'pooler_output', hiddenStates: true });
  const te2 = textEncoder(102, { hidden: HID2, width: 1280, pooled: 'text_embeds', hiddenStates: true });
  const unetFp32 = unet(301, { sdxl: true, quant: 'none' });
  const unetInt4 = unet(301, { sdxl: true, quant: 'int4' });
  return [
    {
      id: 'tiny-sdxl-inpaint',
      name: 'Tiny SDXL-inpaint (random weights, tests)',
      layout: 'sdxl-inpaint',
      dtype: 'float32',
      components: {
        text_encoder: te1,
        text_encoder_2: te2,
        unet: unetFp32,
        vae_encoder: vaeE,
        vae_decoder: vaeD,
      },
    },
    {
      id: 'tiny-sdxl-inpaint-int4',
      name: 'Tiny SDXL-inpaint, int4 MatMulNBits + int8 QDQ unet (tests)',
      layout: 'sdxl-inpaint',
      dtype: 'int4',
      components: {
        text_encoder: te1,
        text_encoder_2: te2,
        unet: unetInt4,
        vae_encoder: vaeE,
        vae_decoder: vaeD,
      },
    },
    {
      id: 'tiny-sdxl-inpaint-int8',
      name: 'Tiny SDXL-inpaint, int8 dynamic-quantized unet (DynamicQuantizeLinear + MatMulInteger/ConvInteger, tests)',
      layout: 'sdxl-inpaint',
      dtype: 'int8',
      components: {
        text_encoder: te1,
        text_encoder_2: te2,
        unet: unet(301, { sdxl: true, quant: 'int8-dynamic' }),
        vae_encoder: vaeE,
        vae_decoder: vaeD,
      },
    },
    {
      id: 'tiny-sdxl-inpaint-fp16',
      name: 'Tiny SDXL-inpaint, fp16 weights and I/O (tests)',
      layout: 'sdxl-inpaint',
      dtype: 'float16',
      components: {
        text_encoder: toFp16(te1),
        text_encoder_2: toFp16(te2),
        unet: toFp16(unetFp32),
        vae_encoder: toFp16(vaeE),
        vae_decoder: toFp16(vaeD),
      },
    },
    {
      id: 'tiny-sdxl-inpaint-int4-fp16',
      name: 'Tiny SDXL-inpaint, int4 MatMulNBits + int8 QDQ weights with fp16 activations (tests)',
      layout: 'sdxl-inpaint',
      dtype: 'int4',
      components: {
        text_encoder: toFp16(te1),
        text_encoder_2: toFp16(te2),
        unet: toFp16(unetInt4),
        vae_encoder: toFp16(vaeE),
        vae_decoder: toFp16(vaeD),
      },
    },
    {
      id: 'tiny-sd-inpaint',
      name: 'Tiny SD-inpaint (random weights, tests)',
      layout: 'sd-inpaint',
      dtype: 'float32',
      components: {
        text_encoder: sdTextEncoder,
        unet: sdUnet,
        vae_encoder: vaeE,
        vae_decoder: vaeD,
      },
    },
    {
      id: 'tiny-sd-inpaint-extdata',
      name: 'Tiny SD-inpaint, unet and VAE decoder weights in ONNX external data (tests)',
      layout: 'sd-inpaint',
      dtype: 'float32',
      components: {
        text_encoder: sdTextEncoder,
        unet: sdUnet,
        vae_encoder: vaeE,
        vae_decoder: vaeD,
      },
      externalData: ['unet', 'vae_decoder'],
    },
  ];
}

/**
 * Builds every tiny model's files and manifest in memory (deterministic: same bytes on every run), so tests can
 * compare them with the committed manifests without touching the disk.
 */
export async function tinyDiffusionModels(): Promise<
  { manifest: ModelManifest; files: Map<string, Uint8Array> }[]
> {
  const { inspectOnnx } = await import('../../src/runtime/models/onnx-inspect.ts');
  const tok = tinyTokenizer();
  const enc = new TextEncoder();
  return specs().map((spec) => {
    const files = new Map<string, Uint8Array>();
    const list: ManifestFile[] = [];
    const add = (path: string, bytes: Uint8Array) => {
      files.set(path, bytes);
      list.push({ path, bytes: bytes.length, sha256: sha256Hex(bytes) });
    };
    const components: ModelManifest['components'] = {};
    let largestTensorBytes = 0;
    let fp16 = false;
    for (const [name, graphBytes] of Object.entries(spec.components) as [ComponentName, Uint8Array][]) {
      const file = `${name}/model.onnx`;
      let bytes = graphBytes;
      let externalData: string[] | undefined;
      if (spec.externalData?.includes(name)) {
        const ext = toExternalData(graphBytes, 'model.onnx_data', 64);
        bytes = ext.model;
        add(file, bytes);
        add(`${name}/model.onnx_data`, ext.data);
        externalData = [`${name}/model.onnx_data`];
      } else add(file, bytes);
      const s = inspectOnnx(bytes, file);
      largestTensorBytes = Math.max(largestTensorBytes, s.largestTensorBytes);
      fp16 ||= s.usesFp16;
      components[name] = {
        file,
        dtype: name === 'unet' || spec.dtype === 'float16' ? spec.dtype : 'float32',
        inputs: s.inputs,
        outputs: s.outputs,
        ...(externalData ? { externalData } : {}),
      };
    }
    const tokenizers = spec.layout === 'sdxl-inpaint' ? ['tokenizer', 'tokenizer_2'] : ['tokenizer'];
    for (const t of tokenizers) {
      add(`${t}/vocab.json`, enc.encode(tok.vocab));
      add(`${t}/merges.txt`, enc.encode(tok.merges));
    }
    const manifest: ModelManifest = {
      format: 'defectlab-model/1',
      id: spec.id,
      name: spec.name,
      layout: spec.layout,
      dtype: spec.dtype,
      resolution: TINY_RESOLUTION,
      license: 'Apache-2.0 (random weights generated by DefectLab; no training data)',
      source: 'built by npm run models:tiny (models/builders/diffusion.ts), fixed seeds',
      serverPath: `tiny/${spec.id}/`,
      gpu: { largestTensorBytes, shaderF16: fp16 },
      config: {
        vaeScalingFactor: spec.layout === 'sdxl-inpaint' ? 0.13025 : 0.18215,
        latentChannels: 4,
        vaeDownsample: 8,
        maxTokens: TOKENS,
        padTokenId: 49407,
        ...(spec.layout === 'sdxl-inpaint' ? { padTokenId2: 0 } : {}),
        scheduler: { ...TINY_SCHEDULER },
      },
      tokenizer: { vocab: 'tokenizer/vocab.json', merges: 'tokenizer/merges.txt' },
      ...(spec.layout === 'sdxl-inpaint'
        ? { tokenizer2: { vocab: 'tokenizer_2/vocab.json', merges: 'tokenizer_2/merges.txt' } }
        : {}),
      components,
      files: list,
    };
    return { manifest, files };
  });
}

/** Formats JSON the way `prettier --check .` expects (when prettier is installed; it is a dev dependency). */
async function formatJson(text: string, path: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(path)) ?? {};
    return await prettier.format(text, { ...options, parser: 'json' });
  } catch {
    return text;
  }
}

/**
 * Writes `models/tiny/<id>/…`, `models/tiny/<id>/manifest.json` and `models/manifests/<id>.json`; returns the
 * paths written.
 */
export async function buildDiffusionTinyModels(outDir: string): Promise<string[]> {
  const written: string[] = [];
  for (const { manifest, files } of await tinyDiffusionModels()) {
    const dir = join(outDir, manifest.id);
    for (const [path, bytes] of files) {
      const full = join(dir, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, bytes);
      written.push(full);
    }
    const mpath = join(dir, 'manifest.json');
    const text = await formatJson(JSON.stringify(manifest, null, 2) + '\n', mpath);
    await writeFile(mpath, text);
    written.push(mpath);
    // The committed copy the app bundles (models/manifests/): same bytes every build, so no diff appears
    // unless a builder change alters the models — which the tiny-model test then reports.
    const committed = join(outDir, '..', 'manifests', `${manifest.id}.json`);
    await mkdir(dirname(committed), { recursive: true });
    await writeFile(committed, text);
    written.push(committed);
  }
  return written;
}

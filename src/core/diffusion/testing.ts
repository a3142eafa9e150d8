import type { SessionLike, TensorLike, TensorType, ValueInfo } from '../tensor.ts';
import { fromFloat32, toFloat32 } from '../tensor.ts';
import type { DiffusionConfig, DiffusionModels, ModelLayout, TokenizerLike } from './types.ts';

/**
 * Deterministic pure-TS stand-ins for the five ONNX graphs (unit tests, examples, debugging without a runtime).
 * They honour the same contract as `src/runtime/ort.ts` sessions: declared `inputs`/`outputs` ValueInfo, feeds
 * checked against the declared dtype and rank, outputs in the declared dtype (fp16 as Uint16Array halves).
 * The math is arbitrary but smooth and sensitive to every input, so tests can tell when an input changes.
 */

export interface FakeCall {
  feeds: Record<string, TensorLike>;
  outputNames?: readonly string[];
}

/** A SessionLike over a function of float inputs; records every call. */
export class FakeSession implements SessionLike {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly calls: FakeCall[] = [];
  released = false;

  constructor(
    readonly inputs: ValueInfo[],
    readonly outputs: ValueInfo[],
    private readonly fn: (
      feeds: Record<string, { data: Float32Array; dims: readonly number[] }>,
    ) => Record<string, { data: Float32Array; dims: number[] }>,
  ) {
    this.inputNames = inputs.map((i) => i.name);
    this.outputNames = outputs.map((o) => o.name);
  }

  async run(
    feeds: Record<string, TensorLike>,
    outputNames?: readonly string[],
  ): Promise<Record<string, TensorLike>> {
    this.calls.push({ feeds, outputNames });
    const floats: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const info of this.inputs) {
      const t = feeds[info.name];
      if (!t) throw new Error(`fake ${this.outputNames[0]}: missing input ${info.name}`);
      if (t.type !== info.type)
        throw new Error(`fake: input ${info.name} is ${t.type}, graph declares ${info.type}`);
      if (t.dims.length !== info.shape.length)
        throw new Error(
          `fake: input ${info.name} has rank ${t.dims.length}, graph declares ${info.shape.length}`,
        );
      info.shape.forEach((d, i) => {
        if (typeof d === 'number' && d > 0 && t.dims[i] !== d)
          throw new Error(`fake: input ${info.name} dim ${i} is ${t.dims[i]}, graph fixes it to ${d}`);
      });
      floats[info.name] = { data: toFloat32(t), dims: t.dims };
    }
    const res = this.fn(floats);
    const out: Record<string, TensorLike> = {};
    for (const o of this.outputs) {
      if (outputNames && !outputNames.includes(o.name)) continue;
      const r = res[o.name];
      if (r) out[o.name] = fromFloat32(r.data, o.type, r.dims);
    }
    return out;
  }

  async release(): Promise<void> {
    this.released = true;
  }
}

export interface FakeModelOptions {
  layout?: ModelLayout;
  /** Float dtype of every float input/output (default float32). */
  floatType?: Extract<TensorType, 'float32' | 'float16'>;
  idsType?: Extract<TensorType, 'int32' | 'int64'>;
  /** UNet timestep declaration (default float32 rank 1 [batch]). */
  timestep?: { type: TensorType; shape: (number | string)[] };
  /** Fix the UNet batch dimension to 1 (exports without a dynamic batch). */
  unetBatch1?: boolean;
  /** Generation size (square) in pixels; latents are size/8. */
  resolution?: number;
  /** Hidden sizes of encoders 1 and 2 (the real ones are 768 and 1280). */
  d1?: number;
  d2?: number;
  maxTokens?: number;
  /** Input channels of the UNet: 9 (inpaint, default) or 4 (a plain text-to-image UNet). */
  unetChannels?: 4 | 9;
  /** Omit a UNet input to build a graph that does not match its layout. */
  dropUnetInput?: string;
}

/** Fake SDXL-inpaint or SD-inpaint models with an Euler (SDXL config) scheduler. */
export function fakeDiffusionModels(o: FakeModelOptions = {}): DiffusionModels & {
  textEncoder: FakeSession;
  textEncoder2?: FakeSession;
  unet: FakeSession;
  vaeEncoder: FakeSession;
  vaeDecoder: FakeSession;
} {
  const layout = o.layout ?? 'sdxl-inpaint';
  const ft = o.floatType ?? 'float32';
  const it = o.idsType ?? 'int32';
  const L = o.maxTokens ?? 77;
  const d1 = o.d1 ?? 8;
  const d2 = o.d2 ?? 12;
  const P = d2;
  const f = 8;

  const encoder = (d: number, salt: number, withEmbeds: boolean) =>
    new FakeSession(
      [{ name: 'input_ids', type: it, shape: ['batch', L] }],
      [
        { name: 'last_hidden_state', type: ft, shape: ['batch', L, d] },
        ...(withEmbeds ? [{ name: 'text_embeds', type: ft, shape: ['batch', P] } as ValueInfo] : []),
        { name: 'hidden_states.0', type: ft, shape: ['batch', L, d] },
        { name: 'hidden_states.1', type: ft, shape: ['batch', L, d] },
        { name: 'hidden_states.2', type: ft, shape: ['batch', L, d] },
      ],
      (feeds) => {
        const ids = feeds.input_ids.data;
        const layer = (k: number) => {
          const out = new Float32Array(L * d);
          for (let t = 0; t < L; t++)
            for (let j = 0; j < d; j++)
              out[t * d + j] = Math.sin(ids[t] * 0.0137 * (j + 1) + t * 0.05 + k * 0.7 + salt);
          return { data: out, dims: [1, L, d] };
        };
        const r: Record<string, { data: Float32Array; dims: number[] }> = {
          'hidden_states.0': layer(0),
          'hidden_states.1': layer(1),
          'hidden_states.2': layer(2),
          last_hidden_state: layer(3),
        };
        if (withEmbeds) {
          const e = new Float32Array(P);
          for (let j = 0; j < P; j++)
            for (let t = 0; t < L; t++) e[j] += Math.cos(ids[t] * 0.001 * (j + 1)) / L;
          r.text_embeds = { data: e, dims: [1, P] };
        }
        return r;
      },
    );

  const D = layout === 'sdxl-inpaint' ? d1 + d2 : d1;
  const inC = o.unetChannels ?? 9;
  const unetInputs: ValueInfo[] = [
    { name: 'sample', type: ft, shape: [o.unetBatch1 ? 1 : 'batch', inC, 'h', 'w'] },
    { name: 'timestep', type: o.timestep?.type ?? 'float32', shape: o.timestep?.shape ?? ['batch'] },
    { name: 'encoder_hidden_states', type: ft, shape: [o.unetBatch1 ? 1 : 'batch', L, D] },
  ];
  if (layout === 'sdxl-inpaint')
    unetInputs.push(
      { name: 'text_embeds', type: ft, shape: ['batch', P] },
      { name: 'time_ids', type: ft, shape: ['batch', 6] },
    );
  const unet = new FakeSession(
    unetInputs.filter((i) => i.name !== o.dropUnetInput),
    [{ name: 'out_sample', type: ft, shape: ['batch', 4, 'h', 'w'] }],
    (feeds) => {
      const [B, , h, w] = feeds.sample.dims;
      const x = feeds.sample.data;
      const t = feeds.timestep.data[0];
      const hw = h * w;
      const out = new Float32Array(B * 4 * hw);
      for (let b = 0; b < B; b++) {
        let c = 0;
        const e = feeds.encoder_hidden_states.data;
        for (let i = 0; i < L * D; i += 7) c += e[b * L * D + i];
        if (feeds.text_embeds) for (let j = 0; j < P; j++) c += 0.3 * feeds.text_embeds.data[b * P + j];
        if (feeds.time_ids) for (let j = 0; j < 6; j++) c += 1e-4 * feeds.time_ids.data[b * 6 + j];
        const bias = Math.tanh(c * 0.05);
        for (let ch = 0; ch < 4; ch++)
          for (let p = 0; p < hw; p++) {
            const base = b * inC * hw;
            const lat = x[base + ch * hw + p];
            const m = inC === 9 ? x[base + 4 * hw + p] : 1;
            const mk = inC === 9 ? x[base + (5 + ch) * hw + p] : 0;
            out[(b * 4 + ch) * hw + p] = 0.3 * lat + 0.2 * m * bias + 0.1 * mk + 1e-4 * t * (ch - 1.5);
          }
      }
      return { out_sample: { data: out, dims: [B, 4, h, w] } };
    },
  );

  const vaeEncoder = new FakeSession(
    [{ name: 'sample', type: ft, shape: ['batch', 3, 'height', 'width'] }],
    [{ name: 'latent_sample', type: ft, shape: ['batch', 4, 'h', 'w'] }],
    (feeds) => {
      const [, , H, W] = feeds.sample.dims;
      const x = feeds.sample.data;
      const h = H / f;
      const w = W / f;
      const out = new Float32Array(4 * h * w);
      // 8×8 average pooling of R, G, B and R − B: a crude but invertible-looking "VAE".
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          const p = y * W + xx;
          const q = Math.floor(y / f) * w + Math.floor(xx / f);
          const r = x[p];
          const g = x[H * W + p];
          const bl = x[2 * H * W + p];
          out[q] += r / 64;
          out[h * w + q] += g / 64;
          out[2 * h * w + q] += bl / 64;
          out[3 * h * w + q] += (r - bl) / 64;
        }
      return { latent_sample: { data: out, dims: [1, 4, h, w] } };
    },
  );

  const vaeDecoder = new FakeSession(
    [{ name: 'latent_sample', type: ft, shape: ['batch', 4, 'h', 'w'] }],
    [{ name: 'sample', type: ft, shape: ['batch', 3, 'height', 'width'] }],
    (feeds) => {
      const [, , h, w] = feeds.latent_sample.dims;
      const z = feeds.latent_sample.data;
      const H = h * f;
      const W = w * f;
      const out = new Float32Array(3 * H * W);
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < H; y++)
          for (let xx = 0; xx < W; xx++) {
            const q = Math.floor(y / f) * w + Math.floor(xx / f);
            out[c * H * W + y * W + xx] = Math.tanh(
              z[c * h * w + q] + 0.1 * z[3 * h * w + q] + 0.01 * (xx % 3),
            );
          }
      return { sample: { data: out, dims: [1, 3, H, W] } };
    },
  );

  const config: DiffusionConfig = {
    layout,
    vaeScalingFactor: layout === 'sdxl-inpaint' ? 0.13025 : 0.18215,
    latentChannels: 4,
    resolution: o.resolution ?? 64,
    maxTokens: L,
    scheduler: {
      _class_name: 'EulerDiscreteScheduler',
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      num_train_timesteps: 1000,
      prediction_type: 'epsilon',
      steps_offset: 1,
      timestep_spacing: 'leading',
    },
  };
  return {
    textEncoder: encoder(d1, 0, false),
    textEncoder2: layout === 'sdxl-inpaint' ? encoder(d2, 1.3, true) : undefined,
    unet,
    vaeEncoder,
    vaeDecoder,
    config,
  };
}

/** A tokenizer stand-in: character codes, BOS/EOS, padded (for tests that do not need the real vocabulary). */
export const fakeTokenizer: TokenizerLike = {
  encodePadded(text, options = {}) {
    const L = options.maxLength ?? 77;
    const ids = new Int32Array(L).fill(options.padTokenId ?? 49407);
    ids[0] = 49406;
    const chars = Array.from(text.toLowerCase()).slice(0, L - 2);
    chars.forEach((ch, i) => (ids[i + 1] = ch.codePointAt(0)! % 49000));
    ids[chars.length + 1] = 49407;
    return ids;
  },
};

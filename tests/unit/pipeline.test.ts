import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/core/errors.ts';
import type { RasterImage } from '../../src/core/image.ts';
import { createRaster } from '../../src/core/image.ts';
import type { Progress } from '../../src/core/progress.ts';
import { Rng } from '../../src/core/rng.ts';
import {
  ClipTokenizer,
  EmptyMaskError,
  MaskCoversImageError,
  MaskSizeError,
  ModelLayoutError,
  encodeConditioning,
  generate,
} from '../../src/core/diffusion/index.ts';
import type { DenoiseProgressDetail, GenerateRequest } from '../../src/core/diffusion/index.ts';
import { fakeDiffusionModels, fakeTokenizer } from '../../src/core/diffusion/testing.ts';

/** A seeded noisy RGB (or other channel count) test image. */
function testImage(w: number, h: number, seed: number, channels: 1 | 3 | 4 = 3): RasterImage {
  const img = createRaster(w, h, channels);
  const r = new Rng(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = r.int(0, 256);
  if (channels === 4) for (let i = 3; i < img.data.length; i += 4) img.data[i] = 200;
  return img;
}

/** A 0/255 mask with a filled rectangle. */
function rectMask(w: number, h: number, x0: number, y0: number, x1: number, y1: number): RasterImage {
  const m = createRaster(w, h, 1);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m.data[y * w + x] = 255;
  return m;
}

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    image: testImage(64, 64, 1),
    mask: rectMask(64, 64, 16, 20, 40, 44),
    prompt: 'copper metal scratches',
    negativePrompt: 'smooth, plain, black, dark, shadow',
    steps: 6,
    guidanceScale: 7.5,
    strength: 0.99,
    seed: 42,
    ...over,
  };
}

const maxAbs = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('generate (SDXL-inpaint layout over fake sessions)', () => {
  it('feeds the UNet a 9-channel batch [uncond, cond] with [B,77,D1+D2] hidden states, text_embeds and time_ids', async () => {
    const m = fakeDiffusionModels();
    const res = await generate(m, fakeTokenizer, request());
    const call = m.unet.calls[0].feeds;
    expect(call.sample.dims).toEqual([2, 9, 8, 8]);
    expect(call.encoder_hidden_states.dims).toEqual([2, 77, 8 + 12]);
    expect(call.text_embeds.dims).toEqual([2, 12]);
    expect(call.time_ids.dims).toEqual([2, 6]);
    expect(Array.from(call.time_ids.data as Float32Array)).toEqual([
      64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64,
    ]);
    // strength 0.99 of 6 steps: ⌊5.94⌋ = 5 steps run.
    expect(m.unet.calls.length).toBe(5);
    expect(res.params.stepsRun).toBe(5);
    expect(res.latentDims).toEqual([1, 4, 8, 8]);
    expect(res.image.width).toBe(64);
    expect(res.image.channels).toBe(3);
    // Mask channel of the UNet input is 1 exactly where the latent cell is painted (rows/cols 2..4 of 8).
    const s = call.sample.data as Float32Array;
    const maskCh = Array.from(s.subarray(4 * 64, 5 * 64));
    expect(maskCh.filter((v) => v === 1).length).toBe(9);
    expect(maskCh.every((v) => v === 0 || v === 1)).toBe(true);
  });

  it('guidance 1 equals the conditional branch (one batch-1 pass, same as guidance 7.5 with uncond = cond)', async () => {
    const a = fakeDiffusionModels();
    const r1 = await generate(a, fakeTokenizer, request({ guidanceScale: 1 }));
    expect(a.unet.calls.every((c) => c.feeds.sample.dims[0] === 1)).toBe(true);
    const b = fakeDiffusionModels();
    const same = await generate(
      b,
      fakeTokenizer,
      request({ guidanceScale: 7.5, negativePrompt: request().prompt }),
    );
    expect(Array.from(same.latents)).toEqual(Array.from(r1.latents));
    expect(Array.from(same.image.data)).toEqual(Array.from(r1.image.data));
    const c = await generate(fakeDiffusionModels(), fakeTokenizer, request({ guidanceScale: 7.5 }));
    expect(maxAbs(c.latents, r1.latents)).toBeGreaterThan(1e-3);
  });

  it('an empty negative prompt gives zero uncond embeddings (force_zeros_for_empty_prompt)', async () => {
    const m = fakeDiffusionModels();
    await generate(m, fakeTokenizer, request({ negativePrompt: '' }));
    const ehs = m.unet.calls[0].feeds.encoder_hidden_states.data as Float32Array;
    const half = ehs.length / 2;
    expect(ehs.subarray(0, half).every((v) => v === 0)).toBe(true);
    expect(ehs.subarray(half).some((v) => v !== 0)).toBe(true);
    const te = m.unet.calls[0].feeds.text_embeds.data as Float32Array;
    expect(te.subarray(0, 12).every((v) => v === 0)).toBe(true);
    // Encoders ran for the prompt only.
    expect(m.textEncoder.calls.length).toBe(1);
    expect(m.textEncoder2!.calls.length).toBe(1);
  });

  it('uses the penultimate hidden states of both encoders and pads encoder 2 with 0', async () => {
    const m = fakeDiffusionModels();
    await generate(m, fakeTokenizer, request({ guidanceScale: 1 }));
    expect(m.textEncoder.calls[0].outputNames).toEqual(['hidden_states.1']);
    expect(m.textEncoder2!.calls[0].outputNames).toEqual(['hidden_states.1', 'text_embeds']);
    const ids1 = m.textEncoder.calls[0].feeds.input_ids.data as Int32Array;
    const ids2 = m.textEncoder2!.calls[0].feeds.input_ids.data as Int32Array;
    expect(ids1[76]).toBe(49407);
    expect(ids2[76]).toBe(0);
  });

  it('same seed → same image; another seed → another image', async () => {
    const a = await generate(fakeDiffusionModels(), fakeTokenizer, request({ seed: 7 }));
    const b = await generate(fakeDiffusionModels(), fakeTokenizer, request({ seed: 7 }));
    const c = await generate(fakeDiffusionModels(), fakeTokenizer, request({ seed: 8 }));
    expect(Array.from(a.image.data)).toEqual(Array.from(b.image.data));
    expect(Array.from(a.latents)).toEqual(Array.from(b.latents));
    expect(maxAbs(a.latents, c.latents)).toBeGreaterThan(1e-3);
  });

  for (const scheduler of ['ddim', 'euler-ancestral', 'dpm-solver++'] as const) {
    it(`runs with the ${scheduler} scheduler, reproducibly per seed`, async () => {
      const a = await generate(fakeDiffusionModels(), fakeTokenizer, request({ scheduler, seed: 11 }));
      const b = await generate(fakeDiffusionModels(), fakeTokenizer, request({ scheduler, seed: 11 }));
      const e = await generate(fakeDiffusionModels(), fakeTokenizer, request({ seed: 11 }));
      expect(a.params.scheduler).toBe(scheduler);
      expect(Array.from(a.latents)).toEqual(Array.from(b.latents));
      expect(maxAbs(a.latents, e.latents)).toBeGreaterThan(1e-4);
      expect(a.latents.every(Number.isFinite)).toBe(true);
    });
  }

  it('strength 1 ignores the source latents: sources differing only under the mask give the same result', async () => {
    const img1 = testImage(64, 64, 1);
    const img2 = testImage(64, 64, 1);
    const mask = request().mask;
    for (let p = 0; p < 64 * 64; p++) if (mask.data[p]) img2.data[3 * p] = 255 - img2.data[3 * p];
    const run = (image: RasterImage, strength: number) =>
      generate(fakeDiffusionModels(), fakeTokenizer, request({ image, mask, strength }));
    const [a1, a2] = await Promise.all([run(img1, 1), run(img2, 1)]);
    expect(Array.from(a1.latents)).toEqual(Array.from(a2.latents));
    // The initial latents are pure noise × initNoiseSigma (no image encode of the source).
    const [b1, b2] = await Promise.all([run(img1, 0.6), run(img2, 0.6)]);
    expect(maxAbs(b1.latents, b2.latents)).toBeGreaterThan(1e-4);
    const m = fakeDiffusionModels();
    await generate(m, fakeTokenizer, request({ strength: 1 }));
    expect(m.vaeEncoder.calls.length).toBe(1);
    const m2 = fakeDiffusionModels();
    await generate(m2, fakeTokenizer, request({ strength: 0.6 }));
    expect(m2.vaeEncoder.calls.length).toBe(2);
  });

  for (const channels of [1, 3, 4] as const) {
    it(`pixels where the paste-back mask is 0 are unchanged bit for bit (${channels}-channel, only masked, blur)`, async () => {
      const image = testImage(96, 80, 5, channels);
      const mask = rectMask(96, 80, 30, 25, 50, 41);
      const res = await generate(
        fakeDiffusionModels(),
        fakeTokenizer,
        request({ image, mask, onlyMasked: { padding: 8 }, maskBlur: 3 }),
      );
      expect(res.image.channels).toBe(channels);
      const c = channels;
      let unchanged = 0;
      let changedInside = 0;
      for (let p = 0; p < 96 * 80; p++) {
        const same = [...Array(c).keys()].every((k) => res.image.data[p * c + k] === image.data[p * c + k]);
        if (res.mask.data[p] === 0) {
          expect(same).toBe(true);
          unchanged++;
        } else if (!same) changedInside++;
      }
      expect(unchanged).toBeGreaterThan(96 * 80 * 0.8);
      expect(changedInside).toBeGreaterThan(100);
      // The blur spreads the paste-back mask beyond the painted rectangle but not beyond the crop.
      expect(res.mask.data[25 * 96 + 28]).toBeGreaterThan(0);
      const r = res.params.cropRect;
      expect(r.x).toBeLessThanOrEqual(22);
      expect(r.width).toBe(r.height); // widened to the square generation aspect
      if (c === 4) for (let p = 0; p < 96 * 80; p++) expect(res.image.data[4 * p + 3]).toBe(200);
    });
  }

  it('adapts the timestep to the graph: int64 scalar, float32 [B], float16 [1] with a batch-1 UNet', async () => {
    const base = await generate(fakeDiffusionModels(), fakeTokenizer, request());
    const i64 = fakeDiffusionModels({ timestep: { type: 'int64', shape: [] } });
    const r64 = await generate(i64, fakeTokenizer, request());
    const t64 = i64.unet.calls[0].feeds.timestep;
    expect(t64.type).toBe('int64');
    expect(t64.dims).toEqual([]);
    expect(t64.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(r64.latents)).toEqual(Array.from(base.latents));
    const f32 = fakeDiffusionModels();
    await generate(f32, fakeTokenizer, request());
    expect(f32.unet.calls[0].feeds.timestep.dims).toEqual([2]);
    expect(f32.unet.calls[0].feeds.timestep.type).toBe('float32');
    const one = fakeDiffusionModels({ timestep: { type: 'float16', shape: [1] }, unetBatch1: true });
    const r1 = await generate(one, fakeTokenizer, request());
    expect(one.unet.calls.length).toBe(2 * 5); // uncond and cond separately
    expect(one.unet.calls[0].feeds.timestep.dims).toEqual([1]);
    expect(one.unet.calls[0].feeds.timestep.data).toBeInstanceOf(Uint16Array);
    // Integer timesteps below 2048 are exact in fp16, and batch-1 runs do the same math: identical result.
    expect(Array.from(r1.latents)).toEqual(Array.from(base.latents));
  });

  it('converts fp16 I/O: every float feed is Uint16Array halves and outputs are read back (tolerance 2e-2)', async () => {
    const h = fakeDiffusionModels({ floatType: 'float16', idsType: 'int64' });
    const rh = await generate(h, fakeTokenizer, request());
    for (const s of [h.unet, h.vaeEncoder, h.vaeDecoder])
      for (const c of s.calls)
        for (const [name, t] of Object.entries(c.feeds))
          if (name !== 'timestep')
            expect([name, t.type, t.data.constructor.name]).toEqual([name, 'float16', 'Uint16Array']);
    expect(h.textEncoder.calls[0].feeds.input_ids.type).toBe('int64');
    const rf = await generate(fakeDiffusionModels(), fakeTokenizer, request());
    expect(maxAbs(rh.latents, rf.latents)).toBeLessThan(2e-2);
    expect(rh.latents.every(Number.isFinite)).toBe(true);
  });

  it('reports progress per step with a decoded preview every k steps', async () => {
    const seen: Progress[] = [];
    const res = await generate(
      fakeDiffusionModels(),
      fakeTokenizer,
      request({ steps: 8, strength: 1, previewEvery: 3 }),
      {
        onProgress: (p) => seen.push(p),
      },
    );
    expect(seen.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seen.every((p) => p.stage === 'denoise' && p.total === 8 && p.unit === 'steps')).toBe(true);
    const previews = seen.map((p) => (p.detail as DenoiseProgressDetail).preview);
    expect(previews.map((p) => p !== undefined)).toEqual([
      false,
      false,
      true,
      false,
      false,
      true,
      false,
      false,
    ]);
    expect(previews[2]!.width).toBe(64);
    expect(res.params.stepsRun).toBe(8);
  });

  it('cancels between steps with a CancelledError saying how far it got', async () => {
    const ctl = new AbortController();
    const m = fakeDiffusionModels();
    const run = generate(m, fakeTokenizer, request({ steps: 10, strength: 1 }), {
      signal: ctl.signal,
      onProgress: (p) => p.done === 3 && ctl.abort(),
    });
    await expect(run).rejects.toThrow(CancelledError);
    await expect(run).rejects.toThrow(/3 of 10 steps were done/);
    expect(m.unet.calls.length).toBe(3);
    expect(m.vaeDecoder.calls.length).toBe(0);
  });
});

describe('conditioning', () => {
  it('SDXL: [uncond, cond] × [77, d1 ‖ d2] from the penultimate layers, pooled from encoder 2', async () => {
    const m = fakeDiffusionModels();
    const c = await encodeConditioning(m, fakeTokenizer, 'rust', 'dust', true);
    expect(c.hiddenDims).toEqual([2, 77, 20]);
    expect(m.textEncoder.calls.length).toBe(2); // prompt, then negative prompt
    const e1 = await m.textEncoder.run({ input_ids: m.textEncoder.calls[0].feeds.input_ids });
    const e2 = await m.textEncoder2!.run({ input_ids: m.textEncoder2!.calls[0].feeds.input_ids });
    const h1 = e1['hidden_states.1'].data as Float32Array;
    const h2 = e2['hidden_states.1'].data as Float32Array;
    const cond = c.hidden.subarray(77 * 20);
    for (const t of [0, 1, 2, 5, 76]) {
      expect(Array.from(cond.subarray(t * 20, t * 20 + 8))).toEqual(
        Array.from(h1.subarray(t * 8, t * 8 + 8)),
      );
      expect(Array.from(cond.subarray(t * 20 + 8, t * 20 + 20))).toEqual(
        Array.from(h2.subarray(t * 12, t * 12 + 12)),
      );
    }
    expect(Array.from(c.pooled!.subarray(12))).toEqual(Array.from(e2.text_embeds.data as Float32Array));
    // The uncond half differs from the cond half where the prompts differ ("dust" vs "rust", token 1).
    expect(c.hidden[20]).not.toBe(cond[20]);
  });
});

describe('with the real CLIP tokenizer', () => {
  it('feeds each encoder the reference ids, padded its own way (EOS for encoder 1, 0 for encoder 2), as int64', async () => {
    const shared = new URL('../../../shared/reference/', import.meta.url);
    const tok = ClipTokenizer.fromBpeGz(
      new Uint8Array(readFileSync(new URL('clip/bpe_simple_vocab_16e6.txt.gz', shared))),
    );
    const golden = JSON.parse(readFileSync(new URL('golden/clip-tokens-golden.json', shared), 'utf8')) as {
      cases: { prompt: string; ids: number[] }[];
    };
    const c = golden.cases.find((x) => x.prompt === 'copper metal scratches')!;
    const m = fakeDiffusionModels({ idsType: 'int64' });
    await generate(m, tok, request({ prompt: c.prompt, guidanceScale: 1, steps: 2, strength: 1 }));
    const ids1 = Array.from(m.textEncoder.calls[0].feeds.input_ids.data as BigInt64Array, Number);
    const ids2 = Array.from(m.textEncoder2!.calls[0].feeds.input_ids.data as BigInt64Array, Number);
    expect(m.textEncoder.calls[0].feeds.input_ids.dims).toEqual([1, 77]);
    expect(ids1).toEqual([...c.ids, ...Array(77 - c.ids.length).fill(49407)]);
    expect(ids2).toEqual([...c.ids, ...Array(77 - c.ids.length).fill(0)]);
  });
});

describe('generate with a plain 4-channel UNet', () => {
  it('re-imposes the source latents outside the mask (diffusers rule), exactly at the last step', async () => {
    const m = fakeDiffusionModels({ unetChannels: 4 });
    const req = request({ strength: 1 });
    const res = await generate(m, fakeTokenizer, req);
    expect(m.unet.calls[0].feeds.sample.dims).toEqual([2, 4, 8, 8]);
    expect(m.vaeEncoder.calls.length).toBe(2);
    // Source latents of the whole image (second encoder call), scaled by the VAE factor.
    const src = (await m.vaeEncoder.run(m.vaeEncoder.calls[1].feeds)).latent_sample.data as Float32Array;
    // Latent cells sampled from painted pixels (torch nearest: pixel row/col 8·i): rows 3–5, cols 2–4.
    const masked = [3, 4, 5].flatMap((y) => [2, 3, 4].map((x) => y * 8 + x));
    for (let ch = 0; ch < 4; ch++)
      for (let p = 0; p < 64; p++) {
        const v = res.latents[ch * 64 + p];
        if (masked.includes(p)) expect(v).not.toBeCloseTo(src[ch * 64 + p] * 0.13025, 3);
        else expect(v).toBeCloseTo(src[ch * 64 + p] * 0.13025, 6);
      }
  });
});

describe('generate (SD-inpaint layout)', () => {
  it('uses one encoder, no added conditioning, and encodes "" for an empty negative prompt', async () => {
    const m = fakeDiffusionModels({ layout: 'sd-inpaint' });
    const res = await generate(m, fakeTokenizer, request({ negativePrompt: '' }));
    const f = m.unet.calls[0].feeds;
    expect(Object.keys(f).sort()).toEqual(['encoder_hidden_states', 'sample', 'timestep']);
    expect(f.encoder_hidden_states.dims).toEqual([2, 77, 8]);
    expect((f.encoder_hidden_states.data as Float32Array).subarray(0, 77 * 8).some((v) => v !== 0)).toBe(
      true,
    );
    expect(m.textEncoder.calls.length).toBe(2);
    expect(m.textEncoder.calls[0].outputNames).toEqual(['last_hidden_state']);
    expect(res.params.layout).toBe('sd-inpaint');
  });
});

describe('generate refuses bad requests with named errors', () => {
  it('empty mask, full mask, full mask in "only masked", wrong mask size', async () => {
    const m = fakeDiffusionModels();
    const empty = createRaster(64, 64, 1);
    const full = createRaster(64, 64, 1, 255);
    await expect(generate(m, fakeTokenizer, request({ mask: empty }))).rejects.toThrow(EmptyMaskError);
    await expect(generate(m, fakeTokenizer, request({ mask: full }))).rejects.toThrow(
      /MaskCoversImageError: .* — fix: .*allowFullMask/,
    );
    await expect(
      generate(m, fakeTokenizer, request({ mask: full, allowFullMask: true, onlyMasked: { padding: 4 } })),
    ).rejects.toThrow(MaskCoversImageError);
    await expect(generate(m, fakeTokenizer, request({ mask: createRaster(32, 64, 1, 255) }))).rejects.toThrow(
      MaskSizeError,
    );
    expect(m.unet.calls.length).toBe(0);
    const ok = await generate(m, fakeTokenizer, request({ mask: full, allowFullMask: true, strength: 1 }));
    expect(ok.mask.data.every((v) => v === 255)).toBe(true);
  });

  it('a graph that does not match its layout names the missing input', async () => {
    const m = fakeDiffusionModels({ dropUnetInput: 'time_ids' });
    await expect(generate(m, fakeTokenizer, request())).rejects.toThrow(ModelLayoutError);
    await expect(generate(m, fakeTokenizer, request())).rejects.toThrow(/unet has no input "time_ids"/);
    const sd = fakeDiffusionModels({ layout: 'sdxl-inpaint' });
    sd.config.layout = 'sd-inpaint';
    await expect(generate(sd, fakeTokenizer, request())).rejects.toThrow(/added conditioning/);
  });

  it('bad numbers name the argument', async () => {
    const m = fakeDiffusionModels();
    await expect(generate(m, fakeTokenizer, request({ strength: 0 }))).rejects.toThrow(
      /strength must be in \(0, 1\]/,
    );
    await expect(generate(m, fakeTokenizer, request({ steps: 0 }))).rejects.toThrow(/steps must be/);
    await expect(generate(m, fakeTokenizer, request({ seed: -1 }))).rejects.toThrow(/seed must be/);
    await expect(generate(m, fakeTokenizer, request({ width: 60 }))).rejects.toThrow(
      /width must be a positive multiple of 8/,
    );
  });
});

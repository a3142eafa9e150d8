/**
 * The tiny diffusion models: built deterministically, matching the committed manifests, loadable by
 * onnxruntime-node with exactly the optimum SDXL-inpaint / SD-inpaint signatures, and the int4/int8 variant
 * computing what its fp32 twin (holding the dequantized weights) computes.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  tinyDiffusionModels,
  quantizeInt4,
  dynamicQuantConv,
  dynamicQuantMatMul,
} from '../../models/builders/diffusion.ts';
import { GraphBuilder } from '../../models/builders/graph.ts';
import { createSession } from '../../src/runtime/ort-node.ts';
import { validateManifest, requiredComponents } from '../../src/runtime/models/manifest.ts';
import { layoutProblems } from '../../src/runtime/models/layout.ts';
import { inspectOnnx } from '../../src/runtime/models/onnx-inspect.ts';
import { floatToHalf, tensor, toFloat32, type TensorLike } from '../../src/core/tensor.ts';
import { Rng } from '../../src/core/rng.ts';

const built = await tinyDiffusionModels();
const byId = new Map(built.map((b) => [b.manifest.id, b]));

/**
 * Runs two SDXL-layout tiny UNets on the same seeded feeds; returns the largest |difference| and the reference's
 * largest |value| (the sessions stay open for the caller's further checks).
 */
async function compareUnets(reference: Uint8Array, other: Uint8Array) {
  const a = await createSession(reference);
  const b = await createSession(other);
  const rng = new Rng(9);
  const feeds: Record<string, TensorLike> = {
    sample: tensor('float32', rng.normalArray(2 * 9 * 64), [2, 9, 8, 8]),
    timestep: tensor('int64', BigInt64Array.of(981n), [1]),
    encoder_hidden_states: tensor('float32', rng.normalArray(2 * 77 * 2048), [2, 77, 2048]),
    text_embeds: tensor('float32', rng.normalArray(2 * 1280), [2, 1280]),
    time_ids: tensor('float32', Float32Array.of(64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64), [2, 6]),
  };
  const ya = (await a.run(feeds)).out_sample.data as Float32Array;
  const yb = (await b.run(feeds)).out_sample.data as Float32Array;
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < ya.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ya[i] - yb[i]));
    maxAbs = Math.max(maxAbs, Math.abs(ya[i]));
  }
  return { maxDiff, maxAbs, a, b };
}

describe('tiny diffusion models', () => {
  it('are deterministic and match the committed manifests byte for byte', async () => {
    const again = await tinyDiffusionModels();
    for (const b of again) {
      const committed = JSON.parse(
        readFileSync(resolve(import.meta.dirname, '../../models/manifests', `${b.manifest.id}.json`), 'utf8'),
      );
      expect(committed).toEqual(JSON.parse(JSON.stringify(b.manifest)));
      expect(b.manifest.files).toEqual(byId.get(b.manifest.id)!.manifest.files);
    }
  });

  it('validate, stay a few KB per graph and fit their layouts', () => {
    expect([...byId.keys()].sort()).toEqual([
      'tiny-sd-inpaint',
      'tiny-sd-inpaint-extdata',
      'tiny-sdxl-inpaint',
      'tiny-sdxl-inpaint-fp16',
      'tiny-sdxl-inpaint-int4',
      'tiny-sdxl-inpaint-int4-fp16',
      'tiny-sdxl-inpaint-int8',
    ]);
    for (const { manifest, files } of built) {
      validateManifest(JSON.parse(JSON.stringify(manifest)));
      for (const c of requiredComponents(manifest.layout)) {
        const comp = manifest.components[c]!;
        const bytes = files.get(comp.file)!;
        expect(bytes.length, `${manifest.id}/${comp.file}`).toBeLessThan(24_000);
        expect(layoutProblems(manifest.layout, c, inspectOnnx(bytes)), `${manifest.id}/${c}`).toEqual([]);
      }
    }
  });

  it('have the optimum SDXL-inpaint signatures', async () => {
    const { manifest, files } = byId.get('tiny-sdxl-inpaint')!;
    const unet = await createSession(files.get(manifest.components.unet!.file)!);
    expect(unet.inputs.map((i) => [i.name, i.type, i.shape.length])).toEqual([
      ['sample', 'float32', 4],
      ['timestep', 'int64', 1],
      ['encoder_hidden_states', 'float32', 3],
      ['text_embeds', 'float32', 2],
      ['time_ids', 'float32', 2],
    ]);
    expect(unet.inputs[0].shape[1]).toBe(9);
    expect(unet.inputs[2].shape[2]).toBe(2048);
    expect(unet.outputNames).toEqual(['out_sample']);
    const te2 = await createSession(files.get(manifest.components.text_encoder_2!.file)!);
    expect(te2.outputNames).toEqual([
      'text_embeds',
      'last_hidden_state',
      'hidden_states.0',
      'hidden_states.1',
      'hidden_states.2',
      'hidden_states.3',
    ]);
    const ids = tensor(
      'int32',
      Int32Array.from({ length: 2 * 77 }, (_, i) => (i * 37) % 49408),
      [2, 77],
    );
    const out = await te2.run({ input_ids: ids });
    expect(out.text_embeds.dims).toEqual([2, 1280]);
    expect(out['hidden_states.2'].dims).toEqual([2, 77, 1280]);
    const te1 = await createSession(files.get(manifest.components.text_encoder!.file)!);
    const o1 = await te1.run({ input_ids: ids });
    expect(o1.last_hidden_state.dims).toEqual([2, 77, 768]);
    expect(o1.pooler_output.dims).toEqual([2, 768]);
    for (const s of [unet, te1, te2]) await s.release();
  });

  it('fp16 variant: real fp16 I/O on onnxruntime-node, every float weight fp16, declared as needing shader-f16', async () => {
    const { manifest, files } = byId.get('tiny-sdxl-inpaint-fp16')!;
    expect(manifest.gpu?.shaderF16).toBe(true);
    const unetBytes = files.get(manifest.components.unet!.file)!;
    expect(inspectOnnx(unetBytes).usesFp16).toBe(true);
    const unet = await createSession(unetBytes);
    expect(unet.inputs.map((i) => [i.name, i.type])).toEqual([
      ['sample', 'float16'],
      ['timestep', 'int64'],
      ['encoder_hidden_states', 'float16'],
      ['text_embeds', 'float16'],
      ['time_ids', 'float16'],
    ]);
    const dec = await createSession(files.get(manifest.components.vae_decoder!.file)!);
    const z = tensor(
      'float16',
      Uint16Array.from({ length: 4 * 16 }, (_, i) => floatToHalf((i % 7) / 7)),
      [1, 4, 4, 4],
    );
    const y = (await dec.run({ latent_sample: z })).sample;
    expect(y.type).toBe('float16');
    expect(y.dims).toEqual([1, 3, 32, 32]);
    // The same decode in fp32: fp16 rounding (2^-11 relative) through two convs stays under 1e-2 absolute
    // on outputs in [-1, 1].
    const fp = byId.get('tiny-sdxl-inpaint')!;
    const dec32 = await createSession(fp.files.get(fp.manifest.components.vae_decoder!.file)!);
    const y32 = (await dec32.run({ latent_sample: tensor('float32', toFloat32(z), [1, 4, 4, 4]) })).sample;
    const a = toFloat32(y);
    const b = y32.data as Float32Array;
    expect(Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])))).toBeLessThan(1e-2);
    expect(Math.max(...Array.from(b, Math.abs))).toBeGreaterThan(0.1);
    for (const s of [unet, dec, dec32]) await s.release();
  });

  it('VAE round trip keeps the 8× factor, outputs stay in [-1, 1]', async () => {
    const { manifest, files } = byId.get('tiny-sd-inpaint')!;
    const enc = await createSession(files.get(manifest.components.vae_encoder!.file)!);
    const dec = await createSession(files.get(manifest.components.vae_decoder!.file)!);
    const rng = new Rng(3);
    const img = tensor(
      'float32',
      Float32Array.from({ length: 3 * 64 * 48 }, () => rng.uniform(-1, 1)),
      [1, 3, 64, 48],
    );
    const z = (await enc.run({ sample: img })).latent_sample;
    expect(z.dims).toEqual([1, 4, 8, 6]);
    const y = (await dec.run({ latent_sample: z })).sample;
    expect(y.dims).toEqual([1, 3, 64, 48]);
    expect(Math.max(...Array.from(y.data as Float32Array, Math.abs))).toBeLessThanOrEqual(1);
  });

  it('int4 MatMulNBits + int8 QDQ unet equals its fp32 twin (dequantized weights) within 1e-5', async () => {
    const fp = byId.get('tiny-sdxl-inpaint')!;
    const q = byId.get('tiny-sdxl-inpaint-int4')!;
    const qBytes = q.files.get('unet/model.onnx')!;
    expect(inspectOnnx(qBytes).ops).toEqual(
      expect.arrayContaining(['com.microsoft.MatMulNBits', 'DequantizeLinear']),
    );
    expect(inspectOnnx(fp.files.get('unet/model.onnx')!).ops).not.toContain('com.microsoft.MatMulNBits');
    const { maxDiff, maxAbs, a, b } = await compareUnets(fp.files.get('unet/model.onnx')!, qBytes);
    expect(maxAbs).toBeGreaterThan(0.01);
    expect(maxDiff).toBeLessThan(1e-5);
    await a.release();
    await b.release();
  });

  it('int8 dynamic blocks compute what the ONNX spec says (independent TypeScript emulation, rel. 1e-6)', async () => {
    // One graph holding both quantize_dynamic blocks the int8 unet uses, fed random activations; the reference
    // below follows the operator definitions in the ONNX spec (DynamicQuantizeLinear, MatMulInteger,
    // ConvInteger), not onnxruntime's code.
    const rng = new Rng(21);
    const g = new GraphBuilder('blocks');
    const x = g.input('x', 'float32', [2, 16]);
    const s = g.input('s', 'float32', [1, 9, 5, 4]);
    // 7-bit codes, as quantize_dynamic's reduce_range writes them: with full-range int8, onnxruntime's x86 u8s8
    // kernel saturates its int16 pair sums and misses the spec by ~25 % (why the int8 unet uses 7 bits too).
    const wq = Int8Array.from({ length: 16 * 8 }, () => rng.int(-64, 64));
    const wScale = Float32Array.from({ length: 8 }, () => Math.fround(rng.uniform(0.001, 0.01)));
    g.output(
      g.op('Identity', [dynamicQuantMatMul(g, x, wq, wScale, 16, 8, 'mm')], {}, 'y'),
      'float32',
      [2, 8],
    );
    const cq = Uint8Array.from({ length: 3 * 9 * 9 }, () => rng.int(0, 256));
    const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 };
    const c = dynamicQuantConv(g, s, { q: cq, zeroPoint: 131, scale: 0.004, dims: [3, 9, 3, 3] }, conv, 'cv');
    g.output(g.op('Identity', [c], {}, 'c'), 'float32', [1, 3, 5, 4]);
    const session = await createSession(g.toModel({ opset: 18 }));
    const xv = Float32Array.from({ length: 32 }, () => rng.uniform(-1.3, 2.1));
    const sv = Float32Array.from({ length: 9 * 20 }, () => rng.normal());
    const out = await session.run({
      x: tensor('float32', xv, [2, 16]),
      s: tensor('float32', sv, [1, 9, 5, 4]),
    });
    await session.release();

    // DynamicQuantizeLinear: range widened to include 0, scale = range / 255, zero point and codes rounded half
    // to even and saturated to [0, 255].
    const roundEven = (v: number) => {
      const r = Math.round(v);
      return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
    };
    const dql = (v: Float32Array) => {
      const lo = Math.min(0, ...v);
      const hi = Math.max(0, ...v);
      const scale = Math.fround((hi - lo) / 255);
      const zp = Math.max(0, Math.min(255, roundEven(-lo / scale)));
      return { q: Array.from(v, (a) => Math.max(0, Math.min(255, roundEven(a / scale) + zp))), scale, zp };
    };
    const dx = dql(xv);
    const yRef: number[] = [];
    for (let m = 0; m < 2; m++)
      for (let n = 0; n < 8; n++) {
        let acc = 0; // MatMulInteger: exact integer accumulation of (a - a_zp)(b - b_zp), b_zp = 0
        for (let k = 0; k < 16; k++) acc += (dx.q[m * 16 + k] - dx.zp) * wq[k * 8 + n];
        yRef.push(acc * dx.scale * wScale[n]);
      }
    const ds = dql(sv);
    const cRef: number[] = [];
    for (let o = 0; o < 3; o++)
      for (let yy = 0; yy < 5; yy++)
        for (let xx = 0; xx < 4; xx++) {
          let acc = 0; // ConvInteger: zero padding means padded inputs equal the input zero point
          for (let i = 0; i < 9; i++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++) {
                const sy = yy + ky - 1;
                const sx = xx + kx - 1;
                if (sy < 0 || sy >= 5 || sx < 0 || sx >= 4) continue;
                acc += (ds.q[i * 20 + sy * 4 + sx] - ds.zp) * (cq[((o * 9 + i) * 3 + ky) * 3 + kx] - 131);
              }
          cRef.push(acc * ds.scale * 0.004);
        }
    const rel = (got: Float32Array, ref: number[]) => {
      const peak = Math.max(...ref.map(Math.abs));
      return Math.max(...ref.map((r, i) => Math.abs(r - got[i]))) / peak;
    };
    expect(rel(out.y.data as Float32Array, yRef)).toBeLessThan(1e-6);
    expect(rel(out.c.data as Float32Array, cRef)).toBeLessThan(1e-6);
  });

  it('int8 dynamic-quantized unet stays within 2 % of its fp32 twin (activation rounding only)', async () => {
    // The int8 weights dequantize exactly to the fp32 twin's, so the whole difference is DynamicQuantizeLinear
    // rounding the activations (half a step of range/255 each): measurable (> 1e-4, else nothing was
    // quantized) but small. 2 % of the output's peak is the bound: the conv_in activations' quantization step
    // is ~6/255 ≈ 0.024, times Σ|w| ≈ 10 over a 9×3×3 kernel gives ~0.1 worst case on a layer whose outputs
    // reach ~3; averaging over the kernel makes the typical error far smaller (observed ≈ 0.7 %).
    const fp = byId.get('tiny-sdxl-inpaint')!;
    const q = byId.get('tiny-sdxl-inpaint-int8')!;
    const qBytes = q.files.get('unet/model.onnx')!;
    expect(inspectOnnx(qBytes).ops).toEqual(
      expect.arrayContaining(['DynamicQuantizeLinear', 'MatMulInteger', 'ConvInteger']),
    );
    expect(q.manifest.dtype).toBe('int8');
    const { maxDiff, maxAbs, a, b } = await compareUnets(fp.files.get('unet/model.onnx')!, qBytes);
    expect(maxAbs).toBeGreaterThan(0.5);
    expect(maxDiff).toBeGreaterThan(1e-4);
    expect(maxDiff / maxAbs).toBeLessThan(0.02);
    await a.release();
    await b.release();
  });

  it('quantizeInt4 packs low nibble first and dequantizes within half a step', () => {
    const K = 32;
    const N = 3;
    const rng = new Rng(1);
    const w = rng.normalArray(K * N);
    const { packed, scales, dequant, nBlocks } = quantizeInt4(w, K, N, 16);
    expect(nBlocks).toBe(2);
    expect(packed.length).toBe(N * 2 * 8);
    for (let k = 0; k < K; k++)
      for (let n = 0; n < N; n++) {
        const b = Math.floor(k / 16);
        const byte = packed[n * 16 + b * 8 + ((k % 16) >> 1)];
        const qv = k % 2 ? byte >> 4 : byte & 15;
        expect(dequant[k * N + n]).toBeCloseTo((qv - 8) * scales[n * 2 + b], 6);
        expect(Math.abs(dequant[k * N + n] - w[k * N + n])).toBeLessThanOrEqual(scales[n * 2 + b] / 2 + 1e-6);
      }
  });
});

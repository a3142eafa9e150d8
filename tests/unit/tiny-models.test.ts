/**
 * The tiny diffusion models: built deterministically, matching the committed manifests, loadable by
 * onnxruntime-node with exactly the optimum SDXL-inpaint / SD-inpaint signatures, and the int4/int8 variant
 * computing what its fp32 twin (holding the dequantized weights) computes.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tinyDiffusionModels, quantizeInt4 } from '../../models/builders/diffusion.ts';
import { createSession } from '../../src/runtime/ort-node.ts';
import { validateManifest, requiredComponents } from '../../src/runtime/models/manifest.ts';
import { layoutProblems } from '../../src/runtime/models/layout.ts';
import { inspectOnnx } from '../../src/runtime/models/onnx-inspect.ts';
import { tensor, type TensorLike } from '../../src/core/tensor.ts';
import { Rng } from '../../src/core/rng.ts';

const built = await tinyDiffusionModels();
const byId = new Map(built.map((b) => [b.manifest.id, b]));

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
      'tiny-sdxl-inpaint',
      'tiny-sdxl-inpaint-int4',
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
    const a = await createSession(fp.files.get('unet/model.onnx')!);
    const b = await createSession(qBytes);
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
    expect(maxAbs).toBeGreaterThan(0.01);
    expect(maxDiff).toBeLessThan(1e-5);
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

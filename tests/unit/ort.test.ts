import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/builders/graph.ts';
import { createSession, checkAdapterLimits, GpuLimitError } from '../../src/runtime/ort-node.ts';
import { inspectOnnx, TruncatedModelError } from '../../src/runtime/models/onnx-inspect.ts';
import { tensor } from '../../src/core/tensor.ts';

/** y = x·W + b with known numbers, so outputs can be checked by hand. x: [batch, 3] float32, y: [batch, 2]. */
function linearModel(): Uint8Array {
  const g = new GraphBuilder('linear');
  const x = g.input('x', 'float32', ['batch', 3]);
  const w = g.init('W', Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]);
  const b = g.init('b', Float32Array.of(0.5, -0.5), [2]);
  const y = g.op('Add', [g.op('MatMul', [x, w]), b], {}, 'y');
  g.output(y, 'float32', ['batch', 2]);
  const steps = g.input('steps', 'int64', []);
  g.output(g.op('Identity', [steps], {}, 'steps_out'), 'int64', []);
  return g.toModel({ opset: 17 });
}

describe('ort-node door', () => {
  it('reads I/O metadata and computes a known result', async () => {
    const s = await createSession(linearModel(), { name: 'linear' });
    expect(s.backend).toBe('cpu');
    expect(s.inputs).toEqual([
      { name: 'x', type: 'float32', shape: ['batch', 3] },
      { name: 'steps', type: 'int64', shape: [] },
    ]);
    const out = await s.run({
      x: tensor('float32', Float32Array.of(1, 0, -1, 2, 1, 0), [2, 3]),
      steps: tensor('int64', BigInt64Array.of(7n), []),
    });
    // row 1: [1,0,-1]·W = [1-5, 2-6] = [-4,-4] + b; row 2: [2,1,0]·W = [2+3, 4+4] = [5, 8] + b
    expect(Array.from(out.y.data as Float32Array)).toEqual([-3.5, -4.5, 5.5, 7.5]);
    expect(out.y.dims).toEqual([2, 2]);
    expect((out.steps_out.data as BigInt64Array)[0]).toBe(7n);
    await s.release();
    await expect(s.run({})).rejects.toThrow(/released/);
  });

  it('serializes concurrent runs and keeps each result with its feeds', async () => {
    const s = await createSession(linearModel());
    const runs = Array.from({ length: 8 }, (_, i) =>
      s.run({
        x: tensor('float32', Float32Array.of(i, 0, 0), [1, 3]),
        steps: tensor('int64', BigInt64Array.of(BigInt(i)), []),
      }),
    );
    const outs = await Promise.all(runs);
    outs.forEach((o, i) => expect(Array.from(o.y.data as Float32Array)).toEqual([i + 0.5, 2 * i - 0.5]));
    await s.release();
  });

  it('falls back from CUDA to CPU and says why', async () => {
    const s = await createSession(linearModel(), { backend: 'cuda' });
    // This machine has no CUDA; on one that has it the session would say cuda with no reason.
    if (s.backend === 'cpu') expect(s.fallbackReason).toMatch(/CUDA.*CPU/);
    else expect(s.fallbackReason).toBe('');
    await s.release();
  });

  it('names a graph that onnxruntime cannot load', async () => {
    const bytes = linearModel();
    await expect(createSession(bytes.slice(0, bytes.length - 20), { name: 'cut.onnx' })).rejects.toThrow(
      /SessionCreateError: onnxruntime could not load cut\.onnx.*— fix:/s,
    );
  });
});

describe('adapter limits check', () => {
  const adapter = { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 128 << 20, shaderF16: false };
  it('refuses a tensor larger than the binding size and suggests a way out', () => {
    expect(() =>
      checkAdapterLimits(
        'unet',
        { largestTensorBytes: 200 << 20, totalBytes: 1 << 30, usesFp16: false },
        adapter,
      ),
    ).toThrow(GpuLimitError);
    expect(() =>
      checkAdapterLimits(
        'unet',
        { largestTensorBytes: 200 << 20, totalBytes: 1 << 30, usesFp16: false },
        adapter,
      ),
    ).toThrow(/200\.0 MiB.*128\.0 MiB.*fix:.*smaller tier.*server backend/s);
  });
  it('refuses fp16 without shader-f16 and accepts what fits', () => {
    expect(() =>
      checkAdapterLimits('vae', { largestTensorBytes: 10, totalBytes: 10, usesFp16: true }, adapter),
    ).toThrow(/shader-f16/);
    expect(() =>
      checkAdapterLimits(
        'vae',
        { largestTensorBytes: 128 << 20, totalBytes: 1 << 30, usesFp16: false },
        adapter,
      ),
    ).not.toThrow();
  });
});

describe('inspectOnnx', () => {
  it('reads inputs, outputs, sizes and ops without onnxruntime', () => {
    const s = inspectOnnx(linearModel());
    expect(s.inputs.map((v) => [v.name, v.type, v.shape])).toEqual([
      ['x', 'float32', ['batch', 3]],
      ['steps', 'int64', []],
    ]);
    expect(s.outputs.map((v) => v.name)).toEqual(['y', 'steps_out']);
    expect(s.ops).toEqual(['Add', 'Identity', 'MatMul']);
    expect(s.initializerCount).toBe(2);
    expect(s.largestTensorBytes).toBe(24);
    expect(s.totalTensorBytes).toBe(32);
    expect(s.usesFp16).toBe(false);
    expect(s.opsets['']).toBe(17);
  });
  it('detects truncation at every cut point', () => {
    const bytes = linearModel();
    for (let cut = 0; cut < bytes.length; cut += 7)
      expect(() => inspectOnnx(bytes.subarray(0, cut), 'unet.onnx'), `cut at ${cut}`).toThrow(
        TruncatedModelError,
      );
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, repoPath, sourceFiles } from './repo-sources.ts';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../models/builders/graph.ts';
import {
  createSession,
  checkAdapterLimits,
  checkModelMemory,
  checkModelPlan,
  checkStorageQuota,
  GpuLimitError,
  MemoryLimitError,
  nodeBackend,
} from '../../src/runtime/ort-node.ts';
import { checkProbe, dequantizeProbe } from '../../src/runtime/ort-selfcheck.ts';
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

describe('memory checks before loading', () => {
  const GiB = 1024 ** 3;
  const needs = (totalGiB: number, largestMiB = 10, usesFp16 = false) => ({
    totalBytes: totalGiB * GiB,
    largestTensorBytes: largestMiB * 1024 ** 2,
    usesFp16,
  });

  it('refuses weights larger than navigator.deviceMemory, warns above half, and never refuses from the 8 GiB cap', () => {
    expect(() => checkModelMemory('sdxl', needs(6.5), { deviceMemoryGiB: 4 })).toThrow(MemoryLimitError);
    expect(() => checkModelMemory('sdxl', needs(6.5), { deviceMemoryGiB: 4 })).toThrow(
      /MemoryLimitError: sdxl has 6\.50 GiB of weights but this device has 4\.00 GiB of memory — fix: .*smaller tier.*server backend/,
    );
    const warn = checkModelMemory('sdxl-int8', needs(3), { deviceMemoryGiB: 4 });
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatch(/3\.00 GiB of weights .* 4\.00 GiB .*smaller tier/);
    expect(checkModelMemory('sd-int4', needs(1), { deviceMemoryGiB: 4 })).toEqual([]);
    // deviceMemory 8 means "8 or more": a 12 GiB model is a warning there, not a refusal.
    const capped = checkModelMemory('sdxl', needs(12), { deviceMemoryGiB: 8 });
    expect(capped[0]).toMatch(/at least 8\.00 GiB/);
    // Node's os.totalmem() is exact, so it refuses above it.
    expect(() => checkModelMemory('sdxl', needs(12), { totalMemoryBytes: 8 * GiB })).toThrow(
      MemoryLimitError,
    );
    // Nothing known: nothing refused.
    expect(checkModelMemory('sdxl', needs(100), {})).toEqual([]);
  });

  it('checks every component against the adapter (named) and the summed weights against memory', () => {
    const adapter = {
      maxBufferSize: 256 * 1024 ** 2,
      maxStorageBufferBindingSize: 128 * 1024 ** 2,
      shaderF16: true,
    };
    const plan = {
      name: 'm',
      components: [
        { name: 'm/text_encoder', needs: needs(0.5, 100) },
        { name: 'm/unet', needs: needs(2, 200) },
      ],
    };
    expect(() => checkModelPlan(plan, { adapter })).toThrow(
      /GpuLimitError: m\/unet has a 200\.0 MiB weight tensor.*128\.0 MiB/,
    );
    // Without an adapter (WASM) the largest tensor does not matter; the 2.5 GiB total does, against 2 GiB.
    expect(() => checkModelPlan(plan, { adapter: null, deviceMemoryGiB: 2 })).toThrow(
      /MemoryLimitError: m has 2\.50 GiB of weights but this device has 2\.00 GiB/,
    );
    expect(checkModelPlan(plan, { adapter: null, deviceMemoryGiB: 8 })).toEqual([]);
  });

  it('refuses a download the storage quota cannot take, counting only what is not stored yet', () => {
    expect(() => checkStorageQuota('sdxl', 7 * GiB, { quota: 10 * GiB, usage: 4 * GiB })).toThrow(
      /MemoryLimitError: sdxl needs 7\.00 GiB more of storage but the browser grants this site 6\.00 GiB free.*— fix: .*Pick files.*not copied/,
    );
    expect(() => checkStorageQuota('sdxl', 5 * GiB, { quota: 10 * GiB, usage: 4 * GiB })).not.toThrow();
    expect(() => checkStorageQuota('sdxl', 5 * GiB, {})).not.toThrow();
  });

  it('the Node door refuses through preflight from os.totalmem()', async () => {
    const { totalmem } = await import('node:os');
    const plan = (bytes: number) => ({
      name: 'big',
      components: [
        { name: 'big/unet', needs: { totalBytes: bytes, largestTensorBytes: 1, usesFp16: false } },
      ],
    });
    await expect(nodeBackend.preflight!(plan(totalmem() + 1))).rejects.toThrow(MemoryLimitError);
    expect(await nodeBackend.preflight!(plan(1024))).toEqual([]);
  });
});

describe('kernel self-check probes', () => {
  it('the DequantizeLinear probe is a valid model whose expected values onnxruntime-node reproduces', async () => {
    for (const kind of ['int8', 'uint8'] as const) {
      const probe = dequantizeProbe(kind);
      // Expected values come from the spec formula (q − zp)·scale; the int8 probe spans the whole range.
      expect(Math.min(...probe.expected)).toBe(-64);
      const problem = await checkProbe(probe, async (model) => {
        const s = await createSession(model);
        const out = await s.run({ x: tensor('float32', Float32Array.of(0), [1]) });
        await s.release();
        return out.y.data as Float32Array;
      });
      expect(problem, kind).toBe('');
    }
  });
  it('reports a wrong or failing kernel', async () => {
    const probe = dequantizeProbe('int8');
    expect(await checkProbe(probe, async () => probe.expected.map((v) => v + 0.25))).toMatch(
      /off by up to 0\.250/,
    );
    expect(await checkProbe(probe, async () => new Float32Array(3))).toMatch(/off by up to Infinity/);
    expect(
      await checkProbe(probe, async () => {
        throw new Error('no kernel');
      }),
    ).toMatch(/failed to run \(no kernel\)/);
  });
});

describe('the single onnxruntime door', () => {
  it('no module but src/runtime/ort*.ts imports onnxruntime (grep over every source file of the repo)', () => {
    const root = REPO_ROOT;
    const files = sourceFiles();
    // Static and dynamic imports and requires of any onnxruntime package (web, node, common, sub-paths).
    const importRe =
      /(?:from\s*|import\s*\(\s*|import\s+|require\s*\(\s*)['"`]onnxruntime(?:-web|-node|-common)?(?:\/[^'"`]*)?['"`]/;
    // This file is skipped: it quotes ort.ts's import line below.
    const importers = files
      .filter((f) => f !== import.meta.filename && importRe.test(readFileSync(f, 'utf8')))
      .map(repoPath)
      .sort();
    expect(files.length).toBeGreaterThan(100);
    expect(importers).toEqual(['src/runtime/ort-node.ts', 'src/runtime/ort-web.ts', 'src/runtime/ort.ts']);
    // ort.ts is the shared half: types only, so neither bundle pulls the other flavour's runtime.
    const shared = readFileSync(join(root, 'src/runtime/ort.ts'), 'utf8');
    expect(shared.match(/^import .*onnxruntime.*$/gm)).toEqual([
      "import type { InferenceSession, Tensor } from 'onnxruntime-common';",
    ]);
  });
});

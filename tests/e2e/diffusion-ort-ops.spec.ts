/**
 * What onnxruntime-web's JSEP WebGPU provider (the build the app ships) does with the ops the quantized tiny
 * models use, one op at a time against its own WASM kernels on the same inputs, on this machine's adapter
 * (SwiftShader). The app's behaviour rests on these facts (see src/runtime/ort-web.ts, ort-selfcheck.ts):
 * - MatMulNBits (int4) runs on WebGPU and matches WASM;
 * - DequantizeLinear runs on WebGPU but returns wrong values here — the runtime self-check catches it and the
 *   app moves such graphs to WASM. If this expectation starts failing, onnxruntime fixed the kernel: the
 *   self-check will then keep QDQ graphs on WebGPU by itself, and this test should flip to "matches";
 * - DynamicQuantizeLinear / MatMulInteger / ConvInteger have no WebGPU kernel: with the CPU fallback disabled the
 *   session is refused, with it (the default) the nodes run on the CPU kernels and the result matches WASM.
 * The page imports onnxruntime-web's own files (served from node_modules by a route), not the app bundle.
 */
import { expect, test } from './fixtures.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { GraphBuilder } from '../../models/builders/graph.ts';
import { dynamicQuantMatMul, quantizeInt4 } from '../../models/builders/diffusion.ts';
import { Rng } from '../../src/core/rng.ts';

const DIST = resolve(process.cwd(), 'node_modules/onnxruntime-web/dist');
const K = 16;
const N = 8;

function matMulNBits(): Uint8Array {
  const q = quantizeInt4(new Rng(3).normalArray(K * N), K, N, 16);
  const g = new GraphBuilder('mmnb');
  const x = g.input('x', 'float32', [2, K]);
  const b = g.init('b', q.packed, [N, q.nBlocks, 8], 'uint8');
  const y = g.op(
    'MatMulNBits',
    [x, b, g.init('s', q.scales, [N * q.nBlocks])],
    { K, N, bits: 4, block_size: 16 },
    'y',
    {
      domain: 'com.microsoft',
    },
  );
  g.output(y, 'float32', [2, N]);
  return g.toModel({ opset: 18, domains: { 'com.microsoft': 1 } });
}

/** y = DequantizeLinear(int8 weights) · x: the QDQ weight pattern of the int4 model's conv_in. */
function dequantizeMatMul(): Uint8Array {
  const rng = new Rng(4);
  const g = new GraphBuilder('dq');
  const x = g.input('x', 'float32', [2, K]);
  const q = g.init(
    'q',
    Int8Array.from({ length: K * N }, () => rng.int(-127, 128)),
    [K, N],
  );
  const w = g.op('DequantizeLinear', [
    q,
    g.init('s', Float32Array.of(0.01), []),
    g.init('z', Int8Array.of(0), []),
  ]);
  g.output(g.op('MatMul', [x, w], {}, 'y'), 'float32', [2, N]);
  return g.toModel({ opset: 18 });
}

function dynamicInt8(): Uint8Array {
  const rng = new Rng(5);
  const g = new GraphBuilder('dyn');
  const x = g.input('x', 'float32', [2, K]);
  const wq = Int8Array.from({ length: K * N }, () => rng.int(-64, 64));
  const y = dynamicQuantMatMul(g, x, wq, new Float32Array(N).fill(0.01), K, N, 'mm');
  g.output(g.op('Identity', [y], {}, 'y'), 'float32', [2, N]);
  return g.toModel({ opset: 18 });
}

test('JSEP WebGPU on this adapter: MatMulNBits right, DequantizeLinear wrong, int8-dynamic ops CPU-only', async ({
  page,
}) => {
  await page.route('**/ortdist/**', (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop()!;
    return route.fulfill({
      status: 200,
      body: readFileSync(resolve(DIST, name)),
      contentType: name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript',
    });
  });
  await page.goto('/');
  const models = {
    matMulNBits: Array.from(matMulNBits()),
    dequantize: Array.from(dequantizeMatMul()),
    dynamicInt8: Array.from(dynamicInt8()),
  };
  const out = await page.evaluate(async (models) => {
    type Ort = {
      env: { wasm: { wasmPaths: string; numThreads: number } };
      Tensor: new (t: string, d: Float32Array, dims: number[]) => unknown;
      InferenceSession: {
        create(
          b: Uint8Array,
          o: unknown,
        ): Promise<{ run(f: unknown): Promise<{ y: { data: Float32Array } }> }>;
      };
    };
    const ort = (await import(/* @vite-ignore */ '/ortdist/ort.mjs' as string)) as Ort;
    ort.env.wasm.wasmPaths = '/ortdist/';
    ort.env.wasm.numThreads = 1;
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 32 }, (_, i) => Math.sin(i * 0.7) * 2),
      [2, 16],
    );
    const res: Record<string, { diff: number; strict: string }> = {};
    for (const [name, bytes] of Object.entries(models)) {
      const b = Uint8Array.from(bytes);
      const run = async (ep: string, extra = {}) =>
        Array.from(
          (await (await ort.InferenceSession.create(b, { executionProviders: [ep], ...extra })).run({ x })).y
            .data,
        );
      const gpu = await run('webgpu');
      const cpu = await run('wasm');
      const strict = await run('webgpu', { extra: { session: { disable_cpu_ep_fallback: '1' } } }).then(
        () => 'created',
        (e: Error) => e.message,
      );
      res[name] = { diff: Math.max(...gpu.map((v, i) => Math.abs(v - cpu[i]))), strict };
    }
    return res;
  }, models);
  console.log(JSON.stringify(out));
  expect(out.matMulNBits.diff).toBeLessThan(1e-5);
  expect(out.matMulNBits.strict).toBe('created');
  expect(out.dequantize.strict).toBe('created');
  expect(out.dequantize.diff).toBeGreaterThan(1e-3);
  expect(out.dynamicInt8.strict).toMatch(/fallback to CPU EP has been explicitly disabled/);
  expect(out.dynamicInt8.diff).toBeLessThan(1e-5);
});

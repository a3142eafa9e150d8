/**
 * What onnxruntime can do on this machine: a one-node ONNX model (built with the repo's onnx-proto helpers) is
 * opened through the Node ORT door on CPU and on CUDA; the CUDA attempt's fallback reason is reported as is.
 */
import { graph, model, node, valueInfo } from '../models/builders/graph.ts';
import { float32 } from '../src/core/tensor.ts';
import { createSession, nodeBackend } from '../src/runtime/ort-node.ts';

export interface OrtProbe {
  flavour: string;
  version: string;
  /** Execution providers that opened a session here. */
  providers: string[];
  /** Why CUDA was not used ('' when it was). */
  cudaFallbackReason: string;
  cpuWorks: boolean;
}

function probeModel(): Uint8Array {
  return model(
    graph({
      name: 'probe',
      nodes: [node('Relu', ['x'], ['y'])],
      inputs: [valueInfo('x', 'float32', [2])],
      outputs: [valueInfo('y', 'float32', [2])],
      initializers: [],
    }),
  );
}

export async function probeOrt(): Promise<OrtProbe> {
  const bytes = probeModel();
  const providers: string[] = [];
  let cpuWorks = false;
  try {
    const s = await createSession(bytes, { backend: 'cpu', name: 'probe' });
    const out = await s.run({ x: float32(Float32Array.from([-1, 2]), [2]) });
    cpuWorks = Array.from(out.y.data as Float32Array).join(',') === '0,2';
    if (cpuWorks) providers.push('cpu');
    await s.release();
  } catch {
    cpuWorks = false;
  }
  let cudaFallbackReason = '';
  try {
    const s = await createSession(bytes, { backend: 'cuda', name: 'probe' });
    const info = s as unknown as { backend?: string; fallbackReason?: string };
    if (info.backend === 'cuda') providers.unshift('cuda');
    else cudaFallbackReason = info.fallbackReason || 'CUDA did not open; running on CPU';
    await s.release();
  } catch (e) {
    cudaFallbackReason = e instanceof Error ? e.message : String(e);
  }
  return {
    flavour: nodeBackend.flavour,
    version: nodeBackend.version,
    providers,
    cudaFallbackReason,
    cpuWorks,
  };
}

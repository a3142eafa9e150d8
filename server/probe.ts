/**
 * What onnxruntime can do on this machine: the runtime's self-check graph (`src/runtime/ort-selfcheck.ts`) is
 * opened through the Node ORT door on CPU (and its values checked) and on CUDA; the CUDA attempt's fallback
 * reason is reported as is.
 */
import { checkProbe, dequantizeProbe } from '../src/runtime/ort-selfcheck.ts';
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

export async function probeOrt(): Promise<OrtProbe> {
  // The runtime's own self-check graph (a uint8 DequantizeLinear + Add with known outputs): no model builder in
  // the product, and the probe checks values, not only that a session opens.
  const probe = dequantizeProbe('uint8');
  const bytes = probe.model;
  const providers: string[] = [];
  const problem = await checkProbe(probe, async (m) => {
    const s = await createSession(m, { backend: 'cpu', name: 'probe' });
    try {
      const out = await s.run({ x: float32(Float32Array.from([0]), [1]) });
      return out.y.data as Float32Array;
    } finally {
      await s.release();
    }
  });
  const cpuWorks = problem === '';
  if (cpuWorks) providers.push('cpu');
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

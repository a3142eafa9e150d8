/** Start-up checks shared by `npm run server` and `npm run worker`. */
import { ServerConfigError, type ServerOptions } from './options.ts';

/**
 * --require-cuda: a GPU host that silently runs on CPU is slower by orders of magnitude, so refuse to start and
 * say why CUDA did not open.
 */
export async function checkCuda(o: Pick<ServerOptions, 'requireCuda' | 'device'>): Promise<string> {
  if (!o.requireCuda && o.device !== 'cuda') return '';
  const { probeOrt } = await import('./probe.ts');
  const p = await probeOrt();
  if (p.providers.includes('cuda')) return 'cuda';
  if (o.requireCuda)
    throw new ServerConfigError(
      `--require-cuda: CUDA did not open a session (${p.cudaFallbackReason})`,
      'install the CUDA build of onnxruntime-node (docs/server.md, "CUDA hosts"), or drop --require-cuda',
    );
  return `cpu (${p.cudaFallbackReason})`;
}

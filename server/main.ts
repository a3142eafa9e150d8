/**
 * `npm run server`: the DefectLab HTTP API on localhost (DL_SERVER_PORT, default 8787). DL_DEVICE=cuda|cpu
 * (default cuda: the CUDA execution provider when present, else CPU with the reason); DL_MODELS_DIR holds one
 * folder per diffusion model with its manifest.json (default models/tiny).
 */
import './register.ts';
import { buildServer } from './app.ts';
import { TINY_MODELS_DIR, diffusionHandler, localModels, nodeDiffusionEngine } from './diffusion.ts';

const port = Number(process.env.DL_SERVER_PORT ?? 8787);
const device = process.env.DL_DEVICE ?? 'cuda';
if (device !== 'cpu' && device !== 'cuda') {
  console.error(
    `DL_DEVICE=${device}: unknown device — fix: set DL_DEVICE=cuda (CUDA when present) or DL_DEVICE=cpu`,
  );
  process.exit(2);
}
const app = buildServer({
  device,
  diffusion: diffusionHandler(
    nodeDiffusionEngine(),
    localModels(process.env.DL_MODELS_DIR ?? TINY_MODELS_DIR, device),
  ),
});
app.listen({ host: '127.0.0.1', port }).then(
  (addr) =>
    console.log(
      `DefectLab API on ${addr} (GET /api/health, /api/capabilities; POST /api/metrics, /api/synth/generate, /api/experiments/run, /api/experiments/grid, /api/diffusion/generate)`,
    ),
  (e: unknown) => {
    console.error(
      `could not listen on 127.0.0.1:${port}: ${e instanceof Error ? e.message : String(e)} — fix: set DL_SERVER_PORT to a free port`,
    );
    process.exit(1);
  },
);

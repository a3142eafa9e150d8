/** `npm run server`: the DefectLab HTTP API on localhost (DL_SERVER_PORT, default 8787). */
import './register.ts';
import { buildServer } from './app.ts';
import { diffusionHandler, localModels, nodeDiffusionEngine } from './diffusion.ts';

const port = Number(process.env.DL_SERVER_PORT ?? 8787);
const app = buildServer({ diffusion: diffusionHandler(nodeDiffusionEngine(), localModels()) });
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

/**
 * The diffusion worker: the engine over onnxruntime-web, reading models from the Cache Storage / OPFS the Models
 * tab fills (or from picked files passed in the load request). Sessions and their GPU buffers live here, off the
 * main thread, so a 30-step SDXL run never blocks the UI.
 *
 * Comlink only proxies top-level arguments, so the wire API takes the job id and the progress callback as
 * separate arguments and rebuilds the engine's `JobOptions` here.
 */
import { exposeEngine, type JobOptions } from './host.ts';
import { createDiffusionEngine, type DiffusionEngineApi } from './diffusion.engine.ts';
import { webBackend } from '../src/runtime/ort-web.ts';
import { storeFor } from '../src/runtime/models/store.ts';

/** What crosses the worker boundary (the client turns it back into `DiffusionEngineApi`). */
export interface DiffusionWire {
  load(
    req: Parameters<DiffusionEngineApi['load']>[0],
    jobId?: string,
    onProgress?: JobOptions['onProgress'],
  ): ReturnType<DiffusionEngineApi['load']>;
  generate(
    req: Parameters<DiffusionEngineApi['generate']>[0],
    jobId?: string,
    onProgress?: JobOptions['onProgress'],
  ): ReturnType<DiffusionEngineApi['generate']>;
  unload(): Promise<void>;
  loaded(): ReturnType<DiffusionEngineApi['loaded']>;
  ortSessions(): ReturnType<DiffusionEngineApi['ortSessions']>;
  cancel(jobId: string): void;
}

const engine = createDiffusionEngine({ ort: webBackend, store: storeFor });

const wire: DiffusionWire = {
  load: (req, jobId, onProgress) => engine.load(req, { jobId, onProgress }),
  generate: async (req, jobId, onProgress) => {
    const r = await engine.generate(req, { jobId, onProgress });
    return r;
  },
  unload: () => engine.unload(),
  loaded: () => engine.loaded(),
  ortSessions: () => engine.ortSessions(),
  cancel: (jobId) => void engine.cancel(jobId),
};

exposeEngine(wire);

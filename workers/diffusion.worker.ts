/**
 * The diffusion worker: the engine over onnxruntime-web, reading models from the Cache Storage / OPFS the Models
 * tab fills (or from picked files passed in the load request). Sessions and their GPU buffers live here, off the
 * main thread, so a 30-step SDXL run never blocks the UI.
 */
import { exposeEngine } from './host.ts';
import { createDiffusionEngine } from './diffusion.engine.ts';
import { webBackend } from '../src/runtime/ort-web.ts';
import { storeFor } from '../src/runtime/models/store.ts';

exposeEngine(createDiffusionEngine({ ort: webBackend, store: storeFor }));

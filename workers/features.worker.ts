/**
 * The features worker: ORT (WebGPU with WASM fallback) runs the backbone here, off the page's thread, and reads
 * and writes the feature cache in its own store connection.
 */
import { exposeEngine } from './host.ts';
import { FeaturesEngine } from './features.engine.ts';
import { openStore } from '../src/runtime/db/store.ts';
import { decodeImage } from '../src/runtime/decode.ts';
import { webBackend } from '../src/runtime/ort-web.ts';
import { autoPlace } from '../src/runtime/backend-choice.ts';

exposeEngine(
  new FeaturesEngine({
    ort: webBackend,
    store: () => openStore(),
    decode: decodeImage,
    autoDevice: autoPlace,
  }),
);

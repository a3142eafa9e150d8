/**
 * The experiments worker: backbone (ORT web), heads (tfjs, on the System panel's choice), the diffusion models the Models tab
 * cached, and the grid runner in one worker.
 */
import { exposeEngine } from './host.ts';
import { ExperimentsEngine } from './experiments.engine.ts';
import { openStore } from '../src/runtime/db/store.ts';
import { decodeImage } from '../src/runtime/decode.ts';
import { webBackend } from '../src/runtime/ort-web.ts';
import { autoPlace, preferredBackend } from '../src/runtime/backend-choice.ts';
import { cachedDiffusionSource } from './experiments.diffusion.ts';

exposeEngine(
  new ExperimentsEngine({
    ort: webBackend,
    store: () => openStore(),
    decode: decodeImage,
    autoDevice: autoPlace,
    diffusion: cachedDiffusionSource(webBackend, preferredBackend),
  }),
);

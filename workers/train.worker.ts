/**
 * The train worker: backbone (ORT) and head (tfjs, on the System panel's choice) in one worker, so the CSE head's
 * on-the-fly synthetic defects go straight into the backbone. Heads and cached features go to its own store
 * connection.
 */
import { exposeEngine } from './host.ts';
import { TrainEngine } from './train.engine.ts';
import { openStore } from '../src/runtime/db/store.ts';
import { decodeImage } from '../src/runtime/decode.ts';
import { webBackend } from '../src/runtime/ort-web.ts';
import { autoPlace } from '../src/runtime/backend-choice.ts';

exposeEngine(
  new TrainEngine({
    ort: webBackend,
    store: () => openStore(),
    decode: decodeImage,
    autoDevice: autoPlace,
  }),
);

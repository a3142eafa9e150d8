/**
 * The import worker: decoding, hashing, thumbnails and IndexedDB writes of imports and exports run here, so a
 * 2,000-image import never blocks the page. It opens its own connection to the store.
 */
import { exposeEngine, transfer } from './host.ts';
import { ImportEngine, type ImportApi } from './import.engine.ts';
import { openStore } from '../src/runtime/db/store.ts';
import type { JobOptions } from './host.ts';

const engine = new ImportEngine(() => openStore());

/** The engine, with the export's zip bytes transferred back instead of copied. */
const api: ImportApi = {
  importFiles: (datasetId, input, opts) => engine.importFiles(datasetId, input, opts),
  importIntoNewDataset: (name, input, opts) => engine.importIntoNewDataset(name, input, opts),
  createSampleDataset: (opts) => engine.createSampleDataset(opts),
  async exportDataset(datasetId: string, opts?: JobOptions) {
    const zip = await engine.exportDataset(datasetId, opts);
    return transfer(zip, [zip.buffer]);
  },
  cancel: (jobId) => engine.cancel(jobId),
};

exposeEngine(api);

/**
 * The import worker: decoding, hashing, thumbnails and IndexedDB writes of imports and exports run here, so a
 * 2,000-image import never blocks the page. It opens its own connection to the store.
 *
 * The wire API differs from `ImportApi` in one way: the progress callback is a top-level argument. comlink turns
 * only top-level arguments marked with `Comlink.proxy` into callable proxies; a function nested in an options
 * object is structured-cloned and fails ("could not be cloned"). `ImportClient` maps `ImportApi` onto this.
 */
import * as Comlink from 'comlink';
import type { ProgressFn } from '../src/core/progress.ts';
import type { SampleDatasetOptions } from '../src/core/sample-data/index.ts';
import { openStore } from '../src/runtime/db/store.ts';
import { exposeEngine } from './host.ts';
import { ImportEngine, type ImportInput, type ImportOptions } from './import.engine.ts';

const engine = new ImportEngine(() => openStore());

/** `ImportOptions` without the callback (plain data, cloneable). */
export type PlainImportOptions = Omit<ImportOptions, 'onProgress'>;

const api = {
  importFiles: (datasetId: string, input: ImportInput, opts: PlainImportOptions, onProgress?: ProgressFn) =>
    engine.importFiles(datasetId, input, { ...opts, onProgress }),
  importIntoNewDataset: (
    name: string | null,
    input: ImportInput,
    opts: PlainImportOptions,
    onProgress?: ProgressFn,
  ) => engine.importIntoNewDataset(name, input, { ...opts, onProgress }),
  createSampleDataset: (
    opts: PlainImportOptions & { sample?: SampleDatasetOptions },
    onProgress?: ProgressFn,
  ) => engine.createSampleDataset({ ...opts, onProgress }),
  async exportDataset(datasetId: string, jobId?: string, onProgress?: ProgressFn) {
    const zip = await engine.exportDataset(datasetId, { jobId, onProgress });
    // The zip can be hundreds of MB: hand the buffer over instead of copying it.
    return Comlink.transfer(zip, [zip.buffer]);
  },
  cancel: (jobId: string) => engine.cancel(jobId),
};

export type ImportWireApi = typeof api;

exposeEngine(api);

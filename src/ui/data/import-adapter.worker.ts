/**
 * Worker entry for the UI's imports: the same `ImportEngine` as `workers/import.worker.ts`, but with the progress
 * callback as a top-level argument. Why: comlink turns only top-level arguments marked with `Comlink.proxy` into
 * callable proxies; a proxied function nested inside an options object (what `WorkerConnection.options` builds)
 * is structured-cloned and fails ("could not be cloned"). Remove this adapter once the shared worker host passes
 * progress at the top level.
 */
import * as Comlink from 'comlink';
import type { ProgressFn } from '../../core/progress.ts';
import { openStore } from '../../runtime/db/store.ts';
import { ImportEngine, type ImportInput, type ImportOptions } from '../../../workers/import.engine.ts';

const engine = new ImportEngine(() => openStore());

type PlainOptions = Omit<ImportOptions, 'onProgress'>;

const api = {
  importFiles: (datasetId: string, input: ImportInput, opts: PlainOptions, onProgress?: ProgressFn) =>
    engine.importFiles(datasetId, input, { ...opts, onProgress }),
  importIntoNewDataset: (
    name: string | null,
    input: ImportInput,
    opts: PlainOptions,
    onProgress?: ProgressFn,
  ) => engine.importIntoNewDataset(name, input, { ...opts, onProgress }),
  createSampleDataset: (onProgress?: ProgressFn) => engine.createSampleDataset({ onProgress }),
  async exportDataset(datasetId: string, jobId?: string, onProgress?: ProgressFn) {
    const zip = await engine.exportDataset(datasetId, { jobId, onProgress });
    return Comlink.transfer(zip, [zip.buffer]);
  },
  cancel: (jobId: string) => engine.cancel(jobId),
};

export type ImportAdapterApi = typeof api;

Comlink.expose(api);

/**
 * The import worker: decoding, hashing, thumbnails and IndexedDB writes of imports and exports run here, so a
 * 2,000-image import never blocks the page. It opens its own connection to the store, and prepares items in a
 * pool of `min(hardwareConcurrency, 4)` decode workers (`import-decode.worker.ts`, started on the first import)
 * while it writes the batches itself.
 *
 * The wire API differs from `ImportApi` in one way: the progress callback is a top-level argument. comlink turns
 * only top-level arguments marked with `Comlink.proxy` into callable proxies; a function nested in an options
 * object is structured-cloned and fails ("could not be cloned"). `ImportClient` maps `ImportApi` onto this.
 */
import * as Comlink from 'comlink';
import type { Progress, ProgressFn } from '../src/core/progress.ts';
import type { SampleDatasetOptions } from '../src/core/sample-data/index.ts';
import { openStore } from '../src/runtime/db/store.ts';
import { exposeEngine } from './host.ts';
import { ImportEngine, type ImportInput, type ImportOptions } from './import.engine.ts';
import { decodeWorkerCount, inThreadPool, workerPool } from './import.pool.ts';

const engine = new ImportEngine(
  () => openStore(),
  () =>
    // Nested workers exist in every browser the app supports; without them, prepare here (serially).
    typeof Worker === 'undefined'
      ? inThreadPool()
      : workerPool(
          decodeWorkerCount(),
          () =>
            new Worker(new URL('./import-decode.worker.ts', import.meta.url), {
              type: 'module',
              name: 'import-decode',
            }),
        ),
);

/** `ImportOptions` without the callback (plain data, cloneable). */
export type PlainImportOptions = Omit<ImportOptions, 'onProgress'>;

/**
 * At most one progress message per `ms` across the worker boundary (plus the first and the last): at 200
 * images/s a message per image would keep the page busy re-rendering the bar.
 */
function throttleProgress(fn: ProgressFn | undefined, ms = 100): ProgressFn | undefined {
  if (!fn) return undefined;
  let last = -Infinity;
  return (p: Progress) => {
    const now = performance.now();
    if (p.done === 0 || p.done >= p.total || now - last >= ms) {
      last = now;
      fn(p);
    }
  };
}

const api = {
  importFiles: (datasetId: string, input: ImportInput, opts: PlainImportOptions, onProgress?: ProgressFn) =>
    engine.importFiles(datasetId, input, { ...opts, onProgress: throttleProgress(onProgress) }),
  importIntoNewDataset: (
    name: string | null,
    input: ImportInput,
    opts: PlainImportOptions,
    onProgress?: ProgressFn,
  ) => engine.importIntoNewDataset(name, input, { ...opts, onProgress: throttleProgress(onProgress) }),
  createSampleDataset: (
    opts: PlainImportOptions & { sample?: SampleDatasetOptions },
    onProgress?: ProgressFn,
  ) => engine.createSampleDataset({ ...opts, onProgress: throttleProgress(onProgress) }),
  async exportDataset(datasetId: string, jobId?: string, onProgress?: ProgressFn) {
    const zip = await engine.exportDataset(datasetId, { jobId, onProgress });
    // The zip can be hundreds of MB: hand the buffer over instead of copying it.
    return Comlink.transfer(zip, [zip.buffer]);
  },
  cancel: (jobId: string) => engine.cancel(jobId),
};

export type ImportWireApi = typeof api;

exposeEngine(api);

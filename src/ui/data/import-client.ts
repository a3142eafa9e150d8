/**
 * The UI's door to the import engine running in a worker (`import-adapter.worker.ts`, see there why it is not
 * `workers/import.client.ts` yet): created on first use so the worker and its decoders cost nothing at first
 * paint. Turns picked files into the engine's input; a crashed worker rejects the pending call with a named
 * error and is restarted by the next call.
 */
import * as Comlink from 'comlink';
import type { DatasetRecord } from '../../core/dataset.ts';
import { DefectLabError } from '../../core/errors.ts';
import type { ProgressFn } from '../../core/progress.ts';
import type { ImportInput, ImportReport } from '../../../workers/import.engine.ts';
import type { ImportAdapterApi } from './import-adapter.worker.ts';
import { isSingleZip, type PickedFile } from './files.ts';

export type { ImportReport };

export class ImportWorkerStoppedError extends DefectLabError {
  constructor(reason: string) {
    super(
      'ImportWorkerStoppedError',
      `the import worker stopped (${reason}); batches stored before it stopped are kept`,
      'import again (duplicates are skipped); if it keeps happening, import fewer files at a time',
    );
  }
}

let worker: Worker | null = null;
let remote: Comlink.Remote<ImportAdapterApi> | null = null;
let onCrash: ((e: Error) => void)[] = [];

function api(): Comlink.Remote<ImportAdapterApi> {
  if (!remote) {
    const w = new Worker(new URL('./import-adapter.worker.ts', import.meta.url), {
      type: 'module',
      name: 'import',
    });
    w.addEventListener('error', (ev) => {
      w.terminate();
      if (worker === w) {
        worker = null;
        remote = null;
      }
      const fns = onCrash;
      onCrash = [];
      for (const fn of fns) fn(new ImportWorkerStoppedError(ev.message || 'it crashed'));
    });
    worker = w;
    remote = Comlink.wrap<ImportAdapterApi>(w);
  }
  return remote;
}

/** Races a call against the worker dying, so a crash rejects instead of hanging forever. */
function guard<T>(p: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fn = (e: Error) => reject(e);
    onCrash.push(fn);
    p.then(resolve, reject).finally(() => (onCrash = onCrash.filter((f) => f !== fn)));
  });
}

const proxied = (fn: ProgressFn | undefined) => (fn ? Comlink.proxy(fn) : undefined);

function inputOf(files: PickedFile[]): ImportInput {
  if (isSingleZip(files)) return { zip: files[0].file, name: files[0].path };
  return { entries: files.map((f) => ({ path: f.path, data: f.file })) };
}

/** Imports into an existing dataset, or into a new one named `newName` when `datasetId` is null. */
export async function importPicked(
  datasetId: string | null,
  newName: string,
  files: PickedFile[],
  opts: { jobId: string; onProgress?: ProgressFn },
): Promise<ImportReport> {
  const input = inputOf(files);
  const plain = { jobId: opts.jobId };
  if (datasetId) return guard(api().importFiles(datasetId, input, plain, proxied(opts.onProgress)));
  return (await guard(api().importIntoNewDataset(newName, input, plain, proxied(opts.onProgress)))).report;
}

export async function cancelImport(jobId: string): Promise<void> {
  await api().cancel(jobId);
}

export async function exportDatasetZip(datasetId: string, onProgress?: ProgressFn): Promise<Uint8Array> {
  return guard(api().exportDataset(datasetId, undefined, proxied(onProgress)));
}

/** Generates and stores the built-in sample dataset; throws when nothing could be stored. */
export async function createSampleDataset(onProgress?: ProgressFn): Promise<DatasetRecord> {
  const { dataset, report } = await guard(api().createSampleDataset(proxied(onProgress)));
  if (report.added === 0) throw new Error(`The sample dataset could not be stored: ${report.message}`);
  return dataset;
}

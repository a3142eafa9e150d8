/**
 * Main-thread client of the import worker: the same `ImportApi` as `ImportEngine`, through comlink. Files and
 * Blobs cross as references (no copy of their bytes); progress callbacks are proxied (as top-level arguments,
 * see `import.worker.ts`); a crashed worker rejects
 * pending calls with `ImportWorkerCrashedError` (what earlier batches stored stays stored) and is restarted by
 * the next call.
 */
import * as Comlink from 'comlink';
import type { DatasetRecord } from '../src/core/dataset.ts';
import { DefectLabError } from '../src/core/errors.ts';
import { WorkerConnection, type JobOptions } from './host.ts';
import type { ImportApi, ImportInput, ImportOptions, ImportReport } from './import.engine.ts';
import type { ImportWireApi, PlainImportOptions } from './import.worker.ts';
import type { ProgressFn } from '../src/core/progress.ts';
import type { SampleDatasetOptions } from '../src/core/sample-data/index.ts';

export class ImportWorkerCrashedError extends DefectLabError {
  constructor(reason: string) {
    super(
      'ImportWorkerCrashedError',
      `the import worker stopped (${reason}); batches stored before the crash are kept`,
      'import again (duplicates are skipped); if it keeps happening, import fewer or smaller files at a time',
    );
  }
}

export class ImportClient implements ImportApi {
  private readonly conn = new WorkerConnection<ImportWireApi>(
    () => new Worker(new URL('./import.worker.ts', import.meta.url), { type: 'module', name: 'import' }),
  );
  private crash: ((e: Error) => void)[] = [];

  constructor() {
    this.conn.onDeath((reason) => {
      const fns = this.crash;
      this.crash = [];
      for (const fn of fns) fn(new ImportWorkerCrashedError(reason));
    });
  }

  /** Races a call against the worker dying, so a crash rejects instead of hanging. */
  private guard<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onCrash = (e: Error) => reject(e);
      this.crash.push(onCrash);
      p.then(resolve, reject).finally(() => (this.crash = this.crash.filter((f) => f !== onCrash)));
    });
  }

  /** Splits options into plain data and the progress callback, proxied as a top-level argument. */
  private static split<O extends ImportOptions>(
    opts: O | undefined,
  ): [Omit<O, 'onProgress'>, ProgressFn | undefined] {
    const { onProgress, ...plain } = opts ?? ({} as O);
    return [plain, onProgress ? Comlink.proxy(onProgress) : undefined];
  }

  importFiles(datasetId: string, input: ImportInput, opts?: ImportOptions): Promise<ImportReport> {
    const [plain, progress] = ImportClient.split(opts);
    return this.guard(this.conn.api.importFiles(datasetId, input, plain as PlainImportOptions, progress));
  }

  importIntoNewDataset(
    name: string | null,
    input: ImportInput,
    opts?: ImportOptions,
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    const [plain, progress] = ImportClient.split(opts);
    return this.guard(this.conn.api.importIntoNewDataset(name, input, plain, progress));
  }

  exportDataset(datasetId: string, opts?: JobOptions): Promise<Uint8Array> {
    const progress = opts?.onProgress ? Comlink.proxy(opts.onProgress) : undefined;
    return this.guard(this.conn.api.exportDataset(datasetId, opts?.jobId, progress));
  }

  createSampleDataset(
    opts?: ImportOptions & { sample?: SampleDatasetOptions },
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    const [plain, progress] = ImportClient.split(opts);
    return this.guard(this.conn.api.createSampleDataset(plain, progress));
  }

  cancel(jobId: string): void {
    void this.conn.api.cancel(jobId);
  }

  terminate(): void {
    this.conn.terminate();
  }
}

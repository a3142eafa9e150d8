/**
 * Main-thread client of the import worker: the same `ImportApi` as `ImportEngine`, through comlink. Files and
 * Blobs cross as references (no copy of their bytes); progress callbacks are proxied; a crashed worker rejects
 * pending calls with `ImportWorkerCrashedError` (what earlier batches stored stays stored) and is restarted by
 * the next call.
 */
import type { DatasetRecord } from '../src/core/dataset.ts';
import { DefectLabError } from '../src/core/errors.ts';
import { WorkerConnection, type JobOptions } from './host.ts';
import type { ImportApi, ImportInput, ImportOptions, ImportReport } from './import.engine.ts';
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
  private readonly conn = new WorkerConnection<ImportApi>(
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

  /** `JobOptions` fields go through `WorkerConnection.options` (proxied callback); the rest are plain data. */
  private static opts<O extends JobOptions>(opts: O | undefined): O | undefined {
    return opts ? ({ ...opts, ...WorkerConnection.options(opts) } as O) : undefined;
  }

  importFiles(datasetId: string, input: ImportInput, opts?: ImportOptions): Promise<ImportReport> {
    return this.guard(this.conn.api.importFiles(datasetId, input, ImportClient.opts(opts)));
  }

  importIntoNewDataset(
    name: string | null,
    input: ImportInput,
    opts?: ImportOptions,
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    return this.guard(this.conn.api.importIntoNewDataset(name, input, ImportClient.opts(opts)));
  }

  exportDataset(datasetId: string, opts?: JobOptions): Promise<Uint8Array> {
    return this.guard(this.conn.api.exportDataset(datasetId, ImportClient.opts(opts)));
  }

  createSampleDataset(
    opts?: ImportOptions & { sample?: SampleDatasetOptions },
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    return this.guard(this.conn.api.createSampleDataset(ImportClient.opts(opts)));
  }

  cancel(jobId: string): void {
    void this.conn.api.cancel(jobId);
  }

  terminate(): void {
    this.conn.terminate();
  }
}

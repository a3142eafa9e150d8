/**
 * Main-thread client of the import worker: the same `ImportApi` as `ImportEngine`, through comlink. Files and
 * Blobs cross as references (no copy of their bytes); progress callbacks are proxied (as top-level arguments,
 * see `import.worker.ts`); a crashed worker rejects
 * pending calls with `WorkerCrashedError` (what earlier batches stored stays stored) and is restarted by
 * the next call.
 */
import type { DatasetRecord } from '../src/core/dataset.ts';
import { proxied, WorkerConnection, type JobOptions } from './host.ts';
import type { ImportApi, ImportInput, ImportOptions, ImportReport } from './import.engine.ts';
import type { ImportWireApi, PlainImportOptions } from './import.worker.ts';
import type { SampleDatasetOptions } from '../src/core/sample-data/index.ts';

export class ImportClient implements ImportApi {
  private readonly conn = new WorkerConnection<ImportWireApi>(
    () => new Worker(new URL('./import.worker.ts', import.meta.url), { type: 'module', name: 'import' }),
    'import',
    'import again (duplicates are skipped; batches stored before the crash are kept); if it keeps happening, import fewer or smaller files at a time',
  );

  importFiles(datasetId: string, input: ImportInput, opts?: ImportOptions): Promise<ImportReport> {
    const [plain, progress] = WorkerConnection.split(opts);
    return this.conn.guard(
      this.conn.api.importFiles(datasetId, input, plain as PlainImportOptions, progress),
    );
  }

  importIntoNewDataset(
    name: string | null,
    input: ImportInput,
    opts?: ImportOptions,
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    const [plain, progress] = WorkerConnection.split(opts);
    return this.conn.guard(this.conn.api.importIntoNewDataset(name, input, plain, progress));
  }

  exportDataset(datasetId: string, opts?: JobOptions): Promise<Uint8Array> {
    const progress = proxied(opts?.onProgress);
    return this.conn.guard(this.conn.api.exportDataset(datasetId, opts?.jobId, progress));
  }

  createSampleDataset(
    opts?: ImportOptions & { sample?: SampleDatasetOptions },
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    const [plain, progress] = WorkerConnection.split(opts);
    return this.conn.guard(this.conn.api.createSampleDataset(plain, progress));
  }

  cancel(jobId: string): void {
    void this.conn.api.cancel(jobId);
  }

  terminate(): void {
    this.conn.terminate();
  }
}

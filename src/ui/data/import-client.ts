/**
 * The UI's door to the import worker: one lazily created `ImportClient` (so the worker and its decoders cost
 * nothing at first paint), plus the mapping from picked files to the engine's input.
 */
import type { DatasetRecord } from '../../core/dataset.ts';
import type { ProgressFn } from '../../core/progress.ts';
import { ImportClient } from '../../../workers/import.client.ts';
import type { ImportInput, ImportReport } from '../../../workers/import.engine.ts';
import { isSingleZip, type PickedFile } from './files.ts';

export type { ImportReport };

let client: ImportClient | null = null;
const api = (): ImportClient => (client ??= new ImportClient());

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
  if (datasetId) return api().importFiles(datasetId, input, opts);
  return (await api().importIntoNewDataset(newName, input, opts)).report;
}

export async function cancelImport(jobId: string): Promise<void> {
  api().cancel(jobId);
}

export function exportDatasetZip(datasetId: string, onProgress?: ProgressFn): Promise<Uint8Array> {
  return api().exportDataset(datasetId, { onProgress });
}

/** Generates and stores the built-in sample dataset; throws when nothing could be stored. */
export async function createSampleDataset(onProgress?: ProgressFn): Promise<DatasetRecord> {
  const { dataset, report } = await api().createSampleDataset({ onProgress });
  if (report.added === 0) throw new Error(`The sample dataset could not be stored: ${report.message}`);
  return dataset;
}

/**
 * Import engine: everything that moves images into and out of the store.
 *
 * API overview (the same interface, `ImportApi`, is implemented here and by `ImportClient` in
 * `import.client.ts`, which runs this engine in a worker so decoding never blocks the page):
 *
 *   const api: ImportApi = new ImportClient();            // app; tests: new ImportEngine(store)
 *   const ds = await store.createDataset({ name: 'Tiles', source: 'folder' });
 *   const report = await api.importFiles(ds.id, { entries: [{ path: 'train/good/001.png', data: file }] }, {
 *     jobId: 'imp-1',
 *     onProgress: (p) => bar.set(p.done / p.total, p.bytes, p.etaSeconds),
 *   });
 *   // or { zip: bytes, name: 'mvtec.zip' }; entries may themselves be .zip files (expanded with guards).
 *   api.cancel('imp-1');                                   // stops between images; what is stored stays
 *   report: { added, duplicates, rejected: [{ file, kind, reason, message }], cancelled, stopped?, message, … }
 *
 *   const { dataset, report } = await api.importIntoNewDataset('Magnetic tiles', input, opts);
 *   const zip: Uint8Array = await api.exportDataset(ds.id);  // MVTec layout + manifest.json (provenance)
 *   const { dataset } = await api.createSampleDataset();     // built-in procedural set, stored like an import
 *
 * Entries: `path` is the relative path (file name, `webkitRelativePath`, or path in an archive); `data` is a
 * `Blob`/`File` (read lazily, one at a time) or bytes. Layouts: `manifest.json`, MVTec, plain (see
 * `src/core/import/plan.ts`). Each image is decoded (`src/runtime/decode.ts`), hashed (SHA-256) and thumbnailed
 * (`import.prepare.ts`) in the engine's pool — in the worker, `min(hardwareConcurrency, 4)` decode workers
 * (`import.pool.ts`); in tests, this thread — and the results are taken back in plan order and stored with their
 * masks in batches of `batchSize` (default 32), one IndexedDB transaction per batch, one batch written while the
 * pool prepares up to the next batch ahead. The records are those of a serial import: same order, batches and
 * duplicate checks. Progress carries `ImportProgressDetail` (the dataset and what is stored so far, also sent
 * after each committed batch: the Data tab's grid follows it); the report's `profile` says where the time went.
 * Bad items are reported in `rejected` (file + reason) and the rest continue; duplicates (same SHA-256 in the
 * dataset) are reported, not stored twice; a full disk stops the import with `stopped` (StorageQuotaError) and
 * keeps every earlier batch. Cancelling keeps the batches stored before the cancel.
 */
import type { DatasetRecord, ImageRecord } from '../src/core/dataset.ts';
import { CancelledError, errorInfo, type ErrorInfo } from '../src/core/errors.ts';
import { exportFieldsOf, exportLayout, zipLayout, type ExportItem } from '../src/core/export/mvtec.ts';
import { ImportError, rejected, type Rejected } from '../src/core/import/errors.ts';
import { planImport, type ImportLayout, type ImportPlan, type PlannedItem } from '../src/core/import/plan.ts';
import { basename, extension, normalizePath, stem } from '../src/core/import/paths.ts';
import { DEFAULT_ZIP_LIMITS, unzipArchive, type ZipLimits } from '../src/core/import/zip.ts';
import { etaSeconds, yieldToEventLoop } from '../src/core/progress.ts';
import {
  SAMPLE_DATASET_DESCRIPTION,
  SAMPLE_DATASET_NAME,
  generateSampleDataset,
  type SampleDatasetOptions,
} from '../src/core/sample-data/index.ts';
import { encodePng } from '../src/runtime/decode.ts';
import { RecordNotFoundError } from '../src/runtime/db/errors.ts';
import type { DefectLabStore, NewImage } from '../src/runtime/db/types.ts';
import { JobRegistry, type Cancellable, type JobOptions } from './host.ts';
import { inThreadPool, type PreparePool } from './import.pool.ts';
import { bytesOf, epochMs, type PrepareResult, type PrepareTask } from './import.prepare.ts';

/** One input file. `data` is read only when the file is processed. */
export interface ImportSource {
  path: string;
  data: Uint8Array | Blob;
}

export type ImportInput = { entries: ImportSource[] } | { zip: Uint8Array | Blob; name?: string };

export interface ImportOptions extends JobOptions {
  /** Images per IndexedDB transaction (default 32). */
  batchSize?: number;
  zipLimits?: ZipLimits;
  /** Thumbnail longest side in px (default 128). */
  thumbnailSize?: number;
  /**
   * Prepare every item in this thread, one at a time, instead of in the engine's pool (the serial reference the
   * import bench and the parallel-equals-serial test compare the pool with). Same records either way.
   */
  serial?: boolean;
}

export interface ImportReport {
  datasetId: string;
  layout: ImportLayout;
  /** Images the plan found (before decoding). */
  planned: number;
  /** Images stored. */
  added: number;
  addedIds: string[];
  /** Same bytes already in the dataset (or earlier in this import): not stored again. */
  duplicates: { name: string; existingId: string; existingName: string }[];
  rejected: Rejected[];
  /** Side files that are not images of the layout (README, LICENSE); skipped. */
  ignored: string[];
  cancelled: boolean;
  /** Why the import stopped early (e.g. StorageQuotaError); everything stored before it is kept. */
  stopped?: ErrorInfo;
  /** Bytes of images and masks read. */
  bytes: number;
  seconds: number;
  /** One line for people, e.g. "Imported 208 images (2 duplicates, 1 rejected)". */
  message: string;
  /** Dataset name / description from a manifest, when it had them. */
  meta?: { name?: string; description?: string };
  /** Where the time went (what `npm run bench import` prints per image). */
  profile: ImportProfile;
}

/**
 * Milliseconds summed over the items (or batches) of one import. The prepare stages run in the decoders, in
 * parallel, so their sums can exceed the import's wall time; the three waits are the engine's own.
 */
export interface ImportProfile {
  /** Items prepared (stored, duplicate or rejected). */
  items: number;
  /** Prepare stages inside a decoder (`import.prepare.ts`). */
  readMs: number;
  decodeMs: number;
  maskMs: number;
  thumbnailMs: number;
  thumbnailPngMs: number;
  hashMs: number;
  /** From handing an item to a decoder until the decoder started it: the structured clone there, and the
   * time it queued behind the decoder's other items (the engine keeps a batch ahead, so this one is large). */
  toDecoderMs: number;
  /** From the decoder finishing an item until the engine had its result: the structured clone back. */
  fromDecoderMs: number;
  /** The engine waiting for the next result in plan order (decoders are the bottleneck when this grows). */
  resultWaitMs: number;
  /** The engine waiting for the previous batch's transaction (IndexedDB is the bottleneck when this grows). */
  writerWaitMs: number;
  /** The transactions themselves (one per batch), from the call until it committed. */
  writeMs: number;
  batches: number;
}

/** `Progress.detail` of an import: which dataset it writes to (known once planned) and what is stored so far. */
export interface ImportProgressDetail {
  datasetId: string;
  /** Images stored so far (batches committed). */
  stored: number;
}

function emptyProfile(): ImportProfile {
  return {
    items: 0,
    readMs: 0,
    decodeMs: 0,
    maskMs: 0,
    thumbnailMs: 0,
    thumbnailPngMs: 0,
    hashMs: 0,
    toDecoderMs: 0,
    fromDecoderMs: 0,
    resultWaitMs: 0,
    writerWaitMs: 0,
    writeMs: 0,
    batches: 0,
  };
}

function addTimings(p: ImportProfile, r: PrepareResult & { sentAt: number; receivedAt: number }): void {
  const t = r.timings;
  p.items++;
  p.readMs += t.readMs;
  p.decodeMs += t.decodeMs;
  p.maskMs += t.maskMs;
  p.thumbnailMs += t.thumbnailMs;
  p.thumbnailPngMs += t.thumbnailPngMs;
  p.hashMs += t.hashMs;
  p.toDecoderMs += Math.max(0, t.startedAt - r.sentAt);
  p.fromDecoderMs += Math.max(0, r.receivedAt - t.finishedAt);
}

export interface ImportApi extends Cancellable {
  importFiles(datasetId: string, input: ImportInput, opts?: ImportOptions): Promise<ImportReport>;
  /** Creates a dataset (named from `name`, else the manifest's name) and imports into it. */
  importIntoNewDataset(
    name: string | null,
    input: ImportInput,
    opts?: ImportOptions,
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }>;
  /** The dataset as a zip: MVTec layout + manifest.json with provenance. */
  exportDataset(datasetId: string, opts?: JobOptions): Promise<Uint8Array>;
  /** Generates and stores the procedural sample dataset. */
  createSampleDataset(
    opts?: ImportOptions & { sample?: SampleDatasetOptions },
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }>;
}

const ZIP_SIGNATURE = [0x50, 0x4b, 0x03, 0x04];

type StoreSource = DefectLabStore | (() => Promise<DefectLabStore>);

export class ImportEngine implements ImportApi {
  private readonly jobs = new JobRegistry();
  private storePromise: Promise<DefectLabStore> | null = null;
  private poolInstance: PreparePool | null = null;

  /**
   * Takes the store, or a function opening it on first use (the worker opens its own connection), and where to
   * prepare items: `pool` is called once, on the first import (the import worker passes its decode workers;
   * default: in this thread).
   */
  constructor(
    private readonly storeSource: StoreSource,
    private readonly poolSource: () => PreparePool = inThreadPool,
  ) {}

  private pool(): PreparePool {
    return (this.poolInstance ??= this.poolSource());
  }

  private store(): Promise<DefectLabStore> {
    this.storePromise ??=
      typeof this.storeSource === 'function' ? this.storeSource() : Promise.resolve(this.storeSource);
    return this.storePromise;
  }

  cancel(jobId: string): void {
    this.jobs.cancel(jobId);
  }

  async importIntoNewDataset(
    name: string | null,
    input: ImportInput,
    opts?: ImportOptions,
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    const store = await this.store();
    const kind = 'zip' in input ? 'zip' : 'files';
    let dataset: DatasetRecord | null = null;
    // The dataset is created once the plan is known, so it is named (manifest) and typed (layout) from it.
    const create = async (plan: ImportPlan): Promise<string> => {
      dataset = await store.createDataset({
        name: name ?? plan.meta?.name ?? 'Imported dataset',
        source: `${kind}-${plan.layout}`,
        ...(plan.meta?.description ? { description: plan.meta.description } : {}),
      });
      return dataset.id;
    };
    const report = await this.run(create, input, opts);
    // Only an unexpected failure before planning leaves no dataset; keep the promised shape anyway.
    dataset ??= await store.createDataset({ name: name ?? 'Imported dataset', source: kind });
    return { dataset, report };
  }

  importFiles(datasetId: string, input: ImportInput, opts: ImportOptions = {}): Promise<ImportReport> {
    return this.run(async () => datasetId, input, opts);
  }

  /** Expands, plans, then asks `target` for the dataset id, then decodes and stores. */
  private async run(
    target: (plan: ImportPlan) => Promise<string>,
    input: ImportInput,
    opts: ImportOptions = {},
  ): Promise<ImportReport> {
    const t0 = performance.now();
    const job = this.jobs.start(opts.jobId);
    const store = await this.store();
    const batchSize = Math.max(1, opts.batchSize ?? 32);
    const report: ImportReport = {
      datasetId: '',
      layout: 'plain',
      planned: 0,
      added: 0,
      addedIds: [],
      duplicates: [],
      rejected: [],
      ignored: [],
      cancelled: false,
      bytes: 0,
      seconds: 0,
      message: '',
      profile: emptyProfile(),
    };
    try {
      // 1. Expand archives (guarded) and collect the entries.
      const sources = await this.expand(input, opts.zipLimits ?? DEFAULT_ZIP_LIMITS, report);
      const byPath = new Map<string, ImportSource>();
      for (const s of sources) byPath.set(normalizePath(s.path), s);

      // 2. Plan (only manifest.json needs its bytes for that).
      const planEntries = await Promise.all(
        [...byPath.entries()].map(async ([path, s]) =>
          basename(path) === 'manifest.json' ? { path, bytes: await bytesOf(s.data) } : { path },
        ),
      );
      const plan = planImport(planEntries);
      report.layout = plan.layout;
      report.planned = plan.items.length;
      report.rejected.push(...plan.rejected);
      // Nothing to import and nothing refused (only folders or OS litter such as __MACOSX/, .DS_Store): say so,
      // rather than report "Imported 0 images" with no reason.
      if (plan.items.length === 0 && report.rejected.length === 0 && plan.ignored.length === 0)
        report.rejected.push(
          rejected(
            new ImportError(
              'zip' in input ? (input.name ?? 'archive.zip') : 'the picked files',
              'empty',
              sources.length
                ? `no image files to import (${sources.length} file${sources.length === 1 ? '' : 's'} of OS litter such as __MACOSX/ or .DS_Store only)`
                : 'no files to import',
              'pick the folder or archive that holds the images (PNG, JPEG, WebP or BMP)',
            ),
          ),
        );
      report.ignored = plan.ignored;
      if (plan.meta) report.meta = plan.meta;
      const datasetId = await target(plan);
      report.datasetId = datasetId;
      const totalBytes = plan.items.reduce(
        (s, it) =>
          s + sizeOf(byPath.get(it.file)!.data) + (it.maskFile ? sizeOf(byPath.get(it.maskFile)!.data) : 0),
        0,
      );

      // 3. Prepare (decode, hash, thumbnail) in the pool, take the results back in plan order, and store them
      // in batches; each batch is one transaction. One write runs while the pool prepares what follows: up to a
      // batch plus two items per decoder ahead of the writer, so the decoders never wait for a transaction (with
      // only two items per decoder ahead, they sat idle for most of every write).
      const pool = opts.serial ? inThreadPool() : this.pool();
      const ahead = opts.serial ? 1 : pool.size * 2 + batchSize;
      let pending: NewImage[] = [];
      let processed = 0;
      let writing: Promise<void> = Promise.resolve();
      let writeError: unknown = null;
      const profile = report.profile;
      const progress = () =>
        opts.onProgress?.({
          stage: 'import',
          done: processed,
          total: plan.items.length,
          unit: 'items',
          bytes: report.bytes,
          etaSeconds: etaSeconds(t0, performance.now(), report.bytes, totalBytes),
          message: `${processed} / ${plan.items.length} images`,
          detail: { datasetId, stored: report.added } satisfies ImportProgressDetail,
        });
      const write = async (batch: NewImage[]) => {
        const tw = performance.now();
        try {
          const r = await store.addImages(datasetId, batch);
          report.added += r.added.length;
          report.addedIds.push(...r.added.map((x) => x.id));
          report.duplicates.push(...r.duplicates);
          // A batch landed: the Data tab's grid refreshes its listing from this (throttled there).
          progress();
        } catch (e) {
          writeError ??= e;
        } finally {
          profile.writeMs += performance.now() - tw;
          profile.batches++;
        }
      };
      const flush = async () => {
        // At most one write in flight: wait for the previous batch, then start this one without waiting.
        const tw = performance.now();
        await writing;
        profile.writerWaitMs += performance.now() - tw;
        if (writeError !== null || pending.length === 0) return;
        const batch = pending;
        pending = [];
        writing = write(batch);
      };
      progress();
      const thumbSize = opts.thumbnailSize ?? 128;
      const task = (item: PlannedItem): PrepareTask => {
        const t: PrepareTask = { item, image: byPath.get(item.file)!.data, thumbSize };
        if (item.maskFile) t.mask = byPath.get(item.maskFile)!.data;
        return t;
      };
      const inFlight: Promise<PrepareResult & { sentAt: number; receivedAt: number }>[] = [];
      const dispatch = (item: PlannedItem) => {
        const sentAt = epochMs();
        return pool.prepare(task(item)).then((r) => ({ ...r, sentAt, receivedAt: epochMs() }));
      };
      let next = 0;
      for (;;) {
        while (!job.signal.aborted && next < plan.items.length && inFlight.length < ahead)
          inFlight.push(dispatch(plan.items[next++]));
        const head = inFlight.shift();
        if (!head || job.signal.aborted) break;
        const tr = performance.now();
        const r = await head;
        profile.resultWaitMs += performance.now() - tr;
        addTimings(profile, r);
        processed++;
        report.bytes += r.bytes;
        if (r.ok) pending.push(r.image);
        else report.rejected.push(r.rejected);
        if (pending.length >= batchSize) {
          if (job.signal.aborted) break;
          await flush();
          if (writeError !== null) break;
        }
        progress();
        // Lets a cancel message reach the worker between images.
        if (processed % 8 === 0) await yieldToEventLoop();
      }
      if (job.signal.aborted) {
        report.cancelled = true;
      } else {
        await flush();
      }
      // Batches started before a cancel or a failed write still land (or fail) as a whole.
      await writing;
      if (writeError !== null) throw writeError;
    } catch (e) {
      if (e instanceof ImportError) report.rejected.push(rejected(e));
      else report.stopped = errorInfo(e);
    } finally {
      job.done();
    }
    report.seconds = (performance.now() - t0) / 1000;
    report.message = summary(report);
    return report;
  }

  /** Turns the input into a flat list of sources, expanding any zip archive in it. */
  private async expand(input: ImportInput, limits: ZipLimits, report: ImportReport): Promise<ImportSource[]> {
    const out: ImportSource[] = [];
    const addZip = async (data: Uint8Array | Blob, name: string, prefix: string) => {
      try {
        const r = unzipArchive(await bytesOf(data), name, limits);
        report.rejected.push(...r.rejected);
        for (const e of r.entries) out.push({ path: prefix ? `${prefix}/${e.path}` : e.path, data: e.bytes });
      } catch (e) {
        if (e instanceof ImportError) report.rejected.push(rejected(e));
        else throw e;
      }
    };
    if ('zip' in input) {
      await addZip(input.zip, input.name ?? 'archive.zip', '');
      return out;
    }
    const entries = input.entries;
    for (const s of entries) {
      if (extension(s.path) === 'zip' && (await isZip(s.data))) {
        // A lone archive is the dataset itself; several are kept apart in folders named after them.
        await addZip(s.data, s.path, entries.length === 1 ? '' : stem(s.path));
      } else out.push(s);
    }
    return out;
  }

  async exportDataset(datasetId: string, opts: JobOptions = {}): Promise<Uint8Array> {
    const store = await this.store();
    const job = this.jobs.start(opts.jobId);
    try {
      const dataset = await store.getDataset(datasetId);
      if (!dataset) throw new RecordNotFoundError('dataset', datasetId);
      const images = await store.listImages(datasetId);
      const items: ExportItem[] = [];
      let done = 0;
      for (const r of images) {
        if (job.signal.aborted)
          throw new CancelledError(`the export of ${dataset.name}`, 'nothing was written');
        items.push(await exportItemOf(store, r));
        done++;
        opts.onProgress?.({ stage: 'export', done, total: images.length, unit: 'items' });
      }
      return zipLayout(exportLayout(dataset, items));
    } finally {
      job.done();
    }
  }

  async createSampleDataset(
    opts: ImportOptions & { sample?: SampleDatasetOptions } = {},
  ): Promise<{ dataset: DatasetRecord; report: ImportReport }> {
    const store = await this.store();
    const samples = generateSampleDataset(opts.sample);
    // Stored through the same path as any import (manifest layout), so it behaves exactly like user data.
    const entries: ImportSource[] = [];
    const items = samples.map((s) => {
      const file = s.name;
      entries.push({ path: file, data: encodePng(s.image) });
      let mask: string | null = null;
      if (s.mask) {
        mask = `masks/${s.name.replace(/\.png$/, '_mask.png')}`;
        entries.push({ path: mask, data: encodePng(s.mask) });
      }
      return {
        file,
        label_name: s.label,
        split: s.split,
        mask,
        defect_class: s.defectClass ?? null,
        group: s.family,
      };
    });
    const manifest = { dataset: SAMPLE_DATASET_NAME, description: SAMPLE_DATASET_DESCRIPTION, items };
    entries.push({ path: 'manifest.json', data: new TextEncoder().encode(JSON.stringify(manifest)) });
    const dataset = await store.createDataset({
      name: SAMPLE_DATASET_NAME,
      source: 'sample',
      description: SAMPLE_DATASET_DESCRIPTION,
    });
    const report = await this.importFiles(dataset.id, { entries }, opts);
    return { dataset, report };
  }
}

async function exportItemOf(store: DefectLabStore, r: ImageRecord): Promise<ExportItem> {
  const item: ExportItem = { ...exportFieldsOf(r), bytes: await bytesOf(r.blob) };
  if (r.maskId) {
    const m = await store.getMask(r.maskId);
    if (m) item.mask = await bytesOf(m.blob);
  }
  return item;
}

function sizeOf(data: Uint8Array | Blob): number {
  return data instanceof Uint8Array ? data.length : data.size;
}

async function isZip(data: Uint8Array | Blob): Promise<boolean> {
  const head =
    data instanceof Uint8Array ? data.subarray(0, 4) : new Uint8Array(await data.slice(0, 4).arrayBuffer());
  return ZIP_SIGNATURE.every((b, i) => head[i] === b);
}

function summary(r: ImportReport): string {
  const parts: string[] = [];
  if (r.duplicates.length)
    parts.push(`${r.duplicates.length} duplicate${r.duplicates.length === 1 ? '' : 's'} skipped`);
  if (r.rejected.length) parts.push(`${r.rejected.length} rejected`);
  const tail = parts.length ? ` (${parts.join(', ')})` : '';
  const n = `${r.added} image${r.added === 1 ? '' : 's'}`;
  if (r.stopped)
    return `Import stopped: ${r.stopped.message}. ${n} imported before the stop are kept${tail}.`;
  if (r.cancelled)
    return `Import cancelled: ${n} imported before the cancel are kept; the rest were not imported${tail}.`;
  return `Imported ${n}${tail}.`;
}

/**
 * The store's public contract. `src/runtime/db/store.ts` implements it over IndexedDB (idb); the UI, workers and
 * tests program against this interface. Every method that writes does so in one transaction: it either fully
 * happens or not at all.
 */
import type { HeadKind } from '../../core/experiments/types.ts';
import type {
  DatasetRecord,
  ImageRecord,
  Label,
  MaskRecord,
  RunRecord,
  SampleProvenance,
  Split,
} from '../../core/dataset.ts';

export interface ImageFilter {
  label?: Label;
  split?: Split;
  /** 'none' = not generated; otherwise the provenance generator name. */
  generator?: string;
}

/** An image about to be stored: everything but the ids and timestamps. */
export type NewImage = Omit<ImageRecord, 'id' | 'datasetId' | 'createdAt' | 'maskId'> & {
  /** Binary mask to store with it (label mask), same size as the image. */
  mask?: { blob: Blob; width: number; height: number };
};

export interface AddImagesResult {
  added: ImageRecord[];
  /** Images skipped because the same bytes (sha256) are already in the dataset. */
  duplicates: { name: string; existingId: string; existingName: string }[];
}

/** A generated sample accepted from the staging strip. */
export interface AcceptedSample {
  png: Blob;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  thumbnail: Blob;
  sha256: string;
  mask: { blob: Blob; width: number; height: number };
  provenance: SampleProvenance;
  split?: Split;
}

export interface Counts {
  total: number;
  byLabel: Record<Label, number>;
  bySplit: Record<Split, number>;
  byLabelSplit: Record<`${Label}/${Split}`, number>;
  masks: number;
  generated: Record<string, number>;
}

export interface FeatureKey {
  backbone: string;
  sha256: string;
  preprocessing: string;
}

export interface StoredFeatures {
  /** Pooled feature vector, [D]. */
  pooled: Float32Array;
  /** Optional spatial map, [C, H, W]. */
  spatial?: { data: Float32Array; dims: [number, number, number] };
  /** Where they were computed when not in this browser ('server <url>'); absent for local extraction. */
  backend?: string;
}

export interface HeadRecord {
  id: string;
  datasetId: string;
  name: string;
  kind: HeadKind;
  backbone: string;
  preprocessing: string;
  threshold: number;
  /** Where the threshold came from ('val:synthetic', 'val:real', 'test (tuned on test)'). */
  thresholdSource: string;
  /** tfjs model artifacts (model.json topology + weights) plus head-specific metadata. */
  artifacts: unknown;
  metadata: Record<string, unknown>;
  createdAt: number;
}

/**
 * A generation batch in flight, kept durable so a reload resumes it (schema v3). `request` is what the generator
 * got (cloneable: rasters, masks, options, seed, n), `context` what provenance needs; the store does not read
 * either. The indices done are the keys of its `BatchSampleRecord`s.
 */
export interface BatchRecord {
  id: string;
  /** The dataset accepted samples go to. */
  datasetId: string | null;
  n: number;
  request: unknown;
  context: unknown;
  createdAt: number;
}

/** One finished sample of a batch (staged, not yet accepted): its index in the batch and the staged payload. */
export interface BatchSampleRecord {
  batchId: string;
  index: number;
  sample: unknown;
}

export interface StorageInfo {
  usage: number;
  quota: number;
  persisted: boolean;
}

export interface DefectLabStore {
  // datasets
  createDataset(d: Omit<DatasetRecord, 'id' | 'createdAt'>): Promise<DatasetRecord>;
  listDatasets(): Promise<DatasetRecord[]>;
  getDataset(id: string): Promise<DatasetRecord | undefined>;
  renameDataset(id: string, name: string): Promise<void>;
  /** Deletes the dataset with its images, masks, runs and heads. */
  deleteDataset(id: string): Promise<void>;

  // images
  addImages(datasetId: string, images: NewImage[]): Promise<AddImagesResult>;
  getImage(id: string): Promise<ImageRecord | undefined>;
  listImages(datasetId: string, filter?: ImageFilter): Promise<ImageRecord[]>;
  countImages(datasetId: string): Promise<Counts>;
  /** `listImages(filter)` and `countImages` (of the whole dataset) from one read: what the browser shows. */
  browseImages(datasetId: string, filter?: ImageFilter): Promise<{ images: ImageRecord[]; counts: Counts }>;
  updateImages(
    ids: string[],
    patch: Partial<Pick<ImageRecord, 'label' | 'split' | 'defectClass'>>,
  ): Promise<void>;
  /** Deletes images and their masks; returns what was deleted so `restoreImages` can undo it. */
  deleteImages(ids: string[]): Promise<{ images: ImageRecord[]; masks: MaskRecord[] }>;
  restoreImages(deleted: { images: ImageRecord[]; masks: MaskRecord[] }): Promise<void>;

  // masks
  putMask(mask: Omit<MaskRecord, 'id' | 'createdAt'> & { id?: string }): Promise<MaskRecord>;
  getMask(id: string): Promise<MaskRecord | undefined>;
  listMasks(datasetId: string, kind?: MaskRecord['kind']): Promise<MaskRecord[]>;
  deleteMask(id: string): Promise<void>;
  /** Sets (or clears) the label mask of an image. */
  setImageMask(imageId: string, mask: { blob: Blob; width: number; height: number } | null): Promise<void>;

  // generated samples
  acceptSamples(datasetId: string, samples: AcceptedSample[]): Promise<ImageRecord[]>;

  // generation batches in flight (resume after a reload)
  putBatch(batch: BatchRecord): Promise<void>;
  listBatches(): Promise<BatchRecord[]>;
  /** Stores finished samples of a batch in one transaction (all or none: a quota error stores nothing). */
  addBatchSamples(samples: BatchSampleRecord[]): Promise<void>;
  /** The batch's finished samples, by index. */
  batchSamples(batchId: string): Promise<BatchSampleRecord[]>;
  /** Drops the batch and its samples (finished, cancelled or failed). */
  deleteBatch(batchId: string): Promise<void>;

  // runs and heads
  putRun(run: RunRecord): Promise<void>;
  getRun(id: string): Promise<RunRecord | undefined>;
  listRuns(datasetId: string): Promise<RunRecord[]>;
  putHead(head: HeadRecord): Promise<void>;
  getHead(id: string): Promise<HeadRecord | undefined>;
  listHeads(datasetId?: string): Promise<HeadRecord[]>;
  deleteHead(id: string): Promise<void>;

  // feature cache
  getFeatures(key: FeatureKey): Promise<StoredFeatures | undefined>;
  putFeatures(key: FeatureKey, f: StoredFeatures): Promise<void>;
  clearFeatures(backbone?: string): Promise<void>;

  // settings (device benchmark results, last dataset, …)
  getSetting<T>(key: string): Promise<T | undefined>;
  setSetting<T>(key: string, value: T): Promise<void>;

  // storage
  storageInfo(): Promise<StorageInfo>;
  requestPersistence(): Promise<boolean>;
  close(): void;
}

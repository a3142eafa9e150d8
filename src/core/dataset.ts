/**
 * Records of the DefectLab store. Pure types shared by the IndexedDB store (`src/runtime/db/`), the importers,
 * the generators' staging strip, the trainer and the Node CLI. Ids are strings (crypto.randomUUID()).
 */

export type Label = 'normal' | 'defect' | 'unlabeled';
export type Split = 'train' | 'val' | 'test';

export interface DatasetRecord {
  id: string;
  name: string;
  /** Where it came from: 'sample' (built-in procedural), 'files', 'folder', 'zip-mvtec', 'zip-manifest', … */
  source: string;
  createdAt: number;
  /** Free-form notes (citation, licence of imported data). */
  description?: string;
}

/** How a generated image was made; enough to regenerate it bit for bit. */
export interface SampleProvenance {
  generator: string;
  parameters: Record<string, unknown>;
  seed: number | string;
  prompt?: string;
  negativePrompt?: string;
  sourceImageId?: string;
  maskId?: string;
  modelId?: string;
  createdAt: number;
}

export interface ImageRecord {
  id: string;
  datasetId: string;
  /** Original file name or path inside the archive/folder. */
  name: string;
  /** Original bytes as imported (PNG/JPEG/WebP/BMP). Generated images are stored as PNG. */
  blob: Blob;
  mime: string;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  /** Hex sha256 of the original bytes; duplicates in a dataset are detected with it. */
  sha256: string;
  /** Small PNG/WebP for the grid. */
  thumbnail: Blob;
  label: Label;
  split: Split;
  /** Defect class when known (MVTec folder name, manifest `defect_class`). */
  defectClass?: string;
  /** Physical part/tile group, to keep splits apart (manifest `group`). */
  group?: string;
  /** Id of the binary mask of this image's defect, if any. */
  maskId?: string;
  /** Present when a generator made this image. */
  provenance?: SampleProvenance;
  createdAt: number;
}

export interface MaskRecord {
  id: string;
  datasetId: string;
  /** The image this mask belongs to; absent for masks saved only in the mask library. */
  imageId?: string;
  /** Binary PNG (0/255), same size as the image. */
  blob: Blob;
  width: number;
  height: number;
  /** 'label' (ground truth), 'region' (where a generator may paint), 'library' (saved for reuse). */
  kind: 'label' | 'region' | 'library';
  name?: string;
  /**
   * The painter's feather σ (image pixels) for region and library masks: the stored mask stays binary; the
   * feather softens the blend at generation time. Absent on label masks and older records.
   */
  featherSigma?: number;
  createdAt: number;
}

export interface RunRecord {
  id: string;
  datasetId: string;
  kind: 'train' | 'evaluate' | 'experiment';
  /** Full configuration; a run is reproducible from it. */
  config: Record<string, unknown>;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  metrics?: Record<string, number>;
  /** Anything larger (curves, per-seed tables). */
  result?: unknown;
  createdAt: number;
  finishedAt?: number;
}

export const LABELS: readonly Label[] = ['normal', 'defect', 'unlabeled'];
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

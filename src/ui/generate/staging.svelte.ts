/**
 * The staging strip's contract: any generator (MemSeg, random-walk, CutPaste, diffusion) pushes results here;
 * the user accepts (A) or rejects (R) each; accepted ones become defect images with their mask and provenance.
 */
import type { RasterImage } from '../../core/image.ts';
import type { SampleProvenance } from '../../core/dataset.ts';

export interface StagedSample {
  id: string;
  image: RasterImage;
  /** Exact binary mask (0/255) of what the generator changed, same size as the image. */
  mask: RasterImage;
  provenance: SampleProvenance;
  status: 'pending' | 'accepted' | 'rejected';
}

export const staging = $state({ items: [] as StagedSample[] });

/** Adds generator results to the strip as pending. */
export function stageSamples(samples: Omit<StagedSample, 'id' | 'status'>[]): void {
  for (const s of samples) staging.items.push({ ...s, id: crypto.randomUUID(), status: 'pending' });
}

/**
 * Turning staged generator results into stored images: PNG of the image and of its exact mask, a thumbnail and
 * the sha256, then `store.acceptSamples` (one transaction; accepted samples are defect-labelled with provenance).
 */
import type { ImageRecord, Split } from '../../core/dataset.ts';
import { sha256Hex } from '../../core/hash.ts';
import { encodePng, makeThumbnail } from '../../runtime/decode.ts';
import type { AcceptedSample, DefectLabStore } from '../../runtime/db/types.ts';
import { bytesOf, maskBlob } from './library.ts';
import type { StagedSample } from './staging.svelte.ts';

function pngBlob(bytes: Uint8Array): Blob {
  return new Blob([bytesOf(bytes)], { type: 'image/png' });
}

export async function toAcceptedSample(
  s: Pick<StagedSample, 'image' | 'mask' | 'provenance'>,
  split: Split = 'train',
): Promise<AcceptedSample> {
  const png = encodePng(s.image);
  return {
    png: pngBlob(png),
    width: s.image.width,
    height: s.image.height,
    channels: s.image.channels,
    thumbnail: pngBlob(encodePng(makeThumbnail(s.image))),
    sha256: await sha256Hex(png),
    mask: { blob: maskBlob(s.mask), width: s.mask.width, height: s.mask.height },
    provenance: s.provenance,
    split,
  };
}

export async function acceptIntoStore(
  store: DefectLabStore,
  datasetId: string,
  samples: Pick<StagedSample, 'image' | 'mask' | 'provenance'>[],
  split: Split = 'train',
): Promise<ImageRecord[]> {
  const ready = await Promise.all(samples.map((s) => toAcceptedSample(s, split)));
  return store.acceptSamples(datasetId, ready);
}

/** Small set operations and checks on single-channel masks ([H, W], non-zero = in). */
import { InvalidArgumentError } from '../errors.ts';
import { createRaster, resizeNearest, type RasterImage } from '../image.ts';
import { checkMask } from './morph.ts';

export function emptyMask(width: number, height: number): RasterImage {
  return createRaster(width, height, 1);
}

/** Number of "in" pixels. */
export function countOn(mask: RasterImage): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) n++;
  return n;
}

/** True when every value is 0 or 255 (what a label mask must hold). */
export function isBinaryMask(mask: RasterImage): boolean {
  if (mask.channels !== 1) return false;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== 0 && mask.data[i] !== 255) return false;
  return true;
}

function checkPair(a: RasterImage, b: RasterImage): void {
  checkMask(a, 'a');
  checkMask(b, 'b');
  if (a.width !== b.width || a.height !== b.height)
    throw new InvalidArgumentError(
      'b',
      `a ${a.width}×${a.height} mask (the size of a)`,
      `${b.width}×${b.height}`,
    );
}

export function unionMasks(a: RasterImage, b: RasterImage): RasterImage {
  checkPair(a, b);
  const out = emptyMask(a.width, a.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i] || b.data[i] ? 255 : 0;
  return out;
}

export function intersectMasks(a: RasterImage, b: RasterImage): RasterImage {
  checkPair(a, b);
  const out = emptyMask(a.width, a.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = a.data[i] && b.data[i] ? 255 : 0;
  return out;
}

/** Number of pixels "in" `inner` but not in `outer`; 0 means inner ⊆ outer. */
export function pixelsOutside(inner: RasterImage, outer: RasterImage): number {
  checkPair(inner, outer);
  let n = 0;
  for (let i = 0; i < inner.data.length; i++) if (inner.data[i] && !outer.data[i]) n++;
  return n;
}

/** Binary 0/255 copy (value ≥ threshold is in), e.g. after a soft decode or resample. */
export function binarizeMask(mask: RasterImage, threshold = 128): RasterImage {
  checkMask(mask);
  const out = emptyMask(mask.width, mask.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = mask.data[i] >= threshold ? 255 : 0;
  return out;
}

/** A mask resized (nearest neighbour, stays binary) to another image's size: applying a library mask. */
export function fitMask(mask: RasterImage, width: number, height: number): RasterImage {
  checkMask(mask);
  return resizeNearest(mask, width, height);
}

/**
 * Compact binary masks for share links: run lengths over the row-major pixels (alternating off/on, starting with
 * off, so a mask starting inside has a 0 first run), each an unsigned LEB128 varint. Painted regions are a few
 * runs per row, and neighbouring rows repeat the same byte patterns, which the link's deflate pass then folds.
 */
import { createRaster, type RasterImage } from '../image.ts';
import { checkMask } from '../mask/morph.ts';
import { pushVarint, readVarint } from './bytes.ts';

/** [H, W] 0/255 mask → run-length bytes (width and height travel beside them). */
export function encodeMaskRle(mask: RasterImage): Uint8Array {
  checkMask(mask);
  const out: number[] = [];
  const d = mask.data;
  let on = false;
  let run = 0;
  for (let i = 0; i < d.length; i++) {
    const v = d[i] !== 0;
    if (v !== on) {
      pushVarint(out, run);
      on = v;
      run = 0;
    }
    run++;
  }
  pushVarint(out, run);
  return Uint8Array.from(out);
}

/**
 * Run-length bytes → [H, W] 0/255 mask, or the reason they do not describe a `width`×`height` mask (the caller
 * names the link field in its error).
 */
export function decodeMaskRle(bytes: Uint8Array, width: number, height: number): RasterImage | string {
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1 ||
    width * height > 2 ** 26
  )
    return `size ${width}×${height} is not a mask size (1..67M pixels)`;
  const mask = createRaster(width, height, 1);
  const total = width * height;
  let pos = 0;
  let p = 0;
  let on = false;
  while (pos < bytes.length) {
    const r = readVarint(bytes, pos);
    if (!r) return 'its run lengths end in the middle of a number';
    if (p + r.value > total) return `its runs cover more than ${total} pixels`;
    if (on) mask.data.fill(255, p, p + r.value);
    p += r.value;
    pos = r.next;
    on = !on;
  }
  if (p !== total) return `its runs cover ${p} of ${total} pixels`;
  return mask;
}

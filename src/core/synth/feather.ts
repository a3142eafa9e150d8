/**
 * The painter's feather (blur) reaching the synthetic generators: a generated sample blended back into its source
 * with a soft edge along the painted region's border, so a defect that reaches the region's edge fades out
 * instead of stopping at a hard seam.
 *
 *   w(p)   = region(p) ≠ 0 ? soft(p) / 255 : 0      soft = blurMask(region, σ) (src/core/mask), the painter's preview
 *   out(p) = source(p) + w(p) · (generated(p) − source(p))          colour channels; alpha is the source's
 *
 * Why this keeps the generators' guarantees: w is 0 outside the binary region, and every generator's mask lies
 * inside the region, so a pixel outside the label mask has generated = source and stays bit for bit; the label
 * mask is the generator's binary mask, untouched (a faint edge pixel is still part of the defect). Regenerating a
 * sample is `featherDefect(source, fn(source, {…options, region_mask: region}, seed), region, σ)`.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { RasterImage } from '../image.ts';
import { blurMask } from '../mask/morph.ts';
import type { DefectResult } from './common.ts';
import { checkImage, checkMask } from './options.ts';

/**
 * Feathers a generator's result along its region's border.
 * @param source the generator's input [H, W, C]
 * @param result the generator's output for `source` (same size and channels)
 * @param region the binary region mask [H, W, 1] the generator was given (non-zero = inside)
 * @param sigma Gaussian σ in pixels; 0 returns `result` itself
 * @param soft optional precomputed `blurMask(region, sigma)` (one per region when many samples share it)
 * @returns the feathered sample: same mask, params with `feather_sigma` added
 */
export function featherDefect(
  source: RasterImage,
  result: DefectResult,
  region: RasterImage,
  sigma: number,
  soft?: RasterImage,
): DefectResult {
  checkImage('source', source);
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma < 0)
    throw new InvalidArgumentError('feather sigma', 'a finite number ≥ 0 (pixels)', sigma);
  const { width: W, height: H, channels: C } = source;
  const img = result.image;
  if (img.width !== W || img.height !== H || img.channels !== C)
    throw new InvalidArgumentError(
      'result.image',
      `${W}×${H}×${C} (the source's size and channels)`,
      `${img.width}×${img.height}×${img.channels}`,
    );
  checkMask('region', region, source);
  if (sigma === 0) return result;
  const s = soft ?? blurMask(region, sigma);
  checkMask('soft', s, source);
  const out = new Uint8ClampedArray(img.data);
  const cc = C === 1 ? 1 : 3;
  const mask = result.mask.data;
  const src = source.data;
  for (let p = 0; p < W * H; p++) {
    // Pixels outside the label mask are the source's already.
    if (mask[p] === 0) continue;
    const w = region.data[p] === 0 ? 0 : s.data[p] / 255;
    if (w === 1) continue;
    const i = p * C;
    for (let c = 0; c < cc; c++) out[i + c] = src[i + c] + w * (img.data[i + c] - src[i + c]);
  }
  return {
    image: { width: W, height: H, channels: C, data: out },
    mask: result.mask,
    params: { ...result.params, feather_sigma: sigma },
  };
}

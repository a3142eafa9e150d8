import { DefectLabError, InvalidArgumentError } from '../errors.ts';
import type { Channels, RasterImage, Rect } from '../image.ts';
import { assertRaster, createRaster, maskBounds, toChannels, toGray } from '../image.ts';

/**
 * The pixel-side math of inpainting, pure and separately testable: mask validation, the "only masked" crop
 * region, image ↔ planar [-1, 1] tensors, mask at latent size, the masked image, and the paste-back composite.
 */

export class EmptyMaskError extends DefectLabError {
  constructor() {
    super(
      'EmptyMaskError',
      'the mask has no painted pixel, so there is no region to inpaint',
      'paint the region to repaint (white = repaint) or pick a mask from the library',
    );
  }
}

export class MaskCoversImageError extends DefectLabError {
  constructor(onlyMasked: boolean) {
    super(
      'MaskCoversImageError',
      onlyMasked
        ? 'the mask covers the whole image, so "only masked" has no surrounding context to crop to'
        : 'the mask covers the whole image, which regenerates it entirely instead of inpainting a defect',
      onlyMasked
        ? 'paint a smaller region, or turn "only masked" off (and allow a full mask) to regenerate the whole image'
        : 'paint a region smaller than the image, or pass allowFullMask: true to regenerate the whole image',
    );
  }
}

export class MaskSizeError extends DefectLabError {
  constructor(image: RasterImage, mask: RasterImage) {
    super(
      'MaskSizeError',
      `the mask is ${mask.width}×${mask.height} but the image is ${image.width}×${image.height}`,
      'use a mask made for this image (same width and height)',
    );
  }
}

/** The request mask as 0/255 single channel (≥ 128 → 255), checked against the image. */
export function binaryMask(image: RasterImage, mask: RasterImage): RasterImage {
  assertRaster(mask, 'mask');
  if (mask.width !== image.width || mask.height !== image.height) throw new MaskSizeError(image, mask);
  const g = mask.channels === 1 ? mask : toGray(mask);
  const out = createRaster(g.width, g.height, 1);
  for (let i = 0; i < g.data.length; i++) out.data[i] = g.data[i] >= 128 ? 255 : 0;
  return out;
}

/**
 * Refuses an empty mask always, and a full mask unless `allowFull` (never in "only masked" mode).
 * Returns the painted fraction.
 */
export function validateMask(
  mask: RasterImage,
  options: { onlyMasked: boolean; allowFull: boolean },
): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) n++;
  if (n === 0) throw new EmptyMaskError();
  if (n === mask.data.length && (options.onlyMasked || !options.allowFull))
    throw new MaskCoversImageError(options.onlyMasked);
  return n / mask.data.length;
}

/**
 * The "only masked" region, as diffusers' `get_crop_region` + `_expand_crop_region`: the mask's bounding box
 * grown by `padding` (clamped to the image), then widened or heightened around its centre to the generation
 * aspect ratio `targetWidth / targetHeight`, shifted back inside the image where it overflows.
 */
export function cropRegion(
  mask: RasterImage,
  padding: number,
  targetWidth: number,
  targetHeight: number,
): Rect {
  if (!(padding >= 0) || !Number.isFinite(padding))
    throw new InvalidArgumentError('onlyMasked.padding', 'a finite number ≥ 0 (pixels)', padding);
  const b = maskBounds(mask);
  if (!b) throw new EmptyMaskError();
  const W = mask.width;
  const H = mask.height;
  const pad = Math.round(padding);
  let x1 = Math.max(b.x - pad, 0);
  let y1 = Math.max(b.y - pad, 0);
  let x2 = Math.min(b.x + b.width + pad, W);
  let y2 = Math.min(b.y + b.height + pad, H);
  const ratioCrop = (x2 - x1) / (y2 - y1);
  const ratioTarget = targetWidth / targetHeight;
  if (ratioCrop > ratioTarget) {
    const diff = Math.trunc((x2 - x1) / ratioTarget - (y2 - y1));
    y1 -= Math.floor(diff / 2);
    y2 += diff - Math.floor(diff / 2);
    if (y2 >= H) {
      const d = y2 - H;
      y2 -= d;
      y1 -= d;
    }
    if (y1 < 0) {
      y2 -= y1;
      y1 = 0;
    }
    if (y2 >= H) y2 = H;
  } else {
    const diff = Math.trunc((y2 - y1) * ratioTarget - (x2 - x1));
    x1 -= Math.floor(diff / 2);
    x2 += diff - Math.floor(diff / 2);
    if (x2 >= W) {
      const d = x2 - W;
      x2 -= d;
      x1 -= d;
    }
    if (x1 < 0) {
      x2 -= x1;
      x1 = 0;
    }
    if (x2 >= W) x2 = W;
  }
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

/** RGB image → planar [3, H, W] in [-1, 1] (diffusers' normalize: x/255·2 − 1). */
export function imageToPlanar(img: RasterImage): Float32Array {
  const rgb = img.channels === 3 ? img : toChannels(img, 3);
  const n = rgb.width * rgb.height;
  const out = new Float32Array(3 * n);
  for (let p = 0; p < n; p++)
    for (let k = 0; k < 3; k++) out[k * n + p] = (rgb.data[3 * p + k] / 255) * 2 - 1;
  return out;
}

/** Planar [3, H, W] in [-1, 1] → RGB image: (x/2 + 0.5) clamped to [0, 1], × 255, rounded (diffusers' postprocess). */
export function planarToImage(data: Float32Array, width: number, height: number): RasterImage {
  const n = width * height;
  if (data.length < 3 * n)
    throw new InvalidArgumentError('decoded image length', `≥ ${3 * n} (3×${height}×${width})`, data.length);
  const img = createRaster(width, height, 3);
  for (let p = 0; p < n; p++)
    for (let k = 0; k < 3; k++) {
      const v = Math.min(1, Math.max(0, data[k * n + p] / 2 + 0.5));
      img.data[3 * p + k] = Math.round(v * 255);
    }
  return img;
}

/** The masked image of the inpaint UNet's third input: planar image × (mask < 0.5), i.e. 0 (mid-gray) where painted. */
export function maskedPlanar(planar: Float32Array, mask: RasterImage): Float32Array {
  const n = mask.width * mask.height;
  const out = new Float32Array(planar);
  for (let p = 0; p < n; p++) if (mask.data[p] >= 128) out[p] = out[n + p] = out[2 * n + p] = 0;
  return out;
}

/**
 * Mask at latent size [h·w] of 0/1, as torch's `interpolate(mode='nearest')` (source index ⌊i · in/out⌋), which
 * is what diffusers uses to shrink the mask.
 */
export function maskToLatent(mask: RasterImage, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w);
  const sy = mask.height / h;
  const sx = mask.width / w;
  for (let y = 0; y < h; y++) {
    const yy = Math.min(mask.height - 1, Math.floor(y * sy));
    for (let x = 0; x < w; x++) {
      const xx = Math.min(mask.width - 1, Math.floor(x * sx));
      out[y * w + x] = mask.data[yy * mask.width + xx] >= 128 ? 1 : 0;
    }
  }
  return out;
}

/**
 * Separable Gaussian blur of a single-channel mask (σ = `sigma` px, kernel radius ⌈3σ⌉, edges clamped), the soft
 * edge of the paste-back mask. σ = 0 returns a copy.
 */
export function blurMask(mask: RasterImage, sigma: number): RasterImage {
  if (!(sigma >= 0) || !Number.isFinite(sigma))
    throw new InvalidArgumentError('maskBlur', 'a finite number ≥ 0 (pixels)', sigma);
  const out = createRaster(mask.width, mask.height, 1);
  if (sigma === 0) {
    out.data.set(mask.data);
    return out;
  }
  const r = Math.ceil(3 * sigma);
  const k = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const { width: W, height: H } = mask;
  const tmp = new Float64Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let i = -r; i <= r; i++) s += k[i + r] * mask.data[y * W + Math.min(W - 1, Math.max(0, x + i))];
      tmp[y * W + x] = s;
    }
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let i = -r; i <= r; i++) s += k[i + r] * tmp[Math.min(H - 1, Math.max(0, y + i)) * W + x];
      out.data[y * W + x] = Math.round(s);
    }
  return out;
}

/**
 * The paste-back mask in source coordinates: the binary mask, blurred by `blur` px, zeroed outside `region`
 * (nothing was generated there).
 */
export function pasteBackMask(mask: RasterImage, region: Rect, blur: number): RasterImage {
  const m = blurMask(mask, blur);
  for (let y = 0; y < m.height; y++)
    for (let x = 0; x < m.width; x++)
      if (x < region.x || x >= region.x + region.width || y < region.y || y >= region.y + region.height)
        m.data[y * m.width + x] = 0;
  return m;
}

/**
 * Composites `patch` (region size, any channels) into a copy of `source` at `region` through `alpha` (source
 * size, 0..255): where alpha is 0 the source bytes are copied untouched, where 255 the patch, between a rounded
 * linear blend. An alpha channel of the source is kept.
 */
export function compositeThroughMask(
  source: RasterImage,
  patch: RasterImage,
  region: Rect,
  alpha: RasterImage,
): RasterImage {
  if (patch.width !== region.width || patch.height !== region.height)
    throw new InvalidArgumentError(
      'patch size',
      `${region.width}×${region.height}`,
      `${patch.width}×${patch.height}`,
    );
  const c: Channels = source.channels;
  const colour = c === 4 ? 3 : c;
  const p = toChannels(patch, c);
  const out: RasterImage = { ...source, data: new Uint8ClampedArray(source.data) };
  for (let y = 0; y < region.height; y++)
    for (let x = 0; x < region.width; x++) {
      const sx = region.x + x;
      const sy = region.y + y;
      const a = alpha.data[sy * source.width + sx];
      if (a === 0) continue;
      const d = (sy * source.width + sx) * c;
      const s = (y * region.width + x) * c;
      for (let k = 0; k < colour; k++)
        out.data[d + k] =
          a === 255
            ? p.data[s + k]
            : Math.round(source.data[d + k] + ((p.data[s + k] - source.data[d + k]) * a) / 255);
    }
  return out;
}

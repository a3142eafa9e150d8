import { InvalidArgumentError } from './errors.ts';

/**
 * The one image type of the core: row-major, interleaved, 8 bits per channel.
 * `data.length === width * height * channels`. Masks are single-channel images holding only 0 or 255.
 */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8ClampedArray;
}

export type Channels = RasterImage['channels'];

export function createRaster(width: number, height: number, channels: Channels, fill = 0): RasterImage {
  if (!Number.isInteger(width) || width <= 0)
    throw new InvalidArgumentError('width', 'a positive integer', width);
  if (!Number.isInteger(height) || height <= 0)
    throw new InvalidArgumentError('height', 'a positive integer', height);
  const data = new Uint8ClampedArray(width * height * channels);
  if (fill) data.fill(fill);
  return { width, height, channels, data };
}

export function cloneRaster(img: RasterImage): RasterImage {
  return {
    width: img.width,
    height: img.height,
    channels: img.channels,
    data: new Uint8ClampedArray(img.data),
  };
}

/** Throws when the buffer length does not match the declared size (catches most plumbing bugs early). */
export function assertRaster(img: RasterImage, name = 'image'): void {
  if (![1, 3, 4].includes(img.channels))
    throw new InvalidArgumentError(`${name}.channels`, '1, 3 or 4', img.channels);
  const expected = img.width * img.height * img.channels;
  if (img.data.length !== expected)
    throw new InvalidArgumentError(
      `${name}.data.length`,
      `${expected} (${img.width}×${img.height}×${img.channels})`,
      img.data.length,
    );
}

export function sameSize(a: RasterImage, b: RasterImage): boolean {
  return a.width === b.width && a.height === b.height;
}

/** Luma (ITU-R BT.601, as PIL's "L" mode) of any image, as a single-channel image. */
export function toGray(img: RasterImage): RasterImage {
  if (img.channels === 1) return cloneRaster(img);
  const out = createRaster(img.width, img.height, 1);
  const c = img.channels;
  const s = img.data;
  for (let i = 0, j = 0; j < out.data.length; i += c, j++) {
    out.data[j] = (s[i] * 299 + s[i + 1] * 587 + s[i + 2] * 114) / 1000;
  }
  return out;
}

/** Converts to 3 channels (gray replicated, alpha dropped). */
export function toRGB(img: RasterImage): RasterImage {
  if (img.channels === 3) return cloneRaster(img);
  const out = createRaster(img.width, img.height, 3);
  const n = img.width * img.height;
  const s = img.data;
  const d = out.data;
  if (img.channels === 1) {
    for (let p = 0; p < n; p++) d[3 * p] = d[3 * p + 1] = d[3 * p + 2] = s[p];
  } else {
    for (let p = 0; p < n; p++) {
      d[3 * p] = s[4 * p];
      d[3 * p + 1] = s[4 * p + 1];
      d[3 * p + 2] = s[4 * p + 2];
    }
  }
  return out;
}

/** Converts to 4 channels (opaque alpha), the layout of ImageData. */
export function toRGBA(img: RasterImage): RasterImage {
  if (img.channels === 4) return cloneRaster(img);
  const rgb = img.channels === 3 ? img : toRGB(img);
  const out = createRaster(img.width, img.height, 4);
  const n = img.width * img.height;
  for (let p = 0; p < n; p++) {
    out.data[4 * p] = rgb.data[3 * p];
    out.data[4 * p + 1] = rgb.data[3 * p + 1];
    out.data[4 * p + 2] = rgb.data[3 * p + 2];
    out.data[4 * p + 3] = 255;
  }
  return out;
}

export function toChannels(img: RasterImage, channels: Channels): RasterImage {
  if (channels === img.channels) return img;
  if (channels === 1) return toGray(img);
  return channels === 3 ? toRGB(img) : toRGBA(img);
}

/**
 * Bilinear resize with half-pixel centres (align_corners = false, as PIL/torch/OpenCV INTER_LINEAR without
 * antialiasing). Use `resizeNearest` for masks so they stay binary.
 */
export function resizeBilinear(img: RasterImage, width: number, height: number): RasterImage {
  if (img.width === width && img.height === height) return cloneRaster(img);
  const out = createRaster(width, height, img.channels);
  const c = img.channels;
  const sx = img.width / width;
  const sy = img.height / height;
  const src = img.data;
  const dst = out.data;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const wx = fx - x0;
      const o = (y * width + x) * c;
      const i00 = (y0 * img.width + x0) * c;
      const i01 = (y0 * img.width + x1) * c;
      const i10 = (y1 * img.width + x0) * c;
      const i11 = (y1 * img.width + x1) * c;
      for (let k = 0; k < c; k++) {
        const top = src[i00 + k] + (src[i01 + k] - src[i00 + k]) * wx;
        const bot = src[i10 + k] + (src[i11 + k] - src[i10 + k]) * wx;
        dst[o + k] = Math.round(top + (bot - top) * wy);
      }
    }
  }
  return out;
}

/** Nearest-neighbour resize (masks, label maps). */
export function resizeNearest(img: RasterImage, width: number, height: number): RasterImage {
  if (img.width === width && img.height === height) return cloneRaster(img);
  const out = createRaster(width, height, img.channels);
  const c = img.channels;
  for (let y = 0; y < height; y++) {
    const sy = Math.min(img.height - 1, Math.floor(((y + 0.5) * img.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(img.width - 1, Math.floor(((x + 0.5) * img.width) / width));
      const i = (sy * img.width + sx) * c;
      const o = (y * width + x) * c;
      for (let k = 0; k < c; k++) out.data[o + k] = img.data[i + k];
    }
  }
  return out;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Copies a rectangle (clamped to the image) into a new image. */
export function crop(img: RasterImage, r: Rect): RasterImage {
  const x0 = Math.max(0, Math.floor(r.x));
  const y0 = Math.max(0, Math.floor(r.y));
  const x1 = Math.min(img.width, Math.floor(r.x + r.width));
  const y1 = Math.min(img.height, Math.floor(r.y + r.height));
  const out = createRaster(Math.max(1, x1 - x0), Math.max(1, y1 - y0), img.channels);
  const c = img.channels;
  for (let y = y0; y < y1; y++) {
    const srcStart = (y * img.width + x0) * c;
    out.data.set(img.data.subarray(srcStart, srcStart + (x1 - x0) * c), (y - y0) * out.width * c);
  }
  return out;
}

/** Writes `patch` into `img` (in place) with its top-left corner at (x, y); parts outside are dropped. */
export function paste(img: RasterImage, patch: RasterImage, x: number, y: number): void {
  if (patch.channels !== img.channels)
    throw new InvalidArgumentError('patch.channels', `${img.channels} (the target's)`, patch.channels);
  const c = img.channels;
  for (let py = 0; py < patch.height; py++) {
    const ty = y + py;
    if (ty < 0 || ty >= img.height) continue;
    for (let px = 0; px < patch.width; px++) {
      const tx = x + px;
      if (tx < 0 || tx >= img.width) continue;
      const s = (py * patch.width + px) * c;
      const d = (ty * img.width + tx) * c;
      for (let k = 0; k < c; k++) img.data[d + k] = patch.data[s + k];
    }
  }
}

/** Bounding box of the non-zero pixels of a single-channel mask, or null when the mask is empty. */
export function maskBounds(mask: RasterImage): Rect | null {
  let minX = mask.width;
  let minY = mask.height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if (mask.data[y * mask.width + x]) {
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
  }
  return maxX < 0 ? null : { x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

/** Fraction of non-zero pixels of a single-channel mask. */
export function maskCoverage(mask: RasterImage): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i]) n++;
  return n / mask.data.length;
}

/** Thresholds any single-channel image into a 0/255 mask (value ≥ threshold → 255). */
export function binarize(img: RasterImage, threshold = 128): RasterImage {
  const g = img.channels === 1 ? img : toGray(img);
  const out = createRaster(g.width, g.height, 1);
  for (let i = 0; i < g.data.length; i++) out.data[i] = g.data[i] >= threshold ? 255 : 0;
  return out;
}

/** Float32 planar [C, H, W] in [0, 1] from an image, the layout ONNX vision models take. */
export function toPlanarFloat(img: RasterImage): Float32Array {
  const { width, height, channels } = img;
  const n = width * height;
  const out = new Float32Array(n * channels);
  for (let p = 0; p < n; p++)
    for (let k = 0; k < channels; k++) out[k * n + p] = img.data[p * channels + k] / 255;
  return out;
}

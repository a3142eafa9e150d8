/**
 * Whole-mask kernels: invert, grow/shrink (morphological dilation/erosion with a disc of radius r, exact through
 * a Euclidean distance transform so the cost does not grow with r) and Gaussian blur (a soft copy for
 * generation; label masks stay binary). All take single-channel [H, W] masks and return new ones.
 */
import { InvalidArgumentError } from '../errors.ts';
import { createRaster, type RasterImage } from '../image.ts';

export function checkMask(mask: RasterImage, name = 'mask'): void {
  if (mask.channels !== 1)
    throw new InvalidArgumentError(`${name}.channels`, '1 (a single-channel mask)', mask.channels);
  if (mask.data.length !== mask.width * mask.height)
    throw new InvalidArgumentError(`${name}.data.length`, `${mask.width * mask.height}`, mask.data.length);
}

/** 255 ↔ 0 (any non-zero counts as in). */
export function invertMask(mask: RasterImage): RasterImage {
  checkMask(mask);
  const out = createRaster(mask.width, mask.height, 1);
  for (let i = 0; i < mask.data.length; i++) out.data[i] = mask.data[i] ? 0 : 255;
  return out;
}

const INF = 1e20;

/** 1-D squared distance transform of a sampled function (Felzenszwalb & Huttenlocher 2012), in place on f. */
function dt1d(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -INF;
  z[1] = INF;
  for (let q = 1; q < n; q++) {
    let s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    while (s <= z[k]) {
      k--;
      s = (f[q] + q * q - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = INF;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    d[q] = dq * dq + f[v[k]];
  }
  for (let q = 0; q < n; q++) f[q] = d[q];
}

/**
 * Squared Euclidean distance from each pixel to the nearest pixel where `isTarget` holds (0 on target pixels).
 * Pixels outside the image are never targets. Returns Float64Array [H × W]; INF-ish (≥ 1e20) when no target.
 */
export function squaredDistanceTo(mask: RasterImage, target: 'on' | 'off'): Float64Array {
  checkMask(mask);
  const { width: w, height: h } = mask;
  const grid = new Float64Array(w * h);
  for (let i = 0; i < grid.length; i++) grid[i] = (mask.data[i] !== 0) === (target === 'on') ? 0 : INF;
  const n = Math.max(w, h);
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) f[y] = grid[y * w + x];
    dt1d(f, h, d, v, z);
    for (let y = 0; y < h; y++) grid[y * w + x] = f[y];
  }
  for (let y = 0; y < h; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) f[x] = grid[o + x];
    dt1d(f, w, d, v, z);
    for (let x = 0; x < w; x++) grid[o + x] = f[x];
  }
  return grid;
}

function checkRadius(radius: number): void {
  if (!(radius >= 0) || !Number.isFinite(radius))
    throw new InvalidArgumentError('radius', 'a number ≥ 0', radius);
}

/** Dilation by a disc: a pixel is in when some "in" pixel lies within `radius` (centre to centre). */
export function growMask(mask: RasterImage, radius: number): RasterImage {
  checkRadius(radius);
  const d2 = squaredDistanceTo(mask, 'on');
  const out = createRaster(mask.width, mask.height, 1);
  const r2 = radius * radius;
  for (let i = 0; i < d2.length; i++) out.data[i] = d2[i] <= r2 ? 255 : 0;
  return out;
}

/**
 * Erosion by a disc: a pixel stays in when no "out" pixel lies within `radius`. The image border is not "out",
 * so a region touching the border does not shrink away from it (the painted region continues past the frame).
 */
export function shrinkMask(mask: RasterImage, radius: number): RasterImage {
  checkRadius(radius);
  const d2 = squaredDistanceTo(mask, 'off');
  const out = createRaster(mask.width, mask.height, 1);
  const r2 = radius * radius;
  for (let i = 0; i < d2.length; i++) out.data[i] = d2[i] > r2 ? 255 : 0;
  return out;
}

/** Grow for radius > 0, shrink for radius < 0, copy for 0. */
export function growShrinkMask(mask: RasterImage, radius: number): RasterImage {
  return radius >= 0 ? growMask(mask, radius) : shrinkMask(mask, -radius);
}

/** Normalized 1-D Gaussian taps, radius ⌈3σ⌉: [2·radius + 1]. */
export function gaussianTaps(sigma: number): Float64Array {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/**
 * Separable Gaussian blur of a mask (edges replicated), for feathering a generation mask (inpainting blends
 * with it). The result is soft (0–255), so it must never be stored as a label mask. sigma 0 returns a copy.
 */
export function blurMask(mask: RasterImage, sigma: number): RasterImage {
  checkMask(mask);
  if (!(sigma >= 0) || !Number.isFinite(sigma))
    throw new InvalidArgumentError('sigma', 'a number ≥ 0', sigma);
  const { width: w, height: h } = mask;
  const out = createRaster(w, h, 1);
  if (sigma === 0) {
    out.data.set(mask.data);
    return out;
  }
  const k = gaussianTaps(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = -r; i <= r; i++) {
        const xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
        s += k[i + r] * mask.data[o + xx];
      }
      tmp[o + x] = s;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = -r; i <= r; i++) {
        const yy = y + i < 0 ? 0 : y + i >= h ? h - 1 : y + i;
        s += k[i + r] * tmp[yy * w + x];
      }
      out.data[y * w + x] = Math.round(s);
    }
  }
  return out;
}

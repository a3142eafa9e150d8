/**
 * Augmentation of real defect images for the mixed-supervision stream (ISP-AD): a random affine transform about
 * the image centre — rotation, scale, shear, horizontal / vertical flips — and a brightness / contrast change,
 * applied to the image (bilinear) and its mask (nearest, stays binary) with the same parameters. Pixels the
 * transform brings in from outside the image take the nearest edge pixel, so no black corners appear.
 *
 * Pure and seeded: the same (image, options, seed) give the same output.
 */
import { InvalidArgumentError } from '../errors.ts';
import { type RasterImage, createRaster } from '../image.ts';
import { Rng } from '../rng.ts';

export interface AugmentOptions {
  /** Rotation range, degrees. */
  rotation: [number, number];
  /** Isotropic scale range. */
  scale: [number, number];
  /** Horizontal shear range, degrees. */
  shear: [number, number];
  /** Probability of a horizontal and of a vertical flip. */
  hflip: number;
  vflip: number;
  /** Additive brightness range, as a fraction of the 0–255 range. */
  brightness: [number, number];
  /** Multiplicative contrast range about the image mean. */
  contrast: [number, number];
}

/**
 * Defaults for the stream's real defects: the kinds of change ISP-AD's Table 8 lists (rotation, scale, shear,
 * flips, brightness/contrast), with moderate ranges of DefectLab's own: the table's values could not be read
 * (only the abstract of arXiv 2503.04997 was reachable, 2 Dec 2026), so these are not the paper's numbers.
 */
export const REAL_DEFECT_AUGMENT: AugmentOptions = {
  rotation: [-20, 20],
  scale: [0.9, 1.1],
  shear: [-10, 10],
  hflip: 0.5,
  vflip: 0.5,
  brightness: [-0.1, 0.1],
  contrast: [0.8, 1.2],
};

/** No change at all (the identity): for tests and as a base to switch single parts on. */
export const NO_AUGMENT: AugmentOptions = {
  rotation: [0, 0],
  scale: [1, 1],
  shear: [0, 0],
  hflip: 0,
  vflip: 0,
  brightness: [0, 0],
  contrast: [1, 1],
};

export interface AugmentParams {
  rotation: number;
  scale: number;
  shear: number;
  hflip: boolean;
  vflip: boolean;
  brightness: number;
  contrast: number;
}

function checkRange(name: string, r: [number, number]): void {
  if (!Array.isArray(r) || r.length !== 2 || !(r[0] <= r[1]) || !r.every(Number.isFinite))
    throw new InvalidArgumentError(`augment.${name}`, '[min, max] with min ≤ max', r);
}

/** Draws one set of parameters from `o`. */
export function drawAugment(o: AugmentOptions, rng: Rng): AugmentParams {
  for (const k of ['rotation', 'scale', 'shear', 'brightness', 'contrast'] as const) checkRange(k, o[k]);
  if (!(o.scale[0] > 0)) throw new InvalidArgumentError('augment.scale', 'positive scales', o.scale);
  const u = (r: [number, number]) => (r[0] === r[1] ? r[0] : rng.uniform(r[0], r[1]));
  return {
    rotation: u(o.rotation),
    scale: u(o.scale),
    shear: u(o.shear),
    hflip: o.hflip > 0 && rng.bernoulli(o.hflip),
    vflip: o.vflip > 0 && rng.bernoulli(o.vflip),
    brightness: u(o.brightness),
    contrast: u(o.contrast),
  };
}

/**
 * Applies `p` to an image [H, W, C] and, when given, its mask [H, W] (same size). Returns new rasters of the same
 * sizes; alpha (C = 4) is carried through the geometry but not the colour change.
 */
export function applyAugment(
  image: RasterImage,
  mask: RasterImage | null,
  p: AugmentParams,
): { image: RasterImage; mask: RasterImage | null } {
  const { width: W, height: H, channels: C } = image;
  if (mask && (mask.width !== W || mask.height !== H))
    throw new InvalidArgumentError('mask', `the image's size ${W}×${H}`, `${mask.width}×${mask.height}`);
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  const th = (p.rotation * Math.PI) / 180;
  const sh = Math.tan((p.shear * Math.PI) / 180);
  // Forward: flip → shear → rotate → scale, about the centre. Sampling needs the inverse of that 2×2 matrix.
  const fx = p.hflip ? -1 : 1;
  const fy = p.vflip ? -1 : 1;
  const c = Math.cos(th) * p.scale;
  const s = Math.sin(th) * p.scale;
  // A = R·S·Sh·F = [[c, -s],[s, c]] · [[1, sh],[0, 1]] · diag(fx, fy)
  const a11 = c * fx;
  const a12 = (c * sh - s) * fy;
  const a21 = s * fx;
  const a22 = (s * sh + c) * fy;
  const det = a11 * a22 - a12 * a21;
  const i11 = a22 / det;
  const i12 = -a12 / det;
  const i21 = -a21 / det;
  const i22 = a11 / det;
  const identity = a11 === 1 && a12 === 0 && a21 === 0 && a22 === 1;
  const out = createRaster(W, H, C);
  const mOut = mask ? createRaster(W, H, mask.channels) : null;
  const clampX = (x: number) => Math.min(W - 1, Math.max(0, x));
  const clampY = (y: number) => Math.min(H - 1, Math.max(0, y));
  const mean = image.data.reduce((a, v) => a + v, 0) / image.data.length;
  const colour = (v: number, ch: number) =>
    C === 4 && ch === 3 ? v : (v - mean) * p.contrast + mean + p.brightness * 255;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const sx = identity ? x : clampX(i11 * dx + i12 * dy + cx);
      const sy = identity ? y : clampY(i21 * dx + i22 * dy + cy);
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(W - 1, x0 + 1);
      const y1 = Math.min(H - 1, y0 + 1);
      const wx = sx - x0;
      const wy = sy - y0;
      for (let ch = 0; ch < C; ch++) {
        const g = (xx: number, yy: number) => image.data[(yy * W + xx) * C + ch];
        const v =
          (g(x0, y0) * (1 - wx) + g(x1, y0) * wx) * (1 - wy) + (g(x0, y1) * (1 - wx) + g(x1, y1) * wx) * wy;
        out.data[(y * W + x) * C + ch] = Math.min(255, Math.max(0, Math.round(colour(v, ch))));
      }
      if (mask && mOut) {
        const mx = Math.round(sx);
        const my = Math.round(sy);
        for (let ch = 0; ch < mask.channels; ch++)
          mOut.data[(y * W + x) * mask.channels + ch] =
            mask.data[(my * W + mx) * mask.channels + ch] > 127 ? 255 : 0;
      }
    }
  return { image: out, mask: mOut };
}

/** One seeded augmentation of a real defect (image and mask together). */
export function augmentDefect(
  image: RasterImage,
  mask: RasterImage | null,
  options: AugmentOptions = REAL_DEFECT_AUGMENT,
  seed: number | string = 0,
): { image: RasterImage; mask: RasterImage | null; params: AugmentParams } {
  const params = drawAugment(options, new Rng(`augment:${seed}`));
  return { ...applyAugment(image, mask, params), params };
}

/**
 * Perlin gradient noise with DRAEM's `rand_perlin_2d` semantics (Zavrtanik et al., ICCV 2021), which MemSeg and
 * anomalib reuse for defect masks:
 *
 * - a lattice of (scaleY + 1) × (scaleX + 1) unit gradients with random angles a ~ U[0, 2π), drawn row-major;
 *   DRAEM pairs (cos a, sin a) with (row, column), so the gradient is gy = cos a, gx = sin a;
 * - pixel (x, y) of a width × height field sits at lattice coordinates (x·scaleX/width, y·scaleY/height);
 * - the four corner dot products (gradient · offset to the pixel) are mixed with the quintic fade
 *   f(t) = 6t⁵ − 15t⁴ + 10t³ (first along y, then along x, as DRAEM does);
 * - the result is multiplied by √2.
 *
 * Value range: 2-D gradient noise with unit gradients lies in [−1/√2, 1/√2], so after the √2 factor every value
 * is in [−1, 1] (the extremes are reached only by aligned gradient configurations; typical fields stay within
 * ±0.7). The field is exactly 0 at every lattice point.
 *
 * DRAEM needs width and height divisible by the scales (it tiles gradients with `np.repeat`); here the lattice
 * coordinate is computed per pixel, which equals DRAEM's where the sizes divide and also works where they do not
 * (632 × 224 at scale 32).
 */
import { InvalidArgumentError } from '../errors.ts';
import type { Rng } from '../rng.ts';

/** A float field, row-major [height, width]. */
export interface NoiseField {
  width: number;
  height: number;
  data: Float32Array;
}

export const fade = (t: number): number => t * t * t * (t * (t * 6 - 15) + 10);

function checkLattice(width: number, height: number, scaleX: number, scaleY: number): void {
  if (!Number.isInteger(width) || width <= 0)
    throw new InvalidArgumentError('width', 'a positive integer', width);
  if (!Number.isInteger(height) || height <= 0)
    throw new InvalidArgumentError('height', 'a positive integer', height);
  if (!Number.isInteger(scaleX) || scaleX < 1 || scaleX > width)
    throw new InvalidArgumentError('scaleX', `an integer in [1, ${width}] (the width)`, scaleX);
  if (!Number.isInteger(scaleY) || scaleY < 1 || scaleY > height)
    throw new InvalidArgumentError('scaleY', `an integer in [1, ${height}] (the height)`, scaleY);
}

/**
 * Random unit gradients for a scaleX × scaleY lattice, as DRAEM draws them.
 * @returns Float64Array [(scaleY + 1) × (scaleX + 1) × 2], row-major, each pair (gx, gy).
 */
export function perlinGradients(scaleX: number, scaleY: number, rng: Rng): Float64Array {
  const n = (scaleY + 1) * (scaleX + 1);
  const g = new Float64Array(2 * n);
  for (let k = 0; k < n; k++) {
    const a = 2 * Math.PI * rng.next();
    g[2 * k] = Math.sin(a);
    g[2 * k + 1] = Math.cos(a);
  }
  return g;
}

/**
 * Noise at one point of lattice space (u ∈ [0, scaleX], v ∈ [0, scaleY]); the kernel every Perlin user here
 * shares (field, rotated masks, textures).
 */
export function perlinAt(g: Float64Array, scaleX: number, scaleY: number, u: number, v: number): number {
  let i = Math.floor(u);
  let j = Math.floor(v);
  if (i >= scaleX) i = scaleX - 1;
  if (j >= scaleY) j = scaleY - 1;
  const fx = u - i;
  const fy = v - j;
  const row = scaleX + 1;
  const k00 = 2 * (j * row + i);
  const k01 = k00 + 2; // x + 1
  const k10 = k00 + 2 * row; // y + 1
  const k11 = k10 + 2;
  const n00 = g[k00] * fx + g[k00 + 1] * fy;
  const n01 = g[k01] * (fx - 1) + g[k01 + 1] * fy;
  const n10 = g[k10] * fx + g[k10 + 1] * (fy - 1);
  const n11 = g[k11] * (fx - 1) + g[k11 + 1] * (fy - 1);
  const tx = fx * fx * fx * (fx * (fx * 6 - 15) + 10);
  const ty = fy * fy * fy * (fy * (fy * 6 - 15) + 10);
  const a = n00 + (n10 - n00) * ty; // along y at x
  const b = n01 + (n11 - n01) * ty; // along y at x + 1
  return Math.SQRT2 * (a + (b - a) * tx);
}

/**
 * The noise field of a given gradient lattice (the deterministic half of `perlin2D`; golden tests use it).
 * @param gradients Float64Array [(scaleY + 1) × (scaleX + 1) × 2] of (gx, gy) pairs, row-major.
 * @returns NoiseField [height, width], values in [−1, 1].
 */
export function perlinFromGradients(
  width: number,
  height: number,
  scaleX: number,
  scaleY: number,
  gradients: Float64Array,
): NoiseField {
  checkLattice(width, height, scaleX, scaleY);
  const need = 2 * (scaleX + 1) * (scaleY + 1);
  if (gradients.length !== need)
    throw new InvalidArgumentError(
      'gradients.length',
      `${need} (2 × (scaleX + 1) × (scaleY + 1))`,
      gradients.length,
    );
  const data = new Float32Array(width * height);
  const sx = scaleX / width;
  const sy = scaleY / height;
  for (let y = 0; y < height; y++) {
    const v = y * sy;
    const o = y * width;
    for (let x = 0; x < width; x++) data[o + x] = perlinAt(gradients, scaleX, scaleY, x * sx, v);
  }
  return { width, height, data };
}

/**
 * DRAEM's `rand_perlin_2d((height, width), (scaleY, scaleX))`: fresh random gradients, then the field.
 * @returns NoiseField [height, width], values in [−1, 1].
 */
export function perlin2D(
  width: number,
  height: number,
  scaleX: number,
  scaleY: number,
  rng: Rng,
): NoiseField {
  checkLattice(width, height, scaleX, scaleY);
  return perlinFromGradients(width, height, scaleX, scaleY, perlinGradients(scaleX, scaleY, rng));
}

/**
 * Writes the rotated, thresholded Perlin mask into `out` (1 = inside) and returns the number of pixels set.
 * Rotation is by `angleDeg` about the image centre, like imgaug's `Affine(rotate=…)` in DRAEM; points that
 * rotate in from outside the field get 0 (imgaug's constant fill), so they are never inside. The noise is a
 * continuous function, so the rotated field is evaluated exactly at each output pixel instead of resampled.
 * `allowed` (optional, same size, non-zero = allowed) is intersected on the fly.
 * @param out Uint8Array [height × width]
 */
export function rotatedPerlinMask(
  out: Uint8Array,
  width: number,
  height: number,
  scaleX: number,
  scaleY: number,
  gradients: Float64Array,
  angleDeg: number,
  threshold: number,
  allowed: Uint8Array | null,
): number {
  const rad = (angleDeg * Math.PI) / 180;
  const c = Math.cos(rad);
  const s = Math.sin(rad);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const ux = scaleX / width;
  const vy = scaleY / height;
  const xMax = width - 1;
  const yMax = height - 1;
  let count = 0;
  for (let y = 0; y < height; y++) {
    const dy = y - cy;
    // Source point of output pixel (x, y): R(−angle)·(p − centre) + centre, stepped along the row.
    let xs = cx - c * cx + s * dy;
    let ys = cy + s * cx + c * dy;
    const o = y * width;
    for (let x = 0; x < width; x++, xs += c, ys -= s) {
      if (allowed !== null && allowed[o + x] === 0) {
        out[o + x] = 0;
        continue;
      }
      if (xs < -1e-9 || ys < -1e-9 || xs > xMax + 1e-9 || ys > yMax + 1e-9) {
        out[o + x] = 0;
        continue;
      }
      const xc = xs < 0 ? 0 : xs > xMax ? xMax : xs;
      const yc = ys < 0 ? 0 : ys > yMax ? yMax : ys;
      const inside = perlinAt(gradients, scaleX, scaleY, xc * ux, yc * vy) > threshold ? 1 : 0;
      out[o + x] = inside;
      count += inside;
    }
  }
  return count;
}

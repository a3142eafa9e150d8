/**
 * Procedural industrial surfaces: brushed metal, woven fabric, ceramic tiles. Each call draws its own variation
 * (tone, brushing angle, weave pitch, tile size, lighting) from the `Rng` it is given, so a seed fixes the image.
 * Output: RGB `RasterImage` [H, W, 3].
 */
import { createRaster, type RasterImage } from '../image.ts';
import type { Rng } from '../rng.ts';

export type SurfaceFamily = 'brushed-metal' | 'woven-fabric' | 'tiles';
export const SURFACE_FAMILIES: readonly SurfaceFamily[] = ['brushed-metal', 'woven-fabric', 'tiles'];

/** Smooth 2-D value noise in [-1, 1] on a lattice of `cell` pixels, from a seeded table. */
export function valueNoise2D(rng: Rng, cell: number): (x: number, y: number) => number {
  const N = 256;
  const table = new Float32Array(N * N);
  for (let i = 0; i < table.length; i++) table[i] = rng.uniform(-1, 1);
  const inv = 1 / cell;
  return (x, y) => {
    const fx = x * inv;
    const fy = y * inv;
    const i = Math.floor(fx);
    const j = Math.floor(fy);
    let u = fx - i;
    let v = fy - j;
    u = u * u * (3 - 2 * u);
    v = v * v * (3 - 2 * v);
    // The lattice wraps every N cells; `& (N - 1)` is a non-negative modulo for negative i, j too.
    const r0 = (j & (N - 1)) * N;
    const r1 = ((j + 1) & (N - 1)) * N;
    const c0 = i & (N - 1);
    const c1 = (i + 1) & (N - 1);
    const a = table[r0 + c0] + (table[r0 + c1] - table[r0 + c0]) * u;
    const b = table[r1 + c0] + (table[r1 + c1] - table[r1 + c0]) * u;
    return a + (b - a) * v;
  };
}

const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Draws one surface of the family, `size`×`size`. */
export function renderSurface(family: SurfaceFamily, size: number, rng: Rng): RasterImage {
  if (family === 'brushed-metal') return brushedMetal(size, rng);
  if (family === 'woven-fabric') return wovenFabric(size, rng);
  return tiles(size, rng);
}

function brushedMetal(size: number, rng: Rng): RasterImage {
  const img = createRaster(size, size, 3);
  const base = rng.uniform(120, 165);
  const tint = [rng.uniform(-6, 2), rng.uniform(-3, 3), rng.uniform(0, 8)];
  const angle = rng.uniform(-0.15, 0.15);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  // Brushing: noise stretched ~60× along the stroke, plus per-line grain and a soft light falloff.
  const streaks = valueNoise2D(rng, 1.6);
  const grain = valueNoise2D(rng, 1);
  const light = valueNoise2D(rng, size * 0.8);
  const lightAmp = rng.uniform(10, 25);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x * cos + y * sin;
      const v = -x * sin + y * cos;
      const s = streaks(u / 60, v) * 14 + grain(u / 8, v) * 5 + light(x, y) * lightAmp;
      const o = (y * size + x) * 3;
      // One noise draw per pixel (not per channel): a third of the cost and the grain stays neutral grey.
      const g = base + s + rng.uniform(-3, 3);
      for (let k = 0; k < 3; k++) img.data[o + k] = clamp255(g + tint[k]);
    }
  }
  return img;
}

function wovenFabric(size: number, rng: Rng): RasterImage {
  const img = createRaster(size, size, 3);
  const pitch = rng.int(6, 11);
  const hue = [rng.uniform(60, 200), rng.uniform(60, 200), rng.uniform(60, 200)];
  const weftTone = rng.uniform(0.8, 1.1);
  const fuzz = valueNoise2D(rng, 3);
  const slub = valueNoise2D(rng, pitch * 6);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = Math.floor(x / pitch);
      const j = Math.floor(y / pitch);
      const fx = (x % pitch) / pitch;
      const fy = (y % pitch) / pitch;
      // Plain weave: warp over weft on alternate cells; each thread is brightest on its centre line.
      const warpOnTop = (i + j) % 2 === 0;
      const across = warpOnTop ? fx : fy;
      const shade = (0.55 + 0.45 * Math.sin(Math.PI * across)) * (warpOnTop ? 1 : weftTone);
      const n = fuzz(x, y) * 0.08 + slub(x, y) * 0.06;
      const o = (y * size + x) * 3;
      const jitter = rng.uniform(-4, 4);
      for (let k = 0; k < 3; k++) img.data[o + k] = clamp255(hue[k] * (shade + n) + jitter);
    }
  }
  return img;
}

function tiles(size: number, rng: Rng): RasterImage {
  const img = createRaster(size, size, 3);
  const tile = rng.int(36, 72);
  const grout = rng.int(2, 5);
  const ox = rng.int(0, tile);
  const oy = rng.int(0, tile);
  const base = [rng.uniform(170, 225), rng.uniform(160, 215), rng.uniform(140, 200)];
  const groutTone = rng.uniform(0.35, 0.55);
  const glaze = valueNoise2D(rng, 14);
  const tileShade = new Float32Array(64 * 64);
  for (let i = 0; i < tileShade.length; i++) tileShade[i] = rng.uniform(-10, 10);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const tx = x + ox;
      const ty = y + oy;
      const inGrout = tx % tile < grout || ty % tile < grout;
      const t = tileShade[(Math.floor(ty / tile) % 64) * 64 + (Math.floor(tx / tile) % 64)];
      const o = (y * size + x) * 3;
      const shade = inGrout ? rng.uniform(-8, 8) : t + glaze(x, y) * 6 + rng.uniform(-2.5, 2.5);
      for (let k = 0; k < 3; k++)
        img.data[o + k] = clamp255(inGrout ? base[k] * groutTone + shade : base[k] + shade);
    }
  }
  return img;
}

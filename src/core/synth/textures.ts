/**
 * Procedural textures: the built-in "texture source" of MemSeg/DRAEM defects, standing in for the DTD images
 * those papers download (the app ships no texture dataset). Each kind maps a pattern value p(x, y) ∈ [0, 1] to a
 * mix of two random colours, so the same seed gives the same texture.
 */
import { InvalidArgumentError } from '../errors.ts';
import { createRaster, type Channels, type RasterImage } from '../image.ts';
import type { Rng } from '../rng.ts';
import { perlinAt, perlinGradients } from './perlin.ts';

export const TEXTURE_KINDS = ['fractal', 'marble', 'stripes', 'cells', 'weave'] as const;
export type TextureKind = (typeof TEXTURE_KINDS)[number];

interface Octave {
  g: Float64Array;
  sx: number;
  sy: number;
  amp: number;
}

/** Fractal Brownian motion over Perlin octaves, lattice sizes doubling from `base`. */
function octaves(base: number, count: number, rng: Rng): Octave[] {
  const out: Octave[] = [];
  let amp = 1;
  for (let o = 0; o < count; o++) {
    const s = base << o;
    out.push({ g: perlinGradients(s, s, rng), sx: s, sy: s, amp });
    amp *= 0.5;
  }
  return out;
}

function fbm(oct: Octave[], u: number, v: number): number {
  let acc = 0;
  for (let o = 0; o < oct.length; o++) {
    const q = oct[o];
    acc += q.amp * perlinAt(q.g, q.sx, q.sy, u * q.sx, v * q.sy);
  }
  return acc;
}

/**
 * A procedural texture.
 * @param where optional Uint8Array [height × width]: only pixels where it is non-zero are computed (the rest
 *   stay 0), so a generator pays only for the pixels its mask covers. The random draws do not depend on it.
 * @returns RasterImage [height, width, channels]
 */
export function proceduralTexture(
  kind: TextureKind,
  width: number,
  height: number,
  channels: Channels,
  rng: Rng,
  where: Uint8Array | null = null,
): RasterImage {
  if (!TEXTURE_KINDS.includes(kind))
    throw new InvalidArgumentError('texture kind', TEXTURE_KINDS.join(', '), kind);
  const img = createRaster(width, height, channels);
  const cc = channels === 1 ? 1 : 3;
  const colA = Array.from({ length: cc }, () => rng.int(0, 256));
  const colB = Array.from({ length: cc }, () => rng.int(0, 256));
  const field = new Float32Array(width * height);
  const inv = 1 / Math.max(width, height); // isotropic coordinates in [0, 1]
  switch (kind) {
    case 'fractal': {
      const oct = octaves(rng.int(2, 6), 4, rng);
      for (let y = 0, i = 0; y < height; y++)
        for (let x = 0; x < width; x++, i++)
          if (where === null || where[i] !== 0) field[i] = 0.5 + 0.5 * fbm(oct, x / width, y / height);
      break;
    }
    case 'marble': {
      const oct = octaves(rng.int(2, 5), 3, rng);
      const freq = rng.uniform(4, 16) * Math.PI;
      const a = rng.uniform(0, Math.PI);
      const turb = rng.uniform(2, 6);
      const ca = Math.cos(a) * inv;
      const sa = Math.sin(a) * inv;
      for (let y = 0, i = 0; y < height; y++)
        for (let x = 0; x < width; x++, i++)
          if (where === null || where[i] !== 0)
            field[i] =
              0.5 + 0.5 * Math.sin((x * ca + y * sa) * freq + turb * fbm(oct, x / width, y / height));
      break;
    }
    case 'stripes': {
      const period = rng.uniform(4, 24);
      const a = rng.uniform(0, Math.PI);
      const ca = (Math.cos(a) * 2 * Math.PI) / period;
      const sa = (Math.sin(a) * 2 * Math.PI) / period;
      const duty = rng.uniform(-0.5, 0.5);
      for (let y = 0, i = 0; y < height; y++)
        for (let x = 0; x < width; x++, i++)
          if (where === null || where[i] !== 0) field[i] = Math.sin(x * ca + y * sa) > duty ? 1 : 0;
      break;
    }
    case 'cells': {
      // Worley F1 distance to jittered points on an n × n grid.
      const n = rng.int(4, 16);
      const px = new Float64Array(n * n);
      const py = new Float64Array(n * n);
      for (let k = 0; k < n * n; k++) {
        px[k] = ((k % n) + rng.next()) / n;
        py[k] = (Math.floor(k / n) + rng.next()) / n;
      }
      for (let y = 0, i = 0; y < height; y++) {
        const v = y / height;
        const gy = Math.min(n - 1, Math.floor(v * n));
        for (let x = 0; x < width; x++, i++) {
          if (where !== null && where[i] === 0) continue;
          const u = x / width;
          const gx = Math.min(n - 1, Math.floor(u * n));
          let best = Infinity;
          for (let j = Math.max(0, gy - 1); j <= Math.min(n - 1, gy + 1); j++)
            for (let l = Math.max(0, gx - 1); l <= Math.min(n - 1, gx + 1); l++) {
              const dx = px[j * n + l] - u;
              const dy = py[j * n + l] - v;
              const d = dx * dx + dy * dy;
              if (d < best) best = d;
            }
          field[i] = Math.min(1, Math.sqrt(best) * n);
        }
      }
      break;
    }
    case 'weave': {
      const period = rng.uniform(6, 20);
      const a = rng.uniform(0, Math.PI / 2);
      const w = (2 * Math.PI) / period;
      const ca = Math.cos(a) * w;
      const sa = Math.sin(a) * w;
      for (let y = 0, i = 0; y < height; y++)
        for (let x = 0; x < width; x++, i++) {
          if (where !== null && where[i] === 0) continue;
          const s1 = Math.sin(x * ca + y * sa);
          const s2 = Math.sin(-x * sa + y * ca);
          field[i] = 0.5 + 0.25 * (s1 + s2) * (s1 * s2 > 0 ? 1 : 0.5);
        }
      break;
    }
  }
  const d = img.data;
  for (let p = 0; p < field.length; p++) {
    if (where !== null && where[p] === 0) continue;
    const t = field[p] < 0 ? 0 : field[p] > 1 ? 1 : field[p];
    const o = p * channels;
    for (let c = 0; c < cc; c++) d[o + c] = colA[c] + (colB[c] - colA[c]) * t;
    if (channels === 4) d[o + 3] = 255;
  }
  return img;
}

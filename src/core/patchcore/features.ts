/**
 * PatchCore's locally aware patch features (Roth et al., CVPR 2022, §3.1), pure: each tap's map is averaged over
 * a 3×3 neighbourhood (the paper's aggregation with p = 3, so a patch sees its surroundings without losing
 * resolution), the taps are brought to one grid by bilinear interpolation (the paper upsamples layer3 to
 * layer2's grid) and concatenated along channels.
 *
 * Shapes: a tap map is `[C, h, w]` planar; patch features are `[h·w, D]` row-major (one row per grid cell,
 * row index `i·w + j`), `D = Σ C`.
 */
import { InvalidArgumentError } from '../errors.ts';

/** A feature map `[C, h, w]`, planar per channel. */
export interface TapMap {
  data: Float32Array;
  dims: readonly [number, number, number];
}

/** Patch features of one image: `rows × dim` row-major, on an `h × w` grid (`rows = h·w`). */
export interface PatchFeatures {
  data: Float32Array;
  rows: number;
  dim: number;
  h: number;
  w: number;
}

/**
 * Mean over the `k × k` neighbourhood of every cell, the neighbourhood clipped at the borders (the mean of the
 * cells that exist, so border patches are not pulled towards zero by padding). `[C, h, w]` → `[C, h, w]`.
 */
export function localAverage(map: TapMap, k = 3): TapMap {
  if (!Number.isInteger(k) || k < 1 || k % 2 === 0)
    throw new InvalidArgumentError('patch size', 'an odd integer ≥ 1', k);
  const [C, h, w] = map.dims;
  if (k === 1) return { data: map.data.slice(), dims: [C, h, w] };
  const r = (k - 1) / 2;
  const out = new Float32Array(C * h * w);
  const row = new Float64Array(w);
  for (let c = 0; c < C; c++) {
    const base = c * h * w;
    // Separable box sum (rows, then columns), counts from the clipped window sizes.
    const tmp = new Float64Array(h * w);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) row[j] = map.data[base + i * w + j];
      for (let j = 0; j < w; j++) {
        let s = 0;
        for (let d = Math.max(0, j - r); d <= Math.min(w - 1, j + r); d++) s += row[d];
        tmp[i * w + j] = s;
      }
    }
    for (let i = 0; i < h; i++) {
      const i0 = Math.max(0, i - r);
      const i1 = Math.min(h - 1, i + r);
      for (let j = 0; j < w; j++) {
        let s = 0;
        for (let d = i0; d <= i1; d++) s += tmp[d * w + j];
        const n = (i1 - i0 + 1) * (Math.min(w - 1, j + r) - Math.max(0, j - r) + 1);
        out[base + i * w + j] = s / n;
      }
    }
  }
  return { data: out, dims: [C, h, w] };
}

/**
 * Bilinear resize of every channel of `[C, h, w]` to `[C, H, W]`, half-pixel centres (align_corners = false,
 * torch's `F.interpolate(mode='bilinear')`), edges clamped.
 */
export function resizeMap(map: TapMap, H: number, W: number): TapMap {
  const [C, h, w] = map.dims;
  if (h === H && w === W) return { data: map.data.slice(), dims: [C, H, W] };
  const out = new Float32Array(C * H * W);
  const x0 = new Int32Array(W);
  const x1 = new Int32Array(W);
  const wx = new Float64Array(W);
  for (let x = 0; x < W; x++) {
    const f = Math.min(Math.max(((x + 0.5) * w) / W - 0.5, 0), w - 1);
    x0[x] = Math.floor(f);
    x1[x] = Math.min(x0[x] + 1, w - 1);
    wx[x] = f - x0[x];
  }
  for (let y = 0; y < H; y++) {
    const f = Math.min(Math.max(((y + 0.5) * h) / H - 0.5, 0), h - 1);
    const y0 = Math.floor(f);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = f - y0;
    for (let c = 0; c < C; c++) {
      const b = c * h * w;
      const o = c * H * W + y * W;
      for (let x = 0; x < W; x++) {
        const top = map.data[b + y0 * w + x0[x]] * (1 - wx[x]) + map.data[b + y0 * w + x1[x]] * wx[x];
        const bot = map.data[b + y1 * w + x0[x]] * (1 - wx[x]) + map.data[b + y1 * w + x1[x]] * wx[x];
        out[o + x] = top * (1 - wy) + bot * wy;
      }
    }
  }
  return { data: out, dims: [C, H, W] };
}

export interface PatchFeatureOptions {
  /** Neighbourhood size of the local aggregation (the paper's p); default 3. */
  patchSize?: number;
  /** Grid the taps are brought to: the finest tap's (the paper's choice) or the coarsest's; default finest. */
  grid?: 'finest' | 'coarsest';
}

/** The grid size `[h, w]` the taps are brought to. */
export function patchGrid(maps: readonly TapMap[], grid: 'finest' | 'coarsest' = 'finest'): [number, number] {
  if (maps.length === 0) throw new InvalidArgumentError('tap maps', 'at least one [C, h, w] map', 0);
  const areas = maps.map((m) => m.dims[1] * m.dims[2]);
  const pick = grid === 'finest' ? areas.indexOf(Math.max(...areas)) : areas.indexOf(Math.min(...areas));
  return [maps[pick].dims[1], maps[pick].dims[2]];
}

/**
 * Locally aware patch features of one image from its tap maps (any number, any grids): 3×3 average per tap,
 * each tap resized to the common grid, channels concatenated in tap order. `[C_t, h_t, w_t]…` → `[h·w, ΣC_t]`.
 */
export function patchFeatures(maps: readonly TapMap[], o: PatchFeatureOptions = {}): PatchFeatures {
  const [h, w] = patchGrid(maps, o.grid);
  const dim = maps.reduce((s, m) => s + m.dims[0], 0);
  const rows = h * w;
  const data = new Float32Array(rows * dim);
  let off = 0;
  for (const m of maps) {
    const g = resizeMap(localAverage(m, o.patchSize ?? 3), h, w);
    const C = m.dims[0];
    for (let c = 0; c < C; c++) {
      const src = c * rows;
      for (let p = 0; p < rows; p++) data[p * dim + off + c] = g.data[src + p];
    }
    off += C;
  }
  return { data, rows, dim, h, w };
}

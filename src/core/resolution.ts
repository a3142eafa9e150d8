/**
 * Backbone input geometry beyond one fixed W×H, pure: run a fully convolutional backbone at the image's own
 * size (or a chosen short side), letterbox it into a chosen frame, or cut a long image into square tiles and
 * stitch the tiles' feature maps back into one map.
 *
 * Frames are rounded to a multiple of the backbone's largest stride (32 for MobileNetV2 / ResNet) so every
 * feature map of every tap covers the frame exactly (cell (i, j) of a stride-s map sits over pixels
 * [s·i, s·i + s)); tile offsets are multiples of that stride too, so a tile's cells land on whole cells of the
 * stitched map.
 */
import { InvalidArgumentError } from './errors.ts';
import { type PreprocessOptions, type ResizeMode, imagenetPreprocess } from './preprocess.ts';

/**
 * - `fixed`: the backbone's own preprocessing (the manifest's W×H and resize mode), or `preprocess` instead;
 *   everything else in the app reads features made this way.
 * - `native`: keep the aspect ratio; the short side becomes `shortSide` (default: the image's own), both sides
 *   rounded to a multiple of `multiple` (default 32), the long side capped at `maxSide` (default 2048).
 * - `letterbox`: fit inside `width × height` keeping the aspect ratio, pad the rest (gray `fill`).
 * - `tile`: like `native`, then square `shortSide × shortSide` tiles along the long side with at least
 *   `overlap` pixels in common (default 0); overlapping cells are averaged when the maps are stitched.
 */
export type InputResolution =
  | { mode: 'fixed'; preprocess?: PreprocessOptions }
  | { mode: 'native'; shortSide?: number; multiple?: number; maxSide?: number }
  | { mode: 'letterbox'; width: number; height: number; fill?: number }
  | { mode: 'tile'; shortSide: number; overlap?: number; multiple?: number };

/** A short stable id of a resolution choice (part of feature-cache keys). */
export function resolutionId(r: InputResolution): string {
  switch (r.mode) {
    case 'fixed':
      return 'fixed';
    case 'native':
      return `native-s${r.shortSide ?? 'own'}-m${r.multiple ?? 32}-x${r.maxSide ?? 2048}`;
    case 'letterbox':
      return `letterbox-${r.width}x${r.height}-f${r.fill ?? 0}`;
    case 'tile':
      return `tile-s${r.shortSide}-o${r.overlap ?? 0}-m${r.multiple ?? 32}`;
  }
}

function posInt(name: string, v: unknown, min = 1): void {
  if (!Number.isInteger(v) || (v as number) < min)
    throw new InvalidArgumentError(name, `an integer ≥ ${min}`, v);
}

export function validateResolution(r: InputResolution): void {
  const modes = ['fixed', 'native', 'letterbox', 'tile'];
  if (!r || !modes.includes((r as { mode: string }).mode))
    throw new InvalidArgumentError(
      'resolution.mode',
      `one of ${modes.join(', ')}`,
      (r as { mode?: unknown })?.mode,
    );
  if (r.mode === 'native') {
    if (r.shortSide !== undefined) posInt('resolution.shortSide', r.shortSide, 32);
    if (r.multiple !== undefined) posInt('resolution.multiple', r.multiple);
    if (r.maxSide !== undefined) posInt('resolution.maxSide', r.maxSide, 32);
  } else if (r.mode === 'letterbox') {
    posInt('resolution.width', r.width, 32);
    posInt('resolution.height', r.height, 32);
  } else if (r.mode === 'tile') {
    posInt('resolution.shortSide', r.shortSide, 32);
    if (r.multiple !== undefined) posInt('resolution.multiple', r.multiple);
    if (r.overlap !== undefined) posInt('resolution.overlap', r.overlap, 0);
    if ((r.overlap ?? 0) >= r.shortSide)
      throw new InvalidArgumentError(
        'resolution.overlap',
        `smaller than shortSide (${r.shortSide})`,
        r.overlap,
      );
  }
}

const roundTo = (v: number, m: number) => Math.max(m, Math.round(v / m) * m);

/**
 * The frame `W × H` an `imgW × imgH` image is resized to (stretch, aspect kept up to the rounding) for
 * `native` and `tile`.
 */
export function nativeFrame(
  imgW: number,
  imgH: number,
  shortSide: number | undefined,
  multiple = 32,
  maxSide = 2048,
): { width: number; height: number } {
  if (!(imgW > 0 && imgH > 0))
    throw new InvalidArgumentError('image size', 'positive width and height', `${imgW}×${imgH}`);
  let s = (shortSide ?? Math.min(imgW, imgH)) / Math.min(imgW, imgH);
  if (Math.max(imgW, imgH) * s > maxSide) s = maxSide / Math.max(imgW, imgH);
  return { width: roundTo(imgW * s, multiple), height: roundTo(imgH * s, multiple) };
}

/**
 * The preprocessing one image gets under a resolution choice (`base` gives mean/std and the fixed geometry).
 * For `tile` it is the whole stitched frame (what the stitched maps cover, what heat maps are drawn through).
 */
export function framePreprocess(
  r: InputResolution,
  base: PreprocessOptions,
  imgW: number,
  imgH: number,
): PreprocessOptions {
  validateResolution(r);
  const withGeometry = (width: number, height: number, resize: ResizeMode, fill?: number) => ({
    ...imagenetPreprocess(width, height, resize),
    mean: base.mean,
    std: base.std,
    ...(fill !== undefined ? { fill } : {}),
  });
  switch (r.mode) {
    case 'fixed':
      return r.preprocess ?? base;
    case 'letterbox':
      return withGeometry(r.width, r.height, 'letterbox', r.fill ?? 0);
    case 'native': {
      const f = nativeFrame(imgW, imgH, r.shortSide, r.multiple, r.maxSide);
      return withGeometry(f.width, f.height, 'stretch');
    }
    case 'tile': {
      const f = nativeFrame(imgW, imgH, r.shortSide, r.multiple, Number.MAX_SAFE_INTEGER);
      return withGeometry(f.width, f.height, 'stretch');
    }
  }
}

/** One square tile of a frame, in frame pixels. */
export interface TileBox {
  x: number;
  y: number;
  size: number;
}

/**
 * Square tiles of side `min(W, H)` along the long side of a `W × H` frame, offsets multiples of `multiple`,
 * first at 0 and last flush with the end, consecutive tiles sharing at least `overlap` pixels. A square frame is
 * one tile.
 */
export function tilePlan(W: number, H: number, overlap = 0, multiple = 32): TileBox[] {
  const size = Math.min(W, H);
  const long = Math.max(W, H);
  const along = (o: number): TileBox => (W >= H ? { x: o, y: 0, size } : { x: 0, y: o, size });
  if (long === size) return [along(0)];
  const n = Math.max(2, Math.ceil((long - overlap) / (size - overlap)));
  const last = long - size;
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) {
    const o = i === n - 1 ? last : Math.min(last, Math.floor((i * last) / (n - 1) / multiple) * multiple);
    if (!offsets.includes(o)) offsets.push(o);
  }
  return offsets.map(along);
}

/** A feature map `[C, h, w]`, row-major per channel. */
export interface GridMap {
  data: Float32Array;
  dims: [number, number, number];
}

/**
 * The feature maps of tiles (one per `TileBox`, each `[C, size/s, size/s]`) placed into one map `[C, H/s, W/s]`
 * of the whole frame, cells covered by several tiles averaged. `s` is read from the maps' size.
 */
export function stitchTiles(
  tiles: readonly GridMap[],
  boxes: readonly TileBox[],
  W: number,
  H: number,
): GridMap {
  if (tiles.length !== boxes.length || tiles.length === 0)
    throw new InvalidArgumentError('tiles', `one map per tile box (${boxes.length})`, tiles.length);
  const [C, th, tw] = tiles[0].dims;
  const s = boxes[0].size / th;
  if (!Number.isInteger(s) || boxes[0].size / tw !== s || W % s || H % s)
    throw new InvalidArgumentError(
      'tile maps',
      `a whole stride dividing the tile size and the frame ${W}×${H}`,
      `${th}×${tw} for ${boxes[0].size} px`,
    );
  const h = H / s;
  const w = W / s;
  const sum = new Float32Array(C * h * w);
  const count = new Uint16Array(h * w);
  tiles.forEach((t, k) => {
    const oy = boxes[k].y / s;
    const ox = boxes[k].x / s;
    if (!Number.isInteger(oy) || !Number.isInteger(ox))
      throw new InvalidArgumentError(
        'tile offset',
        `a multiple of the stride ${s}`,
        `${boxes[k].x}, ${boxes[k].y}`,
      );
    for (let i = 0; i < th; i++)
      for (let j = 0; j < tw; j++) {
        const cell = (oy + i) * w + ox + j;
        count[cell]++;
        for (let c = 0; c < C; c++) sum[c * h * w + cell] += t.data[c * th * tw + i * tw + j];
      }
  });
  for (let c = 0; c < C; c++) for (let p = 0; p < h * w; p++) sum[c * h * w + p] /= count[p];
  return { data: sum, dims: [C, h, w] };
}

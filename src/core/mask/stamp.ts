/**
 * Rasterizers for the mask painter: each takes geometry in image pixel coordinates and returns a `Stamp` (a plan:
 * the soft coverage of a bounding box) without touching any mask; `applyStamp` turns a plan into a new mask.
 *
 * Coordinates: pixel (x, y) covers [x, x + 1) × [y, y + 1); a pixel is tested at its centre (x + 0.5, y + 0.5),
 * so a shape from (0, 0) to (w, h) covers exactly the w × h pixels inside it.
 */
import { InvalidArgumentError } from '../errors.ts';
import { createRaster, type RasterImage } from '../image.ts';

export interface Point {
  x: number;
  y: number;
}

/**
 * Soft coverage of a rectangle of the image, the output of every rasterizer.
 * `alpha` is Float32Array [height × width] (row-major, values in [0, 1]) for the box at (x, y).
 * An empty stamp has width or height 0.
 */
export interface Stamp {
  x: number;
  y: number;
  width: number;
  height: number;
  alpha: Float32Array;
}

export interface BrushOptions {
  /** Diameter in image pixels, > 0. */
  size: number;
  /** Fraction of the radius painted at full strength, in [0, 1]; the rest falls off linearly to 0. */
  hardness: number;
}

/** Label masks are binary: a painted pixel is "in" when its coverage reaches this value. */
export const LABEL_THRESHOLD = 0.5;

function emptyStamp(): Stamp {
  return { x: 0, y: 0, width: 0, height: 0, alpha: new Float32Array(0) };
}

/** Clamps a box [x0, x1) × [y0, y1) to the image and allocates its stamp. */
function boxStamp(imgW: number, imgH: number, x0: number, y0: number, x1: number, y1: number): Stamp {
  const bx0 = Math.max(0, Math.floor(x0));
  const by0 = Math.max(0, Math.floor(y0));
  const bx1 = Math.min(imgW, Math.ceil(x1));
  const by1 = Math.min(imgH, Math.ceil(y1));
  if (bx1 <= bx0 || by1 <= by0) return emptyStamp();
  const width = bx1 - bx0;
  const height = by1 - by0;
  return { x: bx0, y: by0, width, height, alpha: new Float32Array(width * height) };
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || width <= 0)
    throw new InvalidArgumentError('width', 'a positive integer', width);
  if (!Number.isInteger(height) || height <= 0)
    throw new InvalidArgumentError('height', 'a positive integer', height);
}

export function checkBrush(o: BrushOptions): void {
  if (!(o.size > 0) || !Number.isFinite(o.size))
    throw new InvalidArgumentError('size', 'a number > 0', o.size);
  if (!(o.hardness >= 0 && o.hardness <= 1))
    throw new InvalidArgumentError('hardness', 'in [0, 1]', o.hardness);
}

/**
 * Brush coverage at distance `d` from the stroke's centre line: 1 up to hardness·r, then linear to 0 at r.
 * Hardness 1 is a hard disc of radius r (inclusive).
 */
export function brushAlpha(d: number, radius: number, hardness: number): number {
  const inner = hardness * radius;
  if (d <= inner) return 1;
  if (d >= radius) return 0;
  return (radius - d) / (radius - inner);
}

/**
 * Rasterizes a stroke (a polyline swept by a round brush: a chain of capsules) into a soft stamp. Coverage is
 * the brush profile of the distance from each pixel centre to the nearest segment, so it does not depend on how
 * densely the pointer was sampled. A single point is a dab.
 */
export function rasterizeStroke(
  width: number,
  height: number,
  points: readonly Point[],
  brush: BrushOptions,
): Stamp {
  checkSize(width, height);
  checkBrush(brush);
  if (points.length === 0) return emptyStamp();
  const r = brush.size / 2;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of points) {
    minX = Math.min(minX, p.x);
    minY = Math.min(minY, p.y);
    maxX = Math.max(maxX, p.x);
    maxY = Math.max(maxY, p.y);
  }
  const st = boxStamp(width, height, minX - r, minY - r, maxX + r, maxY + r);
  if (st.width === 0) return st;
  const segs = points.length === 1 ? [[points[0], points[0]] as const] : [];
  for (let i = 1; i < points.length; i++) segs.push([points[i - 1], points[i]] as const);
  for (const [a, b] of segs) {
    // Each capsule only touches its own bounding box; skip the rest of the stamp.
    const sx0 = Math.max(st.x, Math.floor(Math.min(a.x, b.x) - r));
    const sy0 = Math.max(st.y, Math.floor(Math.min(a.y, b.y) - r));
    const sx1 = Math.min(st.x + st.width, Math.ceil(Math.max(a.x, b.x) + r));
    const sy1 = Math.min(st.y + st.height, Math.ceil(Math.max(a.y, b.y) + r));
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len2 = dx * dx + dy * dy;
    for (let y = sy0; y < sy1; y++) {
      const py = y + 0.5;
      const row = (y - st.y) * st.width - st.x;
      for (let x = sx0; x < sx1; x++) {
        const px = x + 0.5;
        let t = len2 > 0 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const ex = px - (a.x + t * dx);
        const ey = py - (a.y + t * dy);
        const al = brushAlpha(Math.sqrt(ex * ex + ey * ey), r, brush.hardness);
        if (al > st.alpha[row + x]) st.alpha[row + x] = al;
      }
    }
  }
  return st;
}

/** Pixels whose centres lie in the axis-aligned rectangle spanned by two corners (any order). */
export function rasterizeRect(width: number, height: number, a: Point, b: Point): Stamp {
  checkSize(width, height);
  const x0 = Math.min(a.x, b.x);
  const x1 = Math.max(a.x, b.x);
  const y0 = Math.min(a.y, b.y);
  const y1 = Math.max(a.y, b.y);
  const st = boxStamp(width, height, x0, y0, x1, y1);
  for (let y = 0; y < st.height; y++) {
    const py = st.y + y + 0.5;
    if (py < y0 || py > y1) continue;
    for (let x = 0; x < st.width; x++) {
      const px = st.x + x + 0.5;
      if (px >= x0 && px <= x1) st.alpha[y * st.width + x] = 1;
    }
  }
  return st;
}

/** Pixels whose centres lie in the ellipse inscribed in the rectangle spanned by two corners. */
export function rasterizeEllipse(width: number, height: number, a: Point, b: Point): Stamp {
  checkSize(width, height);
  const x0 = Math.min(a.x, b.x);
  const x1 = Math.max(a.x, b.x);
  const y0 = Math.min(a.y, b.y);
  const y1 = Math.max(a.y, b.y);
  const st = boxStamp(width, height, x0, y0, x1, y1);
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const rx = (x1 - x0) / 2;
  const ry = (y1 - y0) / 2;
  if (rx <= 0 || ry <= 0) return emptyStamp();
  for (let y = 0; y < st.height; y++) {
    const ny = (st.y + y + 0.5 - cy) / ry;
    for (let x = 0; x < st.width; x++) {
      const nx = (st.x + x + 0.5 - cx) / rx;
      if (nx * nx + ny * ny <= 1) st.alpha[y * st.width + x] = 1;
    }
  }
  return st;
}

/**
 * Lasso fill: pixels whose centres are inside the closed polygon by the even–odd rule (a self-crossing lasso
 * leaves its doubly-wound lobes empty, as every paint program does). Scanline: per row, the crossings of the
 * horizontal line through the pixel centres are sorted and filled in pairs.
 */
export function rasterizePolygon(width: number, height: number, poly: readonly Point[]): Stamp {
  checkSize(width, height);
  if (poly.length < 3) return emptyStamp();
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of poly) {
    minX = Math.min(minX, p.x);
    minY = Math.min(minY, p.y);
    maxX = Math.max(maxX, p.x);
    maxY = Math.max(maxY, p.y);
  }
  const st = boxStamp(width, height, minX, minY, maxX, maxY);
  const xs: number[] = [];
  for (let y = 0; y < st.height; y++) {
    const py = st.y + y + 0.5;
    xs.length = 0;
    for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      const a = poly[j];
      const b = poly[i];
      // Half-open rule on y so a vertex on the scanline is counted once.
      if (a.y <= py !== b.y <= py) xs.push(a.x + ((py - a.y) * (b.x - a.x)) / (b.y - a.y));
    }
    xs.sort((p, q) => p - q);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // Pixel x is in when its centre x + 0.5 lies in [xs[k], xs[k + 1]).
      const from = Math.max(st.x, Math.ceil(xs[k] - 0.5));
      const to = Math.min(st.x + st.width, Math.ceil(xs[k + 1] - 0.5));
      for (let x = from; x < to; x++) st.alpha[y * st.width + (x - st.x)] = 1;
    }
  }
  return st;
}

export type StampMode = 'paint' | 'erase';

/**
 * A new binary mask: `mask` with the stamp painted in (255 where coverage ≥ threshold) or erased (0 there).
 * The label mask stays binary whatever the brush hardness; the soft coverage only decides where the edge falls.
 * @param mask single-channel [H, W] 0/255
 */
export function applyStamp(
  mask: RasterImage,
  stamp: Stamp,
  mode: StampMode,
  threshold = LABEL_THRESHOLD,
): RasterImage {
  if (mask.channels !== 1) throw new InvalidArgumentError('mask.channels', '1', mask.channels);
  const out = { ...mask, data: new Uint8ClampedArray(mask.data) };
  const v = mode === 'paint' ? 255 : 0;
  for (let y = 0; y < stamp.height; y++) {
    const row = (stamp.y + y) * mask.width + stamp.x;
    for (let x = 0; x < stamp.width; x++) {
      if (stamp.alpha[y * stamp.width + x] >= threshold) out.data[row + x] = v;
    }
  }
  return out;
}

/** The stamp as a soft single-channel image [H, W] (0–255) of the full size, e.g. for a live brush preview. */
export function stampToRaster(width: number, height: number, stamp: Stamp): RasterImage {
  const out = createRaster(width, height, 1);
  for (let y = 0; y < stamp.height; y++) {
    for (let x = 0; x < stamp.width; x++) {
      out.data[(stamp.y + y) * width + stamp.x + x] = Math.round(stamp.alpha[y * stamp.width + x] * 255);
    }
  }
  return out;
}

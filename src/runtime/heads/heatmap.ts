/**
 * Heat maps from the feature grid to image pixels, pure (no tfjs, no DOM): used for pixel-level PRO at the mask
 * resolution and for the UI overlay.
 *
 * A head's heat map lives on the backbone's feature grid `[gh, gw]`, which covers the backbone input frame
 * (`pre.width × pre.height`, after stretch / letterbox / centre-crop). Each image pixel centre is mapped through
 * the same geometry as `resizeForBackbone` into that frame, then sampled bilinearly on the grid with half-pixel
 * centres (cell (i, j) sits at ((j + ½)·W/gw, (i + ½)·H/gh)) and clamped at the edges. For `stretch` this is
 * exactly a bilinear resize of the grid to the image size (`tf.image.resizeBilinear` with
 * `halfPixelCenters: true`); pixels a centre-crop cut away take the nearest edge value.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import type { PreprocessOptions } from '../../core/preprocess.ts';

export type FrameGeometry = Pick<PreprocessOptions, 'width' | 'height' | 'resize'>;

/** Where image pixel centres land in the backbone frame: `u = a·(x + ½) + b` per axis. */
export function imageToFrame(
  pre: FrameGeometry,
  imgW: number,
  imgH: number,
): { ax: number; bx: number; ay: number; by: number } {
  const { width: W, height: H } = pre;
  if (pre.resize === 'stretch') return { ax: W / imgW, bx: 0, ay: H / imgH, by: 0 };
  if (pre.resize === 'letterbox') {
    // Same rounding as resizeForBackbone's letterbox branch.
    const s = Math.min(W / imgW, H / imgH);
    const w = Math.max(1, Math.min(W, Math.round(imgW * s)));
    const h = Math.max(1, Math.min(H, Math.round(imgH * s)));
    return { ax: w / imgW, bx: Math.floor((W - w) / 2), ay: h / imgH, by: Math.floor((H - h) / 2) };
  }
  const s = Math.max(W / imgW, H / imgH);
  const w = Math.max(W, Math.round(imgW * s));
  const h = Math.max(H, Math.round(imgH * s));
  return { ax: w / imgW, bx: -Math.floor((w - W) / 2), ay: h / imgH, by: -Math.floor((h - H) / 2) };
}

/**
 * A grid heat map `[gh·gw]` (row-major) sampled at every pixel of an `imgW × imgH` image, row-major
 * `[imgH·imgW]`.
 */
export function heatmapToImage(
  map: ArrayLike<number>,
  gh: number,
  gw: number,
  pre: FrameGeometry,
  imgW: number,
  imgH: number,
): Float32Array {
  if (map.length !== gh * gw)
    throw new InvalidArgumentError('heat map length', `${gh}×${gw} = ${gh * gw}`, map.length);
  if (!(imgW > 0 && imgH > 0))
    throw new InvalidArgumentError('image size', 'positive width and height', `${imgW}×${imgH}`);
  const g = imageToFrame(pre, imgW, imgH);
  const sx = gw / pre.width;
  const sy = gh / pre.height;
  // Per-column and per-row sample positions, computed once.
  const x0 = new Int32Array(imgW);
  const x1 = new Int32Array(imgW);
  const wx = new Float32Array(imgW);
  for (let x = 0; x < imgW; x++) {
    const f = Math.min(Math.max((g.ax * (x + 0.5) + g.bx) * sx - 0.5, 0), gw - 1);
    x0[x] = Math.floor(f);
    x1[x] = Math.min(x0[x] + 1, gw - 1);
    wx[x] = f - x0[x];
  }
  const out = new Float32Array(imgW * imgH);
  for (let y = 0; y < imgH; y++) {
    const f = Math.min(Math.max((g.ay * (y + 0.5) + g.by) * sy - 0.5, 0), gh - 1);
    const y0 = Math.floor(f);
    const y1 = Math.min(y0 + 1, gh - 1);
    const wy = f - y0;
    const r0 = y0 * gw;
    const r1 = y1 * gw;
    for (let x = 0; x < imgW; x++) {
      const top = map[r0 + x0[x]] + (map[r0 + x1[x]] - map[r0 + x0[x]]) * wx[x];
      const bot = map[r1 + x0[x]] + (map[r1 + x1[x]] - map[r1 + x0[x]]) * wx[x];
      out[y * imgW + x] = top + (bot - top) * wy;
    }
  }
  return out;
}

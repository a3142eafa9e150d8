/**
 * Pixel operations the generators share, on planar-free interleaved 8-bit buffers of 1 or 3 colour channels
 * (alpha is handled by the callers, which keep the input's alpha).
 *
 * MemSeg's structure augmentations (imgaug/PIL semantics, parameter ranges as MemSeg sets them) run through an
 * `AugmentPipeline`: operations that map each value through a table (gamma, solarize, posterize, invert,
 * autocontrast, equalize, and brightness on gray) are composed into one look-up table that is applied lazily, and
 * histograms are pushed through the pending table instead of re-reading the image, so three LUT operations cost
 * one pass — or none when the caller reads only the masked pixels through the table.
 */
import type { Rng } from '../rng.ts';

export const STRUCTURE_OPS = [
  'gamma',
  'brightness',
  'sharpness',
  'hue_saturation',
  'solarize',
  'posterize',
  'invert',
  'autocontrast',
  'equalize',
  'rotate',
] as const;
export type StructureOp = (typeof STRUCTURE_OPS)[number];

/** A working image: interleaved, `cc` colour channels (1 or 3). */
export interface WorkBuffer {
  width: number;
  height: number;
  cc: 1 | 3;
  data: Uint8ClampedArray;
}

/** Applies MemSeg's random augmentations with composed look-up tables; see the module comment. */
export class AugmentPipeline {
  /** Pending per-channel table [cc × 256], or null when `buf` is current. */
  lut: Uint8Array | null = null;
  constructor(public buf: WorkBuffer) {}

  /** Composes `next` (per channel [cc × 256]) after the pending table. */
  private pushLut(next: Uint8Array): void {
    const cc = this.buf.cc;
    if (this.lut === null) {
      this.lut = next;
      return;
    }
    const prev = this.lut;
    const out = new Uint8Array(cc * 256);
    for (let c = 0; c < cc; c++)
      for (let v = 0; v < 256; v++) out[c * 256 + v] = next[c * 256 + prev[c * 256 + v]];
    this.lut = out;
  }

  /** Makes `buf` current (before an operation that looks at neighbours or mixes channels). */
  flush(): void {
    const lut = this.lut;
    if (lut === null) return;
    const d = this.buf.data;
    const cc = this.buf.cc;
    if (cc === 1) for (let i = 0; i < d.length; i++) d[i] = lut[d[i]];
    else
      for (let i = 0; i < d.length; i += 3) {
        d[i] = lut[d[i]];
        d[i + 1] = lut[256 + d[i + 1]];
        d[i + 2] = lut[512 + d[i + 2]];
      }
    this.lut = null;
  }

  /** Histograms [cc × 256] of the current (table-mapped) image. */
  histograms(): Float64Array {
    const cc = this.buf.cc;
    const d = this.buf.data;
    const raw = new Float64Array(cc * 256);
    if (cc === 1) for (let i = 0; i < d.length; i++) raw[d[i]]++;
    else
      for (let i = 0; i < d.length; i += 3) {
        raw[d[i]]++;
        raw[256 + d[i + 1]]++;
        raw[512 + d[i + 2]]++;
      }
    if (this.lut === null) return raw;
    const h = new Float64Array(cc * 256);
    for (let c = 0; c < cc; c++)
      for (let v = 0; v < 256; v++) h[c * 256 + this.lut[c * 256 + v]] += raw[c * 256 + v];
    return h;
  }

  /** Value of channel `c` at interleaved index `i` of the current image. */
  read(i: number, c: number): number {
    const v = this.buf.data[i + c];
    return this.lut === null ? v : this.lut[c * 256 + v];
  }

  /**
   * Draws the operation's parameters from `rng`, applies it and returns them (for the sample's record).
   * `need` (optional, [height × width], non-zero = will be read) lets a neighbourhood or cross-channel op compute
   * only the pixels a caller will read; pass it only to the last such op when no histogram op (equalize,
   * autocontrast) follows, since the other pixels are left stale.
   */
  apply(op: StructureOp, rng: Rng, need: Uint8Array | null = null): Record<string, unknown> {
    const cc = this.buf.cc;
    switch (op) {
      case 'gamma': {
        // imgaug GammaContrast((0.5, 2.0), per_channel=True)
        const gammas = Array.from({ length: cc }, () => rng.uniform(0.5, 2));
        const t = new Uint8Array(cc * 256);
        for (let c = 0; c < cc; c++)
          for (let v = 0; v < 256; v++) t[c * 256 + v] = Math.round(255 * Math.pow(v / 255, gammas[c]));
        this.pushLut(t);
        return { op, gamma: gammas };
      }
      case 'brightness': {
        // imgaug MultiplyAndAddToBrightness(mul=(0.8, 1.2), add=(-30, 30)): acts on luma, keeps chroma.
        const mul = rng.uniform(0.8, 1.2);
        const add = rng.uniform(-30, 30);
        if (cc === 1) {
          const t = new Uint8Array(256);
          for (let v = 0; v < 256; v++) t[v] = clamp255(Math.round(v * mul + add));
          this.pushLut(t);
        } else {
          this.flush();
          const d = this.buf.data;
          for (let i = 0; i < d.length; i += 3) {
            if (need !== null && need[i / 3] === 0) continue;
            const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
            const delta = (mul - 1) * y + add;
            d[i] = d[i] + delta;
            d[i + 1] = d[i + 1] + delta;
            d[i + 2] = d[i + 2] + delta;
          }
        }
        return { op, mul, add };
      }
      case 'sharpness': {
        // PIL ImageEnhance.Sharpness as imgaug's pillike.EnhanceSharpness (factor in [0, 2]).
        const factor = rng.uniform(0, 2);
        this.flush();
        sharpenInPlace(this.buf, factor, need);
        return { op, factor };
      }
      case 'hue_saturation': {
        // imgaug AddToHueAndSaturation((-50, 50), per_channel=True): hue and saturation shifted independently.
        const hue = rng.int(-50, 51);
        const sat = rng.int(-50, 51);
        if (cc === 3) {
          this.flush();
          hueSaturationInPlace(this.buf.data, hue, sat, need);
        }
        return { op, hue, saturation: sat };
      }
      case 'solarize': {
        // imgaug Solarize(0.5, threshold=(32, 128)): applied with probability 0.5.
        const applied = rng.bernoulli(0.5);
        const threshold = rng.int(32, 129);
        if (applied) {
          const t = new Uint8Array(cc * 256);
          for (let c = 0; c < cc; c++)
            for (let v = 0; v < 256; v++) t[c * 256 + v] = v >= threshold ? 255 - v : v;
          this.pushLut(t);
        }
        return { op, threshold, applied };
      }
      case 'posterize': {
        // imgaug Posterize(nb_bits=(1, 8)).
        const bits = rng.int(1, 9);
        const keep = (0xff << (8 - bits)) & 0xff;
        const t = new Uint8Array(cc * 256);
        for (let c = 0; c < cc; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = v & keep;
        this.pushLut(t);
        return { op, bits };
      }
      case 'invert': {
        const t = new Uint8Array(cc * 256);
        for (let c = 0; c < cc; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = 255 - v;
        this.pushLut(t);
        return { op };
      }
      case 'autocontrast': {
        // PIL ImageOps.autocontrast with cutoff (percent, each end) in [0, 20), as imgaug's pillike default.
        const cutoff = rng.int(0, 20);
        this.pushLut(autocontrastLut(this.histograms(), cc, cutoff));
        return { op, cutoff };
      }
      case 'equalize': {
        this.pushLut(equalizeLut(this.histograms(), cc));
        return { op };
      }
      case 'rotate': {
        // imgaug Affine(rotate=(-45, 45)): bilinear, constant 0 outside.
        const angle = rng.uniform(-45, 45);
        this.flush();
        this.buf = rotateBilinear(this.buf, angle, need);
        return { op, angle };
      }
    }
  }
}

export function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** PIL's equalize: per channel, cumulative histogram with PIL's rounding (`(n + step // 2) // step`). */
export function equalizeLut(hist: Float64Array, cc: number): Uint8Array {
  const t = new Uint8Array(cc * 256);
  for (let c = 0; c < cc; c++) {
    const h = hist.subarray(c * 256, c * 256 + 256);
    let last = 255;
    while (last > 0 && h[last] === 0) last--;
    let total = 0;
    for (let v = 0; v < 256; v++) total += h[v];
    const step = Math.floor((total - h[last]) / 255);
    if (step === 0) {
      for (let v = 0; v < 256; v++) t[c * 256 + v] = v;
      continue;
    }
    let n = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      t[c * 256 + v] = Math.min(255, Math.floor(n / step));
      n += h[v];
    }
  }
  return t;
}

/** PIL's autocontrast: drop `cutoff` % at each end of each channel's histogram, stretch the rest to [0, 255]. */
export function autocontrastLut(hist: Float64Array, cc: number, cutoff: number): Uint8Array {
  const t = new Uint8Array(cc * 256);
  for (let c = 0; c < cc; c++) {
    const h = Float64Array.from(hist.subarray(c * 256, c * 256 + 256));
    let total = 0;
    for (let v = 0; v < 256; v++) total += h[v];
    if (cutoff > 0) {
      let cut = Math.floor((total * cutoff) / 100);
      for (let v = 0; v < 256 && cut > 0; v++) {
        const take = Math.min(cut, h[v]);
        h[v] -= take;
        cut -= take;
      }
      cut = Math.floor((total * cutoff) / 100);
      for (let v = 255; v >= 0 && cut > 0; v--) {
        const take = Math.min(cut, h[v]);
        h[v] -= take;
        cut -= take;
      }
    }
    let lo = 0;
    while (lo < 256 && h[lo] === 0) lo++;
    let hi = 255;
    while (hi >= 0 && h[hi] === 0) hi--;
    if (hi <= lo) {
      for (let v = 0; v < 256; v++) t[c * 256 + v] = v;
      continue;
    }
    const scale = 255 / (hi - lo);
    const offset = -lo * scale;
    for (let v = 0; v < 256; v++) t[c * 256 + v] = clamp255(Math.floor(v * scale + offset));
  }
  return t;
}

/** PIL's sharpness enhancement: blend with the SMOOTH-filtered image (kernel 1 1 1 / 1 5 1 / 1 1 1, ÷13). */
export function sharpenInPlace(buf: WorkBuffer, factor: number, need: Uint8Array | null = null): void {
  const { width: w, height: h, cc, data } = buf;
  if (w < 3 || h < 3) return;
  const src = new Uint8ClampedArray(data); // one copy per call, read-only neighbours
  const row = w * cc;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      if (need !== null && need[y * w + x] === 0) continue;
      const i = y * row + x * cc;
      for (let c = 0; c < cc; c++) {
        const k = i + c;
        const sum =
          src[k - row - cc] +
          src[k - row] +
          src[k - row + cc] +
          src[k - cc] +
          5 * src[k] +
          src[k + cc] +
          src[k + row - cc] +
          src[k + row] +
          src[k + row + cc];
        const smooth = Math.round(sum / 13);
        data[k] = Math.round(smooth + factor * (src[k] - smooth));
      }
    }
  }
}

/** OpenCV-style HSV shift (hue in 0–180 steps, shift given on imgaug's ±255 scale) of an RGB buffer. */
export function hueSaturationInPlace(
  d: Uint8ClampedArray,
  hueShift: number,
  satShift: number,
  need: Uint8Array | null = null,
): void {
  // imgaug maps hue shifts in [-255, 255] to [-360°, 360°].
  const dh = ((hueShift / 255) * 360) / 60; // in sextants
  for (let i = 0; i < d.length; i += 3) {
    if (need !== null && need[i / 3] === 0) continue;
    const r = d[i];
    const g = d[i + 1];
    const b = d[i + 2];
    const max = r > g ? (r > b ? r : b) : g > b ? g : b;
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    const delta = max - min;
    let hh = 0;
    if (delta > 0) {
      if (max === r) hh = (g - b) / delta;
      else if (max === g) hh = 2 + (b - r) / delta;
      else hh = 4 + (r - g) / delta;
    }
    hh += dh;
    hh = ((hh % 6) + 6) % 6;
    let s = max === 0 ? 0 : (delta / max) * 255 + satShift;
    s = s < 0 ? 0 : s > 255 ? 255 : s;
    const v = max;
    const chroma = (v * s) / 255;
    const xx = chroma * (1 - Math.abs((hh % 2) - 1));
    const m = v - chroma;
    // Plain branches (no array destructuring) so the loop allocates nothing per pixel.
    let rr = 0;
    let gg = 0;
    let bb = 0;
    const sext = hh | 0;
    if (sext === 0) {
      rr = chroma;
      gg = xx;
    } else if (sext === 1) {
      rr = xx;
      gg = chroma;
    } else if (sext === 2) {
      gg = chroma;
      bb = xx;
    } else if (sext === 3) {
      gg = xx;
      bb = chroma;
    } else if (sext === 4) {
      rr = xx;
      bb = chroma;
    } else {
      rr = chroma;
      bb = xx;
    }
    d[i] = rr + m;
    d[i + 1] = gg + m;
    d[i + 2] = bb + m;
  }
}

/** Rotates about the centre (bilinear, 0 outside), keeping the size. */
export function rotateBilinear(
  buf: WorkBuffer,
  angleDeg: number,
  need: Uint8Array | null = null,
): WorkBuffer {
  const { width: w, height: h, cc, data: src } = buf;
  const out = new Uint8ClampedArray(src.length);
  const rad = (angleDeg * Math.PI) / 180;
  const c = Math.cos(rad);
  const s = Math.sin(rad);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  for (let y = 0; y < h; y++) {
    const dy = y - cy;
    let xs = cx - c * cx + s * dy;
    let ys = cy + s * cx + c * dy;
    for (let x = 0; x < w; x++, xs += c, ys -= s) {
      if (xs <= -1 || ys <= -1 || xs >= w || ys >= h) continue;
      if (need !== null && need[y * w + x] === 0) continue;
      const x0 = Math.floor(xs);
      const y0 = Math.floor(ys);
      const fx = xs - x0;
      const fy = ys - y0;
      const o = (y * w + x) * cc;
      for (let k = 0; k < cc; k++) {
        const p00 = x0 >= 0 && y0 >= 0 ? src[(y0 * w + x0) * cc + k] : 0;
        const p01 = x0 + 1 < w && y0 >= 0 ? src[(y0 * w + x0 + 1) * cc + k] : 0;
        const p10 = x0 >= 0 && y0 + 1 < h ? src[((y0 + 1) * w + x0) * cc + k] : 0;
        const p11 = x0 + 1 < w && y0 + 1 < h ? src[((y0 + 1) * w + x0 + 1) * cc + k] : 0;
        const top = p00 + (p01 - p00) * fx;
        const bot = p10 + (p11 - p10) * fx;
        out[o + k] = top + (bot - top) * fy;
      }
    }
  }
  return { width: w, height: h, cc, data: out };
}

/** Normalised 1-D Gaussian kernel of radius ceil(3σ). */
export function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    k[i + r] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/**
 * Separable Gaussian blur (σx, σy) of an interleaved buffer with `c` channels, borders replicated, computed only
 * where the caller reads it: the vertical pass at the pixels of `where`, the horizontal pass at the pixels within
 * the vertical kernel's reach of them.
 * @param where Uint8Array [h × w], non-zero = needed
 * @returns a Float32Array [h × w × c], valid where `where` is non-zero
 */
export function gaussianBlur(
  src: Uint8ClampedArray,
  w: number,
  h: number,
  c: number,
  sigmaX: number,
  sigmaY: number,
  where: Uint8Array,
): Float32Array {
  const kx = gaussianKernel(sigmaX);
  const ky = gaussianKernel(sigmaY);
  const rx = (kx.length - 1) / 2;
  const ry = (ky.length - 1) / 2;
  // needH[p] = some needed pixel lies within ry rows of p in its column (a sliding count down each column).
  const needH = new Uint8Array(w * h);
  for (let x = 0; x < w; x++) {
    let count = 0;
    for (let y = 0; y < Math.min(h, ry); y++) count += where[y * w + x] ? 1 : 0;
    for (let y = 0; y < h; y++) {
      const enter = y + ry;
      if (enter < h && where[enter * w + x]) count++;
      const leave = y - ry - 1;
      if (leave >= 0 && where[leave * w + x]) count--;
      if (count > 0) needH[y * w + x] = 1;
    }
  }
  const tmp = new Float32Array(w * h * c);
  const out = new Float32Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (needH[row + x] === 0) continue;
      const interior = x - rx >= 0 && x + rx < w;
      for (let k = 0; k < c; k++) {
        let acc = 0;
        if (interior) {
          let i = (row + x - rx) * c + k;
          for (let t = 0; t < kx.length; t++, i += c) acc += kx[t] * src[i];
        } else
          for (let t = -rx; t <= rx; t++) {
            const xx = x + t < 0 ? 0 : x + t >= w ? w - 1 : x + t;
            acc += kx[t + rx] * src[(row + xx) * c + k];
          }
        tmp[(row + x) * c + k] = acc;
      }
    }
  }
  const stride = w * c;
  for (let y = 0; y < h; y++) {
    const interior = y - ry >= 0 && y + ry < h;
    for (let x = 0; x < w; x++) {
      if (where[y * w + x] === 0) continue;
      for (let k = 0; k < c; k++) {
        let acc = 0;
        if (interior) {
          let i = ((y - ry) * w + x) * c + k;
          for (let t = 0; t < ky.length; t++, i += stride) acc += ky[t] * tmp[i];
        } else
          for (let t = -ry; t <= ry; t++) {
            const yy = y + t < 0 ? 0 : y + t >= h ? h - 1 : y + t;
            acc += ky[t + ry] * tmp[(yy * w + x) * c + k];
          }
        out[(y * w + x) * c + k] = acc;
      }
    }
  }
  return out;
}

/**
 * torchvision-style ColorJitter (brightness, contrast, saturation, hue, each ± `strength`, random order skipped:
 * fixed order b → c → s → h) on an interleaved buffer in place; what CutPaste applies to its patch.
 */
export function colorJitterInPlace(
  d: Uint8ClampedArray,
  cc: 1 | 3,
  strength: number,
  rng: Rng,
): Record<string, number> {
  const b = rng.uniform(1 - strength, 1 + strength);
  const ct = rng.uniform(1 - strength, 1 + strength);
  const s = rng.uniform(1 - strength, 1 + strength);
  const hue = rng.uniform(-strength, strength);
  let mean = 0;
  const n = d.length / cc;
  for (let i = 0; i < d.length; i += cc)
    mean += cc === 1 ? d[i] : 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  mean = (mean / n) * b;
  for (let i = 0; i < d.length; i += cc) {
    if (cc === 1) {
      d[i] = (d[i] * b - mean) * ct + mean;
      continue;
    }
    let r = d[i] * b;
    let g = d[i + 1] * b;
    let bl = d[i + 2] * b;
    r = clamp255((r - mean) * ct + mean);
    g = clamp255((g - mean) * ct + mean);
    bl = clamp255((bl - mean) * ct + mean);
    const y = 0.299 * r + 0.587 * g + 0.114 * bl;
    d[i] = (r - y) * s + y;
    d[i + 1] = (g - y) * s + y;
    d[i + 2] = (bl - y) * s + y;
  }
  if (cc === 3 && hue !== 0) hueSaturationInPlace(d, Math.round(hue * 255), 0);
  return { brightness: b, contrast: ct, saturation: s, hue };
}

/**
 * Defects painted onto a surface with their ground truth: thin scratches (bright or dark curved lines), spots
 * (stains with irregular edges) and cracks (dark branching random walks). Each defect is an alpha map blended
 * towards a defect colour; the mask is where alpha ≥ 0.5, so the mask marks exactly the visibly changed pixels.
 * Image [H, W, C] in, image [H, W, C] + mask [H, W, 1] (0/255) out.
 */
import { cloneRaster, createRaster, type RasterImage } from '../image.ts';
import type { Rng } from '../rng.ts';
import { valueNoise2D } from './surfaces.ts';

export type SampleDefectKind = 'scratch' | 'spot' | 'crack';
export const SAMPLE_DEFECT_KINDS: readonly SampleDefectKind[] = ['scratch', 'spot', 'crack'];

export interface PaintedDefect {
  image: RasterImage;
  /** Binary mask (0/255), 1 channel, same size as the image. */
  mask: RasterImage;
}

/** Paints one defect of `kind` onto a copy of `surface`. */
export function paintDefect(surface: RasterImage, kind: SampleDefectKind, rng: Rng): PaintedDefect {
  const { width: w, height: h } = surface;
  const alpha = new Float32Array(w * h);
  let color: number[];
  const mean = meanColor(surface);
  if (kind === 'scratch') {
    drawScratch(alpha, w, h, rng);
    const bright = rng.bernoulli(0.5);
    color = mean.map((m) =>
      bright ? Math.min(255, m + rng.uniform(60, 90)) : Math.max(0, m - rng.uniform(60, 90)),
    );
  } else if (kind === 'spot') {
    drawSpot(alpha, w, h, rng);
    // Rust / oil: darker and shifted towards brown.
    const k = rng.uniform(0.35, 0.6);
    color = [mean[0] * k + 40, mean[1] * k + 15, mean[2] * k];
  } else {
    drawCrack(alpha, w, h, rng);
    color = mean.map((m) => m * rng.uniform(0.15, 0.3));
  }
  const image = cloneRaster(surface);
  const mask = createRaster(w, h, 1);
  const c = surface.channels;
  for (let p = 0; p < w * h; p++) {
    const a = alpha[p];
    if (a <= 0) continue;
    for (let k = 0; k < c; k++) {
      const target = c === 1 ? color[0] : (color[k] ?? color[0]);
      image.data[p * c + k] = image.data[p * c + k] * (1 - a) + target * a;
    }
    if (a >= 0.5) mask.data[p] = 255;
  }
  return { image, mask };
}

function meanColor(img: RasterImage): number[] {
  const c = img.channels;
  const sum = new Array<number>(c).fill(0);
  for (let i = 0; i < img.data.length; i++) sum[i % c] += img.data[i];
  return sum.map((s) => s / (img.width * img.height));
}

/** Stamps an anti-aliased disc of radius r at (cx, cy): alpha = max(alpha, coverage). */
function stamp(
  alpha: Float32Array,
  w: number,
  h: number,
  cx: number,
  cy: number,
  r: number,
  strength = 1,
): void {
  const x0 = Math.max(0, Math.floor(cx - r - 1));
  const x1 = Math.min(w - 1, Math.ceil(cx + r + 1));
  const y0 = Math.max(0, Math.floor(cy - r - 1));
  const y1 = Math.min(h - 1, Math.ceil(cy + r + 1));
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const d = Math.hypot(x - cx, y - cy);
      const a = Math.min(1, Math.max(0, r + 0.5 - d)) * strength;
      if (a > alpha[y * w + x]) alpha[y * w + x] = a;
    }
}

function drawScratch(alpha: Float32Array, w: number, h: number, rng: Rng): void {
  // A quadratic Bézier: long, thin, slightly curved — a tool mark.
  const len = rng.uniform(0.25, 0.6) * Math.min(w, h);
  const cx = rng.uniform(0.25, 0.75) * w;
  const cy = rng.uniform(0.25, 0.75) * h;
  const th = rng.uniform(0, Math.PI);
  const p0 = [cx - (Math.cos(th) * len) / 2, cy - (Math.sin(th) * len) / 2];
  const p2 = [cx + (Math.cos(th) * len) / 2, cy + (Math.sin(th) * len) / 2];
  const bend = rng.uniform(-0.25, 0.25) * len;
  const p1 = [cx - Math.sin(th) * bend, cy + Math.cos(th) * bend];
  const r = rng.uniform(0.6, 1.4);
  const steps = Math.ceil(len * 2);
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const x = (1 - t) * (1 - t) * p0[0] + 2 * (1 - t) * t * p1[0] + t * t * p2[0];
    const y = (1 - t) * (1 - t) * p0[1] + 2 * (1 - t) * t * p1[1] + t * t * p2[1];
    // Scratches fade in and out at their ends.
    const ends = Math.min(1, Math.min(t, 1 - t) * 12 + 0.5);
    stamp(alpha, w, h, x, y, r, ends);
  }
}

function drawSpot(alpha: Float32Array, w: number, h: number, rng: Rng): void {
  const cx = rng.uniform(0.2, 0.8) * w;
  const cy = rng.uniform(0.2, 0.8) * h;
  const rx = rng.uniform(0.03, 0.08) * w;
  const ry = rx * rng.uniform(0.6, 1.4);
  const rot = rng.uniform(0, Math.PI);
  const edge = valueNoise2D(rng, 2);
  const seedAngle = rng.uniform(0, 100);
  const cos = Math.cos(rot);
  const sin = Math.sin(rot);
  const R = Math.max(rx, ry) * 1.5 + 2;
  for (let y = Math.max(0, Math.floor(cy - R)); y <= Math.min(h - 1, Math.ceil(cy + R)); y++)
    for (let x = Math.max(0, Math.floor(cx - R)); x <= Math.min(w - 1, Math.ceil(cx + R)); x++) {
      const dx = x - cx;
      const dy = y - cy;
      const u = (dx * cos + dy * sin) / rx;
      const v = (-dx * sin + dy * cos) / ry;
      const theta = Math.atan2(v, u);
      // Irregular rim: the radius wobbles with angle.
      const rim = 1 + 0.3 * edge(Math.cos(theta) * 2 + seedAngle, Math.sin(theta) * 2);
      const d = Math.hypot(u, v) / rim;
      // Solid core, soft edge over ~2 px.
      const a = Math.min(1, Math.max(0, (1 - d) * Math.min(rx, ry) * 0.5 + 0.5));
      if (a > alpha[y * w + x]) alpha[y * w + x] = a;
    }
}

function drawCrack(alpha: Float32Array, w: number, h: number, rng: Rng): void {
  const walk = (x: number, y: number, dir: number, steps: number, r: number, depth: number) => {
    for (let i = 0; i < steps; i++) {
      dir += rng.uniform(-0.45, 0.45);
      x += Math.cos(dir) * 1.5;
      y += Math.sin(dir) * 1.5;
      if (x < 1 || y < 1 || x > w - 2 || y > h - 2) return;
      stamp(alpha, w, h, x, y, r * (1 - (0.5 * i) / steps));
      if (depth < 2 && rng.bernoulli(0.015))
        walk(
          x,
          y,
          dir + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1),
          Math.floor((steps - i) * 0.5),
          r * 0.7,
          depth + 1,
        );
    }
  };
  const x = rng.uniform(0.25, 0.75) * w;
  const y = rng.uniform(0.25, 0.75) * h;
  walk(x, y, rng.uniform(0, 2 * Math.PI), rng.int(40, 90), rng.uniform(0.8, 1.4), 0);
}

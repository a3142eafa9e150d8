/**
 * Random-walk defects after ISP-AD (industrial screen-printing anomaly detection): a brush follows a walk with
 * momentum and darkens or brightens what it touches.
 *
 * - punctual kinds: `pinhole` (tiny, hard-edged) and `spot` (a few wobbling steps of a wide, soft brush);
 * - elongated kinds: `fiber` (thin, curly: low momentum) and `scratch` (thin, nearly straight: high momentum).
 *
 * Walk: unit steps, direction d ← normalize(momentum·d + (1 − momentum)·u) with u a random unit vector. The
 * brush is a disc of radius width/2 whose edge falls off linearly over `softness` of the radius; elongated
 * strokes taper at both ends. Each pixel keeps the strongest brush value a (0…1) that touched it and becomes
 * image ± a·intensity (clamped). The mask is every pixel with a·intensity ≥ 0.5 (a change of at least one grey
 * level before clamping); nothing outside the mask changes.
 */
import type { RasterImage } from '../image.ts';
import type { Rng } from '../rng.ts';
import {
  MaskUnsatisfiableError,
  colorChannels,
  defectResult,
  drawIn,
  placementArea,
  startGenerator,
  type DefectResult,
  type Seed,
} from './common.ts';
import { placementSpecs, type OptionSpec, type PlacementOptions, type Range } from './options.ts';

export const WALK_KINDS = ['pinhole', 'spot', 'fiber', 'scratch'] as const;
export type WalkKind = (typeof WALK_KINDS)[number];

export interface RandomWalkOptions extends PlacementOptions {
  /** Defect kind; 'random' draws one of WALK_KINDS per defect. */
  kind: WalkKind | 'random';
  /** Number of defects painted. */
  count: Range;
  /** Walk length in steps (pixels); null = the kind's default. */
  length: Range | null;
  /** Brush diameter in pixels; null = the kind's default. */
  width: Range | null;
  /** Direction persistence in [0, 1]; null = the kind's default. */
  momentum: Range | null;
  contrast: 'bright' | 'dark' | 'random';
  /** Grey-level change at the brush centre. */
  intensity: Range;
  /** Fraction of the brush radius over which the edge fades (0 = hard). */
  softness: Range;
}

/** Per-kind defaults for length, width, momentum: what makes a pinhole a pinhole. */
const KIND_DEFAULTS: Record<WalkKind, { length: Range; width: Range; momentum: Range; softness?: Range }> = {
  pinhole: { length: [1, 2], width: [1, 3], momentum: [0, 0.5] },
  spot: { length: [2, 8], width: [5, 14], momentum: [0, 0.5], softness: [0.5, 1] },
  fiber: { length: [30, 140], width: [1, 3], momentum: [0.6, 0.85] },
  scratch: { length: [40, 200], width: [1, 4], momentum: [0.95, 0.995] },
};

const nullableRange = (key: string, label: string, max: number, help: string): OptionSpec => ({
  key,
  kind: 'range',
  min: 0,
  max,
  nullable: true,
  default: null, // the kind decides
  label,
  help,
});

export const RANDOM_WALK_SCHEMA: readonly OptionSpec[] = [
  {
    key: 'kind',
    kind: 'enum',
    choices: ['random', ...WALK_KINDS],
    default: 'random',
    label: 'Kind',
    help: 'pinhole, spot, fiber or scratch',
  },
  {
    key: 'count',
    kind: 'range',
    min: 1,
    max: 50,
    integer: true,
    default: [1, 1],
    label: 'Defects',
    help: 'defects per image',
  },
  nullableRange('length', 'Length (px)', 2000, 'walk length; empty → per kind'),
  nullableRange('width', 'Width (px)', 100, 'brush diameter; empty → per kind'),
  nullableRange('momentum', 'Momentum', 1, 'direction persistence, 1 = straight; empty → per kind'),
  {
    key: 'contrast',
    kind: 'enum',
    choices: ['random', 'bright', 'dark'],
    default: 'random',
    label: 'Contrast',
    help: 'brighter or darker than the surface',
  },
  {
    key: 'intensity',
    kind: 'range',
    min: 0,
    max: 255,
    default: [40, 110],
    label: 'Intensity',
    help: 'grey-level change at the centre',
  },
  {
    key: 'softness',
    kind: 'range',
    min: 0,
    max: 1,
    default: [0, 0.6],
    label: 'Softness',
    help: 'edge fall-off, fraction of the radius',
  },
  ...placementSpecs({ attempts: 'walks tried before giving up' }),
];

/** Distance from (x, y) along the unit direction (dx, dy) to the image border. */
function roomAlong(x: number, y: number, dx: number, dy: number, w: number, h: number): number {
  const tx = dx > 0 ? (w - 1 - x) / dx : dx < 0 ? -x / dx : Infinity;
  const ty = dy > 0 ? (h - 1 - y) / dy : dy < 0 ? -y / dy : Infinity;
  return Math.min(tx, ty);
}

/** Picks a uniformly random allowed pixel (rejection, then a scan so it always terminates). */
function randomAllowedPixel(allowed: Uint8Array | null, n: number, count: number, rng: Rng): number {
  if (allowed === null) return rng.int(0, n);
  for (let t = 0; t < 64; t++) {
    const p = rng.int(0, n);
    if (allowed[p]) return p;
  }
  let k = rng.int(0, count);
  for (let p = 0; p < n; p++) if (allowed[p] && k-- === 0) return p;
  return -1;
}

/**
 * A random-walk defect.
 * @param image RasterImage [H, W, C], C ∈ {1, 3, 4}
 * @returns image [H, W, C] (alpha kept), mask [H, W, 1] 0/255, params (one entry per stroke)
 */
export function randomWalkDefect(
  image: RasterImage,
  options: Partial<RandomWalkOptions> | Record<string, unknown> = {},
  seed: Seed = 0,
): DefectResult {
  const { o, rng } = startGenerator<RandomWalkOptions>(RANDOM_WALK_SCHEMA, image, options, seed);
  // Explicitly given options override a kind's defaults (see `softness`).
  const given = options as Record<string, unknown>;
  const { width: W, height: H, channels: C } = image;
  const n = W * H;
  const { allowed, count: allowedCount } = placementArea('random_walk', image, o);

  const strength = new Float32Array(n); // strongest signed change per pixel
  const defects = rng.int(o.count[0], o.count[1] + 1);
  const strokes: Record<string, unknown>[] = [];
  let attempts = 0;
  let any = false;
  for (let d = 0; d < defects || !any; d++) {
    if (attempts === o.max_attempts)
      throw new MaskUnsatisfiableError('random_walk', attempts, allowedCount, n);
    attempts++;
    const kind: WalkKind = o.kind === 'random' ? rng.choice(WALK_KINDS) : o.kind;
    const kd = KIND_DEFAULTS[kind];
    const length = Math.max(1, Math.round(drawIn(rng, o.length ?? kd.length)));
    const width = Math.max(1, drawIn(rng, o.width ?? kd.width));
    const momentum = drawIn(rng, o.momentum ?? kd.momentum);
    const softness = drawIn(rng, kd.softness && given.softness === undefined ? kd.softness : o.softness);
    const sign = o.contrast === 'bright' ? 1 : o.contrast === 'dark' ? -1 : rng.bernoulli(0.5) ? 1 : -1;
    const intensity = drawIn(rng, o.intensity);
    const start = randomAllowedPixel(allowed, n, allowedCount, rng);
    let x = (start % W) + rng.next() - 0.5;
    let y = Math.floor(start / W) + rng.next() - 0.5;
    const a0 = rng.uniform(0, 2 * Math.PI);
    let dx = Math.cos(a0);
    let dy = Math.sin(a0);
    const elongated = kind === 'fiber' || kind === 'scratch';
    // Head into the image, not out of it: a stroke starting at a border keeps its length on the image.
    if (elongated && roomAlong(x, y, -dx, -dy, W, H) > roomAlong(x, y, dx, dy, W, H)) {
      dx = -dx;
      dy = -dy;
    }
    let touched = 0;
    for (let s = 0; s < length; s++) {
      // Taper elongated strokes so they start and end thin, like real fibres and scratches.
      const taper = elongated && length > 4 ? Math.max(0.35, Math.sin((Math.PI * (s + 0.5)) / length)) : 1;
      const r = (width / 2) * taper;
      const hard = r * (1 - softness);
      const x0 = Math.max(0, Math.floor(x - r));
      const x1 = Math.min(W - 1, Math.ceil(x + r));
      const y0 = Math.max(0, Math.floor(y - r));
      const y1 = Math.min(H - 1, Math.ceil(y + r));
      for (let yy = y0; yy <= y1; yy++) {
        for (let xx = x0; xx <= x1; xx++) {
          const p = yy * W + xx;
          if (allowed !== null && allowed[p] === 0) continue;
          const dist = Math.hypot(xx - x, yy - y);
          // Radius at least half a pixel so a 1-px pinhole still covers its centre pixel.
          const rr = Math.max(r, 0.5);
          if (dist > rr) continue;
          const a = dist <= hard ? 1 : (rr - dist) / Math.max(rr - hard, 1e-6);
          const v = a * intensity;
          if (v > Math.abs(strength[p])) {
            strength[p] = sign * v;
            if (v >= 0.5) touched++;
          }
        }
      }
      const ua = rng.uniform(0, 2 * Math.PI);
      dx = momentum * dx + (1 - momentum) * Math.cos(ua);
      dy = momentum * dy + (1 - momentum) * Math.sin(ua);
      const norm = Math.hypot(dx, dy) || 1;
      dx /= norm;
      dy /= norm;
      x += dx;
      y += dy;
      if (x < -width || y < -width || x > W + width || y > H + width) break;
    }
    if (touched > 0) any = true;
    strokes.push({
      kind,
      length,
      width,
      momentum,
      softness,
      contrast: sign > 0 ? 'bright' : 'dark',
      intensity,
      start: [start % W, Math.floor(start / W)],
    });
  }

  const bits = new Uint8Array(n);
  const out = new Uint8ClampedArray(image.data);
  const cc = colorChannels(C);
  let pixels = 0;
  for (let p = 0; p < n; p++) {
    const v = strength[p];
    if (v < 0.5 && v > -0.5) continue;
    bits[p] = 1;
    pixels++;
    const i = p * C;
    for (let c = 0; c < cc; c++) out[i + c] = image.data[i + c] + v;
  }
  if (pixels === 0) throw new MaskUnsatisfiableError('random_walk', attempts, allowedCount, n);
  return defectResult(image, out, bits, {
    generator: 'random_walk',
    strokes,
    attempts,
    mask_pixels: pixels,
  });
}

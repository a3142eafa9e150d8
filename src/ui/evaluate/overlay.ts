/**
 * Heat-map overlay pixels, pure: a jet-like colour ramp (dark blue → cyan → yellow → red) and alpha blending of a
 * per-pixel heat map (already upsampled to the image, `runtime/heads/heatmap.ts`) onto RGBA image pixels. One
 * range is shared by every image of an evaluation, so colours compare across images.
 */

/** RGB of `t` ∈ [0, 1] (clamped). */
export function heatColor(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const ramp = (c: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - c))));
  return [ramp(3), ramp(2), ramp(1)];
}

/** Min and max over every map (finite values); [0, 1] when there is none, widened when flat. */
export function overlayRange(maps: readonly ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of maps)
    for (let i = 0; i < m.length; i++) {
      const v = m[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  if (!Number.isFinite(lo)) return [0, 1];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}

/** Blends `heat` (one value per pixel) over RGBA `pixels` in place; higher heat is more opaque. */
export function blendHeat(
  pixels: Uint8ClampedArray,
  heat: ArrayLike<number>,
  range: [number, number],
  maxAlpha = 0.6,
): void {
  const [lo, hi] = range;
  const span = hi - lo || 1;
  for (let p = 0; p < heat.length; p++) {
    const t = Math.min(1, Math.max(0, (heat[p] - lo) / span));
    const [r, g, b] = heatColor(t);
    const a = maxAlpha * (0.25 + 0.75 * t);
    const o = 4 * p;
    pixels[o] = pixels[o] * (1 - a) + r * a;
    pixels[o + 1] = pixels[o + 1] * (1 - a) + g * a;
    pixels[o + 2] = pixels[o + 2] * (1 - a) + b * a;
  }
}

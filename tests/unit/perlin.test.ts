import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { fade, perlin2D, perlinFromGradients, perlinGradients } from '../../src/core/synth/index.ts';
import { InvalidArgumentError } from '../../src/core/errors.ts';

/*
 * Golden values derived by hand from the published formula (DRAEM's rand_perlin_2d):
 *   noise(x, y) = √2 · lerp(lerp(n00, n10, f(fy)), lerp(n01, n11, f(fy)), f(fx))
 * with fx, fy the position inside the lattice cell, f(t) = 6t⁵ − 15t⁴ + 10t³ and n_ab the dot product of the
 * gradient at corner (row + a, column + b) with the offset from that corner to the point.
 *
 * Fade values used below:
 *   f(0)    = 0
 *   f(1/4)  = 6/1024 − 15/256 + 10/64 = 0.005859375 − 0.05859375 + 0.15625 = 0.103515625   (call it a)
 *   f(1/2)  = 6/32 − 15/16 + 10/8 = 0.1875 − 0.9375 + 1.25 = 0.5
 *   f(3/4)  = 1 − f(1/4) = 0.896484375                                                  (call it b)
 */
describe('perlinFromGradients — golden values from the formula', () => {
  // One cell (scale 1 × 1) on a 4 × 4 image: pixel (x, y) sits at (fx, fy) = (x/4, y/4).
  // Gradients (gx, gy), row-major: top-left (1, 0), top-right (0, 1), bottom-left (0, −1), bottom-right (−1, 0).
  // Corner dot products at (fx, fy):
  //   top-left     (1, 0)·(fx, fy)         = fx
  //   top-right    (0, 1)·(fx − 1, fy)     = fy
  //   bottom-left  (0, −1)·(fx, fy − 1)    = 1 − fy
  //   bottom-right (−1, 0)·(fx − 1, fy − 1) = 1 − fx
  const g = new Float64Array([1, 0, 0, 1, 0, -1, -1, 0]);
  const field = perlinFromGradients(4, 4, 1, 1, g);
  const at = (x: number, y: number) => field.data[y * 4 + x];

  it('is 0 at the lattice point (0, 0)', () => {
    // fx = fy = 0: all weight on the top-left corner, whose dot product is fx = 0.
    expect(at(0, 0)).toBe(0);
  });

  it('matches hand-derived values inside the cell (tolerance 1e-6, float32 storage)', () => {
    // (2, 0): fx = 1/2, fy = 0 → tx = 1/2, ty = 0. Top row only: lerp(fx, fy, 1/2) = (0.5 + 0)/2 = 0.25
    //         → √2 · 0.25 = 0.35355339
    expect(at(2, 0)).toBeCloseTo(0.35355339, 6);
    // (0, 2): fx = 0, fy = 1/2 → tx = 0, ty = 1/2. Left column only: lerp(fx, 1 − fy, 1/2) = (0 + 0.5)/2 = 0.25
    //         → 0.35355339
    expect(at(0, 2)).toBeCloseTo(0.35355339, 6);
    // (2, 2): all four dot products are 0.5 and all weights 1/4 → 0.5 → √2 · 0.5 = 0.70710678
    expect(at(2, 2)).toBeCloseTo(0.70710678, 6);
    // (1, 1): fx = fy = 1/4, tx = ty = a. Dots: 0.25, 0.25, 0.75, 0.75 (TL, TR, BL, BR).
    //         Along y: left = 0.25 + (0.75 − 0.25)·a, right = 0.25 + (0.75 − 0.25)·a; mix along x → same value:
    //         0.25 + 0.5·a = 0.25 + 0.0517578125 = 0.3017578125 → √2 · 0.3017578125 = 0.42675001
    expect(at(1, 1)).toBeCloseTo(0.42675001, 6);
    // (3, 1): fx = 3/4 (tx = b), fy = 1/4 (ty = a). Dots: TL 0.75, TR 0.25, BL 0.75, BR 0.25.
    //         Along y: left = 0.75, right = 0.25; along x: 0.75 + (0.25 − 0.75)·b = 0.75 − 0.4482421875
    //         = 0.3017578125 → 0.42675001
    expect(at(3, 1)).toBeCloseTo(0.42675001, 6);
    // (1, 3): fx = 1/4 (tx = a), fy = 3/4 (ty = b). Dots: TL 0.25, TR 0.75, BL 0.25, BR 0.75.
    //         Along y: left = 0.25, right = 0.75; along x: 0.25 + 0.5·a = 0.3017578125 → 0.42675001
    expect(at(1, 3)).toBeCloseTo(0.42675001, 6);
    // (3, 2): fx = 3/4 (tx = b), fy = 1/2 (ty = 1/2). Dots: TL 0.75, TR 0.5, BL 0.5, BR 0.25.
    //         Along y: left = (0.75 + 0.5)/2 = 0.625, right = (0.5 + 0.25)/2 = 0.375;
    //         along x: 0.625 + (0.375 − 0.625)·b = 0.625 − 0.22412109375 = 0.40087890625 → √2 · that = 0.56692839
    expect(at(3, 2)).toBeCloseTo(0.56692839, 6);
  });

  it('indexes the lattice row-major, (scaleX + 1) gradients per row', () => {
    // Scale 2 × 1 on a 4 × 2 image: lattice 3 wide, 2 tall. Pixel (3, 0) is at u = 1.5, v = 0: cell column 1,
    // fx = 1/2, fy = 0, so only the top row's gradients at columns 1 and 2 matter:
    //   column 1: (1, 0)·(0.5, 0) = 0.5;  column 2: (−1, 0)·(−0.5, 0) = 0.5;  lerp at tx = 1/2 → 0.5 → 0.70710678.
    // Every other gradient is (0, ±1), whose dot product with a zero y-offset is 0, so a wrong layout gives
    // a different value.
    const g2 = new Float64Array([0, 1, 1, 0, -1, 0, 0, -1, 0, 1, 0, -1]);
    const f2 = perlinFromGradients(4, 2, 2, 1, g2);
    expect(f2.data[3]).toBeCloseTo(0.70710678, 6);
    // Pixel (2, 0) is the lattice point (1, 0): exactly 0.
    expect(f2.data[2]).toBe(0);
  });

  it('fade is the quintic 6t⁵ − 15t⁴ + 10t³', () => {
    expect(fade(0.25)).toBe(0.103515625);
    expect(fade(0.5)).toBe(0.5);
    expect(fade(0.75)).toBe(0.896484375);
    expect(fade(1)).toBe(1);
  });

  it('rejects a gradient array of the wrong length, naming it', () => {
    expect(() => perlinFromGradients(4, 4, 1, 1, new Float64Array(6))).toThrow(/gradients.length must be 8/);
    expect(() => perlinFromGradients(4, 4, 0, 1, new Float64Array(4))).toThrow(InvalidArgumentError);
  });
});

describe('perlin2D — DRAEM semantics and value range', () => {
  /** DRAEM's rand_perlin_2d written the way it tiles gradients (np.repeat), for sizes divisible by the scale. */
  function draemReference(
    height: number,
    width: number,
    resY: number,
    resX: number,
    angles: number[],
  ): number[] {
    const d0 = height / resY;
    const d1 = width / resX;
    const grad = (r: number, c: number): [number, number] => {
      const a = angles[r * (resX + 1) + c];
      return [Math.cos(a), Math.sin(a)]; // (row component, column component)
    };
    const out: number[] = [];
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const g0 = ((y * resY) / height) % 1; // grid[..., 0]: row coordinate
        const g1 = ((x * resX) / width) % 1;
        const r = Math.floor(y / d0);
        const c = Math.floor(x / d1);
        const dot = (gr: [number, number], s0: number, s1: number) => gr[0] * (g0 + s0) + gr[1] * (g1 + s1);
        const n00 = dot(grad(r, c), 0, 0);
        const n10 = dot(grad(r + 1, c), -1, 0);
        const n01 = dot(grad(r, c + 1), 0, -1);
        const n11 = dot(grad(r + 1, c + 1), -1, -1);
        const t0 = fade(g0);
        const t1 = fade(g1);
        const l = (a: number, b: number, w: number) => (b - a) * w + a;
        out.push(Math.SQRT2 * l(l(n00, n10, t0), l(n01, n11, t0), t1));
      }
    return out;
  }

  it('equals DRAEM tiled formulation for the same angles (tolerance 1e-6)', () => {
    const [w, h, sx, sy] = [32, 16, 4, 2];
    const rngAngles = new Rng(99);
    const angles = Array.from({ length: (sx + 1) * (sy + 1) }, () => 2 * Math.PI * rngAngles.next());
    const ours = perlin2D(w, h, sx, sy, new Rng(99));
    const ref = draemReference(h, w, sy, sx, angles);
    let maxErr = 0;
    for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(ours.data[i] - ref[i]));
    expect(maxErr).toBeLessThan(1e-6);
  });

  it('stays in the documented range [−1, 1] and is 0 on lattice points', () => {
    for (let seed = 0; seed < 20; seed++) {
      const f = perlin2D(64, 48, 8, 4, new Rng(seed));
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of f.data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect(lo).toBeGreaterThanOrEqual(-1);
      expect(hi).toBeLessThanOrEqual(1);
      expect(hi - lo).toBeGreaterThan(0.3); // not degenerate
      // Lattice points: x multiple of 64/8 = 8, y multiple of 48/4 = 12.
      for (let y = 0; y < 48; y += 12)
        for (let x = 0; x < 64; x += 8) expect(Math.abs(f.data[y * 64 + x])).toBeLessThan(1e-7);
    }
  });

  it('draws unit gradients and is deterministic per seed', () => {
    const g = perlinGradients(5, 3, new Rng(3));
    for (let k = 0; k < g.length; k += 2) expect(Math.hypot(g[k], g[k + 1])).toBeCloseTo(1, 12);
    expect(perlin2D(40, 30, 5, 3, new Rng(3)).data).toEqual(perlin2D(40, 30, 5, 3, new Rng(3)).data);
    expect(perlin2D(40, 30, 5, 3, new Rng(4)).data).not.toEqual(perlin2D(40, 30, 5, 3, new Rng(3)).data);
  });

  it('works for sizes the scale does not divide (632 × 224 at scale 32)', () => {
    const f = perlin2D(632, 224, 32, 32, new Rng(1));
    expect(f.data.length).toBe(632 * 224);
    expect(f.data.every((v) => Number.isFinite(v) && Math.abs(v) <= 1)).toBe(true);
  });
});

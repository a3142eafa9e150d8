import { describe, expect, it } from 'vitest';
import { Rng, hashString } from '../../src/core/rng.ts';

describe('Rng', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 50 }, () => a.nextUint32());
    const sb = Array.from({ length: 50 }, () => b.nextUint32());
    const sc = Array.from({ length: 50 }, () => c.nextUint32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });

  it('treats string seeds by their hash', () => {
    expect(new Rng('run-1').next()).toBe(new Rng('run-1').next());
    expect(hashString('a')).not.toBe(hashString('b'));
  });

  it('has uniform mean 0.5 and normal mean 0, variance 1 (tolerance: 5 standard errors, n = 100k)', () => {
    const r = new Rng(7);
    const n = 100_000;
    let su = 0;
    let sn = 0;
    let sn2 = 0;
    for (let i = 0; i < n; i++) {
      su += r.next();
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(Math.abs(su / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(sn / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(sn2 / n - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });

  it('int() stays in [lo, hi) and shuffle() is a permutation', () => {
    const r = new Rng(1);
    for (let i = 0; i < 1000; i++) {
      const v = r.int(3, 9);
      expect(v).toBeGreaterThanOrEqual(3);
      expect(v).toBeLessThan(9);
    }
    const arr = r.shuffle(Array.from({ length: 20 }, (_, i) => i));
    expect([...arr].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

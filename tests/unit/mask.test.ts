import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRaster, type RasterImage } from '../../src/core/image.ts';
import {
  applyStamp,
  blurMask,
  brushAlpha,
  countOn,
  decodeMaskPng,
  encodeMaskPng,
  fitMask,
  growMask,
  growShrinkMask,
  invertMask,
  isBinaryMask,
  MaskDecodeError,
  pixelsOutside,
  rasterizeEllipse,
  rasterizePolygon,
  rasterizeRect,
  rasterizeStroke,
  shrinkMask,
  squaredDistanceTo,
} from '../../src/core/mask/index.ts';
import { randomPerlinMask } from '../../src/core/synth/regionMask.ts';

/** The mask as rows of '#' (in) and '.' (out), the easiest exact expectation to read. */
function ascii(m: RasterImage): string[] {
  const rows: string[] = [];
  for (let y = 0; y < m.height; y++) {
    let s = '';
    for (let x = 0; x < m.width; x++) s += m.data[y * m.width + x] ? '#' : '.';
    rows.push(s);
  }
  return rows;
}

function fromAscii(rows: string[]): RasterImage {
  const m = createRaster(rows[0].length, rows.length, 1);
  rows.forEach((r, y) => [...r].forEach((c, x) => (m.data[y * m.width + x] = c === '#' ? 255 : 0)));
  return m;
}

const blank = (w: number, h: number) => createRaster(w, h, 1);

describe('brush', () => {
  it('profile: full inside hardness·r, linear to 0 at r', () => {
    expect(brushAlpha(1, 4, 0.5)).toBe(1);
    expect(brushAlpha(2, 4, 0.5)).toBe(1);
    expect(brushAlpha(3, 4, 0.5)).toBe(0.5);
    expect(brushAlpha(4, 4, 0.5)).toBe(0);
    expect(brushAlpha(3.99, 4, 1)).toBe(1);
    expect(brushAlpha(4, 4, 1)).toBe(1); // hard disc is inclusive
  });

  it('a hard dab of size 4 at (5, 5) covers the 12 pixels whose centres are within 2', () => {
    // Centres 3.5…6.5 → offsets ±0.5, ±1.5; 0.5²+1.5² = 2.5 ≤ 4, 1.5²+1.5² = 4.5 > 4 (corners out).
    const st = rasterizeStroke(10, 10, [{ x: 5, y: 5 }], { size: 4, hardness: 1 });
    const m = applyStamp(blank(10, 10), st, 'paint');
    expect(ascii(m).slice(2, 8)).toEqual([
      '..........',
      '....##....',
      '...####...',
      '...####...',
      '....##....',
      '..........',
    ]);
    expect(countOn(m)).toBe(12);
  });

  it('soft brush thresholds to a binary label mask at coverage 0.5', () => {
    // size 8 (r = 4), hardness 0: alpha = (4 − d)/4 ≥ 0.5 ⇔ d ≤ 2, the same 12 pixels as a hard r = 2 dab.
    const soft = rasterizeStroke(10, 10, [{ x: 5, y: 5 }], { size: 8, hardness: 0 });
    const hard = rasterizeStroke(10, 10, [{ x: 5, y: 5 }], { size: 4, hardness: 1 });
    const a = applyStamp(blank(10, 10), soft, 'paint');
    expect(isBinaryMask(a)).toBe(true);
    expect(ascii(a)).toEqual(ascii(applyStamp(blank(10, 10), hard, 'paint')));
    // The soft coverage itself is graded: the centre pixel (d = √0.5) has alpha (4 − 0.7071)/4.
    const i = (4 - soft.y) * soft.width + (4 - soft.x);
    expect(soft.alpha[i]).toBeCloseTo((4 - Math.SQRT1_2) / 4, 6);
  });

  it('a stroke is a capsule: independent of pointer sampling density', () => {
    const sparse = rasterizeStroke(
      32,
      16,
      [
        { x: 4, y: 8 },
        { x: 28, y: 8 },
      ],
      { size: 5, hardness: 0.7 },
    );
    const pts = Array.from({ length: 25 }, (_, i) => ({ x: 4 + i, y: 8 }));
    const dense = rasterizeStroke(32, 16, pts, { size: 5, hardness: 0.7 });
    const a = applyStamp(blank(32, 16), sparse, 'paint');
    const b = applyStamp(blank(32, 16), dense, 'paint');
    expect(ascii(a)).toEqual(ascii(b));
    // Row 8 (centre 8.5, 0.5 from the line) is in from x = 2 (centre 2.5, d = √(1.5² + 0.5²) = 1.58) …
    expect(ascii(a)[8].indexOf('#')).toBe(2);
    expect(ascii(a)[8].lastIndexOf('#')).toBe(29);
  });

  it('eraser clears only where the stroke covers; input mask untouched', () => {
    const full = createRaster(6, 6, 1, 255);
    const st = rasterizeStroke(
      6,
      6,
      [
        { x: 0, y: 3 },
        { x: 6, y: 3 },
      ],
      { size: 2, hardness: 1 },
    );
    const m = applyStamp(full, st, 'erase');
    expect(ascii(m)).toEqual(['######', '######', '......', '......', '######', '######']);
    expect(countOn(full)).toBe(36);
  });

  it('strokes off the canvas are clipped, empty strokes change nothing', () => {
    const st = rasterizeStroke(8, 8, [{ x: -20, y: -20 }], { size: 4, hardness: 1 });
    expect(st.width).toBe(0);
    expect(countOn(applyStamp(blank(8, 8), st, 'paint'))).toBe(0);
    expect(() => rasterizeStroke(8, 8, [{ x: 1, y: 1 }], { size: 0, hardness: 1 })).toThrow(
      /size must be a number > 0/,
    );
    expect(() => rasterizeStroke(8, 8, [{ x: 1, y: 1 }], { size: 3, hardness: 1.4 })).toThrow(
      /hardness must be in \[0, 1\], got 1.4/,
    );
  });
});

describe('shapes', () => {
  it('rectangle covers the pixels inside its corners in either drag direction', () => {
    const a = applyStamp(blank(6, 5), rasterizeRect(6, 5, { x: 1, y: 1 }, { x: 4, y: 3 }), 'paint');
    const b = applyStamp(blank(6, 5), rasterizeRect(6, 5, { x: 4, y: 3 }, { x: 1, y: 1 }), 'paint');
    expect(ascii(a)).toEqual(['......', '.###..', '.###..', '......', '......']);
    expect(ascii(b)).toEqual(ascii(a));
  });

  it('ellipse inscribed in an 8×4 box', () => {
    // Centre (4, 2), rx 4, ry 2: row 0 (ny = −0.75) keeps |nx| ≤ 0.661 → centres 1.5…6.5 → x = 2…5 … (x=1: nx=-0.625 ok)
    const m = applyStamp(blank(8, 4), rasterizeEllipse(8, 4, { x: 0, y: 0 }, { x: 8, y: 4 }), 'paint');
    expect(ascii(m)).toEqual(['.######.', '########', '########', '.######.']);
  });

  it('lasso fills a triangle by the even-odd rule at pixel centres', () => {
    const m = applyStamp(
      blank(6, 6),
      rasterizePolygon(6, 6, [
        { x: 0, y: 0 },
        { x: 6, y: 0 },
        { x: 0, y: 6 },
      ]),
      'paint',
    );
    // Row y: centre y + 0.5, hypotenuse at x = 6 − (y + 0.5); pixel in when x + 0.5 < that.
    expect(ascii(m)).toEqual(['#####.', '####..', '###...', '##....', '#.....', '......']);
  });

  it('a self-crossing lasso (bow tie) fills both lobes; a doubly wound square leaves a hole', () => {
    const bow = applyStamp(
      blank(8, 4),
      rasterizePolygon(8, 4, [
        { x: 0, y: 0 },
        { x: 8, y: 4 },
        { x: 8, y: 0 },
        { x: 0, y: 4 },
      ]),
      'paint',
    );
    expect(ascii(bow)).toEqual(['#......#', '###..###', '###..###', '#......#']);
    const ring = rasterizePolygon(8, 8, [
      { x: 0, y: 0 },
      { x: 8, y: 0 },
      { x: 8, y: 8 },
      { x: 0, y: 8 },
      { x: 0, y: 0 },
      { x: 2, y: 2 },
      { x: 2, y: 6 },
      { x: 6, y: 6 },
      { x: 6, y: 2 },
      { x: 2, y: 2 },
    ]);
    const r = applyStamp(blank(8, 8), ring, 'paint');
    expect(ascii(r)[4]).toBe('##....##');
    expect(countOn(r)).toBe(64 - 16);
  });

  it('invert swaps in and out', () => {
    expect(ascii(invertMask(fromAscii(['#..', '.#.'])))).toEqual(['.##', '#.#']);
  });
});

describe('grow / shrink', () => {
  const dot = fromAscii(['.....', '.....', '..#..', '.....', '.....']);

  it('grow by 1 gives the 4-neighbourhood, by 1.5 the 3×3 block, by 2 the radius-2 disc', () => {
    expect(ascii(growMask(dot, 1))).toEqual(['.....', '..#..', '.###.', '..#..', '.....']);
    expect(ascii(growMask(dot, 1.5))).toEqual(['.....', '.###.', '.###.', '.###.', '.....']);
    expect(ascii(growMask(dot, 2))).toEqual(['..#..', '.###.', '#####', '.###.', '..#..']);
  });

  it('shrink is the dual of grow and keeps regions touching the border', () => {
    const block = fromAscii(['......', '.####.', '.####.', '.####.', '.####.', '......']);
    expect(ascii(shrinkMask(block, 1))).toEqual(['......', '......', '..##..', '..##..', '......', '......']);
    expect(ascii(growShrinkMask(block, -1))).toEqual(ascii(shrinkMask(block, 1)));
    const full = createRaster(4, 4, 1, 255);
    expect(countOn(shrinkMask(full, 3))).toBe(16);
    expect(ascii(shrinkMask(block, 0))).toEqual(ascii(block));
  });

  it('distance transform equals brute force on a random mask', () => {
    const m = createRaster(17, 11, 1);
    let s = 7;
    for (let i = 0; i < m.data.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      m.data[i] = s % 9 === 0 ? 255 : 0;
    }
    const d2 = squaredDistanceTo(m, 'on');
    for (let y = 0; y < 11; y++)
      for (let x = 0; x < 17; x++) {
        let best = Infinity;
        for (let v = 0; v < 11; v++)
          for (let u = 0; u < 17; u++)
            if (m.data[v * 17 + u]) best = Math.min(best, (u - x) ** 2 + (v - y) ** 2);
        expect(d2[y * 17 + x]).toBe(best);
      }
  });
});

describe('blur (generation only)', () => {
  it('keeps a constant mask constant, is symmetric and soft at the edge', () => {
    expect(countOn(blurMask(createRaster(9, 9, 1, 255), 2))).toBe(81);
    expect([...blurMask(createRaster(9, 9, 1, 255), 2).data].every((v) => v === 255)).toBe(true);
    const half = fromAscii(Array.from({ length: 3 }, () => '....####'));
    const b = blurMask(half, 1);
    const row = [...b.data.slice(0, 8)];
    // Symmetric about the edge between x = 3 and x = 4: v(3 − k) + v(4 + k) = 255 (up to rounding).
    for (let k = 0; k < 4; k++) expect(Math.abs(row[3 - k] + row[4 + k] - 255)).toBeLessThanOrEqual(1);
    expect(row[3]).toBeGreaterThan(0);
    expect(row[3]).toBeLessThan(128);
    expect(isBinaryMask(b)).toBe(false);
    expect(ascii(blurMask(half, 0))).toEqual(ascii(half));
  });
});

// Random Perlin region masks live in src/core/synth/regionMask.ts (one implementation: MemSeg's rotated draw);
// their tests are in synth.test.ts.

describe('PNG round trip and helpers', () => {
  it('encode → decode gives the same binary mask', () => {
    const m = randomPerlinMask(40, 30, {}, 3).mask;
    const back = decodeMaskPng(encodeMaskPng(m));
    expect(back.width).toBe(40);
    expect(back.data).toEqual(m.data);
  });

  it('reads a real magnetic-tile label mask as binary with the right size', () => {
    const root = path.resolve(__dirname, '../../../shared/data/magnetic-tile-compact');
    const manifest = JSON.parse(readFileSync(path.join(root, 'manifest.json'), 'utf8')) as {
      items: { file: string; mask: string | null }[];
    };
    const item = manifest.items.find((i) => i.mask)!;
    const m = decodeMaskPng(new Uint8Array(readFileSync(path.join(root, item.mask!))), item.mask!);
    expect(isBinaryMask(m)).toBe(true);
    expect(countOn(m)).toBeGreaterThan(0);
    expect(Math.max(m.width, m.height)).toBe(256);
  });

  it('garbage bytes give a named error naming the file', () => {
    expect(() => decodeMaskPng(new Uint8Array([1, 2, 3]), 'bad.png')).toThrow(MaskDecodeError);
    expect(() => decodeMaskPng(new Uint8Array([1, 2, 3]), 'bad.png')).toThrow(/bad\.png/);
  });

  it('pixelsOutside and fitMask', () => {
    const outer = fromAscii(['.##.', '.##.']);
    expect(pixelsOutside(fromAscii(['.#..', '..#.']), outer)).toBe(0);
    expect(pixelsOutside(fromAscii(['#...', '..#.']), outer)).toBe(1);
    expect(ascii(fitMask(outer, 8, 4))).toEqual(['..####..', '..####..', '..####..', '..####..']);
  });
});

import { describe, expect, it } from 'vitest';
import {
  clickSelection,
  gridGeometry,
  scrollTopFor,
  visibleWindow,
} from '../../src/ui/components/virtual-grid.ts';

describe('gridGeometry', () => {
  it('fits as many columns of the minimum width as the container allows', () => {
    // 1000 px wide, cells ≥ 120 px, 8 px gap: 7 columns (7·120 + 6·8 = 888 ≤ 1000; 8 would need 1016).
    const g = gridGeometry(1000, 10_000, 120, 8, 20);
    expect(g.columns).toBe(7);
    expect(g.cellWidth).toBeCloseTo((1000 - 6 * 8) / 7, 9);
    expect(g.rows).toBe(Math.ceil(10_000 / 7));
    expect(g.rowHeight).toBeCloseTo(g.cellWidth + 20 + 8, 9);
    expect(g.totalHeight).toBeCloseTo(g.rows * g.rowHeight - 8, 6);
  });
  it('keeps one column in a container narrower than a cell and handles empty grids', () => {
    expect(gridGeometry(50, 3, 120, 8).columns).toBe(1);
    expect(gridGeometry(0, 3, 120, 8).cellWidth).toBe(120);
    const empty = gridGeometry(800, 0, 120, 8);
    expect(empty.rows).toBe(0);
    expect(empty.totalHeight).toBe(0);
  });
  it('rejects a non-positive cell width', () => {
    expect(() => gridGeometry(800, 10, 0, 8)).toThrow(/minCellWidth must be a positive number, got 0/);
  });
});

describe('visibleWindow', () => {
  const count = 10_000;
  const g = gridGeometry(1000, count, 120, 8, 20);

  it('renders only the rows in view plus overscan, whatever the item count', () => {
    const w = visibleWindow(g, count, 0, 600, 2);
    expect(w.startRow).toBe(0);
    expect(w.endRow).toBe(Math.ceil(600 / g.rowHeight) + 2);
    expect(w.endIndex - w.startIndex).toBe(w.endRow * g.columns);
    expect(w.endIndex - w.startIndex).toBeLessThan(60);
  });

  it('covers the viewport at every scroll position (no blank rows while scrolling)', () => {
    const vh = 700;
    for (let top = 0; top <= g.totalHeight; top += 137) {
      const w = visibleWindow(g, count, top, vh, 1);
      const clamped = Math.min(top, g.totalHeight - vh);
      // The rendered band [offsetY, offsetY + rows·rowHeight) must contain [scrollTop, scrollTop + vh).
      expect(w.offsetY).toBeLessThanOrEqual(clamped);
      expect(w.offsetY + (w.endRow - w.startRow) * g.rowHeight).toBeGreaterThanOrEqual(
        Math.min(clamped + vh, g.totalHeight),
      );
      expect(w.endRow - w.startRow).toBeLessThanOrEqual(Math.ceil(vh / g.rowHeight) + 1 + 2);
    }
  });

  it('ends at the last item at the bottom and clamps over-scrolling', () => {
    const w = visibleWindow(g, count, g.totalHeight + 5000, 600, 2);
    expect(w.endIndex).toBe(count);
    expect(w.endRow).toBe(g.rows);
    expect(w.startIndex % g.columns).toBe(0);
    const neg = visibleWindow(g, count, -300, 600, 2);
    expect(neg.startRow).toBe(0);
  });

  it('renders every item of a grid shorter than the viewport', () => {
    const small = gridGeometry(1000, 10, 120, 8);
    expect(visibleWindow(small, 10, 0, 2000)).toMatchObject({ startIndex: 0, endIndex: 10, offsetY: 0 });
    expect(visibleWindow(gridGeometry(1000, 0, 120, 8), 0, 0, 600)).toMatchObject({
      startIndex: 0,
      endIndex: 0,
    });
  });
});

describe('scrollTopFor', () => {
  const g = gridGeometry(700, 1000, 100, 0);
  it('scrolls up or down just enough to show an item and leaves a visible one alone', () => {
    expect(g.columns).toBe(7);
    expect(scrollTopFor(g, 0, 500, 300)).toBe(0);
    expect(scrollTopFor(g, 70, 0, 300)).toBe(10 * 100 + 100 - 300);
    expect(scrollTopFor(g, 14, 150, 300)).toBe(150);
  });
});

describe('clickSelection', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  it('plain click selects one and sets the anchor', () => {
    const r = clickSelection(ids, new Set(['a', 'b']), 'a', 'c', { shift: false, toggle: false });
    expect([...r.selected]).toEqual(['c']);
    expect(r.anchor).toBe('c');
  });
  it('shift-click selects the range from the anchor in either direction', () => {
    expect([
      ...clickSelection(ids, new Set(['b']), 'b', 'd', { shift: true, toggle: false }).selected,
    ]).toEqual(['b', 'c', 'd']);
    expect(
      [...clickSelection(ids, new Set(['d']), 'd', 'a', { shift: true, toggle: false }).selected].sort(),
    ).toEqual(['a', 'b', 'c', 'd']);
  });
  it('ctrl-click toggles one; ctrl+shift adds a range to the selection', () => {
    const t = clickSelection(ids, new Set(['a', 'c']), 'a', 'c', { shift: false, toggle: true });
    expect([...t.selected]).toEqual(['a']);
    const add = clickSelection(ids, new Set(['a']), 'c', 'e', { shift: true, toggle: true });
    expect([...add.selected].sort()).toEqual(['a', 'c', 'd', 'e']);
  });
  it('shift-click without an anchor acts as a plain click', () => {
    expect([...clickSelection(ids, new Set(), null, 'b', { shift: true, toggle: false }).selected]).toEqual([
      'b',
    ]);
  });
});

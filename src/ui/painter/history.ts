/**
 * Stroke-level undo/redo for a mask. Each committed edit (a stroke, a shape, invert, grow…) is one entry holding
 * only the bounding box of the pixels it changed, before and after, so a brush dab on a large image costs a few
 * hundred bytes instead of a full copy.
 */
import type { RasterImage } from '../../core/image.ts';

export interface HistoryEntry {
  label: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** [height × width] of the box, before and after the edit. */
  before: Uint8ClampedArray;
  after: Uint8ClampedArray;
}

function copyBox(m: RasterImage, x: number, y: number, w: number, h: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(w * h);
  for (let r = 0; r < h; r++)
    out.set(m.data.subarray((y + r) * m.width + x, (y + r) * m.width + x + w), r * w);
  return out;
}

function writeBox(m: RasterImage, e: HistoryEntry, data: Uint8ClampedArray): void {
  for (let r = 0; r < e.height; r++)
    m.data.set(data.subarray(r * e.width, (r + 1) * e.width), (e.y + r) * m.width + e.x);
}

/**
 * The entry that turns `before` into `after` (same size), or null when nothing changed.
 */
export function diffEntry(label: string, before: RasterImage, after: RasterImage): HistoryEntry | null {
  const w = before.width;
  let minX = w;
  let minY = before.height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < before.height; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) {
      if (before.data[o + x] !== after.data[o + x]) {
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
  }
  if (maxX < 0) return null;
  const bw = maxX - minX + 1;
  const bh = maxY - minY + 1;
  return {
    label,
    x: minX,
    y: minY,
    width: bw,
    height: bh,
    before: copyBox(before, minX, minY, bw, bh),
    after: copyBox(after, minX, minY, bw, bh),
  };
}

export class UndoStack {
  private done: HistoryEntry[] = [];
  private undone: HistoryEntry[] = [];

  /** `maxBytes` bounds the memory of the undo history; the oldest entries go first. */
  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  push(e: HistoryEntry): void {
    this.done.push(e);
    this.undone = [];
    let bytes = this.done.reduce((s, d) => s + 2 * d.before.length, 0);
    while (bytes > this.maxBytes && this.done.length > 1) bytes -= 2 * this.done.shift()!.before.length;
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  get undoLabel(): string | undefined {
    return this.done.at(-1)?.label;
  }

  get redoLabel(): string | undefined {
    return this.undone.at(-1)?.label;
  }

  get depth(): number {
    return this.done.length;
  }

  /** Reverts the last edit on `mask` in place; false when there is nothing to undo. */
  undo(mask: RasterImage): boolean {
    const e = this.done.pop();
    if (!e) return false;
    writeBox(mask, e, e.before);
    this.undone.push(e);
    return true;
  }

  /** Re-applies the last undone edit on `mask` in place. */
  redo(mask: RasterImage): boolean {
    const e = this.undone.pop();
    if (!e) return false;
    writeBox(mask, e, e.after);
    this.done.push(e);
    return true;
  }

  clear(): void {
    this.done = [];
    this.undone = [];
  }
}

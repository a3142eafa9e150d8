import { describe, expect, it } from 'vitest';
import { createRaster } from '../../src/core/image.ts';
import { countOn, isBinaryMask } from '../../src/core/mask/index.ts';
import { MaskEditor } from '../../src/ui/painter/editor.ts';
import { diffEntry, UndoStack } from '../../src/ui/painter/history.ts';
import { fitView, imageToScreen, screenToImage, zoomAt } from '../../src/ui/painter/view.ts';

/** Drag with the left button through screen points. */
function drag(ed: MaskEditor, pts: [number, number][], extra: { altKey?: boolean } = {}): void {
  const [first, ...rest] = pts;
  ed.pointerDown({ x: first[0], y: first[1], button: 0, ...extra });
  for (const [x, y] of rest) ed.pointerMove({ x, y, ...extra });
  const last = pts.at(-1)!;
  ed.pointerUp({ x: last[0], y: last[1], ...extra });
}

const px = (ed: MaskEditor, x: number, y: number) => ed.mask.data[y * ed.width + x];

describe('tool state machines', () => {
  it('brush: idle → pointing → painting → idle, preview only while painting, commit on release', () => {
    const ed = new MaskEditor(32, 32);
    ed.brush = { size: 4, hardness: 1 };
    expect(ed.toolState).toBe('brush.idle');
    ed.pointerDown({ x: 5, y: 5 });
    expect(ed.toolState).toBe('brush.pointing');
    expect(ed.previewStamp).not.toBeNull();
    expect(countOn(ed.mask)).toBe(0); // nothing committed while the button is down
    ed.pointerMove({ x: 20, y: 5 });
    expect(ed.toolState).toBe('brush.painting');
    ed.pointerUp({ x: 20, y: 5 });
    expect(ed.toolState).toBe('brush.idle');
    expect(ed.previewStamp).toBeNull();
    expect(px(ed, 12, 5)).toBe(255);
    expect(px(ed, 12, 9)).toBe(0);
    expect(isBinaryMask(ed.mask)).toBe(true);
    expect(ed.history.depth).toBe(1);
  });

  it('a click with the brush is a dab (one undo step)', () => {
    const ed = new MaskEditor(10, 10);
    ed.brush = { size: 4, hardness: 1 };
    drag(ed, [[5, 5]]);
    expect(countOn(ed.mask)).toBe(12); // the radius-2 disc of the kernel tests
    expect(ed.history.depth).toBe(1);
  });

  it('eraser removes; Escape mid-stroke drops the gesture', () => {
    const ed = new MaskEditor(16, 16, createRaster(16, 16, 1, 255));
    ed.setTool('eraser');
    ed.brush = { size: 2, hardness: 1 };
    drag(ed, [
      [0, 8],
      [16, 8],
    ]);
    expect(countOn(ed.mask)).toBe(256 - 32);
    ed.pointerDown({ x: 8, y: 2 });
    ed.pointerMove({ x: 8, y: 12 });
    expect(ed.toolState).toBe('eraser.painting');
    expect(ed.handleKey({ key: 'Escape' })).toBe(true);
    expect(ed.toolState).toBe('eraser.idle');
    expect(ed.previewStamp).toBeNull();
    ed.pointerUp({ x: 8, y: 12 }); // a stray release after cancel does nothing
    expect(countOn(ed.mask)).toBe(256 - 32);
  });

  it('rectangle and ellipse: a click adds nothing, a drag adds the shape, Alt subtracts', () => {
    const ed = new MaskEditor(10, 10);
    ed.setTool('rect');
    drag(ed, [[3, 3]]);
    expect(ed.toolState).toBe('rect.idle');
    expect(ed.history.depth).toBe(0);
    ed.pointerDown({ x: 2, y: 2 });
    ed.pointerMove({ x: 8, y: 6 });
    expect(ed.toolState).toBe('rect.dragging');
    ed.pointerUp({ x: 8, y: 6 });
    expect(countOn(ed.mask)).toBe(6 * 4);
    drag(
      ed,
      [
        [2, 2],
        [4, 6],
      ],
      { altKey: true },
    );
    expect(countOn(ed.mask)).toBe(4 * 4);
    ed.setTool('ellipse');
    ed.clear();
    drag(ed, [
      [0, 0],
      [8, 4],
    ]);
    expect(countOn(ed.mask)).toBe(28); // the 8×4 ellipse of the kernel tests
  });

  it('lasso fills the outline on release; fewer than 3 points add nothing', () => {
    const ed = new MaskEditor(6, 6);
    ed.setTool('lasso');
    drag(ed, [
      [0, 0],
      [6, 0],
      [0, 6],
    ]);
    expect(ed.toolState).toBe('lasso.idle');
    expect(countOn(ed.mask)).toBe(5 + 4 + 3 + 2 + 1);
    ed.clear();
    drag(ed, [
      [1, 1],
      [4, 1],
    ]);
    expect(countOn(ed.mask)).toBe(0);
  });

  it('switching tool mid-gesture cancels it', () => {
    const ed = new MaskEditor(16, 16);
    ed.pointerDown({ x: 4, y: 4 });
    ed.pointerMove({ x: 10, y: 4 });
    ed.setTool('eraser');
    ed.setTool('brush');
    expect(ed.toolState).toBe('brush.idle');
    expect(countOn(ed.mask)).toBe(0);
  });
});

describe('undo / redo', () => {
  it('is stroke-level and exact, and a new edit clears the redo stack', () => {
    const ed = new MaskEditor(40, 20);
    ed.brush = { size: 6, hardness: 0.5 };
    drag(ed, [
      [5, 5],
      [35, 5],
    ]);
    const one = ed.snapshot();
    drag(ed, [
      [5, 15],
      [20, 10],
      [35, 15],
    ]);
    const two = ed.snapshot();
    expect(ed.history.depth).toBe(2);
    expect(ed.undo()).toBe(true);
    expect(ed.mask.data).toEqual(one.data);
    expect(ed.undo()).toBe(true);
    expect(countOn(ed.mask)).toBe(0);
    expect(ed.undo()).toBe(false);
    expect(ed.redo()).toBe(true);
    expect(ed.mask.data).toEqual(one.data);
    expect(ed.redo()).toBe(true);
    expect(ed.mask.data).toEqual(two.data);
    ed.undo();
    ed.invert();
    expect(ed.canRedo).toBe(false);
    expect(ed.history.undoLabel).toBe('invert');
  });

  it('edits that change nothing add no step; grow/shrink/invert/load are one step each', () => {
    const ed = new MaskEditor(9, 9);
    ed.setTool('eraser');
    drag(ed, [[4, 4]]);
    expect(ed.history.depth).toBe(0);
    ed.setTool('rect');
    drag(ed, [
      [4, 4],
      [5, 5],
    ]);
    ed.growShrink(1);
    expect(countOn(ed.mask)).toBe(5);
    ed.growShrink(-1);
    expect(countOn(ed.mask)).toBe(1);
    ed.invert();
    expect(countOn(ed.mask)).toBe(80);
    ed.loadMask(createRaster(9, 9, 1, 7));
    expect(countOn(ed.mask)).toBe(81);
    expect(isBinaryMask(ed.mask)).toBe(true);
    expect(ed.history.depth).toBe(5);
    ed.undo();
    expect(countOn(ed.mask)).toBe(80);
  });

  it('stores only the changed box', () => {
    const a = createRaster(100, 100, 1);
    const b = createRaster(100, 100, 1);
    b.data[50 * 100 + 10] = 255;
    b.data[52 * 100 + 13] = 255;
    const e = diffEntry('x', a, b)!;
    expect([e.x, e.y, e.width, e.height]).toEqual([10, 50, 4, 3]);
    expect(diffEntry('x', a, a)).toBeNull();
    const s = new UndoStack(2 * 12 * 2); // room for two such entries
    for (let i = 0; i < 3; i++) s.push(e);
    expect(s.depth).toBe(2);
  });

  it('rejects a mask of the wrong size with a message naming the sizes', () => {
    const ed = new MaskEditor(8, 8);
    expect(() => ed.loadMask(createRaster(4, 8, 1))).toThrow(/8×8 \(the image size\), got "4×8"/);
  });
});

describe('keyboard', () => {
  it('B, E, X, U, O, L switch tools; [ ] step the brush size', () => {
    const ed = new MaskEditor(8, 8);
    expect(ed.handleKey({ key: 'e' })).toBe(true);
    expect(ed.toolId).toBe('eraser');
    ed.handleKey({ key: 'x' });
    expect(ed.toolId).toBe('brush');
    ed.handleKey({ key: 'X' });
    expect(ed.toolId).toBe('eraser');
    ed.handleKey({ key: 'B' });
    expect(ed.toolId).toBe('brush');
    ed.handleKey({ key: 'u' });
    expect(ed.toolId).toBe('rect');
    ed.handleKey({ key: 'x' });
    expect(ed.toolId).toBe('brush');
    ed.handleKey({ key: 'o' });
    expect(ed.toolId).toBe('ellipse');
    ed.handleKey({ key: 'l' });
    expect(ed.toolId).toBe('lasso');
    ed.setBrushSize(20);
    ed.handleKey({ key: ']' });
    expect(ed.brush.size).toBe(25);
    ed.handleKey({ key: '[' });
    expect(ed.brush.size).toBe(20);
    ed.setBrushSize(2);
    ed.handleKey({ key: ']' });
    expect(ed.brush.size).toBe(3); // at least one pixel of change
    ed.setBrushSize(1);
    ed.handleKey({ key: '[' });
    expect(ed.brush.size).toBe(1);
    expect(ed.handleKey({ key: 'q' })).toBe(false);
    expect(ed.handleKey({ key: 'b', ctrlKey: true })).toBe(false);
  });

  it('Ctrl+Z undoes, Ctrl+Shift+Z and Ctrl+Y redo (⌘ too)', () => {
    const ed = new MaskEditor(8, 8);
    ed.brush = { size: 2, hardness: 1 };
    drag(ed, [[4, 4]]);
    const n = countOn(ed.mask);
    expect(ed.handleKey({ key: 'z', ctrlKey: true })).toBe(true);
    expect(countOn(ed.mask)).toBe(0);
    ed.handleKey({ key: 'Z', ctrlKey: true, shiftKey: true });
    expect(countOn(ed.mask)).toBe(n);
    ed.handleKey({ key: 'z', metaKey: true });
    expect(countOn(ed.mask)).toBe(0);
    ed.handleKey({ key: 'y', ctrlKey: true });
    expect(countOn(ed.mask)).toBe(n);
  });
});

describe('zoom, pan, opacity', () => {
  it('maps screen points through zoom and pan; zoom keeps the point under the cursor', () => {
    const v0 = fitView(200, 100, 400, 400);
    expect(v0).toEqual({ zoom: 2, panX: 0, panY: 100 });
    expect(screenToImage(v0, { x: 100, y: 150 })).toEqual({ x: 50, y: 25 });
    const v1 = zoomAt(v0, { x: 100, y: 150 }, 2);
    expect(v1.zoom).toBe(4);
    expect(screenToImage(v1, { x: 100, y: 150 })).toEqual({ x: 50, y: 25 });
    expect(imageToScreen(v1, { x: 50, y: 25 })).toEqual({ x: 100, y: 150 });
  });

  it('paints where the zoomed, panned view says; middle drag and space drag pan', () => {
    const ed = new MaskEditor(20, 20);
    ed.brush = { size: 1, hardness: 1 };
    ed.fit(200, 200); // zoom 10
    ed.pointerDown({ x: 55, y: 75 }); // image (5.5, 7.5) → pixel (5, 7)
    ed.pointerUp({ x: 55, y: 75 });
    expect(px(ed, 5, 7)).toBe(255);
    expect(countOn(ed.mask)).toBe(1);
    ed.pointerDown({ x: 0, y: 0, button: 1 });
    ed.pointerMove({ x: 30, y: -10 });
    ed.pointerUp({ x: 30, y: -10 });
    expect(ed.view).toEqual({ zoom: 10, panX: 30, panY: -10 });
    ed.spaceHeld = true;
    ed.pointerDown({ x: 0, y: 0 });
    ed.pointerMove({ x: -30, y: 10 });
    ed.pointerUp({ x: -30, y: 10 });
    ed.spaceHeld = false;
    expect(ed.view).toEqual({ zoom: 10, panX: 0, panY: 0 });
    expect(countOn(ed.mask)).toBe(1); // panning painted nothing
    ed.setOverlayOpacity(1.7);
    expect(ed.overlayOpacity).toBe(1);
  });

  it('notifies subscribers; the generation mask is soft, the label mask binary', () => {
    const ed = new MaskEditor(16, 16);
    let calls = 0;
    const off = ed.subscribe(() => calls++);
    ed.setTool('rect');
    drag(ed, [
      [4, 4],
      [12, 12],
    ]);
    expect(calls).toBeGreaterThan(0);
    expect(ed.maskVersion).toBe(1);
    off();
    const before = calls;
    ed.invert();
    expect(calls).toBe(before);
    ed.invert();
    expect(isBinaryMask(ed.mask)).toBe(true);
    expect(isBinaryMask(ed.generationMask(1.5))).toBe(false);
    // The feather setting drives the default generation mask; 0 gives the binary mask back unchanged.
    expect(ed.generationMask().data).toEqual(ed.mask.data);
    ed.setFeather(2);
    expect(ed.generationMask().data).toEqual(ed.generationMask(2).data);
    expect(isBinaryMask(ed.mask)).toBe(true);
    ed.setFeather(-3);
    expect(ed.featherSigma).toBe(0);
  });
});

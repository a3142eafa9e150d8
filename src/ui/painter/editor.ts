/**
 * `MaskEditor` — the one object the painter component talks to (tldraw's facade). It owns the binary label mask,
 * the current tool (a state machine from `tools.ts`), brush settings, stroke-level undo/redo, zoom/pan and
 * overlay opacity, and maps keyboard shortcuts. No DOM: the component feeds it pointer and key events and redraws
 * when `subscribe` fires, so all of this is unit-tested in Node.
 */
import { InvalidArgumentError } from '../../core/errors.ts';
import { cloneRaster, createRaster, type RasterImage } from '../../core/image.ts';
import { blurMask, checkMask, growShrinkMask, invertMask } from '../../core/mask/morph.ts';
import {
  applyStamp,
  type BrushOptions,
  type Point,
  type Stamp,
  type StampMode,
} from '../../core/mask/stamp.ts';
import { diffEntry, UndoStack } from './history.ts';
import { createTool, type Tool, type ToolHost, type ToolId } from './tools.ts';
import { fitView, screenToImage, zoomAt, type ViewTransform } from './view.ts';

export const MIN_BRUSH = 1;
export const MAX_BRUSH = 512;
/** `[` and `]` scale the brush by this factor (rounded, at least one pixel of change). */
export const BRUSH_STEP = 1.25;

export interface PointerEventLike {
  /** Screen (canvas CSS pixel) coordinates. */
  x: number;
  y: number;
  /** 0 left, 1 middle (pans), 2 right. */
  button?: number;
  altKey?: boolean;
}

export interface KeyEventLike {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  shiftKey?: boolean;
  altKey?: boolean;
}

export class MaskEditor implements ToolHost {
  readonly width: number;
  readonly height: number;
  private _mask: RasterImage;
  readonly history = new UndoStack();
  brush: BrushOptions = { size: 24, hardness: 0.8 };
  /** Opacity of the mask overlay over the image, in [0, 1]. */
  overlayOpacity = 0.5;
  /**
   * Gaussian σ (image pixels) of the feathered generation mask; 0 = the binary mask itself. Not part of the mask
   * or its undo history: it is saved next to the mask (library/region record) and reaches generation from there.
   */
  featherSigma = 0;
  view: ViewTransform = { zoom: 1, panX: 0, panY: 0 };
  /** The in-progress gesture, drawn over the mask but not part of it yet. */
  previewStamp: Stamp | null = null;
  previewMode: StampMode = 'paint';
  private tools = new Map<ToolId, Tool>();
  private _tool: ToolId = 'brush';
  private panning: Point | null = null;
  /** Space held: left drag pans (as in most paint programs). */
  spaceHeld = false;
  private listeners = new Set<() => void>();
  /** Bumped on every change; cheap dirty check for renderers. */
  version = 0;
  /** Bumped only when the mask pixels change (not for previews, zoom, settings). */
  maskVersion = 0;

  constructor(width: number, height: number, mask?: RasterImage) {
    if (!Number.isInteger(width) || width <= 0)
      throw new InvalidArgumentError('width', 'a positive integer', width);
    if (!Number.isInteger(height) || height <= 0)
      throw new InvalidArgumentError('height', 'a positive integer', height);
    this.width = width;
    this.height = height;
    this._mask = createRaster(width, height, 1);
    if (mask) this.checkSize(mask).data.set(mask.data);
  }

  private checkSize(m: RasterImage): RasterImage {
    checkMask(m);
    if (m.width !== this.width || m.height !== this.height)
      throw new InvalidArgumentError(
        'mask',
        `${this.width}×${this.height} (the image size)`,
        `${m.width}×${m.height}`,
      );
    return this._mask;
  }

  /** The current binary label mask (0/255). Read-only for callers: edit through the editor. */
  get mask(): RasterImage {
    return this._mask;
  }

  /** A copy of the mask to store or hand to a generator. */
  snapshot(): RasterImage {
    return cloneRaster(this._mask);
  }

  /** The mask feathered for generation (inpainting blends with it); the label mask stays binary. */
  generationMask(blurSigma = this.featherSigma): RasterImage {
    return blurMask(this._mask, blurSigma);
  }

  setFeather(sigma: number): void {
    this.featherSigma = Math.min(64, Math.max(0, sigma));
    this.changed();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(maskChanged = false): void {
    this.version++;
    if (maskChanged) this.maskVersion++;
    for (const fn of this.listeners) fn();
  }

  // ---- tools

  get toolId(): ToolId {
    return this._tool;
  }

  /** The current tool's state ('brush.idle', 'brush.painting', …). */
  get toolState(): string {
    return `${this._tool}.${this.tool().state}`;
  }

  private tool(): Tool {
    let t = this.tools.get(this._tool);
    if (!t) {
      t = createTool(this._tool, this);
      this.tools.set(this._tool, t);
    }
    return t;
  }

  setTool(id: ToolId): void {
    if (id === this._tool) return;
    this.tool().cancel();
    this._tool = id;
    this.changed();
  }

  /** X: brush ↔ eraser (from any other tool, to the brush). */
  swapBrushEraser(): void {
    this.setTool(this._tool === 'brush' ? 'eraser' : 'brush');
  }

  setBrushSize(size: number): void {
    this.brush = { ...this.brush, size: Math.min(MAX_BRUSH, Math.max(MIN_BRUSH, Math.round(size))) };
    this.changed();
  }

  setHardness(h: number): void {
    this.brush = { ...this.brush, hardness: Math.min(1, Math.max(0, h)) };
    this.changed();
  }

  /** `]` grows, `[` shrinks the brush by BRUSH_STEP, always by at least one pixel. */
  stepBrush(dir: 1 | -1): void {
    const s = this.brush.size;
    const next =
      dir > 0 ? Math.max(s + 1, Math.round(s * BRUSH_STEP)) : Math.min(s - 1, Math.round(s / BRUSH_STEP));
    this.setBrushSize(next);
  }

  setOverlayOpacity(o: number): void {
    this.overlayOpacity = Math.min(1, Math.max(0, o));
    this.changed();
  }

  // ---- ToolHost

  preview(stamp: Stamp | null, mode: StampMode): void {
    this.previewStamp = stamp;
    this.previewMode = mode;
    this.changed();
  }

  commit(label: string, stamp: Stamp, mode: StampMode): void {
    this.replaceMask(label, applyStamp(this._mask, stamp, mode));
  }

  /** Makes `next` the mask as one undoable step named `label` (no entry when nothing changed). */
  private replaceMask(label: string, next: RasterImage): boolean {
    const e = diffEntry(label, this._mask, next);
    if (!e) return false;
    this.history.push(e);
    this._mask = next;
    this.changed(true);
    return true;
  }

  // ---- pointer input (screen coordinates)

  private toImage(e: PointerEventLike) {
    const p = screenToImage(this.view, e);
    return { x: p.x, y: p.y, subtract: !!e.altKey };
  }

  pointerDown(e: PointerEventLike): void {
    if (e.button === 1 || (this.spaceHeld && (e.button ?? 0) === 0)) {
      this.panning = { x: e.x, y: e.y };
      return;
    }
    if ((e.button ?? 0) !== 0) return;
    this.tool().pointerDown(this.toImage(e));
  }

  pointerMove(e: PointerEventLike): void {
    if (this.panning) {
      this.panBy(e.x - this.panning.x, e.y - this.panning.y);
      this.panning = { x: e.x, y: e.y };
      return;
    }
    this.tool().pointerMove(this.toImage(e));
  }

  pointerUp(e: PointerEventLike): void {
    if (this.panning) {
      this.panning = null;
      return;
    }
    this.tool().pointerUp(this.toImage(e));
  }

  cancelGesture(): void {
    this.panning = null;
    this.tool().cancel();
  }

  // ---- whole-mask edits (each one undo step)

  invert(): void {
    this.replaceMask('invert', invertMask(this._mask));
  }

  /** radius > 0 grows, < 0 shrinks (disc structuring element, image pixels). */
  growShrink(radius: number): void {
    this.replaceMask(
      radius >= 0 ? `grow ${radius}` : `shrink ${-radius}`,
      growShrinkMask(this._mask, radius),
    );
  }

  clear(): void {
    this.replaceMask('clear', createRaster(this.width, this.height, 1));
  }

  /** Replaces the mask (a library mask, a label mask) as one undoable step. */
  loadMask(mask: RasterImage, label = 'load mask'): void {
    this.checkSize(mask);
    const next = createRaster(this.width, this.height, 1);
    for (let i = 0; i < next.data.length; i++) next.data[i] = mask.data[i] ? 255 : 0;
    this.replaceMask(label, next);
  }

  get canUndo(): boolean {
    return this.history.canUndo;
  }

  get canRedo(): boolean {
    return this.history.canRedo;
  }

  undo(): boolean {
    this.cancelGesture();
    const ok = this.history.undo(this._mask);
    if (ok) this.changed(true);
    return ok;
  }

  redo(): boolean {
    this.cancelGesture();
    const ok = this.history.redo(this._mask);
    if (ok) this.changed(true);
    return ok;
  }

  // ---- zoom and pan

  zoomAt(at: Point, factor: number): void {
    this.view = zoomAt(this.view, at, factor);
    this.changed();
  }

  panBy(dx: number, dy: number): void {
    this.view = { ...this.view, panX: this.view.panX + dx, panY: this.view.panY + dy };
    this.changed();
  }

  fit(viewW: number, viewH: number): void {
    this.view = fitView(this.width, this.height, viewW, viewH);
    this.changed();
  }

  // ---- keyboard

  /**
   * Handles a painter shortcut; returns true when the key was used (the component then prevents the default).
   * B brush, E eraser, X swap, U rectangle, O ellipse, L lasso, [ ] brush size, Ctrl/⌘+Z undo,
   * Ctrl/⌘+Shift+Z or Ctrl+Y redo, Escape cancels the gesture. Space is tracked for panning by the component.
   */
  handleKey(e: KeyEventLike): boolean {
    const mod = !!(e.ctrlKey || e.metaKey);
    const k = e.key.toLowerCase();
    if (mod && k === 'z') {
      if (e.shiftKey) this.redo();
      else this.undo();
      return true;
    }
    if (mod && k === 'y') {
      this.redo();
      return true;
    }
    if (mod || e.altKey) return false;
    switch (k) {
      case 'b':
        this.setTool('brush');
        return true;
      case 'e':
        this.setTool('eraser');
        return true;
      case 'x':
        this.swapBrushEraser();
        return true;
      case 'u':
        this.setTool('rect');
        return true;
      case 'o':
        this.setTool('ellipse');
        return true;
      case 'l':
        this.setTool('lasso');
        return true;
      case '[':
        this.stepBrush(-1);
        return true;
      case ']':
        this.stepBrush(1);
        return true;
      case 'escape':
        this.cancelGesture();
        this.changed();
        return true;
      default:
        return false;
    }
  }
}

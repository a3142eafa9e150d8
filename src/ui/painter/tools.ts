/**
 * Painter tools as small state machines (tldraw style): each tool is a set of states, each state a tiny class
 * that handles pointer events and names the next state. Tools never touch the mask: they ask their host to show
 * a preview `Stamp` or to commit one, and the host (the `MaskEditor`) owns the mask and the undo history.
 *
 * Points are in image pixel coordinates (the editor converts from the screen).
 */
import {
  rasterizeEllipse,
  rasterizePolygon,
  rasterizeRect,
  rasterizeStroke,
  type BrushOptions,
  type Point,
  type Stamp,
  type StampMode,
} from '../../core/mask/stamp.ts';

export type ToolId = 'brush' | 'eraser' | 'rect' | 'ellipse' | 'lasso';

export interface ToolPointer extends Point {
  /** Shapes and lasso subtract instead of add (Alt held). */
  subtract?: boolean;
}

/** What a tool may ask of the editor. */
export interface ToolHost {
  readonly width: number;
  readonly height: number;
  readonly brush: BrushOptions;
  preview(stamp: Stamp | null, mode: StampMode): void;
  commit(label: string, stamp: Stamp, mode: StampMode): void;
}

abstract class ToolState {
  abstract readonly name: string;
  constructor(protected readonly tool: Tool) {}
  onEnter(_p?: ToolPointer): void {}
  onPointerDown(_p: ToolPointer): void {}
  onPointerMove(_p: ToolPointer): void {}
  onPointerUp(_p: ToolPointer): void {}
  /** Escape, pointer lost, tool switched mid-gesture: drop the gesture. */
  onCancel(): void {
    this.tool.host.preview(null, 'paint');
    this.tool.transition('idle');
  }
}

export abstract class Tool {
  abstract readonly id: ToolId;
  protected states = new Map<string, ToolState>();
  private current!: ToolState;

  constructor(readonly host: ToolHost) {}

  protected init(states: ToolState[]): void {
    for (const s of states) this.states.set(s.name, s);
    this.current = states[0];
  }

  /** The current state's name ('idle', 'pointing', 'painting', …). */
  get state(): string {
    return this.current.name;
  }

  transition(name: string, p?: ToolPointer): void {
    const next = this.states.get(name);
    if (!next) throw new Error(`${this.id} has no state ${name}`);
    this.current = next;
    next.onEnter(p);
  }

  pointerDown(p: ToolPointer): void {
    this.current.onPointerDown(p);
  }
  pointerMove(p: ToolPointer): void {
    this.current.onPointerMove(p);
  }
  pointerUp(p: ToolPointer): void {
    this.current.onPointerUp(p);
  }
  cancel(): void {
    this.current.onCancel();
  }
}

class Idle extends ToolState {
  readonly name = 'idle';
  override onPointerDown(p: ToolPointer): void {
    this.tool.transition('pointing', p);
  }
  override onCancel(): void {}
}

// ---- brush and eraser: Idle → Pointing (a dab) → Painting (a stroke) → commit on release

class StrokeTool extends Tool {
  points: Point[] = [];
  constructor(
    host: ToolHost,
    readonly id: 'brush' | 'eraser',
  ) {
    super(host);
    this.init([new Idle(this), new StrokePointing(this), new StrokePainting(this)]);
  }
  get mode(): StampMode {
    return this.id === 'brush' ? 'paint' : 'erase';
  }
  stamp(): Stamp {
    return rasterizeStroke(this.host.width, this.host.height, this.points, this.host.brush);
  }
  finish(): void {
    this.host.preview(null, this.mode);
    this.host.commit(this.id === 'brush' ? 'brush stroke' : 'eraser stroke', this.stamp(), this.mode);
    this.points = [];
    this.transition('idle');
  }
}

class StrokePointing extends ToolState {
  readonly name = 'pointing';
  declare protected readonly tool: StrokeTool;
  override onEnter(p?: ToolPointer): void {
    this.tool.points = p ? [{ x: p.x, y: p.y }] : [];
    this.tool.host.preview(this.tool.stamp(), this.tool.mode);
  }
  override onPointerMove(p: ToolPointer): void {
    this.tool.transition('painting', p);
  }
  override onPointerUp(): void {
    this.tool.finish();
  }
}

class StrokePainting extends ToolState {
  readonly name = 'painting';
  declare protected readonly tool: StrokeTool;
  override onEnter(p?: ToolPointer): void {
    if (p) this.onPointerMove(p);
  }
  override onPointerMove(p: ToolPointer): void {
    const last = this.tool.points.at(-1);
    // Sub-pixel jitter adds segments but no coverage.
    if (last && Math.hypot(p.x - last.x, p.y - last.y) < 0.25) return;
    this.tool.points.push({ x: p.x, y: p.y });
    this.tool.host.preview(this.tool.stamp(), this.tool.mode);
  }
  override onPointerUp(p: ToolPointer): void {
    this.onPointerMove(p);
    this.tool.finish();
  }
}

// ---- rectangle and ellipse: Idle → Pointing → Dragging → commit; a click without a drag adds nothing

class ShapeTool extends Tool {
  origin: ToolPointer = { x: 0, y: 0 };
  constructor(
    host: ToolHost,
    readonly id: 'rect' | 'ellipse',
  ) {
    super(host);
    this.init([new Idle(this), new ShapePointing(this), new ShapeDragging(this)]);
  }
  stamp(to: Point): Stamp {
    const f = this.id === 'rect' ? rasterizeRect : rasterizeEllipse;
    return f(this.host.width, this.host.height, this.origin, to);
  }
  mode(): StampMode {
    return this.origin.subtract ? 'erase' : 'paint';
  }
}

/** Screen-independent drag threshold, in image pixels. */
const DRAG_START = 1;

class ShapePointing extends ToolState {
  readonly name = 'pointing';
  declare protected readonly tool: ShapeTool;
  override onEnter(p?: ToolPointer): void {
    if (p) this.tool.origin = { ...p };
  }
  override onPointerMove(p: ToolPointer): void {
    const o = this.tool.origin;
    if (Math.abs(p.x - o.x) >= DRAG_START || Math.abs(p.y - o.y) >= DRAG_START)
      this.tool.transition('dragging', p);
  }
  override onPointerUp(): void {
    this.tool.transition('idle');
  }
}

class ShapeDragging extends ToolState {
  readonly name = 'dragging';
  declare protected readonly tool: ShapeTool;
  override onEnter(p?: ToolPointer): void {
    if (p) this.onPointerMove(p);
  }
  override onPointerMove(p: ToolPointer): void {
    this.tool.host.preview(this.tool.stamp(p), this.tool.mode());
  }
  override onPointerUp(p: ToolPointer): void {
    const t = this.tool;
    t.host.preview(null, t.mode());
    t.host.commit(t.id === 'rect' ? 'rectangle' : 'ellipse', t.stamp(p), t.mode());
    t.transition('idle');
  }
}

// ---- lasso: Idle → Pointing → Drawing (the outline) → fill on release

class LassoTool extends Tool {
  readonly id = 'lasso';
  points: Point[] = [];
  subtract = false;
  constructor(host: ToolHost) {
    super(host);
    this.init([new Idle(this), new LassoPointing(this), new LassoDrawing(this)]);
  }
  stamp(): Stamp {
    return rasterizePolygon(this.host.width, this.host.height, this.points);
  }
  mode(): StampMode {
    return this.subtract ? 'erase' : 'paint';
  }
}

class LassoPointing extends ToolState {
  readonly name = 'pointing';
  declare protected readonly tool: LassoTool;
  override onEnter(p?: ToolPointer): void {
    this.tool.points = p ? [{ x: p.x, y: p.y }] : [];
    this.tool.subtract = !!p?.subtract;
  }
  override onPointerMove(p: ToolPointer): void {
    this.tool.transition('drawing', p);
  }
  override onPointerUp(): void {
    this.tool.points = [];
    this.tool.transition('idle');
  }
}

class LassoDrawing extends ToolState {
  readonly name = 'drawing';
  declare protected readonly tool: LassoTool;
  override onEnter(p?: ToolPointer): void {
    if (p) this.onPointerMove(p);
  }
  override onPointerMove(p: ToolPointer): void {
    const last = this.tool.points.at(-1);
    if (last && Math.hypot(p.x - last.x, p.y - last.y) < 0.5) return;
    this.tool.points.push({ x: p.x, y: p.y });
    this.tool.host.preview(this.tool.stamp(), this.tool.mode());
  }
  override onPointerUp(p: ToolPointer): void {
    this.onPointerMove(p);
    const t = this.tool;
    t.host.preview(null, t.mode());
    if (t.points.length >= 3) t.host.commit('lasso', t.stamp(), t.mode());
    t.points = [];
    t.transition('idle');
  }
}

export function createTool(id: ToolId, host: ToolHost): Tool {
  switch (id) {
    case 'brush':
    case 'eraser':
      return new StrokeTool(host, id);
    case 'rect':
    case 'ellipse':
      return new ShapeTool(host, id);
    case 'lasso':
      return new LassoTool(host);
  }
}

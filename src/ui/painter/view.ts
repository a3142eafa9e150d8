/**
 * Zoom and pan of the painter's canvas: screen = image · zoom + pan. Pure arithmetic, tested without a DOM.
 */
import type { Point } from '../../core/mask/stamp.ts';

export const MIN_ZOOM = 0.05;
export const MAX_ZOOM = 64;

export interface ViewTransform {
  zoom: number;
  panX: number;
  panY: number;
}

export function screenToImage(v: ViewTransform, p: Point): Point {
  return { x: (p.x - v.panX) / v.zoom, y: (p.y - v.panY) / v.zoom };
}

export function imageToScreen(v: ViewTransform, p: Point): Point {
  return { x: p.x * v.zoom + v.panX, y: p.y * v.zoom + v.panY };
}

/** Zooms by `factor` keeping the image point under the screen point `at` where it is (wheel zoom). */
export function zoomAt(v: ViewTransform, at: Point, factor: number): ViewTransform {
  const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, v.zoom * factor));
  const k = zoom / v.zoom;
  return { zoom, panX: at.x - (at.x - v.panX) * k, panY: at.y - (at.y - v.panY) * k };
}

/** The whole image centred in a viewW × viewH viewport. */
export function fitView(imgW: number, imgH: number, viewW: number, viewH: number): ViewTransform {
  const zoom = Math.min(viewW / imgW, viewH / imgH);
  return { zoom, panX: (viewW - imgW * zoom) / 2, panY: (viewH - imgH * zoom) / 2 };
}

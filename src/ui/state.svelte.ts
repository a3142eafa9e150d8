/**
 * App-wide UI state shared by the views (which dataset is open, which images are selected, messages).
 * Only view state lives here; data lives in IndexedDB behind `src/runtime/db/`.
 */
export type TabId = 'data' | 'generate' | 'models' | 'train' | 'system';

export interface Toast {
  id: number;
  kind: 'info' | 'warn' | 'error';
  text: string;
}

export const app = $state({
  tab: 'data' as TabId,
  datasetId: null as string | null,
  selectedImageIds: [] as string[],
  /** Bumped whenever images of the open dataset change, so views re-query. */
  revision: 0,
  toasts: [] as Toast[],
});

let nextToast = 1;
export function toast(kind: Toast['kind'], text: string, ms = 6000): void {
  const id = nextToast++;
  app.toasts.push({ id, kind, text });
  if (ms > 0) setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  const i = app.toasts.findIndex((t) => t.id === id);
  if (i >= 0) app.toasts.splice(i, 1);
}

export function datasetChanged(): void {
  app.revision++;
}

/**
 * The Data tab while an import runs (pure, unit-tested): the grid shows what the import has stored so far. The
 * dataset the import writes to is opened as soon as its progress names it (a new dataset exists from the first
 * batch on), and the open listing is re-read when a batch lands — at most once per `minGapMs`, the last one
 * always, so a 2,000-image import costs a few re-reads a second instead of one per image.
 */
import type { Progress } from '../../core/progress.ts';
import type { ImportProgressDetail } from '../../../workers/import.engine.ts';

export interface LiveImportHooks {
  /** The dataset shown now (the import's is opened when it differs). */
  openDatasetId: () => string | null;
  /** Opens the import's dataset in the views (once per import). */
  open: (datasetId: string) => void | Promise<void>;
  /** Makes the open views re-read their listing. */
  refresh: () => void;
  /** Least time between two refreshes (default 500 ms: at most 2 a second). */
  minGapMs?: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface LiveImport {
  /** Feed every progress message of the import. */
  onProgress(p: Progress): void;
  /** The import ended: no refresh after this (the caller refreshes once itself). */
  stop(): void;
}

/** The detail an import's progress carries, or null when it is not one (stages before planning). */
export function importDetail(p: Progress): ImportProgressDetail | null {
  const d = p.detail as Partial<ImportProgressDetail> | undefined;
  return d && typeof d.datasetId === 'string' && typeof d.stored === 'number'
    ? { datasetId: d.datasetId, stored: d.stored }
    : null;
}

export function liveImport(hooks: LiveImportHooks): LiveImport {
  const gap = hooks.minGapMs ?? 500;
  const now = hooks.now ?? (() => performance.now());
  const setTimer = hooks.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = hooks.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let opened: string | null = null;
  let shown = 0;
  let stored = 0;
  let last = -Infinity;
  let timer: unknown = null;
  let stopped = false;

  const fire = () => {
    timer = null;
    if (stopped || stored === shown) return;
    shown = stored;
    last = now();
    hooks.refresh();
  };

  return {
    onProgress(p) {
      if (stopped) return;
      const d = importDetail(p);
      if (!d) return;
      if (opened !== d.datasetId) {
        opened = d.datasetId;
        shown = stored = 0;
        if (hooks.openDatasetId() !== d.datasetId) {
          // Opening reads the listing anyway: that read counts as the last refresh.
          shown = stored = d.stored;
          last = now();
          void hooks.open(d.datasetId);
          return;
        }
      }
      if (d.stored <= stored) return;
      stored = d.stored;
      if (timer !== null) return;
      const wait = last + gap - now();
      if (wait <= 0) fire();
      else timer = setTimer(fire, wait);
    },
    stop() {
      stopped = true;
      if (timer !== null) clearTimer(timer);
      timer = null;
    },
  };
}

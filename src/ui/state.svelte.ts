/**
 * App-wide UI state shared by the views (which dataset is open, which images are selected, messages, what the
 * device can do). Only view state lives here; data lives in IndexedDB behind `src/runtime/db/`, reached through
 * `getStore()` (one connection per tab, opened on first use).
 */
import type { DatasetRecord } from '../core/dataset.ts';
import type { DefectLabStore } from '../runtime/db/types.ts';
import type { Capabilities, PersistenceState } from '../runtime/capabilities.ts';
import { errorInfo } from '../core/errors.ts';

export type TabId = 'data' | 'generate' | 'models' | 'train' | 'system';

export interface Toast {
  id: number;
  kind: 'info' | 'warn' | 'error';
  text: string;
  /** One button on the toast (e.g. "Undo"); the toast closes when it is clicked. */
  action?: { label: string; run: () => void };
}

export const app = $state({
  tab: 'data' as TabId,
  datasetId: null as string | null,
  /** Every dataset in the store, newest last (the picker's list). */
  datasets: [] as DatasetRecord[],
  selectedImageIds: [] as string[],
  /** Bumped whenever images of the open dataset change, so views re-query. */
  revision: 0,
  toasts: [] as Toast[],
  /** Set once detection finishes at start; null until then. */
  capabilities: null as Capabilities | null,
  /** Persistent storage: asked for automatically once at first start; null until that check ran. */
  persistence: null as PersistenceState | null,
  /** What start-up is doing (creating the sample dataset…); null when ready. */
  busy: null as string | null,
});

let nextToast = 1;
/** Errors stay until dismissed by default: they carry a fix the user needs time to read. */
export function toast(
  kind: Toast['kind'],
  text: string,
  ms = kind === 'error' ? 0 : 6000,
  action?: Toast['action'],
): void {
  const id = nextToast++;
  app.toasts.push({ id, kind, text, action });
  if (ms > 0) setTimeout(() => dismissToast(id), ms);
}

/** Shows an error as a toast that stays until dismissed (errors carry a fix the user needs time to read). */
export function toastError(e: unknown, context?: string): void {
  const info = errorInfo(e);
  toast('error', context ? `${context}: ${info.message}` : info.message, 0);
}

export function dismissToast(id: number): void {
  const i = app.toasts.findIndex((t) => t.id === id);
  if (i >= 0) app.toasts.splice(i, 1);
}

/**
 * Other tabs of this app on the same store: a change here is announced so their views re-read it instead of
 * showing (and acting on) what they read before. Absent where BroadcastChannel is (Node tests).
 */
const peers: BroadcastChannel | null =
  typeof BroadcastChannel === 'function' ? new BroadcastChannel('defectlab-store') : null;
if (peers)
  peers.onmessage = () => {
    app.revision++;
    void refreshDatasets().catch(() => undefined);
  };

export function datasetChanged(): void {
  app.revision++;
  peers?.postMessage({ kind: 'dataset-changed' });
}

let storePromise: Promise<DefectLabStore> | null = null;
/** The tab's store connection (IndexedDB `defectlab`); imported lazily so it stays out of the first paint. */
export function getStore(): Promise<DefectLabStore> {
  storePromise ??= import('../runtime/db/store.ts')
    .then((m) =>
      m.openStore(undefined, {
        // Another tab updated the schema (or reset the store): this connection closed itself so that tab is not
        // blocked; the next call reopens (and names the problem if this tab's code is now too old).
        onVersionChange: () => {
          storePromise = null;
          toast(
            'warn',
            'Another DefectLab tab changed the database version: reload this tab to keep working (nothing stored is lost).',
            0,
          );
        },
        onBlocked: () =>
          toast(
            'warn',
            'Another DefectLab tab holds an older database open: close or reload it to continue.',
            0,
          ),
      }),
    )
    .catch((e: unknown) => {
      storePromise = null;
      throw e;
    });
  return storePromise;
}

/** Re-reads the dataset list (after an import, rename or delete). */
export async function refreshDatasets(): Promise<DatasetRecord[]> {
  const store = await getStore();
  const list = await store.listDatasets();
  list.sort((a, b) => a.createdAt - b.createdAt);
  app.datasets = list;
  if (app.datasetId && !list.some((d) => d.id === app.datasetId)) app.datasetId = list[0]?.id ?? null;
  return list;
}

/** Opens a dataset in every view and remembers it for the next visit. */
export async function openDataset(id: string | null): Promise<void> {
  if (app.datasetId !== id) {
    app.datasetId = id;
    app.selectedImageIds = [];
    datasetChanged();
  }
  const store = await getStore();
  await store.setSetting('ui.lastDatasetId', id);
}

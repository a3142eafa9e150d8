/**
 * The staging strip's contract: any generator (MemSeg, random-walk, CutPaste, diffusion) pushes results here;
 * the user accepts (A) or rejects (R) each; accepted ones become defect images with their mask and provenance.
 */
import type { RasterImage } from '../../core/image.ts';
import type { SampleProvenance } from '../../core/dataset.ts';
import { DefectLabError } from '../../core/errors.ts';
import { app, datasetChanged, getStore, toastError } from '../state.svelte.ts';
import { acceptIntoStore } from './accept.ts';

export interface StagedSample {
  id: string;
  image: RasterImage;
  /** Exact binary mask (0/255) of what the generator changed, same size as the image. */
  mask: RasterImage;
  provenance: SampleProvenance;
  status: 'pending' | 'accepted' | 'rejected';
  /** The dataset an accepted sample goes to; filled with the open dataset when staged. */
  datasetId?: string;
  /** Id of the stored image once accepted. */
  imageId?: string;
}

export const staging = $state({
  items: [] as StagedSample[],
  /** Ids being written to the store right now (an accept in flight cannot be decided twice). */
  saving: [] as string[],
  /** Index of the item the keyboard acts on. */
  cursor: 0,
});

/** Adds generator results to the strip as pending. */
export function stageSamples(samples: Omit<StagedSample, 'id' | 'status'>[]): void {
  for (const s of samples)
    staging.items.push({
      ...s,
      datasetId: s.datasetId ?? app.datasetId ?? undefined,
      id: crypto.randomUUID(),
      status: 'pending',
    });
}

export function pendingCount(): number {
  return staging.items.filter((s) => s.status === 'pending').length;
}

/** Moves the keyboard cursor to the next pending item after `from` (wrapping), if any. */
function advanceCursor(from: number): void {
  const n = staging.items.length;
  for (let k = 1; k <= n; k++) {
    const i = (from + k) % n;
    if (staging.items[i].status === 'pending' && !staging.saving.includes(staging.items[i].id)) {
      staging.cursor = i;
      return;
    }
  }
}

/**
 * Accepts pending items: stores them as defect-labelled images with their mask and provenance (one transaction
 * per dataset), then marks them accepted and tells the views the dataset changed.
 */
export async function acceptStaged(ids: string[]): Promise<void> {
  const items = staging.items.filter(
    (s) => ids.includes(s.id) && s.status === 'pending' && !staging.saving.includes(s.id),
  );
  if (items.length === 0) return;
  staging.saving.push(...items.map((s) => s.id));
  try {
    const store = await getStore();
    // Grouped per dataset (a dataset switch between generating and accepting must not mix them up).
    const byDataset: Record<string, StagedSample[]> = {};
    for (const s of items) {
      const ds = s.datasetId ?? app.datasetId;
      if (!ds)
        throw new DefectLabError(
          'NoDatasetError',
          'no dataset is open to store the sample in',
          'open or create a dataset, then accept again',
        );
      (byDataset[ds] ??= []).push(s);
    }
    for (const [ds, list] of Object.entries(byDataset)) {
      // Plain copies: the store clones records, and Svelte's state proxies are not cloneable.
      const plain = list.map((s) => ({
        image: $state.snapshot(s.image),
        mask: $state.snapshot(s.mask),
        provenance: $state.snapshot(s.provenance),
      }));
      const added = await acceptIntoStore(store, ds, plain);
      list.forEach((s, i) => {
        s.status = 'accepted';
        s.imageId = added[i]?.id;
      });
    }
    datasetChanged();
  } catch (e) {
    toastError(e, 'Could not store the accepted samples');
  } finally {
    staging.saving = staging.saving.filter((id) => !items.some((s) => s.id === id));
  }
}

export function rejectStaged(ids: string[]): void {
  for (const s of staging.items)
    if (ids.includes(s.id) && s.status === 'pending' && !staging.saving.includes(s.id)) s.status = 'rejected';
}

/**
 * Keyboard: decide the item under the cursor (or, when that one is already decided, the next pending one) and
 * move the cursor on.
 */
export async function decideAtCursor(decision: 'accept' | 'reject'): Promise<void> {
  let s = staging.items[staging.cursor];
  if (!s || s.status !== 'pending' || staging.saving.includes(s.id)) {
    advanceCursor(staging.cursor);
    s = staging.items[staging.cursor];
    if (!s || s.status !== 'pending' || staging.saving.includes(s.id)) return;
  }
  advanceCursor(staging.cursor);
  if (decision === 'accept') await acceptStaged([s.id]);
  else rejectStaged([s.id]);
}

/** Drops decided items from the strip (accepted ones are already in the dataset). */
export function clearDecided(): void {
  staging.items = staging.items.filter((s) => s.status === 'pending');
  staging.cursor = 0;
}

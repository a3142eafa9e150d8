/**
 * What the fault-injection specs share: an init script that records every `Worker` the page creates (so a test
 * can `terminate()` one mid-job exactly as the browser would kill it: no `error` event, no message), the
 * integrity check of the raw database (the "half record" shapes a torn write leaves), counts per store, and
 * synthetic PNG folders written to the OS temp dir.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encode } from 'fast-png';
import { Rng } from '../../../src/core/rng.ts';
import { expect, type Locator, type Page } from '../fixtures.ts';

/** Records the page's workers in `window.__faultWorkers` (test-only: installed by the test, not the app). */
export async function recordWorkers(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const Native = window.Worker;
    const made: { name: string; worker: Worker; killed: boolean }[] = [];
    (window as unknown as { __faultWorkers: typeof made }).__faultWorkers = made;
    class Recorded extends Native {
      constructor(url: string | URL, opts?: WorkerOptions) {
        super(url, opts);
        made.push({ name: opts?.name ?? '', worker: this, killed: false });
      }
    }
    window.Worker = Recorded;
  });
}

/** Terminates the newest live worker named `name`; false when there is none. */
export function terminateWorker(page: Page, name: string): Promise<boolean> {
  return page.evaluate((n) => {
    const made = (
      window as unknown as { __faultWorkers: { name: string; worker: Worker; killed: boolean }[] }
    ).__faultWorkers;
    const w = made.filter((x) => x.name === n && !x.killed).at(-1);
    if (!w) return false;
    w.worker.terminate();
    w.killed = true;
    return true;
  }, name);
}

/** How many workers named `name` the page has created so far. */
export function workersMade(page: Page, name: string): Promise<number> {
  return page.evaluate(
    (n) =>
      (window as unknown as { __faultWorkers: { name: string }[] }).__faultWorkers.filter((x) => x.name === n)
        .length,
    name,
  );
}

/** Record counts of every object store of the app's database (read only). */
export function storeCounts(page: Page): Promise<Record<string, number>> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const out: Record<string, number> = {};
    for (const name of Array.from(db.objectStoreNames))
      out[name] = await new Promise<number>((res, rej) => {
        const r = db.transaction(name).objectStore(name).count();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
    db.close();
    return out;
  });
}

/**
 * The half records of the app's database, as `tests/unit/db-integrity.ts` defines them: an image without bytes,
 * thumbnail, hash or dataset, an image pointing at a missing mask, a label mask whose image is gone or does not
 * point back. Empty when the database is whole.
 */
export function halfRecords(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('defectlab');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const all = <T>(store: string) =>
      new Promise<T[]>((res, rej) => {
        const r = db.transaction(store).objectStore(store).getAll();
        r.onsuccess = () => res(r.result as T[]);
        r.onerror = () => rej(r.error);
      });
    type Img = {
      id: string;
      name: string;
      datasetId?: string;
      blob?: Blob;
      thumbnail?: Blob;
      sha256?: string;
      maskId?: string;
    };
    type Msk = { id: string; imageId?: string; kind: string; blob?: Blob };
    const images = await all<Img>('images');
    const masks = await all<Msk>('masks');
    const datasets = new Set((await all<{ id: string }>('datasets')).map((d) => d.id));
    db.close();
    const maskById = new Map(masks.map((m) => [m.id, m]));
    const imageById = new Map(images.map((i) => [i.id, i]));
    const problems: string[] = [];
    for (const i of images) {
      if (!(i.blob instanceof Blob) || i.blob.size === 0) problems.push(`image ${i.name}: no bytes`);
      if (!(i.thumbnail instanceof Blob) || i.thumbnail.size === 0)
        problems.push(`image ${i.name}: no thumbnail`);
      if (!i.sha256) problems.push(`image ${i.name}: no sha256`);
      if (!i.datasetId || !datasets.has(i.datasetId)) problems.push(`image ${i.name}: no dataset`);
      if (i.maskId && !maskById.has(i.maskId)) problems.push(`image ${i.name}: mask ${i.maskId} missing`);
    }
    for (const m of masks) {
      if (!(m.blob instanceof Blob) || m.blob.size === 0) problems.push(`mask ${m.id}: no bytes`);
      if (m.kind !== 'label') continue;
      const img = m.imageId ? imageById.get(m.imageId) : undefined;
      if (!img) problems.push(`label mask ${m.id}: image ${m.imageId} missing`);
      else if (img.maskId !== m.id)
        problems.push(`label mask ${m.id}: image ${img.name} does not point to it`);
    }
    return problems;
  });
}

/**
 * `n` distinct small grey PNGs (seeded noise, so no two share a sha256 and none is a duplicate) in a fresh temp
 * folder; returns their paths.
 */
export function syntheticPngs(n: number, size = 32, seed = 1): string[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'dl-faults-'));
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const data = new Uint8Array(size * size);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng.next() * 256);
    const file = path.join(dir, `synthetic-${String(k).padStart(5, '0')}.png`);
    writeFileSync(file, encode({ width: size, height: size, data, channels: 1, depth: 8 }));
    out.push(file);
  }
  return out;
}

/**
 * Opens the Train tab and loads the tiny ResNet on WASM (each step stays short), then sets the heads' tfjs
 * backend; with `cseEpochs`, a CSE head of that many epochs (CSE makes its own defects, so the sample dataset
 * with no defective train image will do).
 */
export async function trainTabWithTinyBackbone(
  page: Page,
  tfBackend?: 'wasm' | 'webgpu',
  cseEpochs?: number,
): Promise<void> {
  await page.locator('[data-tab="train"]').click();
  await page.getByTestId('backbone-select').selectOption('tiny-resnet');
  await page.getByTestId('backbone-device').selectOption('wasm');
  await page.getByTestId('backbone-load').click();
  await expect(page.getByTestId('backbone-backend')).toHaveText('wasm', { timeout: 120_000 });
  if (tfBackend) await page.getByTestId('tf-backend').selectOption(tfBackend);
  if (cseEpochs !== undefined) {
    await page.getByTestId('head-kind').selectOption('cse');
    await page.getByTestId('hp-epochs').fill(String(cseEpochs));
  }
}

/**
 * Opens the Train tab's experiment runner (if closed) and sets up a MemSeg × BCE grid; returns the panel and its
 * Run button (enabled), not yet clicked.
 */
export async function memsegGrid(
  page: Page,
  o: { nAug: number; seeds: string; epochs: number; id: string },
): Promise<{ panel: Locator; runButton: Locator }> {
  const panel = page.getByRole('region', { name: 'Experiments' });
  const runButton = panel.getByRole('button', { name: 'Run', exact: true });
  if (!(await runButton.isVisible())) await page.getByText('Experiment runner (generators').click();
  await expect(runButton).toBeEnabled({ timeout: 120_000 });
  for (const [label, v] of Object.entries({
    none: false,
    memseg: true,
    BCE: true,
    Spatial: false,
    CSE: false,
  }))
    await panel.getByLabel(label, { exact: true }).setChecked(v);
  await panel.getByLabel('N_aug list').fill(String(o.nAug));
  await panel.getByLabel('seeds', { exact: true }).fill(o.seeds);
  await panel.getByLabel('epochs', { exact: true }).fill(String(o.epochs));
  await panel.getByLabel('experiment id').fill(o.id);
  return { panel, runButton };
}

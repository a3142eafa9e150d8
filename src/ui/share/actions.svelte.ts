/**
 * Share setup ⇄ the app: `captureSetup` gathers what the views published plus the open dataset's mask library;
 * `applySetup` stores a link's masks in the open dataset's library and hands each view its section (`pending`).
 * Only called after the user confirmed the dialog, and only with a setup `decodeSetup` fully validated.
 */
import { DefectLabError } from '../../core/errors.ts';
import { DatasetBundleError, readBundle } from '../../core/share/bundle.ts';
import type { SharedDataset, SharedModel, WorkshopSetup } from '../../core/share/setup.ts';
import { app, datasetChanged, getStore, openDataset, refreshDatasets } from '../state.svelte.ts';
import { pending, published } from './bus.svelte.ts';
import backbones from '../../../models/manifests/backbones.json';

interface BackboneEntry {
  id: string;
  source: { kind: string; path?: string; url?: string };
  sizeBytes?: number;
}

/** Where participants get a backbone (the app's server, its hub URL, or a file they pick) and its size. */
function backboneModel(id: string): SharedModel {
  const e = (backbones as BackboneEntry[]).find((b) => b.id === id);
  const source =
    e?.source.kind === 'url' && e.source.url
      ? e.source.url
      : e?.source.path?.startsWith('models/')
        ? 'server'
        : 'a file picked in the Train tab';
  return { id, role: 'backbone', source, ...(e?.sizeBytes ? { bytes: e.sizeBytes } : {}) };
}

/** More masks than this make links too long to paste into a chat; the first ones are shared and a note says so. */
export const MAX_SHARED_MASKS = 8;

export class ShareApplyError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('ShareApplyError', problem, fix);
  }
}

export async function captureSetup(): Promise<{ setup: WorkshopSetup; notes: string[] }> {
  const notes: string[] = [];
  const setup: WorkshopSetup = {};
  const snap = <T>(v: T): T => $state.snapshot(v) as T;
  if (published.generate) setup.generate = snap(published.generate);
  if (published.diffusion) setup.diffusion = snap(published.diffusion);
  if (published.train) setup.train = snap(published.train);
  if (published.grid) setup.grid = snap(published.grid);
  const models: SharedModel[] = [];
  const dm = published.diffusion?.model;
  if (dm)
    models.push({
      id: dm,
      role: 'diffusion',
      source: published.diffusionModel?.source ?? 'server',
      ...(published.diffusionModel ? { bytes: published.diffusionModel.bytes } : {}),
    });
  if (published.train) models.push(backboneModel(published.train.backbone));
  if (models.length) setup.models = models;
  if (app.datasetId) {
    const { listLibrary, readMask, featherOf } = await import('../generate/library.ts');
    const store = await getStore();
    const lib = await listLibrary(store, app.datasetId);
    if (lib.length > MAX_SHARED_MASKS)
      notes.push(`Only the first ${MAX_SHARED_MASKS} of ${lib.length} library masks are in the link.`);
    const chosen = lib.slice(0, MAX_SHARED_MASKS);
    if (chosen.length)
      setup.masks = await Promise.all(
        chosen.map(async (m) => {
          const feather = featherOf(m);
          return { name: m.name ?? m.id, mask: await readMask(m), ...(feather ? { feather } : {}) };
        }),
      );
  }
  if (!setup.generate && !setup.diffusion && !setup.train)
    notes.push('Open the Paint & generate or Train & evaluate tab once so their settings join the link.');
  return { setup, notes };
}

/** The one progress of a dataset bundle's download, check and import (shown in the open-link dialog). */
export const bundle = $state({ progress: null as null | { done: number; total: number; label: string } });

/** Downloads a link's dataset bundle, checks size and sha256, imports it as a new dataset and opens it. */
async function importBundle(d: SharedDataset): Promise<string> {
  const name = d.name ?? d.url.split('/').pop() ?? 'shared dataset';
  const label = `downloading ${name}`;
  bundle.progress = { done: 0, total: d.size, label };
  try {
    let res: Response;
    try {
      res = await fetch(d.url);
    } catch (e) {
      throw new DatasetBundleError(
        d.url,
        `could not be fetched (${String(e)})`,
        'open the link while online (the server must allow cross-origin requests); nothing was imported',
      );
    }
    if (!res.ok || !res.body)
      throw new DatasetBundleError(d.url, `answered HTTP ${res.status}`, 'ask the host for a working link');
    const bytes = await readBundle(d, res.body, (done, total) => (bundle.progress = { done, total, label }));
    bundle.progress = { done: d.size, total: d.size, label: `importing ${name}` };
    const { importPicked } = await import('../data/import-client.ts');
    const zipName = name.endsWith('.zip') ? name : `${name}.zip`;
    const report = await importPicked(
      null,
      name.replace(/\.zip$/i, ''),
      [{ path: zipName, file: new File([bytes], zipName) }],
      {
        jobId: `bundle-${crypto.randomUUID()}`,
      },
    );
    const list = await refreshDatasets();
    const newest = list[list.length - 1];
    if (newest) await openDataset(newest.id);
    return `dataset ${name} imported (${report.added} images)`;
  } finally {
    bundle.progress = null;
  }
}

/** Applies a confirmed setup; returns what it did, one line each (for the toast). */
export async function applySetup(setup: WorkshopSetup): Promise<string[]> {
  const did: string[] = [];
  // The bundle first: the link's masks belong in the dataset it brings.
  if (setup.dataset) did.push(await importBundle(setup.dataset));
  if (setup.masks?.length) {
    if (!app.datasetId)
      throw new ShareApplyError(
        'the link carries masks but no dataset is open',
        'open or import a dataset in the Data tab, then open the link again',
      );
    const { saveLibraryMask } = await import('../generate/library.ts');
    const store = await getStore();
    for (const m of setup.masks)
      await saveLibraryMask(store, app.datasetId, m.mask, m.name, Math.min(64, m.feather ?? 0));
    datasetChanged();
    did.push(`${setup.masks.length} masks added to the library`);
  }
  if (setup.generate) {
    pending.generate = setup.generate;
    did.push('Paint & generate settings');
  }
  if (setup.diffusion) {
    pending.diffusion = setup.diffusion;
    did.push('diffusion settings');
  }
  if (setup.train) {
    pending.train = setup.train;
    did.push('Train & evaluate settings');
  }
  if (setup.grid) {
    pending.grid = setup.grid;
    did.push('experiment grid');
  }
  if (setup.generate || setup.diffusion || setup.masks?.length) app.tab = 'generate';
  else if (setup.train || setup.grid) app.tab = 'train';
  return did;
}

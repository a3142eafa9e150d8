/**
 * Offline after the first load: registers the service worker (vite-plugin-pwa, `registerType: 'prompt'`), says
 * when the app shell is cached, offers the reload when a new version is waiting (never reloads by itself: an open
 * session keeps its code and its unsaved work), and "Prepare for offline" fetches what the setup needs beyond the
 * shell (the app's own backbone files and the setup's diffusion model, `offline-files.ts`), with one progress.
 */
import { DefectLabError } from '../../core/errors.ts';
import { ModelManager } from '../../runtime/models/manager.ts';
import { storeFor } from '../../runtime/models/store.ts';
import type { OfflinePlan } from './offline-files.ts';

export const offline = $state({
  /** The service worker controls this page and its precache is complete. */
  ready: false,
  /** A new version is installed and waiting for a reload. */
  needRefresh: false,
  supported: typeof navigator !== 'undefined' && 'serviceWorker' in navigator,
  preparing: null as null | { done: number; total: number; label: string },
  /** Set once "Prepare for offline" finished: what it stored. */
  prepared: null as null | { files: number; bytes: number; models: string[]; notes: string[] },
  error: null as string | null,
});

let update: ((reload?: boolean) => Promise<void>) | null = null;

export class OfflinePrepareError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('OfflinePrepareError', problem, fix);
  }
}

export async function registerOffline(): Promise<void> {
  if (!offline.supported || import.meta.env.DEV) return;
  const { registerSW } = await import('virtual:pwa-register');
  update = registerSW({
    immediate: true,
    onNeedRefresh: () => (offline.needRefresh = true),
    onOfflineReady: () => (offline.ready = true),
    onRegisterError: (e: unknown) => (offline.error = `The offline cache could not be set up: ${String(e)}`),
  });
  // A page loaded under an already-installed worker gets no "offline ready" event: it is ready already.
  const reg = await navigator.serviceWorker.ready;
  if (reg.active && navigator.serviceWorker.controller) offline.ready = true;
}

/** Reloads into the waiting version (the user asked for it). */
export function reloadToUpdate(): void {
  if (update) void update(true);
  else location.reload();
}

/** The service worker's cache for whole files under /models/ (vite.config.ts `runtimeCaching`). */
export const MODELS_CACHE = 'defectlab-models';

/**
 * Fetches everything `plan` names, with one progress in bytes over all of it: the backbone files into the service
 * worker's models cache (written here, not left to the worker: on the very first visit the page is not yet
 * controlled, so its fetches would bypass it), then each diffusion model through the model manager, exactly as
 * the Models tab downloads it (Range requests, resume, sha256 and graph checks, the same cache the diffusion
 * worker loads from). A model already cached counts as done and is not fetched again.
 */
export async function prepareForOffline(plan: OfflinePlan): Promise<void> {
  if (!offline.supported)
    throw new OfflinePrepareError(
      'this browser has no service workers (or the page is not served over https or localhost)',
      'open DefectLab over https or http://localhost in Chromium, Firefox or Safari',
    );
  offline.error = null;
  let total = plan.bytes;
  let done = 0;
  const show = (extra: number, label: string) =>
    (offline.preparing = { done: done + extra, total: Math.max(total, done + extra, 1), label });
  show(0, 'caching the app');
  try {
    await navigator.serviceWorker.ready;
    const cache = await caches.open(MODELS_CACHE);
    for (const f of plan.files) {
      show(0, f.label);
      const res = await fetch(f.url, { cache: 'no-cache' });
      if (!res.ok)
        throw new OfflinePrepareError(
          `${f.url} answered ${res.status}`,
          'check that the app was built with `npm run build` (it builds the tiny models), then try again',
        );
      const body = await res.arrayBuffer();
      await cache.put(f.url, new Response(body, { status: 200, headers: res.headers }));
      if (f.bytes === null) total += body.byteLength;
      done += body.byteLength;
    }
    for (const m of plan.models) {
      show(0, m.label);
      await new ModelManager(storeFor(m.manifest)).download(m.manifest, m.base, {
        onProgress: (p) => show(p.done, m.label),
      });
      done += m.bytes;
    }
    offline.prepared = {
      files: plan.files.length + plan.models.reduce((a, m) => a + m.manifest.files.length, 0),
      bytes: done,
      models: plan.models.map((m) => m.manifest.id),
      notes: plan.notes,
    };
    offline.ready = true;
  } finally {
    offline.preparing = null;
    // The Models tab and the diffusion panel list what is cached: they see the new model at once.
    if (plan.models.length) await (await import('../models/models.svelte.ts')).refreshCached();
  }
}

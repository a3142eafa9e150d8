/**
 * Offline after the first load: registers the service worker (vite-plugin-pwa, `registerType: 'prompt'`), says
 * when the app shell is cached, offers the reload when a new version is waiting (never reloads by itself: an open
 * session keeps its code and its unsaved work), and "Prepare for offline" fetches what the setup needs beyond the
 * shell (the app's own backbone files) through the worker, with one progress for all of it.
 */
import { DefectLabError } from '../../core/errors.ts';

export const offline = $state({
  /** The service worker controls this page and its precache is complete. */
  ready: false,
  /** A new version is installed and waiting for a reload. */
  needRefresh: false,
  supported: typeof navigator !== 'undefined' && 'serviceWorker' in navigator,
  preparing: null as null | { done: number; total: number; label: string },
  /** Set once "Prepare for offline" finished: what it stored. */
  prepared: null as null | { files: number; bytes: number },
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
 * Fetches `urls` (same-origin files under /models/) into the service worker's models cache, after the worker
 * itself is installed; one progress over all files. Written to the cache here, not left to the worker: on the
 * very first visit the page is not yet controlled, so its fetches would bypass the worker.
 */
export async function prepareForOffline(urls: string[]): Promise<void> {
  if (!offline.supported)
    throw new OfflinePrepareError(
      'this browser has no service workers (or the page is not served over https or localhost)',
      'open DefectLab over https or http://localhost in Chromium, Firefox or Safari',
    );
  offline.error = null;
  offline.preparing = { done: 0, total: urls.length + 1, label: 'caching the app' };
  try {
    await navigator.serviceWorker.ready;
    const cache = await caches.open(MODELS_CACHE);
    let bytes = 0;
    for (let i = 0; i < urls.length; i++) {
      offline.preparing = {
        done: i + 1,
        total: urls.length + 1,
        label: urls[i].split('/').slice(-2).join('/'),
      };
      const res = await fetch(urls[i], { cache: 'no-cache' });
      if (!res.ok)
        throw new OfflinePrepareError(
          `${urls[i]} answered ${res.status}`,
          'check that the app was built with `npm run build` (it builds the tiny models), then try again',
        );
      const body = await res.arrayBuffer();
      await cache.put(urls[i], new Response(body, { status: 200, headers: res.headers }));
      bytes += body.byteLength;
    }
    offline.prepared = { files: urls.length, bytes };
    offline.ready = true;
  } finally {
    offline.preparing = null;
  }
}

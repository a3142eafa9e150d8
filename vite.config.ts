import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { modelsFolder } from './scripts/vite-models-plugin.ts';
import { buildCsp, modelOrigins, readManifests, serverOrigins } from './scripts/csp.ts';

// COOP/COEP make the page cross-origin isolated, which WASM threads (SharedArrayBuffer) need.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * The built app's Content-Security-Policy (scripts/csp.ts, docs/security.md): model downloads only from the
 * origins the manifests name plus `DL_MODEL_ORIGINS`; compute servers on this machine plus `DL_SERVER_ORIGINS`
 * (both comma-separated, read at build and preview time).
 */
const connect = [
  ...modelOrigins(
    readManifests(fileURLToPath(new URL('./models/manifests', import.meta.url))),
    (process.env.DL_MODEL_ORIGINS ?? '').split(','),
  ),
  ...serverOrigins((process.env.DL_SERVER_ORIGINS ?? '').split(',')),
];
/** Sent by `vite preview` (`npm start`, Playwright) with every file, so the workers and service worker get it. */
const cspHeader = { 'Content-Security-Policy': buildCsp({ connect, header: true }) };

/** The same policy as a meta tag in the built index.html (plus Trusted Types), for hosts that send no headers. */
function cspMeta(): Plugin {
  return {
    name: 'defectlab-csp-meta',
    apply: 'build',
    // Right after the charset (which must stay within the first 1024 bytes) and before every script tag.
    transformIndexHtml: {
      order: 'post',
      handler: (html) => {
        const meta = `<meta http-equiv="Content-Security-Policy" content="${buildCsp({ connect, trustedTypes: true })}" />`;
        const at = html.search(/<meta charset=[^>]*>/i);
        if (at < 0) throw new Error('index.html has no <meta charset> — fix: keep it first in <head>');
        const end = html.indexOf('>', at) + 1;
        return `${html.slice(0, end)}\n    ${meta}${html.slice(end)}`;
      },
    },
  };
}

/**
 * Offline after the first load (workshop wifi drops): the service worker precaches the app shell, every chunk and
 * the ORT/tfjs wasm files. `prompt`: a new version waits until the user reloads, so an open session never has
 * its code swapped underneath it. Files under /models/ fetched whole (backbones, manifests) are kept by the
 * worker for offline use; ranged requests (the diffusion model manager's resumable downloads, which keep their
 * own cache) pass through untouched, so multi-GB models are never stored twice.
 */
const pwa = VitePWA({
  registerType: 'prompt',
  injectRegister: false,
  includeAssets: ['favicon.svg', 'icon-192.png', 'icon-512.png', 'icon-maskable-512.png'],
  manifest: {
    name: 'DefectLab',
    short_name: 'DefectLab',
    description: 'Generate surface defects, train a detector and evaluate it, in your browser.',
    start_url: '/',
    scope: '/',
    display: 'standalone',
    background_color: '#ffffff',
    theme_color: '#23303d',
    icons: [
      { src: '/icon-192.png', sizes: '192x192', type: 'image/png' },
      { src: '/icon-512.png', sizes: '512x512', type: 'image/png' },
      { src: '/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
      { src: '/favicon.svg', sizes: 'any', type: 'image/svg+xml' },
    ],
  },
  workbox: {
    globPatterns: ['**/*.{js,mjs,css,html,svg,png,wasm,json,webmanifest}'],
    // ORT's JSEP wasm is ~28 MB; everything the app can run offline must fit.
    maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
    navigateFallback: '/index.html',
    navigateFallbackDenylist: [/^\/models\//],
    cleanupOutdatedCaches: true,
    runtimeCaching: [
      {
        urlPattern: ({ url, request }) =>
          url.pathname.startsWith('/models/') && !request.headers.has('range'),
        handler: 'NetworkFirst',
        options: {
          cacheName: 'defectlab-models',
          networkTimeoutSeconds: 10,
          cacheableResponse: { statuses: [200] },
        },
      },
    ],
  },
});

export default defineConfig({
  plugins: [svelte(), modelsFolder(), pwa, cspMeta()],
  server: { headers: isolation, port: 5173 },
  preview: { headers: { ...isolation, ...cspHeader }, port: 4173 },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 30000 },
  test: {
    include: ['tests/unit/**/*.test.ts', 'tests/fuzz/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The built app's Content-Security-Policy (docs/security.md). One builder for both deliveries: the
 * `<meta http-equiv>` emitted into the built index.html (static hosting without header control) and the header
 * `vite preview` / `npm start` send with every response, which is the only one that reaches the workers and the
 * service worker (a worker's policy comes from its own script's response, never from the page's meta tag).
 *
 * - Scripts: only the app's own files. No `'unsafe-inline'`, no `'unsafe-eval'`; `'wasm-unsafe-eval'` because
 *   onnxruntime-web, tfjs-backend-wasm and the MLP head's SIMD kernel (`src/runtime/heads/kernels/`)
 *   compile WebAssembly (the only thing it allows). `blob:` scripts and
 *   workers: tfjs-backend-wasm starts its pthreads with a Blob of its factory script (`src/runtime/tf.ts`), which
 *   each pthread loads with `importScripts(URL.createObjectURL(blob))` (its `…threaded-simd.worker.js`). A Blob
 *   can only be made by code already running here, so this admits no injected markup.
 * - connect-src: the app's origin, `blob:` (onnxruntime reads external weights from object URLs of cached Blobs),
 *   and the model origins (`modelOrigins`): nothing else can be fetched, so a tampered manifest or share link
 *   cannot make the app download from, or send data to, another host; and the compute servers (`serverOrigins`).
 * - Trusted Types (document only, where supported): HTML sinks accept only Svelte's own policy
 *   (`svelte-trusted-html`, its compiled templates); script URLs (workers, the service worker) pass the app's
 *   `default` policy, which admits same-origin URLs only (`src/ui/workshop/trusted-types.ts`).
 */

/** Where Hugging Face's `resolve` URLs redirect (LFS and Xet CDNs): a hub download follows them. */
export const HUB_REDIRECT_ORIGINS: Record<string, string[]> = {
  'https://huggingface.co': ['https://*.huggingface.co', 'https://*.hf.co'],
};

/** The default hub base of `src/runtime/models/manifest.ts` (`hubBase`). */
export const DEFAULT_HUB = 'https://huggingface.co';

interface ManifestLike {
  format?: string;
  hub?: unknown;
  source?: { kind?: string; url?: string };
}

function originOf(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`CSP: ${what} is not a URL ("${url}") — fix: write it as https://host[:port]`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new Error(`CSP: ${what} must be http(s), got "${url}" — fix: write it as https://host[:port]`);
  return u.origin;
}

/**
 * The origins models may be downloaded from: every `url` source of a manifest (the backbones), the default hub
 * when any diffusion manifest names a hub repo (plus the CDNs it redirects to), and `extra` (the build's
 * `DL_MODEL_ORIGINS`, comma-separated: a mirror, a company model server). Sorted, without duplicates.
 */
export function modelOrigins(manifests: ManifestLike[], extra: string[] = []): string[] {
  const out = new Set<string>();
  const add = (o: string) => {
    out.add(o);
    for (const r of HUB_REDIRECT_ORIGINS[o] ?? []) out.add(r);
  };
  for (const m of manifests.flatMap((x) => (Array.isArray(x) ? (x as ManifestLike[]) : [x]))) {
    if (m.source?.kind === 'url' && m.source.url) add(originOf(m.source.url, 'a manifest source.url'));
    if (m.format === 'defectlab-model/1' && m.hub) add(DEFAULT_HUB);
  }
  for (const e of extra.map((s) => s.trim()).filter(Boolean)) add(originOf(e, 'a DL_MODEL_ORIGINS entry'));
  return [...out].sort();
}

/**
 * The DefectLab servers the System panel's Compute "Server" may talk to: any port on this machine (the documented
 * `npm run server` case) and `extra` (the build's `DL_SERVER_ORIGINS`, comma-separated: a server on the LAN).
 */
export function serverOrigins(extra: string[] = []): string[] {
  const out = new Set(['http://localhost:*', 'http://127.0.0.1:*']);
  for (const e of extra.map((s) => s.trim()).filter(Boolean))
    out.add(originOf(e, 'a DL_SERVER_ORIGINS entry'));
  return [...out].sort();
}

/** Every JSON manifest under `dir` (`models/manifests/`): an array (backbones.json) or one diffusion manifest. */
export function readManifests(dir: string): ManifestLike[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ManifestLike);
}

export interface CspOptions {
  /** Extra connect-src origins (model servers), from `modelOrigins`. */
  connect: string[];
  /** The header variant: adds what a meta tag may not carry (`frame-ancestors`). */
  header?: boolean;
  /** Enforce Trusted Types (the document's policy; workers need none: they have no DOM sinks). */
  trustedTypes?: boolean;
}

/** The policy text, one directive per `;`. */
export function buildCsp(o: CspOptions): string {
  const d: [string, string[]][] = [
    ['default-src', ["'self'"]],
    ['script-src', ["'self'", "'wasm-unsafe-eval'", 'blob:']],
    ['worker-src', ["'self'", 'blob:']],
    ['connect-src', ["'self'", 'blob:', ...o.connect]],
    ['img-src', ["'self'", 'data:', 'blob:']],
    // Svelte sets element styles at run time (style: directives, transitions) and uPlot sizes its canvas by
    // style attribute; styles cannot run code, scripts stay strict.
    ['style-src', ["'self'", "'unsafe-inline'"]],
    ['font-src', ["'self'"]],
    ['manifest-src', ["'self'"]],
    ['object-src', ["'none'"]],
    ['base-uri', ["'self'"]],
    ['form-action', ["'self'"]],
  ];
  if (o.header) d.push(['frame-ancestors', ["'none'"]]);
  if (o.trustedTypes) {
    d.push(['require-trusted-types-for', ["'script'"]]);
    d.push(['trusted-types', ['default', 'svelte-trusted-html']]);
  }
  return d.map(([k, v]) => `${k} ${v.join(' ')}`).join('; ');
}

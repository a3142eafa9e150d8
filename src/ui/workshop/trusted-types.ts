/**
 * Trusted Types (the built index.html's CSP enforces `require-trusted-types-for 'script'`, see scripts/csp.ts):
 * the script-URL sinks the app legitimately uses — `new Worker(url)` for its own workers and for onnxruntime's
 * and tfjs's WASM threads, `navigator.serviceWorker.register` — take plain strings, so this `default` policy
 * admits exactly those: URLs of this origin and `blob:` URLs this origin made. It has no `createHTML` and no
 * `createScript`, so every string written into an HTML or script sink is refused (Svelte's compiled templates
 * go through Svelte's own `svelte-trusted-html` policy). Imported first by `src/main.ts`.
 */

interface TrustedTypePolicyFactoryLike {
  createPolicy(name: string, rules: { createScriptURL?: (url: string) => string }): unknown;
}

/** Whether `url` (relative to `base`) is one the app may start as a script: same origin or a same-origin Blob. */
export function isOwnScriptUrl(url: string, base: string): boolean {
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    return false;
  }
  // A blob: URL's origin is its creator's; data: and javascript: URLs have the opaque origin "null".
  return u.origin === new URL(base).origin;
}

export function installTrustedTypesPolicy(): void {
  const tt = (globalThis as { trustedTypes?: TrustedTypePolicyFactoryLike }).trustedTypes;
  if (!tt || typeof location === 'undefined') return;
  tt.createPolicy('default', {
    createScriptURL: (url) => {
      if (isOwnScriptUrl(url, location.href)) return url;
      throw new TypeError(
        `TrustedTypes: the script URL ${url} is not from ${location.origin} — fix: the app starts only its own scripts`,
      );
    },
  });
}

installTrustedTypesPolicy();

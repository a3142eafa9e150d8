/**
 * The built app's Content-Security-Policy builder (scripts/csp.ts) and the rules around it: scripts strict (no
 * inline, no eval), model origins taken from the manifests plus DL_MODEL_ORIGINS, bad origins refused with a fix,
 * Trusted Types only in the document's policy, the default policy's URL check, and no `{@html}` anywhere in the UI.
 * The browser side (no violation in a real run, attacks blocked) is tests/e2e/csp.spec.ts.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCsp, modelOrigins, readManifests, serverOrigins } from '../../scripts/csp.ts';
import { isOwnScriptUrl } from '../../src/ui/workshop/trusted-types.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function directives(policy: string): Map<string, string[]> {
  return new Map(
    policy.split(';').map((d) => {
      const [k, ...v] = d.trim().split(/\s+/);
      return [k, v] as [string, string[]];
    }),
  );
}

describe('buildCsp', () => {
  const header = directives(buildCsp({ connect: ['https://models.example.org'], header: true }));
  const meta = directives(buildCsp({ connect: [], trustedTypes: true }));

  it('scripts: own files and WebAssembly only, never inline or eval', () => {
    for (const d of [header, meta]) {
      const script = d.get('script-src')!;
      expect(script).toContain("'self'");
      expect(script).toContain("'wasm-unsafe-eval'");
      expect(script).not.toContain("'unsafe-inline'");
      expect(script).not.toContain("'unsafe-eval'");
      expect(script.some((s) => s.startsWith("'nonce-") || s === '*' || s === 'data:')).toBe(false);
      expect(d.get('object-src')).toEqual(["'none'"]);
      expect(d.get('default-src')).toEqual(["'self'"]);
    }
  });

  it('connect-src is the app, blob: and exactly the given origins', () => {
    expect(header.get('connect-src')).toEqual(["'self'", 'blob:', 'https://models.example.org']);
    expect(meta.get('connect-src')).toEqual(["'self'", 'blob:']);
  });

  it('frame-ancestors only in the header (a meta tag cannot carry it); Trusted Types only where asked', () => {
    expect(header.get('frame-ancestors')).toEqual(["'none'"]);
    expect(meta.has('frame-ancestors')).toBe(false);
    expect(header.has('require-trusted-types-for')).toBe(false);
    expect(meta.get('require-trusted-types-for')).toEqual(["'script'"]);
    expect(meta.get('trusted-types')).toEqual(['default', 'svelte-trusted-html']);
  });
});

describe('modelOrigins', () => {
  it('from the real manifests: the backbones\u2019 URL sources and the hub with its CDNs', () => {
    const origins = modelOrigins(readManifests(join(ROOT, 'models/manifests')));
    expect(origins).toContain('https://huggingface.co');
    expect(origins).toContain('https://*.hf.co');
    // Only https origins, no paths.
    for (const o of origins) expect(o).toMatch(/^https:\/\/[^/]+$/);
  });

  it('DL_MODEL_ORIGINS entries are added as origins; a bad one names the variable and the fix', () => {
    const o = modelOrigins([], ['https://mirror.example.org/some/path', ' ', 'http://10.0.0.5:8080']);
    expect(o).toEqual(['http://10.0.0.5:8080', 'https://mirror.example.org']);
    expect(() => modelOrigins([], ['mirror.example.org'])).toThrow(
      /DL_MODEL_ORIGINS.*fix: write it as https/,
    );
    expect(() => modelOrigins([], ['ftp://x.example.org'])).toThrow(/must be http\(s\)/);
  });

  it('a manifest without a URL source or hub repo adds nothing', () => {
    expect(modelOrigins([{ source: { kind: 'local' } }, { format: 'defectlab-model/1' }])).toEqual([]);
  });
});

describe('serverOrigins', () => {
  it('this machine on any port by default; DL_SERVER_ORIGINS adds origins, a bad one names the variable', () => {
    expect(serverOrigins()).toEqual(['http://127.0.0.1:*', 'http://localhost:*']);
    expect(serverOrigins(['http://192.168.1.10:8787/api'])).toContain('http://192.168.1.10:8787');
    expect(() => serverOrigins(['192.168.1.10'])).toThrow(/DL_SERVER_ORIGINS/);
  });
});

describe('Trusted Types default policy', () => {
  const base = 'http://localhost:4173/index.html';
  it('admits same-origin and same-origin blob: URLs only', () => {
    expect(isOwnScriptUrl('/assets/train.worker-x.js', base)).toBe(true);
    expect(isOwnScriptUrl('http://localhost:4173/sw.js', base)).toBe(true);
    expect(isOwnScriptUrl('blob:http://localhost:4173/6d1c', base)).toBe(true);
    expect(isOwnScriptUrl('blob:https://evil.example/6d1c', base)).toBe(false);
    expect(isOwnScriptUrl('https://cdn.example.com/x.js', base)).toBe(false);
    expect(isOwnScriptUrl('http://localhost:4174/x.js', base)).toBe(false);
    expect(isOwnScriptUrl('data:text/javascript,alert(1)', base)).toBe(false);
    expect(isOwnScriptUrl('javascript:alert(1)', base)).toBe(false);
  });
});

describe('the UI renders text, never HTML', () => {
  it('no {@html} in any Svelte component', () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const p = join(dir, n);
        return statSync(p).isDirectory() ? walk(p) : p.endsWith('.svelte') ? [p] : [];
      });
    const files = walk(join(ROOT, 'src'));
    expect(files.length).toBeGreaterThan(10);
    const offenders = files.filter((f) => readFileSync(f, 'utf8').includes('{@html'));
    expect(offenders).toEqual([]);
  });
});

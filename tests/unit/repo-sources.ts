/**
 * Every source file of the repository (TypeScript, JavaScript, Svelte), for the tests that grep the whole tree:
 * the onnxruntime and tfjs doors (ort.test.ts, tf-door.test.ts) and the import directions (layers.test.ts).
 * Build outputs, dependencies and generated tiny models are left out.
 */
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

const SKIP = new Set(['node_modules', '.git', 'test-results', 'playwright-report', 'coverage']);

/** Absolute paths of the repo's source files. */
export function sourceFiles(root = REPO_ROOT): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (SKIP.has(e.name) || e.name.startsWith('dist') || e.name.startsWith('.')) continue;
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.(ts|mts|cts|js|mjs|cjs|svelte)$/.test(e.name)) files.push(full);
    }
  };
  walk(root);
  return files;
}

/** A path relative to the repo root, with forward slashes. */
export const repoPath = (f: string): string => relative(REPO_ROOT, f).split('\\').join('/');

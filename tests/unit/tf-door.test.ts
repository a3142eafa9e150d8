import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every source file of the repo (the same walk as the onnxruntime door test in ort.test.ts). */
function sourceFiles(root: string): string[] {
  const skip = new Set(['node_modules', '.git', 'test-results', 'playwright-report', 'coverage']);
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (skip.has(e.name) || e.name.startsWith('dist') || e.name.startsWith('.')) continue;
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.(ts|mts|cts|js|mjs|cjs|svelte)$/.test(e.name)) files.push(full);
    }
  };
  walk(root);
  return files;
}

// Static, type-only and dynamic imports, re-exports and requires of any @tensorflow package or sub-path.
const importRe = /(?:from\s*|import\s*\(\s*|import\s+|require\s*\(\s*)['"`]@tensorflow\/[^'"`]*['"`]/;

describe('the single tfjs door', () => {
  it('the pattern catches every way of importing tfjs and nothing else', () => {
    for (const line of [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import '@tensorflow/tfjs-core/dist/register_all_gradients';",
      "import type { LayersModel } from '@tensorflow/tfjs-layers';",
      "export type { LayersModel } from '@tensorflow/tfjs-layers';",
      "const w = await import('@tensorflow/tfjs-backend-wasm');",
      'import u from "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url";',
      "const t = require('@tensorflow/tfjs-node');",
    ])
      expect(line).toMatch(importRe);
    for (const line of [
      "const ENTRIES = ['@tensorflow/tfjs-core'];",
      "new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url)",
      "import { tf } from '../runtime/tf.ts';",
    ])
      expect(line).not.toMatch(importRe);
  });

  it('no module but src/runtime/tf.ts imports @tensorflow/* (grep over every source file of the repo)', () => {
    const root = resolve(import.meta.dirname, '../..');
    const files = sourceFiles(root);
    // This file is skipped: it quotes import lines above.
    const importers = files
      .filter((f) => f !== import.meta.filename && importRe.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f).split('\\').join('/'))
      .sort();
    expect(files.length).toBeGreaterThan(100);
    expect(importers).toEqual(['src/runtime/tf.ts']);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { repoPath, sourceFiles } from './repo-sources.ts';

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
    const files = sourceFiles();
    // This file is skipped: it quotes import lines above.
    const importers = files
      .filter((f) => f !== import.meta.filename && importRe.test(readFileSync(f, 'utf8')))
      .map(repoPath)
      .sort();
    expect(files.length).toBeGreaterThan(100);
    expect(importers).toEqual(['src/runtime/tf.ts']);
  });
});

/**
 * Import directions (DEVELOPERS.md "Layout"): every relative import of every source file is resolved and its
 * layer checked against what that layer may import. The arrows only go down:
 * core ← runtime ← app (trainers, generator adapters) ← workers / server; the UI sits on workers; model
 * builders are for models/, tests and benches only.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoPath, sourceFiles } from './repo-sources.ts';

type Layer =
  | 'core'
  | 'runtime'
  | 'app'
  | 'workers'
  | 'ui'
  | 'server'
  | 'builders'
  | 'manifests'
  | 'models'
  | 'bench'
  | 'tests'
  | 'scripts'
  | 'other';

function layerOf(path: string): Layer {
  if (path.startsWith('src/core/')) return 'core';
  if (path.startsWith('src/runtime/')) return 'runtime';
  if (path.startsWith('src/app/')) return 'app';
  if (path.startsWith('src/ui/') || path === 'src/main.ts') return 'ui';
  if (path.startsWith('workers/')) return 'workers';
  if (path.startsWith('server/')) return 'server';
  if (path.startsWith('models/builders/')) return 'builders';
  // Model manifests are data (JSON) that every product layer may read.
  if (path.startsWith('models/manifests/')) return 'manifests';
  if (path.startsWith('models/')) return 'models';
  if (path.startsWith('bench/')) return 'bench';
  if (path.startsWith('tests/')) return 'tests';
  if (path.startsWith('scripts/')) return 'scripts';
  return 'other';
}

/** What each layer may import (besides itself). Absent = unconstrained (tests, benches, scripts). */
const ALLOWED: Partial<Record<Layer, Layer[]>> = {
  core: [],
  runtime: ['core', 'manifests'],
  app: ['core', 'runtime', 'manifests'],
  workers: ['core', 'runtime', 'app', 'manifests'],
  ui: ['core', 'runtime', 'app', 'workers', 'manifests'],
  server: ['core', 'runtime', 'app', 'workers', 'manifests'],
  models: ['core', 'runtime', 'builders', 'manifests'],
  builders: ['core', 'runtime'],
};

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"`](\.{1,2}\/[^'"`]+)['"`]/g;

/** Wrong-way imports of `sources` (repo-relative path → text), as "from → to" lines. */
export function wrongWayImports(sources: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of sources) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    if (!allowed) continue;
    for (const m of text.matchAll(IMPORT_RE)) {
      const target = join(dirname(file), m[1].split('?')[0]).split('\\').join('/');
      const to = layerOf(target);
      if (to !== from && !allowed.includes(to)) out.push(`${file} (${from}) → ${target} (${to})`);
    }
  }
  return out.sort();
}

function repoSources(): Map<string, string> {
  // Generated tiny models are build outputs, not sources.
  const files = sourceFiles().filter((f) => !repoPath(f).startsWith('models/tiny/'));
  return new Map(files.map((f) => [repoPath(f), readFileSync(f, 'utf8')]));
}

describe('import directions', () => {
  it('no import in the repository runs the wrong way', () => {
    const sources = repoSources();
    expect(sources.size).toBeGreaterThan(150);
    // Each layer is really there (a renamed folder would make the check vacuous).
    const layers = new Set([...sources.keys()].map(layerOf));
    for (const l of ['core', 'runtime', 'app', 'workers', 'ui', 'server', 'builders'] as const)
      expect(layers, l).toContain(l);
    expect(wrongWayImports(sources)).toEqual([]);
  });

  it('the check catches each forbidden direction', () => {
    const cases: [string, string][] = [
      ['src/core/a.ts', "import { x } from '../runtime/tf.ts';"],
      ['src/runtime/b.ts', "import type { X } from '../../workers/train.engine.ts';"],
      ['src/app/c.ts', "const m = await import('../../workers/host.ts');"],
      ['workers/d.ts', "import { y } from '../server/app.ts';"],
      ['src/ui/e.svelte', "import { z } from '../../server/cli.ts';"],
      ['server/f.ts', "import { t } from '../models/builders/graph.ts';"],
      ['src/runtime/g.ts', "import '../app/heads.ts';"],
    ];
    const found = wrongWayImports(new Map(cases));
    expect(found).toHaveLength(cases.length);
    // Allowed directions stay quiet.
    expect(
      wrongWayImports(
        new Map([
          ['workers/ok.ts', "import { a } from '../src/app/heads.ts';"],
          ['src/app/ok.ts', "import { b } from '../runtime/tf.ts';"],
          ['tests/unit/ok.test.ts', "import { c } from '../../models/builders/graph.ts';"],
        ]),
      ),
    ).toEqual([]);
  });
});

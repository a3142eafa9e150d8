/** The app runner's grid-config reader: every paper preset parses; bad text gets a named error with the fix. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGridConfigText } from '../../src/core/experiments/config.ts';

const PRESETS = join(import.meta.dirname, '../../docs/presets');

describe('grid config text (the app runner)', () => {
  it('reads every paper preset, setting aside what only the CLI uses', () => {
    for (const f of readdirSync(PRESETS)) {
      const text = readFileSync(join(PRESETS, f), 'utf8');
      const r = parseGridConfigText(text, f);
      expect(r.spec.heads.length, f).toBeGreaterThan(0);
      expect(r.setAside, f).toEqual(['about', 'columns', 'title']);
      expect(r.title, f).toBe(JSON.parse(text).title);
      expect(Object.keys(r.spec)).not.toContain('columns');
    }
  });

  it('names what is wrong and the fix', () => {
    const bad: [string, RegExp][] = [
      ['{not json', /the pasted config: is not JSON/],
      ['[1, 2]', /must hold one JSON object/],
      ['{"generators": ["memseg"], "seeds": [0], "heads": ["bce"], "seed": 1}', /unknown key "seed"/],
      ['{"generators": "memseg", "seeds": [0], "heads": ["bce"]}', /"generators" must be a list/],
      ['{"generators": ["gan"], "seeds": [0], "heads": ["bce"]}', /generators\[\]/],
      [
        '{"generators": ["memseg"], "seeds": [0], "heads": ["bce"], "sweep": {"realFraction": [0]}}',
        /realFraction/,
      ],
    ];
    for (const [text, re] of bad) {
      expect(() => parseGridConfigText(text)).toThrow(re);
      expect(() => parseGridConfigText(text)).toThrow(/GridConfigError: .* — fix: paste a grid config/);
    }
  });
});

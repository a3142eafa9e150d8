/**
 * The Paint tab's generator form right after a generator switch: the form may still hold the previous
 * generator's values, under keys the new schema gives another kind (a nullable number left at null where the new
 * generator has a range). It draws the new schema's defaults for those instead of throwing.
 */
import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import { getGenerator } from '../../src/core/synth/index.ts';
import OptionsForm from '../../src/ui/generate/OptionsForm.svelte';

describe('OptionsForm after a generator switch', () => {
  it('every generator draws over every other generator’s defaults, and over nulls', () => {
    const names = ['memseg', 'random_walk', 'cutpaste', 'blur'];
    for (const to of names) {
      const specs = getGenerator(to).schema.options;
      for (const from of names) {
        const prev = Object.fromEntries(getGenerator(from).schema.options.map((s) => [s.key, s.default]));
        expect(
          () => render(OptionsForm, { props: { specs, values: prev } }),
          `${from} → ${to}`,
        ).not.toThrow();
      }
      const nulls = Object.fromEntries(specs.map((s) => [s.key, null]));
      const html = render(OptionsForm, { props: { specs, values: nulls } }).body;
      expect(html, to).toContain('data-testid="gen-options"');
    }
    // Random-walk's nullable ranges (length, width, momentum) draw an "auto" switch, on by default.
    const rw = render(OptionsForm, {
      props: { specs: getGenerator('random_walk').schema.options, values: {} },
    }).body;
    for (const k of ['length', 'width', 'momentum'])
      expect(rw).toMatch(
        new RegExp(`checked[^>]*data-testid="gen-opt-${k}-auto"|data-testid="gen-opt-${k}-auto"[^>]*checked`),
      );
  });
});

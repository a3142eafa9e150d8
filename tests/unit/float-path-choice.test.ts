/**
 * The Train tab's float-path choice (`src/ui/train/float-path.ts`, `FloatPathChoice.svelte`): every preference
 * the features engine accepts is offered, the component renders them with the loaded backbone's outcome, and the
 * outcome line says what runs and why — with "auto"'s own reason from the engine.
 */
import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import FloatPathChoice from '../../src/ui/train/FloatPathChoice.svelte';
import { FLOAT_PATH_CHOICES, floatPathOutcome } from '../../src/ui/train/float-path.ts';
import type { BackboneInfo, FloatPathPreference } from '../../workers/features.engine.ts';

describe('float-path choice', () => {
  it('offers exactly the preferences the engine accepts', () => {
    // A compile-time list of FloatPathPreference: adding one to the engine without the UI fails here.
    const all: Record<FloatPathPreference, true> = { auto: true, off: true, fp32: true, fp16: true };
    expect(FLOAT_PATH_CHOICES.map((c) => c.value).sort()).toEqual(Object.keys(all).sort());
  });

  it('says what the loaded backbone runs and why', () => {
    expect(floatPathOutcome(null)).toBe('');
    expect(
      floatPathOutcome({
        floatPath: 'fp32',
        floatPathReason: 'auto: measured: float path (fp32) 40 ms vs int8 210 ms per image',
      }),
    ).toBe('auto picked its float path (fp32): measured: float path (fp32) 40 ms vs int8 210 ms per image');
    expect(floatPathOutcome({ floatPath: 'off', floatPathReason: 'auto: int8 graph measured faster' })).toBe(
      'auto picked the graph as it is: int8 graph measured faster',
    );
    expect(
      floatPathOutcome({
        floatPath: 'fp32',
        floatPathReason: 'fp16 asked; fp32: wasm has no fp16 arithmetic',
      }),
    ).toBe('runs its float path (fp32): fp16 asked; fp32: wasm has no fp16 arithmetic');
    expect(floatPathOutcome({ floatPath: 'off', floatPathReason: '' })).toBe('runs the graph as it is');
    expect(
      floatPathOutcome({
        floatPath: 'fp32',
        floatExecutor: 'tfjs',
        floatPathReason: 'auto: measured: float path (fp32, tfjs XNNPACK) 20 ms vs int8 30 ms per image',
      }),
    ).toBe(
      'auto picked its float path (fp32, tfjs XNNPACK): measured: float path (fp32, tfjs XNNPACK) 20 ms vs int8 30 ms per image',
    );
  });

  it('renders the select with the chosen value and the outcome of the loaded backbone', () => {
    const info = {
      floatPath: 'fp32',
      floatPathReason: 'auto: measured: float path (fp32) 40 ms vs int8 210 ms per image',
    } as BackboneInfo;
    const { body } = render(FloatPathChoice, { props: { value: 'fp16', info } });
    expect(body).toMatch(/data-testid="backbone-floatpath-choice"/);
    for (const c of FLOAT_PATH_CHOICES) expect(body).toContain(`value="${c.value}"`);
    expect(body).toMatch(/<option value="fp16"[^>]*selected/);
    expect(body).toMatch(/data-testid="backbone-floatpath-outcome" data-path="fp32"/);
    expect(body).toContain('auto picked its float path (fp32)');
    expect(render(FloatPathChoice, { props: { value: 'auto', info: null } }).body).not.toContain(
      'backbone-floatpath-outcome',
    );
  });
});

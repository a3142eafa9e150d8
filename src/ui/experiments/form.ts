/**
 * Pure parts of the experiment runner's form: which diffusion settings it edits, and the grid's `headOptions`
 * from each trained head's form values (only what differs from the head's schema defaults).
 */
import { HEAD_OPTION_FIELDS } from '../../core/experiments/head-options.ts';
import type { HeadChoice } from '../../core/experiments/types.ts';
import { changedFields, resolveFields } from '../../core/fields.ts';

/** The diffusion settings a grid stores (the rest of the Paint tab's settings are per click). */
export const EXPERIMENT_DIFFUSION_KEYS = ['steps', 'guidanceScale', 'strength'] as const;

export type TrainedHead = 'bce' | 'spatial' | 'cse';
export const isTrainedHead = (h: HeadChoice): h is TrainedHead =>
  h === 'bce' || h === 'spatial' || h === 'cse';

/**
 * `headOptions` for the chosen heads: values that differ from the schema defaults, without `epochs` (the grid's
 * own `epochs` field sets those). An untouched form gives `undefined`, so cell ids match a grid without options.
 */
export function gridHeadOptions(
  heads: readonly HeadChoice[],
  values: Readonly<Record<TrainedHead, Record<string, unknown>>>,
): Partial<Record<HeadChoice, Record<string, unknown>>> | undefined {
  const out: Partial<Record<HeadChoice, Record<string, unknown>>> = {};
  for (const h of heads) {
    if (!isTrainedHead(h)) continue;
    const { epochs: _e, ...rest } = changedFields(HEAD_OPTION_FIELDS[h], values[h]);
    if (Object.keys(rest).length) out[h] = rest;
  }
  return Object.keys(out).length ? out : undefined;
}

/** Throws the first bad head option by name (`cse.k must be an integer in [1, 64], got NaN`). */
export function checkHeadOptions(
  heads: readonly HeadChoice[],
  values: Readonly<Record<TrainedHead, Record<string, unknown>>>,
): void {
  for (const h of heads) if (isTrainedHead(h)) resolveFields(HEAD_OPTION_FIELDS[h], values[h], h);
}

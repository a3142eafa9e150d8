/**
 * The threshold policy schema: the modes, their labels and the `maxFpr` limit, read by the Train tab, the
 * experiment runner and the grid config. Test-set tuning is offered, and always labelled "tuned on test".
 */
import { InvalidArgumentError } from '../errors.ts';
import { checkNumber, jsonSchemaOfField, numberField, type FormSchema } from '../fields.ts';
import type { ThresholdPolicy } from './types.ts';

/** The modes a cell's form offers (the panel's re-thresholding adds test-FPR and fixed thresholds). */
export type ThresholdMode = Exclude<ThresholdPolicy['mode'], 'test-fpr' | 'given'>;

export const THRESHOLD_FIELDS: FormSchema = [
  {
    key: 'mode',
    kind: 'enum',
    choices: [
      { value: 'val-best-f1', label: 'best F1 on validation' },
      { value: 'val-fpr', label: 'target FPR on validation' },
      { value: 'test-best-f1', label: 'best F1 on test (tuned on test)' },
    ],
    default: 'val-best-f1',
    label: 'Threshold',
    help: 'where the decision threshold is chosen; tuning on test makes the test metrics optimistic',
  },
  {
    key: 'maxFpr',
    kind: 'number',
    min: 0,
    max: 1,
    default: 0.05,
    label: 'max FPR',
    help: 'largest false-positive rate on the validation normals (target-FPR mode)',
  },
];

const MODE = THRESHOLD_FIELDS[0] as Extract<(typeof THRESHOLD_FIELDS)[number], { kind: 'enum' }>;
export const THRESHOLD_MODES: readonly { value: ThresholdMode; label: string }[] = MODE.choices as readonly {
  value: ThresholdMode;
  label: string;
}[];
export const MAX_FPR = numberField(THRESHOLD_FIELDS, 'maxFpr');
export const DEFAULT_MAX_FPR = MAX_FPR.default;

/** The policy a form's (mode, maxFpr) stands for; `maxFpr` only travels with the mode that reads it. */
export function thresholdPolicy(
  mode: string,
  maxFpr: number = DEFAULT_MAX_FPR,
  where = 'threshold',
): ThresholdPolicy {
  if (!THRESHOLD_MODES.some((m) => m.value === mode))
    throw new InvalidArgumentError(`${where}.mode`, THRESHOLD_MODES.map((m) => m.value).join(' | '), mode);
  if (mode === 'val-fpr') return { mode, maxFpr: checkNumber(MAX_FPR, maxFpr, `${where}.maxFpr`) };
  return { mode: mode as 'val-best-f1' | 'test-best-f1' };
}

/** JSON Schema of a policy object (grid config `threshold`): the same modes and `maxFpr` limits. */
export const THRESHOLD_POLICY_JSON_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: {
    mode: jsonSchemaOfField(MODE),
    maxFpr: jsonSchemaOfField(MAX_FPR),
  },
} as const;

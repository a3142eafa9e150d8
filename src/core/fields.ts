/**
 * Form schemas for settings that are not generator options: diffusion settings, head options, threshold
 * policies. One schema per setting drives its defaults, its limits, its labels, the validation (errors name the
 * field the way the user wrote it) and the JSON Schema the server and the grid config check, so the panels, the
 * grid file and the HTTP routes cannot drift apart (the diffusion steps limit once read 150, 200 and 1000).
 * The pattern is the generator option schema's (`synth/options.ts`); these settings also need text fields and
 * labelled choices, which generator options never have.
 */
import { InvalidArgumentError } from './errors.ts';

interface FieldBase {
  key: string;
  label: string;
  help: string;
  /** Shown behind "more options" in forms: rarely changed. */
  advanced?: boolean;
}

export interface NumberField extends FieldBase {
  kind: 'number';
  min: number;
  max: number;
  integer?: boolean;
  /** The bound itself is not allowed (strength > 0, learning rate > 0). */
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  default: number;
}

export interface EnumField extends FieldBase {
  kind: 'enum';
  choices: readonly { value: string; label: string }[];
  default: string;
}

export type FieldSpec =
  | NumberField
  | EnumField
  | (FieldBase & { kind: 'boolean'; default: boolean })
  | (FieldBase & { kind: 'text'; multiline?: boolean; default: string });

export type FormSchema = readonly FieldSpec[];

/** The defaults of a schema as a plain object (what a form shows before anyone edits it). */
export function schemaDefaults<T = Record<string, unknown>>(fields: FormSchema): T {
  return Object.fromEntries(fields.map((f) => [f.key, f.default])) as T;
}

/** The field `key` of a schema; a missing key is a programming error, named. */
export function fieldOf(fields: FormSchema, key: string): FieldSpec {
  const f = fields.find((x) => x.key === key);
  if (!f) throw new InvalidArgumentError('field', `one of ${fields.map((x) => x.key).join(', ')}`, key);
  return f;
}

/** The number field `key` (its limits are what forms, routes and validators read). */
export function numberField(fields: FormSchema, key: string): NumberField {
  const f = fieldOf(fields, key);
  if (f.kind !== 'number') throw new InvalidArgumentError(`field ${key}`, 'a number field', f.kind);
  return f;
}

/** "an integer in [1, 1000]", "a number in (0, 1]": the allowed values in words, for error messages. */
export function describeNumber(f: NumberField): string {
  return `${f.integer ? 'an integer' : 'a number'} in ${f.exclusiveMin ? '(' : '['}${f.min}, ${f.max}${f.exclusiveMax ? ')' : ']'}`;
}

/** Checks one number against its field; `name` is how the error names it (`diffusion.steps`). */
export function checkNumber(f: NumberField, v: unknown, name = f.key): number {
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (f.exclusiveMin ? v > f.min : v >= f.min) &&
    (f.exclusiveMax ? v < f.max : v <= f.max) &&
    (!f.integer || Number.isInteger(v));
  if (!ok) throw new InvalidArgumentError(name, describeNumber(f), v);
  return v;
}

function checkField(f: FieldSpec, v: unknown, name: string): unknown {
  switch (f.kind) {
    case 'number':
      return checkNumber(f, v, name);
    case 'boolean':
      if (typeof v !== 'boolean') throw new InvalidArgumentError(name, 'true or false', v);
      return v;
    case 'text':
      if (typeof v !== 'string') throw new InvalidArgumentError(name, 'a string', v);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !f.choices.some((c) => c.value === v))
        throw new InvalidArgumentError(name, `one of ${f.choices.map((c) => c.value).join(', ')}`, v);
      return v;
  }
}

/**
 * Fills defaults and validates `given` against `fields`. Unknown keys are errors, so a misspelt option
 * (`learningrate`) is not silently ignored. `where` prefixes every name in errors (`cse.epochs`).
 */
export function resolveFields<T = Record<string, unknown>>(
  fields: FormSchema,
  given: Record<string, unknown> | undefined,
  where = '',
): T {
  const at = (k: string) => (where ? `${where}.${k}` : k);
  const g = given ?? {};
  if (typeof g !== 'object' || Array.isArray(g))
    throw new InvalidArgumentError(where || 'options', 'an object', g);
  for (const k of Object.keys(g))
    if (g[k] !== undefined && !fields.some((f) => f.key === k))
      throw new InvalidArgumentError(
        at(k),
        `one of the known keys ${fields.map((f) => f.key).join(', ')}`,
        k,
      );
  const out: Record<string, unknown> = {};
  for (const f of fields)
    out[f.key] = g[f.key] === undefined ? f.default : checkField(f, g[f.key], at(f.key));
  return out as T;
}

/** The values that differ from the schema's defaults (what a stored config needs; keeps ids of untouched runs). */
export function changedFields(fields: FormSchema, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields)
    if (values[f.key] !== undefined && values[f.key] !== f.default) out[f.key] = values[f.key];
  return out;
}

/** JSON Schema (draft-07, as fastify's ajv reads it) of one field: the same limits the validator applies. */
export function jsonSchemaOfField(f: FieldSpec): Record<string, unknown> {
  switch (f.kind) {
    case 'number':
      return {
        type: f.integer ? 'integer' : 'number',
        [f.exclusiveMin ? 'exclusiveMinimum' : 'minimum']: f.min,
        [f.exclusiveMax ? 'exclusiveMaximum' : 'maximum']: f.max,
      };
    case 'boolean':
      return { type: 'boolean' };
    case 'text':
      return { type: 'string' };
    case 'enum':
      return { type: 'string', enum: f.choices.map((c) => c.value) };
  }
}

/** JSON Schema of an object of these fields (all optional: defaults fill the rest; unknown keys refused). */
export function jsonSchemaOf(fields: FormSchema): {
  type: 'object';
  additionalProperties: false;
  properties: Record<string, Record<string, unknown>>;
} {
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(fields.map((f) => [f.key, jsonSchemaOfField(f)])),
  };
}

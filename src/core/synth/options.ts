/**
 * Option schemas of the generators. One schema per generator drives three things: the defaults (so
 * `fn(image, {}, seed)` works), the validation (every value checked, errors name the option the way the user
 * wrote it: `blend_factor must be in [0, 1], got 1.4`) and the form a UI draws to edit the options.
 * Option names follow anomalib where they mean the same thing (`blend_factor`, `probability`, `rotation_range`).
 */
import { InvalidArgumentError } from '../errors.ts';
import type { RasterImage } from '../image.ts';

/** A closed interval; a single number given for a range option means [v, v]. */
export type Range = readonly [number, number];

interface SpecBase {
  key: string;
  label: string;
  help: string;
}

export type OptionSpec = SpecBase &
  (
    | {
        kind: 'number';
        min: number;
        max: number;
        integer?: boolean;
        nullable?: boolean;
        default: number | null;
      }
    /** A closed interval [lo, hi]; `nullable` ranges accept null ("the generator decides"). */
    | {
        kind: 'range';
        min: number;
        max: number;
        integer?: boolean;
        nullable?: boolean;
        default: Range | null;
      }
    | { kind: 'enum'; choices: readonly string[]; default: string }
    | { kind: 'enumList'; choices: readonly string[]; default: readonly string[] }
    | { kind: 'boolean'; default: boolean }
    /** A single-channel mask the size of the image (non-zero = inside), or null. */
    | { kind: 'mask'; default: null }
    /** A list of images of any size and channel count (textures); empty = none. */
    | { kind: 'images'; default: readonly RasterImage[] }
  );

/** What a UI or the experiment runner needs to list a generator (serializable: no functions). */
export interface GeneratorSchema {
  name: string;
  title: string;
  description: string;
  options: readonly OptionSpec[];
}

function fmtRange(min: number, max: number, integer?: boolean): string {
  return `${integer ? 'an integer ' : ''}in [${min}, ${max}]`;
}

function checkScalar(key: string, v: unknown, min: number, max: number, integer?: boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v)))
    throw new InvalidArgumentError(key, fmtRange(min, max, integer), v);
  return v;
}

/**
 * Fills defaults and validates `options` against `specs`. Unknown keys are rejected too, so a typo
 * (`blend_facter`) is an error instead of a silently ignored option.
 * `size` is the image size masks must match.
 */
export function resolveOptions<T>(
  specs: readonly OptionSpec[],
  options: Record<string, unknown> | undefined,
  size: { width: number; height: number },
): T {
  const given = options ?? {};
  if (typeof given !== 'object' || Array.isArray(given))
    throw new InvalidArgumentError('options', 'an object', given);
  const known = new Set(specs.map((s) => s.key));
  for (const k of Object.keys(given)) {
    if (!known.has(k) && given[k] !== undefined)
      throw new InvalidArgumentError(`option ${k}`, `one of ${[...known].join(', ')}`, k);
  }
  const out: Record<string, unknown> = {};
  for (const s of specs) {
    const v = given[s.key];
    if (v === undefined) {
      out[s.key] = s.default;
      continue;
    }
    switch (s.kind) {
      case 'number':
        out[s.key] = v === null && s.nullable ? null : checkScalar(s.key, v, s.min, s.max, s.integer);
        break;
      case 'range': {
        if (v === null && s.nullable) {
          out[s.key] = null;
          break;
        }
        const pair = typeof v === 'number' ? [v, v] : v;
        if (!Array.isArray(pair) || pair.length !== 2)
          throw new InvalidArgumentError(
            s.key,
            `a number or [lo, hi] ${fmtRange(s.min, s.max, s.integer)}`,
            v,
          );
        const lo = checkScalar(s.key, pair[0], s.min, s.max, s.integer);
        const hi = checkScalar(s.key, pair[1], s.min, s.max, s.integer);
        if (lo > hi) throw new InvalidArgumentError(s.key, 'an interval [lo, hi] with lo ≤ hi', v);
        out[s.key] = [lo, hi] as Range;
        break;
      }
      case 'enum':
        if (typeof v !== 'string' || !s.choices.includes(v))
          throw new InvalidArgumentError(s.key, `one of ${s.choices.join(', ')}`, v);
        out[s.key] = v;
        break;
      case 'enumList':
        if (
          !Array.isArray(v) ||
          v.length === 0 ||
          v.some((x) => typeof x !== 'string' || !s.choices.includes(x))
        )
          throw new InvalidArgumentError(s.key, `a non-empty list drawn from ${s.choices.join(', ')}`, v);
        out[s.key] = [...new Set(v as string[])];
        break;
      case 'boolean':
        if (typeof v !== 'boolean') throw new InvalidArgumentError(s.key, 'true or false', v);
        out[s.key] = v;
        break;
      case 'mask':
        out[s.key] = v === null ? null : checkMask(s.key, v, size);
        break;
      case 'images': {
        if (!Array.isArray(v)) throw new InvalidArgumentError(s.key, 'a list of images', v);
        v.forEach((img, i) => checkImage(`${s.key}[${i}]`, img));
        out[s.key] = v;
        break;
      }
    }
  }
  return out as T;
}

function isRaster(v: unknown): v is RasterImage {
  if (!v || typeof v !== 'object') return false;
  const r = v as Partial<RasterImage>;
  return (
    Number.isInteger(r.width) &&
    Number.isInteger(r.height) &&
    (r.channels === 1 || r.channels === 3 || r.channels === 4) &&
    r.data instanceof Uint8ClampedArray
  );
}

/** Validates an input image: a RasterImage whose buffer matches its declared size. */
export function checkImage(key: string, v: unknown): RasterImage {
  if (!isRaster(v))
    throw new InvalidArgumentError(key, 'a RasterImage { width, height, channels: 1 | 3 | 4, data }', v);
  if (v.width <= 0 || v.height <= 0 || v.data.length !== v.width * v.height * v.channels)
    throw new InvalidArgumentError(
      `${key}.data.length`,
      `${v.width}×${v.height}×${v.channels} = ${v.width * v.height * v.channels}`,
      v.data.length,
    );
  return v;
}

/** Validates a region mask: single channel, the size of the image. */
export function checkMask(key: string, v: unknown, size: { width: number; height: number }): RasterImage {
  const m = checkImage(key, v);
  if (m.channels !== 1)
    throw new InvalidArgumentError(`${key}.channels`, '1 (a single-channel mask)', m.channels);
  if (m.width !== size.width || m.height !== size.height)
    throw new InvalidArgumentError(
      `${key} size`,
      `${size.width}×${size.height} (the image's)`,
      `${m.width}×${m.height}`,
    );
  return m;
}

/** Seeds are integers (≥ 0) or strings, as `Rng` takes them. */
export function checkSeed(seed: unknown): number | string {
  if (typeof seed === 'string') return seed;
  if (typeof seed === 'number' && Number.isInteger(seed) && seed >= 0) return seed;
  throw new InvalidArgumentError('seed', 'a non-negative integer or a string', seed);
}

/** The defaults of a schema as a plain object (what a UI shows before the user edits anything). */
export function defaultOptions(specs: readonly OptionSpec[]): Record<string, unknown> {
  return Object.fromEntries(specs.map((s) => [s.key, s.default]));
}

/**
 * Options every generator shares: where a defect may go (region mask ∩ foreground) and how many draws it gets
 * before `MaskUnsatisfiableError`. Generators extend this; `placementSpecs` is its schema.
 */
export interface PlacementOptions {
  /** Where the defect may go: single-channel [H, W, 1], non-zero = allowed; null = anywhere. */
  region_mask: RasterImage | null;
  /** Foreground = gray > threshold (≤ when inverted); null = whole image. */
  foreground_threshold: number | null;
  foreground_invert: boolean;
  /** Draws (masks, placements, walks) tried before giving up. */
  max_attempts: number;
}

/** Options of a rotated, thresholded Perlin mask (MemSeg, blur, region masks); `perlinMaskSpecs` is its schema. */
export interface PerlinMaskOptions {
  /** Exponents k of the Perlin lattice size 2^k per axis, integers in [lo, hi] (DRAEM: randint(0, 6)). */
  perlin_scale: Range;
  /** Rotation of the noise in degrees. */
  rotation_range: Range;
  /** Noise threshold: mask = noise > threshold (noise ∈ [−1, 1]). */
  threshold: number;
}

/** The `max_attempts` spec; `help` says what one attempt is for this generator. */
export function maxAttemptsSpec(help: string): OptionSpec {
  return {
    key: 'max_attempts',
    kind: 'number',
    min: 1,
    max: 1000,
    integer: true,
    default: 50,
    label: 'Max attempts',
    help,
  };
}

/** The `region_mask` spec; `help` names what must stay inside (the defect, the patch). */
export function regionMaskSpec(help = 'painted region the defect must stay inside'): OptionSpec {
  return { key: 'region_mask', kind: 'mask', default: null, label: 'Region mask', help };
}

/** The `foreground_threshold` and `foreground_invert` specs, in that order. */
export function foregroundSpecs(
  invertHelp = 'foreground is gray ≤ threshold',
): [foregroundThreshold: OptionSpec, foregroundInvert: OptionSpec] {
  return [
    {
      key: 'foreground_threshold',
      kind: 'number',
      min: 0,
      max: 255,
      nullable: true,
      default: null,
      label: 'Foreground threshold',
      help: 'defects only where gray > threshold (null: everywhere)',
    },
    {
      key: 'foreground_invert',
      kind: 'boolean',
      default: false,
      label: 'Invert foreground',
      help: invertHelp,
    },
  ];
}

/**
 * The `PlacementOptions` specs in the usual form order: region_mask, foreground_threshold, foreground_invert,
 * max_attempts. Only the help texts differ between generators.
 */
export function placementSpecs(help: { attempts: string; region?: string }): OptionSpec[] {
  return [regionMaskSpec(help.region), ...foregroundSpecs(), maxAttemptsSpec(help.attempts)];
}

/**
 * The `PerlinMaskOptions` specs, in form order: perlin_scale, rotation_range, threshold. Defaults and texts are
 * the generator's; the bounds (k ∈ [0, 8], ±180°, threshold ∈ [−1, 1]) are shared.
 */
export function perlinMaskSpecs(
  defaults: { perlin_scale: Range; threshold: number },
  text: { scaleHelp?: string; rotationHelp?: string; thresholdLabel?: string; thresholdHelp?: string } = {},
): [perlinScale: OptionSpec, rotationRange: OptionSpec, threshold: OptionSpec] {
  return [
    {
      key: 'perlin_scale',
      kind: 'range',
      min: 0,
      max: 8,
      integer: true,
      default: defaults.perlin_scale,
      label: 'Perlin scale exponent',
      help: text.scaleHelp ?? 'lattice size 2^k per axis',
    },
    {
      key: 'rotation_range',
      kind: 'range',
      min: -180,
      max: 180,
      default: [-90, 90],
      label: 'Rotation (°)',
      help: text.rotationHelp ?? 'rotation of the noise pattern',
    },
    {
      key: 'threshold',
      kind: 'number',
      min: -1,
      max: 1,
      default: defaults.threshold,
      label: text.thresholdLabel ?? 'Noise threshold',
      help: text.thresholdHelp ?? 'higher → smaller regions',
    },
  ];
}

/**
 * A grid config (the CLI's `experiment --config` JSON, a paper preset of docs/presets) as the app's experiment
 * runner reads it: pasted or loaded from a file. Pure, so it runs in the browser (the CLI and the server check
 * the same file with the JSON schema of `server/grid-config.ts` first). The app runs on its own dataset and
 * backbone, so `data` and `backbone` are read and set aside, as are the table's `title`, `columns` and `about`.
 */
import { DefectLabError, errorInfo } from '../errors.ts';
import { promptPool } from '../diffusion/plan.ts';
import { DIAG_PRESET } from '../diffusion/settings.ts';
import { validateGrid, type GridSpec } from './grid.ts';

export class GridConfigTextError extends DefectLabError {
  constructor(source: string, problem: string, fix: string, options?: { cause?: unknown }) {
    super('GridConfigError', `${source}: ${problem}`, fix, options);
  }
}

const SPEC_KEYS = new Set<string>([
  'generators',
  'nAug',
  'seeds',
  'heads',
  'fewShot',
  'stream',
  'realProbability',
  'epochs',
  'threshold',
  'valFraction',
  'inOut',
  'diffusion',
  'headOptions',
  'baselines',
  'sweep',
  'augmentReal',
]);
/** Keys of a CLI config that the app sets aside (its own dataset, backbone and table layout). */
const SET_ASIDE = new Set<string>(['data', 'backbone', 'title', 'columns', 'about']);

const FIX =
  'paste a grid config as docs/experiments.md describes, e.g. {"generators": ["memseg"], "nAug": [20], "seeds": [0, 1], "heads": ["bce"]}';

/** The spec of a grid config text, and what the app set aside; named errors (`GridConfigError`) otherwise. */
export function parseGridConfigText(
  text: string,
  source = 'the pasted config',
): { spec: GridSpec; setAside: string[]; title?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new GridConfigTextError(source, `is not JSON (${errorInfo(e).message})`, FIX);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new GridConfigTextError(source, 'must hold one JSON object', FIX);
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !SPEC_KEYS.has(k) && !SET_ASIDE.has(k));
  if (unknown.length) throw new GridConfigTextError(source, `has an unknown key "${unknown[0]}"`, FIX);
  const spec: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (SPEC_KEYS.has(k)) spec[k] = o[k];
  spec.nAug ??= [];
  for (const k of ['generators', 'seeds', 'heads', 'nAug'])
    if (!Array.isArray(spec[k])) throw new GridConfigTextError(source, `"${k}" must be a list`, FIX);
  try {
    // Diffusion settings may leave the model to the run (the first model the Models tab cached) and the rest to
    // DIAG's defaults, as the engine completes them (`prepareDiffusionGrid`).
    const d = DIAG_PRESET;
    validateGrid({
      ...(spec as unknown as GridSpec),
      ...(spec.diffusion
        ? {
            diffusion: {
              model: '(first available)',
              prompts: promptPool(d),
              negativePrompt: d.negativePrompt,
              steps: d.steps,
              guidanceScale: d.guidanceScale,
              strength: d.strength,
              masks: 'auto',
              ...(spec.diffusion as object),
            } as GridSpec['diffusion'],
          }
        : {}),
    });
  } catch (e) {
    // One "— fix:" per message: the field's problem, then the example config and the field's own fix.
    if (e instanceof DefectLabError) {
      const problem = e.message.slice(e.code.length + 2).split(' — fix: ')[0];
      throw new GridConfigTextError(source, problem, e.fix ? `${FIX}; for this field: ${e.fix}` : FIX, {
        cause: e,
      });
    }
    throw new GridConfigTextError(source, errorInfo(e).message, FIX, { cause: e });
  }
  return {
    spec: spec as unknown as GridSpec,
    setAside: Object.keys(o)
      .filter((k) => SET_ASIDE.has(k))
      .sort(),
    ...(typeof o.title === 'string' ? { title: o.title } : {}),
  };
}

/**
 * Forms from schemas (issue 10, item 4): one schema each for diffusion settings, head options and threshold
 * policies, read by the panels, the grid config, the server routes and the runtime heads.
 *
 * The limits are checked against ajv (fastify's validator, which the grid config and the routes run) as the
 * reference: for every number field, values at, inside and just outside each bound must be accepted by the core
 * validator exactly when ajv accepts them under the JSON Schema the same field produces.
 */
import Fastify, { type FastifyRequest } from 'fastify';
import { render } from 'svelte/server';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../server/app.ts';
import { GRID_CONFIG_SCHEMA, parseGridConfig } from '../../server/grid-config.ts';
import { DEFAULT_SETTINGS, planSamples } from '../../src/core/diffusion/plan.ts';
import { generate } from '../../src/core/diffusion/pipeline.ts';
import { DIFFUSION_FIELDS, DIFFUSION_STEPS } from '../../src/core/diffusion/settings.ts';
import { fakeDiffusionModels, fakeTokenizer } from '../../src/core/diffusion/testing.ts';
import { validateDiffusionOptions } from '../../src/core/experiments/grid.ts';
import type { DiffusionGenOptions } from '../../src/core/experiments/types.ts';
import {
  BCE_FIELDS,
  CSE_FIELDS,
  HEAD_OPTION_FIELDS,
  SPATIAL_FIELDS,
} from '../../src/core/experiments/head-options.ts';
import {
  MAX_FPR,
  THRESHOLD_MODES,
  THRESHOLD_POLICY_JSON_SCHEMA,
  thresholdPolicy,
} from '../../src/core/experiments/threshold-policy.ts';
import {
  changedFields,
  checkNumber,
  jsonSchemaOf,
  numberField,
  resolveFields,
  schemaDefaults,
  type FormSchema,
  type NumberField,
} from '../../src/core/fields.ts';
import { createRaster } from '../../src/core/image.ts';
import { SUPERVISED_DEFAULTS, supervisedOptions } from '../../src/runtime/heads/common.ts';
import { CSE_DEFAULTS, cseOptions } from '../../src/runtime/heads/cse.ts';
import SchemaForm from '../../src/ui/components/SchemaForm.svelte';
import DiffusionPanel from '../../src/ui/diffusion/DiffusionPanel.svelte';
import ExperimentsPanel from '../../src/ui/experiments/ExperimentsPanel.svelte';
import { EXPERIMENT_DIFFUSION_KEYS } from '../../src/ui/experiments/form.ts';
import type { ExperimentsApi } from '../../workers/experiments.engine.ts';

const validators = new Map<object, ReturnType<typeof Fastify>>();

/** A strict ajv (no coercion, no defaults, like grid-config.ts) answering whether `value` fits `schema`. */
async function ajvAccepts(schema: object, value: unknown): Promise<boolean> {
  let app = validators.get(schema);
  if (!app) {
    app = Fastify({
      logger: false,
      ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    });
    app.post('/', { schema: { body: schema }, attachValidation: true }, async (req: FastifyRequest) => ({
      ok: !req.validationError,
    }));
    validators.set(schema, app);
  }
  const r = await app.inject({ method: 'POST', url: '/', payload: { v: value } as object });
  return (r.json() as { ok: boolean }).ok;
}

const probes = (f: NumberField) => [
  f.min,
  f.max,
  (f.min + f.max) / 2,
  f.min - 1e-9 * Math.max(1, Math.abs(f.min)),
  f.max + 1e-9 * Math.max(1, Math.abs(f.max)),
  f.min - 1,
  f.max + 1,
  f.min + 0.5,
];

const numberFields = (s: FormSchema) => s.filter((f): f is NumberField => f.kind === 'number');

/** The `max` attribute of the input with this data-testid / aria-label in server-rendered HTML. */
function maxOf(html: string, attr: string): number {
  const tag = html.match(new RegExp(`<input[^>]*${attr}[^>]*>`))?.[0];
  expect(tag, `an <input ${attr}>`).toBeDefined();
  return Number(tag!.match(/ max="([^"]+)"/)?.[1]);
}

describe('field schemas agree with ajv on every limit', () => {
  const schemas: [string, FormSchema][] = [
    ['diffusion', DIFFUSION_FIELDS],
    ['bce', BCE_FIELDS],
    ['spatial', SPATIAL_FIELDS],
    ['cse', CSE_FIELDS],
    ['knn', HEAD_OPTION_FIELDS.knn],
  ];
  for (const [name, fields] of schemas)
    it(`${name}: core validator ⇔ ajv on bounds ± ε, and the defaults pass both`, async () => {
      const defaults = schemaDefaults(fields);
      expect(resolveFields(fields, defaults)).toEqual(defaults);
      for (const f of numberFields(fields)) {
        const schema = {
          type: 'object',
          properties: { v: jsonSchemaOf(fields).properties[f.key] },
        };
        expect(await ajvAccepts(schema, f.default), `${name}.${f.key} default`).toBe(true);
        for (const v of probes(f)) {
          let core = true;
          try {
            checkNumber(f, v);
          } catch {
            core = false;
          }
          expect(core, `${name}.${f.key} = ${v}`).toBe(await ajvAccepts(schema, v));
        }
      }
    });

  it('unknown and out-of-range options are errors that name the field and the fix', () => {
    expect(() => resolveFields(CSE_FIELDS, { learningrate: 0.1 }, 'cse')).toThrow(
      /InvalidArgumentError: cse\.learningrate must be one of the known keys .*learningRate.* — fix:/,
    );
    expect(() => resolveFields(CSE_FIELDS, { epochs: NaN }, 'cse')).toThrow(
      'cse.epochs must be an integer in [1, 1000], got NaN',
    );
    expect(() => resolveFields(DIFFUSION_FIELDS, { strength: 0 })).toThrow(
      'strength must be a number in (0, 1]',
    );
    expect(changedFields(CSE_FIELDS, { ...schemaDefaults(CSE_FIELDS), k: 8 })).toEqual({ k: 8 });
  });
});

describe('head defaults live in the core schema and the runtime heads use them', () => {
  it('the runtime defaults are the schema defaults, and each passes the head’s own validator', () => {
    expect(SUPERVISED_DEFAULTS).toEqual(schemaDefaults(BCE_FIELDS));
    expect(CSE_DEFAULTS).toEqual(schemaDefaults(CSE_FIELDS));
    expect(supervisedOptions(schemaDefaults(SPATIAL_FIELDS))).toEqual(SUPERVISED_DEFAULTS);
    expect(cseOptions(schemaDefaults(CSE_FIELDS))).toEqual(CSE_DEFAULTS);
    // CSE and BCE differ where the CSE design says so (seed 004: λ = 10, k = 1, lr 1e-3, 20 epochs).
    expect([CSE_DEFAULTS.epochs, CSE_DEFAULTS.learningRate]).not.toEqual([
      SUPERVISED_DEFAULTS.epochs,
      SUPERVISED_DEFAULTS.learningRate,
    ]);
  });

  it('every number limit of the schema is accepted by the runtime validators (no form value they refuse)', () => {
    for (const f of numberFields(BCE_FIELDS))
      for (const v of [f.exclusiveMin ? f.min + 1e-6 : f.min, f.max])
        expect(() => supervisedOptions({ [f.key]: v }), `bce.${f.key} = ${v}`).not.toThrow();
    for (const f of numberFields(CSE_FIELDS))
      for (const v of [f.exclusiveMin ? f.min + 1e-6 : f.min, f.exclusiveMax ? f.max - 1e-6 : f.max])
        expect(() => cseOptions({ [f.key]: v }), `cse.${f.key} = ${v}`).not.toThrow();
  });

  it('the grid config checks headOptions against each head’s schema', async () => {
    const base = { generators: ['none'], seeds: [0], heads: ['cse'] };
    const ok = await parseGridConfig({ ...base, headOptions: { cse: { k: 8, lambda: 5 } } }, '/', 'g.json');
    expect(ok.headOptions).toEqual({ cse: { k: 8, lambda: 5 } });
    await expect(
      parseGridConfig({ ...base, headOptions: { cse: { kk: 8 } } }, '/', 'g.json'),
    ).rejects.toThrow(/GridConfigError: g\.json: \/headOptions\/cse has an unknown key "kk"/);
    await expect(parseGridConfig({ ...base, headOptions: { cse: { k: 0 } } }, '/', 'g.json')).rejects.toThrow(
      /\/headOptions\/cse\/k must be >= 1/,
    );
  });
});

describe('threshold policy schema', () => {
  it('builds the policies the grid accepts, maxFpr only with val-fpr, and names bad values', async () => {
    expect(thresholdPolicy('val-fpr', 0.1)).toEqual({ mode: 'val-fpr', maxFpr: 0.1 });
    expect(thresholdPolicy('test-best-f1', 0.1)).toEqual({ mode: 'test-best-f1' });
    expect(() => thresholdPolicy('val-fpr', 1.5)).toThrow(
      'threshold.maxFpr must be a number in [0, 1], got 1.5',
    );
    expect(() => thresholdPolicy('val-f1')).toThrow(
      /threshold\.mode must be val-best-f1 \| val-fpr \| test-best-f1/,
    );
    expect(GRID_CONFIG_SCHEMA.properties.threshold).toBe(THRESHOLD_POLICY_JSON_SCHEMA);
    // The metrics route reads the same maxFpr limit.
    const app = buildServer();
    const metrics = (maxFpr: number) =>
      app.inject({
        method: 'POST',
        url: '/api/metrics',
        payload: { scores: [0.1, 0.9], labels: [0, 1], maxFpr },
      });
    expect((await metrics(MAX_FPR.max)).statusCode).toBe(200);
    expect((await metrics(MAX_FPR.max + 0.5)).statusCode).toBe(400);
    for (const mode of ['val-best-f1', 'test-best-f1'])
      expect(
        await ajvAccepts({ type: 'object', properties: { v: THRESHOLD_POLICY_JSON_SCHEMA } }, { mode }),
      ).toBe(true);
  });
});

describe('the panels draw the schemas', () => {
  it('the experiment runner: threshold modes with their labels, epochs limits, per-head option forms', () => {
    const api = { diffusionModels: () => new Promise(() => undefined) } as unknown as ExperimentsApi;
    const html = render(ExperimentsPanel, { props: { datasetId: 'ds', api } }).body;
    for (const m of THRESHOLD_MODES)
      expect(html).toMatch(
        new RegExp(`<option value="${m.value}"[^>]*>${m.label.replace(/[()]/g, '\\$&')}</option>`),
      );
    expect(html).toContain('best F1 on test (tuned on test)');
    expect(maxOf(html, 'placeholder="per head"')).toBe(numberField(BCE_FIELDS, 'epochs').max);
    // BCE is the default head: its options form is there, drawn from the schema, epochs left to the grid field.
    expect(maxOf(html, 'aria-label="BCE Batch"')).toBe(numberField(BCE_FIELDS, 'batchSize').max);
    expect(html).not.toContain('aria-label="BCE Epochs"');
  });

  it('the Paint tab diffusion panel: guidance and strength limits, the defaults as values', () => {
    const html = render(DiffusionPanel, { props: { sourceImageIds: [], regionMaskIds: [] } }).body;
    expect(maxOf(html, 'data-testid="diffusion-guidance"')).toBe(
      numberField(DIFFUSION_FIELDS, 'guidanceScale').max,
    );
    expect(maxOf(html, 'data-testid="diffusion-count"')).toBe(numberField(DIFFUSION_FIELDS, 'count').max);
    const steps = html.match(/<input[^>]*data-testid="diffusion-steps"[^>]*>/)![0];
    expect(steps).toContain(`value="${DEFAULT_SETTINGS.steps}"`);
  });
});

describe('the diffusion steps limit is one number everywhere', () => {
  const N = DIFFUSION_STEPS.max;

  it('the Paint tab panel and the experiment runner’s diffusion form draw max = N', () => {
    const panel = render(DiffusionPanel, { props: { sourceImageIds: [], regionMaskIds: [] } }).body;
    expect(maxOf(panel, 'data-testid="diffusion-steps"')).toBe(N);
    const values = { steps: 30, guidanceScale: 20, strength: 0.99 };
    const runner = render(SchemaForm, {
      props: {
        fields: DIFFUSION_FIELDS,
        keys: EXPERIMENT_DIFFUSION_KEYS,
        values,
        ariaLabels: { steps: 'steps' },
      },
    }).body;
    expect(maxOf(runner, 'aria-label="steps"')).toBe(N);
  });

  it('the grid config schema and the core grid validator accept N and refuse N + 1', async () => {
    expect(GRID_CONFIG_SCHEMA.properties.diffusion.properties.steps).toMatchObject({ maximum: N });
    const grid = (steps: number) => ({
      generators: ['diffusion'],
      seeds: [0],
      heads: ['bce'],
      nAug: [1],
      diffusion: { model: 'tiny-sd-inpaint', steps },
    });
    await expect(parseGridConfig(grid(N), '/', 'g.json')).resolves.toBeDefined();
    await expect(parseGridConfig(grid(N + 1), '/', 'g.json')).rejects.toThrow(
      `/diffusion/steps must be <= ${N}`,
    );
    const d: Omit<DiffusionGenOptions, 'steps'> = {
      model: 'm',
      prompts: ['x'],
      negativePrompt: '',
      guidanceScale: 20,
      strength: 0.99,
      masks: 'auto',
    };
    expect(() => validateDiffusionOptions({ ...d, steps: N })).not.toThrow();
    expect(() => validateDiffusionOptions({ ...d, steps: N + 1 })).toThrow(
      `diffusion.steps must be an integer in [1, ${N}]`,
    );
  });

  it('the server route accepts N and answers N + 1 with 400', async () => {
    const seen: unknown[] = [];
    const app = buildServer({ diffusion: async (b) => (seen.push(b.steps), { ok: true }) });
    const post = (steps: number) =>
      app.inject({
        method: 'POST',
        url: '/api/diffusion/generate',
        payload: { image: 'x', mask: 'x', prompt: 'p', steps },
      });
    expect((await post(N)).statusCode).toBe(200);
    const bad = await post(N + 1);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/steps must be <= 1000/);
    expect(seen).toEqual([N]);
  });

  it('the pipeline refuses N + 1 with the same words', async () => {
    const image = createRaster(64, 64, 3);
    const mask = createRaster(64, 64, 1);
    mask.data.fill(255, 0, 64 * 16);
    const req = { image, mask, prompt: 'x', negativePrompt: '', guidanceScale: 1, strength: 1, seed: 1 };
    await expect(generate(fakeDiffusionModels(), fakeTokenizer, { ...req, steps: N + 1 })).rejects.toThrow(
      `steps must be an integer in [1, ${N}]`,
    );
    // The panel's batch planner reads the count limit from the same schema.
    expect(() =>
      planSamples({ images: 1, masks: 1, prompts: 1 }, DEFAULT_SETTINGS.count, 1, 'paired'),
    ).not.toThrow();
    expect(() => planSamples({ images: 1, masks: 1, prompts: 1 }, 1001, 1, 'paired')).toThrow(
      'count must be an integer in 1..1000',
    );
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DDIMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  SchedulerConfigError,
  SchedulerStateError,
  createScheduler,
} from '../../src/core/diffusion/schedulers.ts';
import type { SchedulerConfig } from '../../src/core/diffusion/types.ts';
import { Rng } from '../../src/core/rng.ts';

// diffusers' EulerDiscrete and DDIM run in torch float32 (../shared, read in place).
const golden = JSON.parse(
  readFileSync(new URL('../../../shared/reference/golden/scheduler-golden.json', import.meta.url), 'utf8'),
) as {
  config: SchedulerConfig;
  ddim_config: SchedulerConfig;
  euler: {
    num_inference_steps: number;
    timesteps: number[];
    sigmas: number[];
    init_noise_sigma: number;
    steps: {
      index: number;
      timestep: number;
      sample: number[];
      model_output: number[];
      scaled_model_input: number[];
      prev_sample: number[];
    }[];
  }[];
  ddim: {
    num_inference_steps: number;
    eta: number;
    timesteps: number[];
    steps: {
      index: number;
      timestep: number;
      sample: number[];
      model_output: number[];
      prev_sample: number[];
    }[];
  }[];
  inpaint_strength: {
    num_inference_steps: number;
    strength: number;
    timesteps: number[];
    original: number[];
    noise: number[];
    noisy_at_first_timestep: number[];
  }[];
};

/** Tolerance: 1e-5 relative (the golden file's), with a 1e-6 absolute floor for values that are ~0. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-5 * Math.abs(expected[i]) + 1e-6;
    if (!(Math.abs(actual[i] - expected[i]) <= tol))
      throw new Error(`${what}[${i}] = ${actual[i]}, reference ${expected[i]} (tolerance ${tol})`);
  }
}

const f32 = (a: number[]) => Float32Array.from(a);

describe('EulerDiscreteScheduler matches diffusers (SDXL config)', () => {
  for (const c of golden.euler) {
    it(`${c.num_inference_steps} steps: timesteps, sigmas, init_noise_sigma, scale_model_input, step`, () => {
      const s = new EulerDiscreteScheduler(golden.config);
      s.setTimesteps(c.num_inference_steps);
      expect(s.timesteps).toEqual(c.timesteps);
      expectClose(s.sigmas, c.sigmas, 'sigmas');
      expectClose([s.initNoiseSigma], [c.init_noise_sigma], 'initNoiseSigma');
      for (const st of c.steps) {
        expect(s.timesteps[st.index]).toBe(st.timestep);
        const x = f32(st.sample);
        expectClose(s.scaleModelInput(x, st.timestep), st.scaled_model_input, `scaled[${st.index}]`);
        expectClose(s.step(f32(st.model_output), st.timestep, x), st.prev_sample, `prev[${st.index}]`);
      }
    });
  }

  it('refuses a timestep outside the schedule and stepping before setTimesteps, by name', () => {
    const s = new EulerDiscreteScheduler(golden.config);
    expect(() => s.step(f32([1]), 951, f32([1]))).toThrow(SchedulerStateError);
    s.setTimesteps(20);
    expect(() => s.scaleModelInput(f32([1]), 950)).toThrow(/timestep 950 is not in the schedule.* — fix:/);
  });
});

describe('DDIMScheduler matches diffusers (SDXL config, eta 0)', () => {
  for (const c of golden.ddim) {
    it(`${c.num_inference_steps} steps: timesteps and step`, () => {
      const s = new DDIMScheduler(golden.ddim_config, c.eta);
      s.setTimesteps(c.num_inference_steps);
      expect(s.timesteps).toEqual(c.timesteps);
      expect(s.initNoiseSigma).toBe(1);
      for (const st of c.steps) {
        const x = f32(st.sample);
        expect(s.scaleModelInput(x, st.timestep)).toBe(x);
        expectClose(s.step(f32(st.model_output), st.timestep, x), st.prev_sample, `prev[${st.index}]`);
      }
    });
  }

  it('with eta > 0 draws its noise from the seeded Rng (same seed, same step) and needs one', () => {
    const s = new DDIMScheduler(golden.ddim_config, 1);
    s.setTimesteps(30);
    const x = f32([0.1, -0.2, 0.3, 0.4]);
    const e = f32([0.5, 0.1, -0.3, 0.2]);
    const a = s.step(e, 958, x, new Rng(3));
    const b = s.step(e, 958, x, new Rng(3));
    const c = s.step(e, 958, x, new Rng(4));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(() => s.step(e, 958, x)).toThrow(/rng must be a seeded Rng/);
  });
});

describe('inpainting strength rule (SDXL inpaint get_timesteps + add_noise at the begin index)', () => {
  for (const c of golden.inpaint_strength) {
    it(`${c.num_inference_steps} steps, strength ${c.strength}`, () => {
      const s = new EulerDiscreteScheduler(golden.config);
      const ts = s.inpaintTimesteps(c.num_inference_steps, c.strength);
      expect(ts).toEqual(c.timesteps);
      expectClose(s.addNoise(f32(c.original), f32(c.noise), ts[0]), c.noisy_at_first_timestep, 'noisy');
    });
  }

  it('after the cut, the first step uses the begin index, not a search from the top', () => {
    const s = new EulerDiscreteScheduler(golden.config);
    const ts = s.inpaintTimesteps(30, 0.75);
    const full = new EulerDiscreteScheduler(golden.config);
    full.setTimesteps(30);
    const k = full.timesteps.indexOf(ts[0]);
    const x = f32([1, 2]);
    const expected = x.map((v) => v / Math.sqrt(full.sigmas[k] ** 2 + 1));
    expectClose(s.scaleModelInput(x, ts[0]), expected, 'scaled at begin index');
  });

  it('rejects strengths outside (0, 1] and cuts that leave no step', () => {
    const s = new EulerDiscreteScheduler(golden.config);
    expect(() => s.inpaintTimesteps(30, 0)).toThrow(/strength must be in \(0, 1\]/);
    expect(() => s.inpaintTimesteps(30, 1.2)).toThrow(/strength/);
    expect(() => s.inpaintTimesteps(3, 0.2)).toThrow(/leaves no step/);
  });
});

describe('EulerAncestralDiscreteScheduler (no golden file: checked by its defining identities)', () => {
  const c = golden.euler[0];
  const zeroNoise = { normal: () => 0 } as unknown as Rng;

  it('shares Euler’s timesteps, sigmas and input scaling', () => {
    const s = new EulerAncestralDiscreteScheduler(golden.config);
    s.setTimesteps(c.num_inference_steps);
    expect(s.timesteps).toEqual(c.timesteps);
    expectClose(s.sigmas, c.sigmas, 'sigmas');
    const st = c.steps[0];
    expectClose(s.scaleModelInput(f32(st.sample), st.timestep), st.scaled_model_input, 'scaled');
  });

  it('without noise, steps to σ_down = √(σ₁² − σ_up²), σ_up = √(σ₁²(σ₀² − σ₁²)/σ₀²)', () => {
    const s = new EulerAncestralDiscreteScheduler(golden.config);
    s.setTimesteps(c.num_inference_steps);
    const [s0, s1] = s.sigmas;
    const up = Math.sqrt((s1 * s1 * (s0 * s0 - s1 * s1)) / (s0 * s0));
    const down = Math.sqrt(s1 * s1 - up * up);
    expect(down).toBeCloseTo((s1 * s1) / s0, 5);
    const st = c.steps[0];
    const x = f32(st.sample);
    const e = f32(st.model_output);
    // epsilon: x̂₀ = x − σ₀ε, so x + (x − x̂₀)/σ₀ · (σ_down − σ₀) = x + ε (σ_down − σ₀).
    const expected = Array.from(x, (v, i) => v + e[i] * (down - s0));
    expectClose(s.step(e, st.timestep, x, zeroNoise), expected, 'ancestral step');
  });

  it('adds seeded noise (same seed, same step) and lands on x̂₀ at the last step whatever the noise', () => {
    const run = (seed: number) => {
      const s = new EulerAncestralDiscreteScheduler(golden.config);
      s.setTimesteps(4);
      return s.step(f32([0.5, -1, 2]), s.timesteps[0], f32([3, 1, -2]), new Rng(seed));
    };
    expect(Array.from(run(1))).toEqual(Array.from(run(1)));
    expect(Array.from(run(1))).not.toEqual(Array.from(run(2)));
    const s = new EulerAncestralDiscreteScheduler(golden.config);
    s.setTimesteps(2);
    const x = f32([3, 1, -2]);
    const e = f32([0.5, -1, 2]);
    s.step(e, s.timesteps[0], x, new Rng(1));
    const last = s.step(e, s.timesteps[1], x, new Rng(9));
    const sigma = s.sigmas[1];
    expectClose(
      last,
      Array.from(x, (v, i) => v - sigma * e[i]),
      'last step = x̂₀',
    );
    expect(() => s.step(e, s.timesteps[1], x)).toThrow(/rng must be a seeded Rng/);
  });
});

describe('DPMSolverMultistepScheduler (DPM-Solver++; checked against DDIM and a closed-form ODE solution)', () => {
  for (const c of golden.ddim) {
    it(`its first-order step is the reference DDIM step (${c.num_inference_steps}-step DDIM golden)`, () => {
      // "leading" with n + 1 intervals: DPM(n − 1) has DDIM(n)'s timesteps (1000 // n spacing, offset 1).
      const s = new DPMSolverMultistepScheduler({ ...golden.ddim_config, solver_order: 2 });
      s.setTimesteps(c.num_inference_steps - 1);
      expect(s.timesteps.slice(0, 4)).toEqual(c.timesteps.slice(0, 4));
      expect(s.initNoiseSigma).toBe(1);
      const st = c.steps[0];
      expectClose(
        s.step(f32(st.model_output), st.timestep, f32(st.sample)),
        st.prev_sample,
        'DPM-Solver++(1)',
      );
    });
  }

  it('adds noise like DDIM (variance preserving) at the begin index', () => {
    const s = new DPMSolverMultistepScheduler(golden.ddim_config);
    const ts = s.inpaintTimesteps(29, 0.75);
    const d = new DDIMScheduler(golden.ddim_config);
    const x = f32([0.3, -1.2, 2]);
    const z = f32([1, 0.5, -0.7]);
    expectClose(s.addNoise(x, z, ts[0]), d.addNoise(x, z, ts[0]), 'add_noise');
  });

  it('heun 2M integrates an x̂₀ linear in λ exactly (closed form: σ_T ∫ e^λ (a + bλ) dλ)', () => {
    const s = new DPMSolverMultistepScheduler({
      ...golden.config,
      solver_type: 'heun',
      final_sigmas_type: 'sigma_min',
      lower_order_final: false,
    });
    s.setTimesteps(12);
    const vp = (sig: number) => {
      const alpha = 1 / Math.sqrt(sig * sig + 1);
      return { alpha, sigma: sig * alpha, lambda: Math.log(1 / sig) };
    };
    const a = f32([0.4, -0.8]);
    const b = f32([0.05, 0.02]);
    // The "model": ε consistent with x̂₀(λ) = a + bλ at the current noise level.
    const model = (x: Float32Array, sig: number) => {
      const { alpha, sigma, lambda } = vp(sig);
      return x.map((v, j) => (v - alpha * (a[j] + b[j] * lambda)) / sigma);
    };
    let x: Float32Array = f32([3, -2]);
    x = s.step(model(x, s.sigmas[0]), s.timesteps[0], x); // first step is first order (not exact for b ≠ 0)
    const x1 = x;
    for (let i = 1; i < s.timesteps.length; i++) x = s.step(model(x, s.sigmas[i]), s.timesteps[i], x);
    const p1 = vp(s.sigmas[1]);
    const pT = vp(s.sigmas[s.sigmas.length - 1]);
    const F = (l: number, j: number) => Math.exp(l) * (a[j] + b[j] * (l - 1));
    const exact = Array.from(
      x1,
      (v, j) => (pT.sigma / p1.sigma) * v + pT.sigma * (F(pT.lambda, j) - F(p1.lambda, j)),
    );
    expectClose(x, exact, 'heun 2M vs closed form');
  });

  it('lands on x̂₀ at the last step with final_sigmas_type zero, and rejects what it does not implement', () => {
    const s = new DPMSolverMultistepScheduler(golden.config);
    s.setTimesteps(3);
    const x = f32([1, 2]);
    const e = f32([0.1, -0.3]);
    s.step(e, s.timesteps[0], x);
    s.step(e, s.timesteps[1], x);
    const last = s.step(e, s.timesteps[2], x);
    const sig = s.sigmas[2];
    const alpha = 1 / Math.sqrt(sig * sig + 1);
    expectClose(
      last,
      Array.from(x, (v, j) => (v - sig * alpha * e[j]) / alpha),
      'x̂₀',
    );
    expect(() => new DPMSolverMultistepScheduler({ algorithm_type: 'sde-dpmsolver++' })).toThrow(
      SchedulerConfigError,
    );
    expect(() => new DPMSolverMultistepScheduler({ use_karras_sigmas: true })).toThrow(/use_karras_sigmas/);
  });
});

describe('scheduler construction', () => {
  it('picks DDIM from _class_name and Euler otherwise; rejects unsupported configs by name', () => {
    expect(createScheduler({ ...golden.ddim_config, _class_name: 'DDIMScheduler' }).kind).toBe('ddim');
    expect(createScheduler(golden.config).kind).toBe('euler');
    expect(createScheduler({ _class_name: 'DPMSolverMultistepScheduler' }).kind).toBe('dpm-solver++');
    expect(createScheduler({ ...golden.config, _class_name: 'EulerAncestralDiscreteScheduler' }).kind).toBe(
      'euler-ancestral',
    );
    expect(() => new EulerDiscreteScheduler({ beta_schedule: 'cubic' as never })).toThrow(
      SchedulerConfigError,
    );
    expect(() => new EulerDiscreteScheduler({ ...golden.config, use_karras_sigmas: true })).toThrow(
      /use_karras_sigmas/,
    );
  });

  it('trailing and linspace spacings give n descending timesteps within the training range', () => {
    for (const spacing of ['trailing', 'linspace'] as const) {
      for (const S of [EulerDiscreteScheduler, DDIMScheduler]) {
        const s = new S({ ...golden.config, timestep_spacing: spacing });
        s.setTimesteps(7);
        expect(s.timesteps.length).toBe(7);
        expect(s.timesteps[0]).toBe(999);
        for (let i = 1; i < 7; i++) expect(s.timesteps[i]).toBeLessThan(s.timesteps[i - 1]);
        expect(s.timesteps[6]).toBeGreaterThanOrEqual(0);
      }
    }
  });
});

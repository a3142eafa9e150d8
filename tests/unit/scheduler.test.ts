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

/**
 * ᾱ_t of the scaled_linear schedule in float64, straight from diffusers' published definition (DDPM/LDM):
 * β_i = (√β_start + i·(√β_end − √β_start)/(T − 1))², ᾱ_t = Π_{i ≤ t} (1 − β_i). Written here, not imported, so the
 * DDIM expectations below do not come from the code under test.
 */
function alphaBar(t: number, betaStart = 0.00085, betaEnd = 0.012, T = 1000): number {
  let a = 1;
  for (let i = 0; i <= t; i++) {
    const b = (Math.sqrt(betaStart) + (i * (Math.sqrt(betaEnd) - Math.sqrt(betaStart))) / (T - 1)) ** 2;
    a *= 1 - b;
  }
  return a;
}

describe('DDIM inpainting strength rule (derived from diffusers’ formulas; the golden file has Euler only)', () => {
  // diffusers' DDIMScheduler.set_timesteps, timestep_spacing "leading", steps_offset 1:
  //   step_ratio = T // n;  timesteps = (arange(n) · step_ratio)[::-1] + 1
  // StableDiffusionXLInpaintPipeline.get_timesteps (no denoising_start), DDIM order 1:
  //   init = min(int(n · strength), n);  t_start = max(n − init, 0);  timesteps[t_start:], set_begin_index(t_start)
  const cases: { n: number; strength: number; expected: number[]; why: string }[] = [
    // ratio 100: [901, 801, …, 1]; init = 5, t_start = 5 → the last five.
    { n: 10, strength: 0.5, expected: [401, 301, 201, 101, 1], why: '10 × 0.5' },
    // ratio ⌊1000/7⌋ = 142: [853, 711, 569, 427, 285, 143, 1]; init = ⌊5.25⌋ = 5, t_start = 2.
    { n: 7, strength: 0.75, expected: [569, 427, 285, 143, 1], why: '7 × 0.75' },
    // ratio 250: [751, 501, 251, 1]; init = ⌊1.2⌋ = 1, t_start = 3.
    { n: 4, strength: 0.3, expected: [1], why: '4 × 0.3' },
    // ratio 1000 // 30 = 33: [958, 925, …, 1]; DIAG's strength: init = ⌊29.7⌋ = 29, t_start = 1 → from 925.
    {
      n: 30,
      strength: 0.99,
      expected: Array.from({ length: 29 }, (_, i) => (28 - i) * 33 + 1),
      why: '30 × 0.99',
    },
    // strength 1 keeps every step: init = n, t_start = 0.
    { n: 5, strength: 1, expected: [801, 601, 401, 201, 1], why: '5 × 1' },
  ];
  for (const c of cases)
    it(`${c.why}: timesteps, add_noise at the first kept timestep, first step from the begin index`, () => {
      const s = new DDIMScheduler(golden.ddim_config);
      const ts = s.inpaintTimesteps(c.n, c.strength);
      expect(ts).toEqual(c.expected);
      // add_noise (DDPM forward process): √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε at t = ts[0].
      const x0 = f32([0.7, -1.2, 0.05]);
      const eps = f32([-0.3, 0.9, 1.4]);
      const a = alphaBar(ts[0]);
      const noisy = s.addNoise(x0, eps, ts[0]);
      expectClose(
        noisy,
        Array.from(x0, (v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i]),
        `noisy@${ts[0]}`,
      );
      // DDIM step (η = 0) with the true ε: x̂₀ = x₀, so x_prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev)·ε, where
      // prev = t − T/n and, past the start, ᾱ_prev = ᾱ_0 (set_alpha_to_one false).
      const prevT = ts[0] - Math.floor(1000 / c.n);
      const ap = prevT >= 0 ? alphaBar(prevT) : alphaBar(0);
      expectClose(
        s.step(eps, ts[0], noisy),
        Array.from(x0, (v, i) => Math.sqrt(ap) * v + Math.sqrt(1 - ap) * eps[i]),
        `prev@${prevT}`,
      );
    });
});

describe('v_prediction (Salimans & Ho: v = α·ε − σ·x₀) gives the same step as ε-prediction of the same ε', () => {
  // With x_t = α_t·x₀ + σ_t·ε (α = √ᾱ, σ = √(1 − ᾱ)) and v = α·ε − σ·x₀, diffusers recovers
  // x̂₀ = α·x_t − σ·v and ε̂ = α·v + σ·x_t — exactly x₀ and ε. So a v-model and an ε-model that agree on ε must
  // produce the same step; for DDIM that step is also the closed form √ᾱ_prev·x₀ + √(1 − ᾱ_prev)·ε.
  const x0 = f32([0.4, -0.8, 1.1, 0]);
  const eps = f32([1.2, 0.3, -0.6, -1.5]);
  it('DDIM', () => {
    const cfgV = { ...golden.ddim_config, prediction_type: 'v_prediction' } as SchedulerConfig;
    const sv = new DDIMScheduler(cfgV);
    const se = new DDIMScheduler(golden.ddim_config);
    sv.setTimesteps(20);
    se.setTimesteps(20);
    const t = sv.timesteps[6]; // 50·13 + 1 = 651
    expect(t).toBe(651);
    const a = alphaBar(t);
    const xt = Float32Array.from(x0, (v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i]);
    const vel = Float32Array.from(x0, (v, i) => Math.sqrt(a) * eps[i] - Math.sqrt(1 - a) * v);
    const ap = alphaBar(t - 50);
    const closed = Array.from(x0, (v, i) => Math.sqrt(ap) * v + Math.sqrt(1 - ap) * eps[i]);
    expectClose(sv.step(vel, t, xt), closed, 'v step');
    expectClose(se.step(eps, t, xt), closed, 'ε step');
  });
  it('Euler (σ-space sample x = x₀ + σ·ε; the v-model sees x/√(σ² + 1))', () => {
    const cfgV = { ...golden.config, prediction_type: 'v_prediction' } as SchedulerConfig;
    const sv = new EulerDiscreteScheduler(cfgV);
    const se = new EulerDiscreteScheduler(golden.config);
    sv.setTimesteps(20);
    se.setTimesteps(20);
    const k = 6;
    const t = sv.timesteps[k];
    const sigma = sv.sigmas[k];
    // In VP terms: α = 1/√(σ² + 1), σ_vp = σ/√(σ² + 1); v = α·ε − σ_vp·x₀.
    const norm = Math.sqrt(sigma * sigma + 1);
    const x = Float32Array.from(x0, (v, i) => v + sigma * eps[i]);
    const vel = Float32Array.from(x0, (v, i) => eps[i] / norm - (sigma / norm) * v);
    // Euler: x_next = x + (σ_next − σ)·(x − x̂₀)/σ, and x − x̂₀ = σ·ε, so x_next = x₀ + σ_next·ε.
    const closed = Array.from(x0, (v, i) => v + sv.sigmas[k + 1] * eps[i]);
    expectClose(sv.step(vel, t, x), closed, 'v step');
    expectClose(se.step(eps, t, x), closed, 'ε step');
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

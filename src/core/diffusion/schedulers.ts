import { DefectLabError, InvalidArgumentError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import type { SchedulerConfig, SchedulerKind } from './types.ts';

/**
 * Noise schedulers following diffusers' `EulerDiscreteScheduler` and `DDIMScheduler` (semantics, not code; golden
 * parity), plus `EulerAncestralDiscreteScheduler` and `DPMSolverMultistepScheduler` (DPM-Solver++):
 * constructed from a `scheduler_config.json` object, `setTimesteps(n)`, `scaleModelInput`, `step`, `addNoise`,
 * plus `inpaintTimesteps(n, strength)` — the img2img/inpaint strength rule of the SDXL inpaint pipeline's
 * `get_timesteps`, which also sets the begin index (diffusers' `set_begin_index`).
 *
 * Arrays are flat Float32Array of any shape (one sample [C,h,w] or a batch): the schedulers are elementwise.
 * Arithmetic runs in float64 and is stored as float32; parity with the torch float32 reference is 1e-5 relative.
 */

export class SchedulerConfigError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('SchedulerConfigError', problem, fix);
  }
}

export class SchedulerStateError extends DefectLabError {
  constructor(problem: string, fix: string) {
    super('SchedulerStateError', problem, fix);
  }
}

/** The config with diffusers' constructor defaults filled in. */
interface ResolvedConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  predictionType: 'epsilon' | 'v_prediction' | 'sample';
  stepsOffset: number;
  timestepSpacing: 'leading' | 'trailing' | 'linspace';
  useKarrasSigmas: boolean;
  clipSample: boolean;
  clipSampleRange: number;
  setAlphaToOne: boolean;
}

function resolveConfig(c: SchedulerConfig, defaults: Partial<ResolvedConfig>): ResolvedConfig {
  const r: ResolvedConfig = {
    numTrainTimesteps: c.num_train_timesteps ?? 1000,
    betaStart: c.beta_start ?? 0.0001,
    betaEnd: c.beta_end ?? 0.02,
    betaSchedule: c.beta_schedule ?? 'linear',
    predictionType: c.prediction_type ?? 'epsilon',
    stepsOffset: c.steps_offset ?? 0,
    timestepSpacing: c.timestep_spacing ?? defaults.timestepSpacing ?? 'leading',
    useKarrasSigmas: c.use_karras_sigmas ?? false,
    clipSample: c.clip_sample ?? defaults.clipSample ?? false,
    clipSampleRange: c.clip_sample_range ?? 1,
    setAlphaToOne: c.set_alpha_to_one ?? true,
  };
  if (!Number.isInteger(r.numTrainTimesteps) || r.numTrainTimesteps < 2)
    throw new SchedulerConfigError(
      `num_train_timesteps must be an integer ≥ 2, got ${r.numTrainTimesteps}`,
      'pass the model’s scheduler_config.json',
    );
  if (!['linear', 'scaled_linear', 'squaredcos_cap_v2'].includes(r.betaSchedule))
    throw new SchedulerConfigError(
      `beta_schedule ${JSON.stringify(r.betaSchedule)} is not supported`,
      'use linear, scaled_linear or squaredcos_cap_v2',
    );
  if (!['epsilon', 'v_prediction', 'sample'].includes(r.predictionType))
    throw new SchedulerConfigError(
      `prediction_type ${JSON.stringify(r.predictionType)} is not supported`,
      'use epsilon, v_prediction or sample',
    );
  if (!['leading', 'trailing', 'linspace'].includes(r.timestepSpacing))
    throw new SchedulerConfigError(
      `timestep_spacing ${JSON.stringify(r.timestepSpacing)} is not supported`,
      'use leading, trailing or linspace',
    );
  if (c.rescale_betas_zero_snr)
    throw new SchedulerConfigError(
      'rescale_betas_zero_snr is not supported',
      'remove it from the scheduler config or use a model trained without it',
    );
  return r;
}

/** torch.linspace(a, b, n) in float32: the first half counts up from a, the second down from b. */
function linspaceF32(a: number, b: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const step = (b - a) / (n - 1);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = Math.fround(i < half ? a + step * i : b - step * (n - 1 - i));
  return out;
}

/** βₜ for t = 0 … N−1 as diffusers builds them (float32), then ᾱₜ = ∏(1 − βₛ). */
function alphasCumprod(c: ResolvedConfig): Float64Array {
  const n = c.numTrainTimesteps;
  let betas: Float64Array;
  if (c.betaSchedule === 'linear') betas = linspaceF32(c.betaStart, c.betaEnd, n);
  else if (c.betaSchedule === 'scaled_linear') {
    betas = linspaceF32(Math.fround(Math.sqrt(c.betaStart)), Math.fround(Math.sqrt(c.betaEnd)), n);
    for (let i = 0; i < n; i++) betas[i] = Math.fround(betas[i] * betas[i]);
  } else {
    // Glide's cosine schedule (betas_for_alpha_bar, max beta 0.999).
    const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    betas = new Float64Array(n);
    for (let i = 0; i < n; i++) betas[i] = Math.fround(Math.min(1 - abar((i + 1) / n) / abar(i / n), 0.999));
  }
  const ac = new Float64Array(n);
  let p = 1;
  for (let i = 0; i < n; i++) {
    p = Math.fround(p * Math.fround(1 - betas[i]));
    ac[i] = p;
  }
  return ac;
}

/** Inference timesteps (descending) for a spacing rule, as float values. */
function spacedTimesteps(c: ResolvedConfig, n: number): number[] {
  const N = c.numTrainTimesteps;
  if (c.timestepSpacing === 'linspace') {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(n === 1 ? 0 : ((N - 1) * i) / (n - 1));
    return out.reverse();
  }
  if (c.timestepSpacing === 'leading') {
    const ratio = Math.floor(N / n);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(Math.round(i * ratio) + c.stepsOffset);
    return out.reverse();
  }
  // trailing: arange(N, 0, -N/n), rounded, minus one.
  const ratio = N / n;
  const out: number[] = [];
  for (let i = 0; N - i * ratio > 0 && out.length < n; i++) out.push(roundHalfEven(N - i * ratio) - 1);
  return out;
}

/** numpy's round (half to even). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkSteps(n: number, max: number): void {
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new InvalidArgumentError('numInferenceSteps', `an integer in [1, ${max}]`, n);
}

/** The API every scheduler here shares (what the pipeline drives). */
export interface Scheduler {
  readonly kind: SchedulerKind;
  /** Descending timesteps of the current schedule (after `setTimesteps`). */
  readonly timesteps: number[];
  /** Factor of the initial pure noise (Euler: σ_max-based; DDIM: 1). */
  readonly initNoiseSigma: number;
  /** x̂₀ estimated by the last `step` (for previews), or null. */
  readonly predOriginalSample: Float32Array | null;
  setTimesteps(numInferenceSteps: number): void;
  /** Timesteps left after the strength cut; sets the begin index so `addNoise`/`step` start there. */
  inpaintTimesteps(numInferenceSteps: number, strength: number): number[];
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: Rng): Float32Array;
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array;
}

/**
 * The strength rule of diffusers' SDXL inpaint `get_timesteps` (no `denoising_start`):
 * init = min(⌊n·strength⌋, n), start = n − init, timesteps = timesteps[start:], begin index = start.
 */
function strengthCut(
  s: Scheduler & { setBeginIndex(i: number): void },
  n: number,
  strength: number,
): number[] {
  if (!(strength > 0 && strength <= 1)) throw new InvalidArgumentError('strength', 'in (0, 1]', strength);
  s.setTimesteps(n);
  const init = Math.min(Math.floor(n * strength), n);
  const start = Math.max(n - init, 0);
  if (n - start < 1)
    throw new InvalidArgumentError(
      'steps × strength',
      `at least 1 (steps ${n} × strength ${strength} leaves no step)`,
      n * strength,
    );
  s.setBeginIndex(start);
  return s.timesteps.slice(start);
}

function checkLength(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length)
    throw new InvalidArgumentError(what, `the same length as the sample (${b.length})`, a.length);
}

/**
 * Euler's method on the probability-flow ODE in σ-space (Karras et al. 2022, Algorithm 2 with s_churn = 0),
 * diffusers' `EulerDiscreteScheduler`. σₜ = √((1 − ᾱₜ)/ᾱₜ) interpolated linearly at fractional timesteps.
 */
export class EulerDiscreteScheduler implements Scheduler {
  readonly kind: SchedulerKind = 'euler';
  timesteps: number[] = [];
  /** σ per timestep plus a final 0: length timesteps.length + 1. */
  sigmas: number[] = [];
  initNoiseSigma: number;
  predOriginalSample: Float32Array | null = null;
  protected readonly c: ResolvedConfig;
  private readonly trainSigmas: Float64Array;
  protected stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig = {}) {
    this.c = resolveConfig(config, { timestepSpacing: 'linspace' });
    if (this.c.useKarrasSigmas)
      throw new SchedulerConfigError(
        'use_karras_sigmas is not supported yet',
        'set use_karras_sigmas to false (SDXL’s default)',
      );
    const ac = alphasCumprod(this.c);
    this.trainSigmas = ac.map((a) => Math.fround(Math.sqrt((1 - a) / a)));
    // Before setTimesteps, diffusers reports the training schedule's σ_max.
    const maxSigma = this.trainSigmas[this.trainSigmas.length - 1];
    this.initNoiseSigma = this.noiseSigmaFor(maxSigma);
  }

  private noiseSigmaFor(maxSigma: number): number {
    return Math.fround(
      this.c.timestepSpacing === 'linspace' || this.c.timestepSpacing === 'trailing'
        ? maxSigma
        : Math.sqrt(maxSigma * maxSigma + 1),
    );
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.c.numTrainTimesteps);
    const ts = spacedTimesteps(this.c, numInferenceSteps).map(Math.fround);
    const s = this.trainSigmas;
    this.sigmas = ts.map((t) => {
      // np.interp over integer positions 0 … N−1.
      if (t <= 0) return s[0];
      if (t >= s.length - 1) return s[s.length - 1];
      const i = Math.floor(t);
      return Math.fround(s[i] + (s[i + 1] - s[i]) * (t - i));
    });
    this.sigmas.push(0);
    this.timesteps = ts;
    this.initNoiseSigma = this.noiseSigmaFor(Math.max(...this.sigmas));
    this.stepIndex = null;
    this.beginIndex = null;
    this.predOriginalSample = null;
  }

  setBeginIndex(i: number): void {
    this.beginIndex = i;
  }

  inpaintTimesteps(numInferenceSteps: number, strength: number): number[] {
    return strengthCut(this, numInferenceSteps, strength);
  }

  /** Position of t in the schedule; diffusers takes the second match when t repeats (img2img restarts). */
  private indexForTimestep(t: number): number {
    const hits: number[] = [];
    this.timesteps.forEach((v, i) => v === t && hits.push(i));
    if (hits.length === 0)
      throw new SchedulerStateError(
        `timestep ${t} is not in the schedule [${this.timesteps.slice(0, 4).join(', ')}, …]`,
        'call setTimesteps (or inpaintTimesteps) first and pass one of scheduler.timesteps',
      );
    return hits.length > 1 ? hits[1] : hits[0];
  }

  protected currentIndex(t: number): number {
    if (this.timesteps.length === 0)
      throw new SchedulerStateError('the schedule is empty', 'call setTimesteps(n) before stepping');
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? this.indexForTimestep(t);
    return this.stepIndex;
  }

  /** sample / √(σ² + 1): the UNet was trained on unit-variance inputs. */
  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const sigma = this.sigmas[this.currentIndex(t)];
    const k = Math.sqrt(sigma * sigma + 1);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) out[i] = sample[i] / k;
    return out;
  }

  /** One Euler step from σᵢ to σᵢ₊₁: x ← x + (x − x̂₀)/σᵢ · (σᵢ₊₁ − σᵢ). */
  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    checkLength(modelOutput, sample, 'modelOutput.length');
    const i = this.currentIndex(t);
    if (i >= this.sigmas.length - 1)
      throw new SchedulerStateError(
        `step ${i} is past the last of ${this.timesteps.length} steps`,
        'call setTimesteps again before a new generation',
      );
    const sigma = this.sigmas[i];
    const dt = this.sigmas[i + 1] - sigma;
    const x0 = new Float32Array(sample.length);
    const out = new Float32Array(sample.length);
    const vScale = -sigma / Math.sqrt(sigma * sigma + 1);
    const vSample = 1 / (sigma * sigma + 1);
    for (let j = 0; j < sample.length; j++) {
      const x = sample[j];
      const e = modelOutput[j];
      let p: number;
      if (this.c.predictionType === 'epsilon') p = x - sigma * e;
      else if (this.c.predictionType === 'v_prediction') p = e * vScale + x * vSample;
      else p = e;
      x0[j] = p;
      const derivative = (x - Math.fround(p)) / sigma;
      out[j] = x + derivative * dt;
    }
    this.predOriginalSample = x0;
    this.stepIndex = i + 1;
    return out;
  }

  /** original + σₜ · noise, with σ at the begin index during inpainting (diffusers' add_noise rule). */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkLength(noise, original, 'noise.length');
    const idx = this.beginIndex === null ? this.indexForTimestep(t) : (this.stepIndex ?? this.beginIndex);
    const sigma = this.sigmas[idx];
    const out = new Float32Array(original.length);
    for (let i = 0; i < original.length; i++) out[i] = original[i] + noise[i] * sigma;
    return out;
  }
}

/**
 * Euler ancestral (Karras et al. 2022 / k-diffusion `sample_euler_ancestral`), diffusers'
 * `EulerAncestralDiscreteScheduler`: the Euler step goes down to σ_down, then fresh noise of σ_up is added, with
 * σ_up = √(σₙ₊₁²(σₙ² − σₙ₊₁²)/σₙ²) and σ_down = √(σₙ₊₁² − σ_up²). The noise comes from the `Rng` passed to `step`.
 */
export class EulerAncestralDiscreteScheduler extends EulerDiscreteScheduler {
  override readonly kind: SchedulerKind = 'euler-ancestral';

  override step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: Rng): Float32Array {
    checkLength(modelOutput, sample, 'modelOutput.length');
    if (!rng)
      throw new InvalidArgumentError('rng', 'a seeded Rng (Euler ancestral adds noise every step)', rng);
    const i = this.currentIndex(t);
    if (i >= this.sigmas.length - 1)
      throw new SchedulerStateError(
        `step ${i} is past the last of ${this.timesteps.length} steps`,
        'call setTimesteps again before a new generation',
      );
    const from = this.sigmas[i];
    const to = this.sigmas[i + 1];
    const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
    const down = Math.sqrt(Math.max(0, to * to - up * up));
    const dt = down - from;
    const x0 = new Float32Array(sample.length);
    const out = new Float32Array(sample.length);
    for (let j = 0; j < sample.length; j++) {
      const x = sample[j];
      const e = modelOutput[j];
      let p: number;
      if (this.c.predictionType === 'epsilon') p = x - from * e;
      else if (this.c.predictionType === 'v_prediction')
        p = e * (-from / Math.sqrt(from * from + 1)) + x / (from * from + 1);
      else p = e;
      x0[j] = p;
      out[j] = x + ((x - p) / from) * dt;
    }
    // Drawn after the deterministic part so the noise sequence does not depend on the sample values.
    if (up > 0) for (let j = 0; j < out.length; j++) out[j] += rng.normal() * up;
    this.predOriginalSample = x0;
    this.stepIndex = i + 1;
    return out;
  }
}

/**
 * Denoising diffusion implicit models (Song et al. 2021), diffusers' `DDIMScheduler`; η = 0 is deterministic,
 * η > 0 adds seeded noise from the `Rng` passed to `step`.
 */
export class DDIMScheduler implements Scheduler {
  readonly kind = 'ddim' as const;
  timesteps: number[] = [];
  readonly initNoiseSigma = 1;
  predOriginalSample: Float32Array | null = null;
  /** Stochasticity η ∈ [0, 1] (0 = DDIM, 1 ≈ DDPM). */
  eta: number;
  private readonly c: ResolvedConfig;
  private readonly ac: Float64Array;
  private readonly finalAlphaCumprod: number;
  private numInferenceSteps = 0;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig = {}, eta = 0) {
    this.c = resolveConfig(config, { timestepSpacing: 'leading', clipSample: true });
    this.ac = alphasCumprod(this.c);
    this.finalAlphaCumprod = this.c.setAlphaToOne ? 1 : this.ac[0];
    if (!(eta >= 0 && eta <= 1)) throw new InvalidArgumentError('eta', 'in [0, 1]', eta);
    this.eta = eta;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.c.numTrainTimesteps);
    this.numInferenceSteps = numInferenceSteps;
    // diffusers stores DDIM timesteps as int64.
    this.timesteps = spacedTimesteps(this.c, numInferenceSteps).map((t) =>
      this.c.timestepSpacing === 'linspace' ? roundHalfEven(t) : Math.trunc(t),
    );
    this.beginIndex = null;
    this.predOriginalSample = null;
  }

  setBeginIndex(i: number): void {
    this.beginIndex = i;
  }

  inpaintTimesteps(numInferenceSteps: number, strength: number): number[] {
    return strengthCut(this, numInferenceSteps, strength);
  }

  /** DDIM needs no input scaling (σ-free parameterisation). */
  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  private alphaAt(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.ac.length)
      throw new SchedulerStateError(
        `timestep ${t} is outside [0, ${this.ac.length - 1}]`,
        'pass one of scheduler.timesteps',
      );
    return this.ac[t];
  }

  /** x_{t−Δ} = √ᾱ_{t−Δ} x̂₀ + √(1 − ᾱ_{t−Δ} − σₜ²) ε̂ (+ σₜ z when η > 0). */
  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: Rng): Float32Array {
    checkLength(modelOutput, sample, 'modelOutput.length');
    if (this.numInferenceSteps === 0)
      throw new SchedulerStateError('the schedule is empty', 'call setTimesteps(n) before stepping');
    const prevT = t - Math.floor(this.c.numTrainTimesteps / this.numInferenceSteps);
    const aT = this.alphaAt(t);
    const aPrev = prevT >= 0 ? this.ac[prevT] : this.finalAlphaCumprod;
    const bT = 1 - aT;
    const bPrev = 1 - aPrev;
    const variance = (bPrev / bT) * (1 - aT / aPrev);
    const std = this.eta * Math.sqrt(variance);
    if (std > 0 && !rng) throw new InvalidArgumentError('rng', 'a seeded Rng when eta > 0', rng);
    const sa = Math.sqrt(aT);
    const sb = Math.sqrt(bT);
    const dirK = Math.sqrt(1 - aPrev - std * std);
    const saPrev = Math.sqrt(aPrev);
    const r = this.c.clipSampleRange;
    const x0s = new Float32Array(sample.length);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i];
      const m = modelOutput[i];
      let x0: number;
      let eps: number;
      if (this.c.predictionType === 'epsilon') {
        x0 = (x - sb * m) / sa;
        eps = m;
      } else if (this.c.predictionType === 'sample') {
        x0 = m;
        eps = (x - sa * x0) / sb;
      } else {
        x0 = sa * x - sb * m;
        eps = sa * m + sb * x;
      }
      // diffusers clips x̂₀ but keeps the model's ε (use_clipped_model_output defaults to false).
      if (this.c.clipSample) x0 = Math.min(r, Math.max(-r, x0));
      x0s[i] = x0;
      let prev = saPrev * x0 + dirK * eps;
      if (std > 0) prev += std * rng!.normal();
      out[i] = prev;
    }
    this.predOriginalSample = x0s;
    return out;
  }

  /** √ᾱₜ · original + √(1 − ᾱₜ) · noise. */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkLength(noise, original, 'noise.length');
    const a = this.alphaAt(t);
    const sa = Math.sqrt(a);
    const sb = Math.sqrt(1 - a);
    const out = new Float32Array(original.length);
    for (let i = 0; i < original.length; i++) out[i] = sa * original[i] + sb * noise[i];
    return out;
  }
}

/**
 * DPM-Solver++ multistep (Lu et al. 2022, arXiv 2211.01095), diffusers' `DPMSolverMultistepScheduler` with
 * `algorithm_type: 'dpmsolver++'`: a data-prediction (x̂₀) solver in log-SNR time λ = log(αₜ/σₜ), order 1–3
 * (`solver_order`, default 2 = "DPM++ 2M"), `solver_type` midpoint or heun, lower orders at the ends as diffusers
 * (`lower_order_final`, `euler_at_final`, `final_sigmas_type`). Works on the variance-preserving sample
 * (initNoiseSigma 1, no input scaling). Its first-order step is DDIM (η = 0), which the tests check.
 */
export class DPMSolverMultistepScheduler implements Scheduler {
  readonly kind = 'dpm-solver++' as const;
  timesteps: number[] = [];
  /** σ = √((1 − ᾱ)/ᾱ) per timestep plus the final one (0 or σ_min): length timesteps.length + 1. */
  sigmas: number[] = [];
  readonly initNoiseSigma = 1;
  predOriginalSample: Float32Array | null = null;
  private readonly c: ResolvedConfig;
  private readonly order: number;
  private readonly solverType: 'midpoint' | 'heun';
  private readonly lowerOrderFinal: boolean;
  private readonly eulerAtFinal: boolean;
  private readonly finalSigmasType: 'zero' | 'sigma_min';
  private readonly trainSigmas: Float64Array;
  private readonly lambdaMinClipped: number;
  private modelOutputs: (Float32Array | null)[] = [];
  private lowerOrderNums = 0;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config: SchedulerConfig = {}) {
    this.c = resolveConfig(config, { timestepSpacing: 'linspace' });
    const algorithm = (config.algorithm_type as string | undefined) ?? 'dpmsolver++';
    if (algorithm !== 'dpmsolver++')
      throw new SchedulerConfigError(
        `algorithm_type ${JSON.stringify(algorithm)} is not supported`,
        'use algorithm_type "dpmsolver++" (diffusers’ default)',
      );
    this.order = (config.solver_order as number | undefined) ?? 2;
    if (![1, 2, 3].includes(this.order))
      throw new SchedulerConfigError(
        `solver_order must be 1, 2 or 3, got ${this.order}`,
        'use solver_order 2',
      );
    const st = (config.solver_type as string | undefined) ?? 'midpoint';
    if (st !== 'midpoint' && st !== 'heun')
      throw new SchedulerConfigError(
        `solver_type ${JSON.stringify(st)} is not supported`,
        'use midpoint or heun',
      );
    this.solverType = st;
    this.lowerOrderFinal = (config.lower_order_final as boolean | undefined) ?? true;
    this.eulerAtFinal = (config.euler_at_final as boolean | undefined) ?? false;
    const fs = (config.final_sigmas_type as string | undefined) ?? 'zero';
    if (fs !== 'zero' && fs !== 'sigma_min')
      throw new SchedulerConfigError(
        `final_sigmas_type ${JSON.stringify(fs)} is not supported`,
        'use zero or sigma_min',
      );
    this.finalSigmasType = fs;
    for (const key of ['use_karras_sigmas', 'use_lu_lambdas', 'thresholding'])
      if (config[key])
        throw new SchedulerConfigError(
          `${key} is not supported yet`,
          `set ${key} to false in the scheduler config`,
        );
    this.lambdaMinClipped = (config.lambda_min_clipped as number | undefined) ?? -Infinity;
    const ac = alphasCumprod(this.c);
    this.trainSigmas = ac.map((a) => Math.fround(Math.sqrt((1 - a) / a)));
  }

  setTimesteps(numInferenceSteps: number): void {
    checkSteps(numInferenceSteps, this.c.numTrainTimesteps);
    const N = this.c.numTrainTimesteps;
    const n = numInferenceSteps;
    // λ is clipped from below for cosine schedules: drop the train timesteps whose λ is under the bound.
    let clipped = 0;
    for (let t = N - 1; t >= 0; t--) {
      const a = 1 / Math.sqrt(this.trainSigmas[t] ** 2 + 1);
      if (Math.log(a) - Math.log(this.trainSigmas[t] * a) < this.lambdaMinClipped) clipped++;
      else break;
    }
    const last = N - clipped;
    let ts: number[];
    if (this.c.timestepSpacing === 'linspace') {
      ts = [];
      for (let i = 0; i <= n; i++) ts.push(roundHalfEven(((last - 1) * i) / n));
      ts = ts.reverse().slice(0, n);
    } else if (this.c.timestepSpacing === 'leading') {
      const ratio = Math.floor(last / (n + 1));
      ts = [];
      for (let i = 0; i <= n; i++) ts.push(i * ratio);
      ts = ts
        .reverse()
        .slice(0, n)
        .map((t) => t + this.c.stepsOffset);
    } else {
      const ratio = N / n;
      ts = [];
      for (let i = 0; last - i * ratio > 0; i++) ts.push(roundHalfEven(last - i * ratio) - 1);
    }
    this.timesteps = ts;
    const finalSigma = this.finalSigmasType === 'zero' ? 0 : this.trainSigmas[0];
    this.sigmas = [...ts.map((t) => this.trainSigmas[Math.min(Math.max(t, 0), N - 1)]), finalSigma];
    this.modelOutputs = new Array(this.order).fill(null);
    this.lowerOrderNums = 0;
    this.stepIndex = null;
    this.beginIndex = null;
    this.predOriginalSample = null;
  }

  setBeginIndex(i: number): void {
    this.beginIndex = i;
  }

  inpaintTimesteps(numInferenceSteps: number, strength: number): number[] {
    return strengthCut(this, numInferenceSteps, strength);
  }

  scaleModelInput(sample: Float32Array, _t: number): Float32Array {
    return sample;
  }

  /** diffusers' DPM rule: an unknown timestep maps to the last index; a repeated one to its second match. */
  private indexForTimestep(t: number): number {
    const hits: number[] = [];
    this.timesteps.forEach((v, i) => v === t && hits.push(i));
    if (hits.length === 0) return this.timesteps.length - 1;
    return hits.length > 1 ? hits[1] : hits[0];
  }

  /** (αₜ, σₜ, λₜ) of the variance-preserving process at schedule position i. */
  private vp(i: number): { alpha: number; sigma: number; lambda: number } {
    const s = this.sigmas[i];
    const alpha = 1 / Math.sqrt(s * s + 1);
    const sigma = s * alpha;
    return { alpha, sigma, lambda: Math.log(alpha) - Math.log(sigma) };
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array {
    checkLength(modelOutput, sample, 'modelOutput.length');
    const n = this.timesteps.length;
    if (n === 0)
      throw new SchedulerStateError('the schedule is empty', 'call setTimesteps(n) before stepping');
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? this.indexForTimestep(t);
    const i = this.stepIndex;
    if (i >= n)
      throw new SchedulerStateError(
        `step ${i} is past the last of ${n} steps`,
        'call setTimesteps again before a new generation',
      );
    const lowerOrderFinal =
      i === n - 1 &&
      (this.eulerAtFinal || (this.lowerOrderFinal && n < 15) || this.finalSigmasType === 'zero');
    const lowerOrderSecond = i === n - 2 && this.lowerOrderFinal && n < 15;

    // Data prediction x̂₀ from the model output at σᵢ.
    const s0 = this.vp(i);
    const x0 = new Float32Array(sample.length);
    for (let j = 0; j < sample.length; j++) {
      const x = sample[j];
      const m = modelOutput[j];
      if (this.c.predictionType === 'epsilon') x0[j] = (x - s0.sigma * m) / s0.alpha;
      else if (this.c.predictionType === 'v_prediction') x0[j] = s0.alpha * x - s0.sigma * m;
      else x0[j] = m;
    }
    this.modelOutputs = [...this.modelOutputs.slice(1), x0];

    const tgt = this.vp(i + 1);
    const h = tgt.lambda - s0.lambda;
    const eh = Math.exp(-h) - 1; // e^(−h) − 1
    const ratio = tgt.sigma / s0.sigma;
    const out = new Float32Array(sample.length);
    const m0 = x0;
    if (this.order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      for (let j = 0; j < out.length; j++) out[j] = ratio * sample[j] - tgt.alpha * eh * m0[j];
    } else if (this.order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
      const m1 = this.modelOutputs[this.order - 2]!;
      const s1 = this.vp(i - 1);
      const r0 = (s0.lambda - s1.lambda) / h;
      const k1 = this.solverType === 'midpoint' ? -0.5 * tgt.alpha * eh : tgt.alpha * (eh / h + 1);
      for (let j = 0; j < out.length; j++) {
        const d1 = (m0[j] - m1[j]) / r0;
        out[j] = ratio * sample[j] - tgt.alpha * eh * m0[j] + k1 * d1;
      }
    } else {
      const m1 = this.modelOutputs[1]!;
      const m2 = this.modelOutputs[0]!;
      const s1 = this.vp(i - 1);
      const s2 = this.vp(i - 2);
      const r0 = (s0.lambda - s1.lambda) / h;
      const r1 = (s1.lambda - s2.lambda) / h;
      const k1 = tgt.alpha * (eh / h + 1);
      const k2 = tgt.alpha * ((eh + h) / (h * h) - 0.5);
      for (let j = 0; j < out.length; j++) {
        const d10 = (m0[j] - m1[j]) / r0;
        const d11 = (m1[j] - m2[j]) / r1;
        const d1 = d10 + (r0 / (r0 + r1)) * (d10 - d11);
        const d2 = (d10 - d11) / (r0 + r1);
        out[j] = ratio * sample[j] - tgt.alpha * eh * m0[j] + k1 * d1 - k2 * d2;
      }
    }
    if (this.lowerOrderNums < this.order) this.lowerOrderNums++;
    this.predOriginalSample = x0;
    this.stepIndex = i + 1;
    return out;
  }

  /** αₜ · original + σₜ · noise (variance-preserving), σ at the begin/step index during inpainting. */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkLength(noise, original, 'noise.length');
    const idx = this.beginIndex === null ? this.indexForTimestep(t) : (this.stepIndex ?? this.beginIndex);
    const { alpha, sigma } = this.vp(idx);
    const out = new Float32Array(original.length);
    for (let i = 0; i < original.length; i++) out[i] = alpha * original[i] + sigma * noise[i];
    return out;
  }
}

/** Builds the scheduler a config names (`_class_name`), or the one asked for. */
export function createScheduler(config: SchedulerConfig, kind?: SchedulerKind): Scheduler {
  const k = kind ?? schedulerKindOf(config);
  if (k === 'ddim') return new DDIMScheduler(config);
  if (k === 'dpm-solver++') return new DPMSolverMultistepScheduler(config);
  return k === 'euler-ancestral'
    ? new EulerAncestralDiscreteScheduler(config)
    : new EulerDiscreteScheduler(config);
}

/** The kind a config's `_class_name` names; 'euler' otherwise (SDXL ships EulerDiscreteScheduler). */
export function schedulerKindOf(config: SchedulerConfig): SchedulerKind {
  const name = typeof config._class_name === 'string' ? config._class_name : '';
  if (/ddim/i.test(name)) return 'ddim';
  if (/dpmsolvermultistep/i.test(name)) return 'dpm-solver++';
  return /ancestral/i.test(name) ? 'euler-ancestral' : 'euler';
}

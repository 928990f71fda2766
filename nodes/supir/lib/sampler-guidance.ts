/**
 * What every SUPIR sampler does around one network evaluation: the batched [uncond; cond] call,
 * LinearCFG, the (optionally linear) control scale and the paper's restoration guidance toward
 * x_center. The Euler (RestoreEDM) and DPM++ 2M loops share it, so both see the same guidance.
 *
 * Scalars and element-wise steps are rounded to float32 where torch computes in float32 (the
 * golden cases were recorded in fp32); the linear control scale is the one value the official
 * code computes in float64 (`sigma[0].item()` arithmetic in Python).
 */
import { StudioError } from '../../api/errors.ts';

/** sgm hard-codes this sigma_max (LinearCFG and RestoreEDMSampler), not the schedule's 14.614641. */
export const GUIDANCE_SIGMA_MAX = 14.6146;
/** restore_cfg_s_tmin: restoration guidance stops once the next sigma is at or below this. */
export const RESTORE_SIGMA_MIN = 0.05;

const f32 = Math.fround;

/**
 * The batched denoiser: x is [x; x] (2B items, the uncond copy first), one sigma per item; returns
 * the 2B x0 predictions [D_u; D_c]. The returned array may be reused by the denoiser's next call.
 */
export type BatchedDenoiser<C> = (x: Float32Array, sigma: readonly number[], cond: C, controlScale: number) => Promise<Float32Array>;

/** What the step callback sees; arrays are the sampler's own buffers, valid during the call only. */
export interface StepInfo {
  sigma: number;
  sigmaHat: number;
  nextSigma: number;
  controlScale: number;
  cfgScale: number;
  /** The CFG result before restoration guidance (`denoise_out` in the golden cases). */
  cfg: Float32Array;
}

export type StepCallback = (i: number, x: Float32Array, denoised: Float32Array, info: StepInfo) => void;

export interface GuidanceOptions<C> {
  denoiser: BatchedDenoiser<C>;
  cond: C;
  /** The latent's [n, c, h, w]. */
  shape: readonly [number, number, number, number];
  /** N(0,1) initial noise, n·c·h·w values; the sampler scales it by √(1+σ0²) into its own buffer. */
  noise: Float32Array;
  /** Random draws after the initial noise (churn, SDE noise): N(0,1) of the latent's size. */
  drawNoise: (step: number) => Float32Array;
  steps: number;
  /** LinearCFG: `scale` at σ = 14.6146, `scaleMin` at σ = 0 (equal for a constant scale). */
  cfg: { scale: number; scaleMin: number };
  /** Control scale; with `linear` it ramps from `start` at σ_max to `scale` at σ = 0. */
  control: { scale: number; start: number; linear: boolean };
  /** τ_r: strength of the pull toward xCenter; ≤ 0 turns it off (official CLI default −1). */
  restoreCfg: number;
  xCenter?: Float32Array | undefined;
  sNoise: number;
  onStep?: StepCallback | undefined;
}

export function latentSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function checkNoise(what: string, data: Float32Array | undefined, size: number): Float32Array {
  if (!data || data.length !== size) throw new StudioError('BAD_INPUT', `${what} has ${data?.length ?? 0} values, the latent needs ${size}`);
  return data;
}

/** LinearCFG's scale at the sigma the network saw (σ̂ for the Euler sampler). */
export function cfgScaleAt(cfg: { scale: number; scaleMin: number }, sigma: number): number {
  return f32(f32(f32(f32(cfg.scale - cfg.scaleMin) * sigma) / GUIDANCE_SIGMA_MAX) + cfg.scaleMin);
}

/** The control scale at the un-churned σ, in float64 as the official Python does. */
export function controlScaleAt(control: { scale: number; start: number; linear: boolean }, sigma: number): number {
  return control.linear ? (sigma / GUIDANCE_SIGMA_MAX) * (control.start - control.scale) + control.scale : control.scale;
}

/** The restoration-guidance weight k = (σ/14.6146)^τ_r, or 0 where guidance is off for this step. */
export function restoreWeightAt(restoreCfg: number, sigma: number, nextSigma: number): number {
  if (!(nextSigma > RESTORE_SIGMA_MIN && restoreCfg > 0)) return 0;
  return f32(Math.pow(f32(sigma / GUIDANCE_SIGMA_MAX), restoreCfg));
}

/** x·√(1+σ0²) into a fresh buffer (the loop's x). */
export function initialLatent(noise: Float32Array, sigma0: number): Float32Array {
  const k = f32(Math.sqrt(f32(1 + f32(sigma0 * sigma0))));
  const x = new Float32Array(noise.length);
  for (let i = 0; i < x.length; i++) x[i] = noise[i]! * k;
  return x;
}

/**
 * One guided evaluation: CFG over the batched call, then restoration guidance. Holds the batch
 * and output buffers so that a run allocates them once.
 */
export class Guidance<C> {
  readonly size: number;
  private readonly batch: number;
  private readonly xx: Float32Array;
  private readonly cfgOut: Float32Array;
  private readonly guided: Float32Array;
  private readonly sigmaList: number[];

  constructor(private readonly o: GuidanceOptions<C>) {
    this.size = latentSize(o.shape);
    this.batch = o.shape[0];
    checkNoise('noise', o.noise, this.size);
    if (o.restoreCfg > 0) checkNoise('x_center', o.xCenter, this.size);
    this.xx = new Float32Array(2 * this.size);
    this.cfgOut = new Float32Array(this.size);
    this.guided = o.restoreCfg > 0 ? new Float32Array(this.size) : this.cfgOut;
    this.sigmaList = new Array<number>(2 * this.batch).fill(0);
  }

  /** D at (x, σ̂); σ and σ' steer the control scale and restoration guidance. */
  async denoise(x: Float32Array, sigma: number, sigmaHat: number, nextSigma: number): Promise<{ denoised: Float32Array; info: StepInfo }> {
    const { o, size } = this;
    this.xx.set(x, 0);
    this.xx.set(x, size);
    this.sigmaList.fill(sigmaHat);
    const controlScale = controlScaleAt(o.control, sigma);
    const raw = await o.denoiser(this.xx, this.sigmaList, o.cond, controlScale);
    if (raw.length !== 2 * size) throw new StudioError('INTERNAL', `the denoiser returned ${raw.length} values for a batch of ${2 * size}`);
    const s = cfgScaleAt(o.cfg, sigmaHat);
    const cfg = this.cfgOut;
    for (let i = 0; i < size; i++) {
      const u = raw[i]!;
      cfg[i] = u + f32(s * f32(raw[size + i]! - u));
    }
    const k = restoreWeightAt(o.restoreCfg, sigma, nextSigma);
    const out = this.guided;
    if (out !== cfg) {
      const xc = o.xCenter!;
      // With k = 0 this still copies, so `cfg` and `denoised` stay distinct buffers for the callback.
      for (let i = 0; i < size; i++) out[i] = cfg[i]! - f32(f32(cfg[i]! - xc[i]!) * k);
    }
    return { denoised: out, info: { sigma, sigmaHat, nextSigma, controlScale, cfgScale: s, cfg } };
  }
}

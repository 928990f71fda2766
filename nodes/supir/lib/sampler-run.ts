/**
 * From SUPIR Sample's settings to a sampler run: which loop, and which of the shared guidance
 * hooks (sampler-guidance.ts) it gets. The node and the golden tests both come through here, so a
 * mapping mistake (a hook on where the official sampler has none, a ramp read at the wrong sigma)
 * shows against the official runs.
 */
import { InputError } from '../../api/errors.ts';
import { sampleDpmpp2m } from './sampler-dpmpp.ts';
import type { GuidanceOptions } from './sampler-guidance.ts';
import { sampleRestoreEdm } from './sampler.ts';

/** The official DPM++ sampler, and our variant of it with RestoreEDM's guidance hooks. */
export const DPMPP_OFFICIAL = 'DPM++ 2M Karras';
export const DPMPP_GUIDED = 'DPM++ 2M Karras + restoration guidance (not in the paper)';
export const SAMPLERS = ['RestoreEDM', DPMPP_OFFICIAL, DPMPP_GUIDED] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** SUPIR Sample's sampling widgets (what a preset sets). */
export interface SamplerSettings {
  steps: number;
  cfg_scale: number;
  cfg_scale_start: number;
  linear_cfg: boolean;
  control_scale: number;
  control_scale_start: number;
  linear_control_scale: boolean;
  restoration_scale: number;
  s_churn: number;
  s_noise: number;
}

export interface SamplerRunSettings extends SamplerSettings {
  /** One of SAMPLERS (a combo widget's value). */
  sampler: string;
}

/** What a run needs besides the settings: the network, the latents and the random draws. */
export type SamplerIo<C> = Pick<GuidanceOptions<C>, 'denoiser' | 'cond' | 'shape' | 'noise' | 'drawNoise' | 'onStep'> & { xCenter: Float32Array };

/**
 * Runs the chosen sampler. RestoreEDM gets every hook (LinearCFG, the linear control ramp,
 * restoration guidance, churn). The official RestoreDPMPP2MSampler accepts restore_cfg, s_churn
 * and the control ramp and uses none of them: DPM++ 2M Karras keeps LinearCFG and a constant
 * control scale only; the "+ restoration guidance" variant adds the ramp and the guidance.
 */
export function runSampler<C>(s: SamplerRunSettings, io: SamplerIo<C>): Promise<Float32Array> {
  if (!(SAMPLERS as readonly string[]).includes(s.sampler)) throw new InputError('sampler', `'${s.sampler}' is not one of ${SAMPLERS.join(', ')}`);
  const official = s.sampler === DPMPP_OFFICIAL;
  const opts: GuidanceOptions<C> = {
    ...io,
    steps: s.steps,
    cfg: s.linear_cfg ? { scale: s.cfg_scale_start, scaleMin: s.cfg_scale } : { scale: s.cfg_scale, scaleMin: s.cfg_scale },
    control: { scale: s.control_scale, start: s.control_scale_start, linear: s.linear_control_scale && !official },
    restoreCfg: official ? -1 : s.restoration_scale,
    sNoise: s.s_noise,
  };
  return s.sampler === 'RestoreEDM' ? sampleRestoreEdm({ ...opts, sChurn: s.s_churn }) : sampleDpmpp2m(opts);
}

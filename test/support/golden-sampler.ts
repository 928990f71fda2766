/** The official sampler call of a golden case, in SUPIR Sample's widget names. */
import { DPMPP_OFFICIAL, type SamplerRunSettings } from '../../nodes/supir/lib/sampler-run.ts';
import type { GoldenCase } from './golden.ts';

type OfficialCall = {
  constructor: {
    target: string;
    params: { num_steps: number; restore_cfg: number; s_churn: number; s_noise: number; guider_config: { target: string; params: { scale: number; scale_min: number } }; tile_size?: number; tile_stride?: number };
  };
  kwargs: { control_scale: number; use_linear_control_scale: boolean; control_scale_start: number };
};

/** The official constructor and call, in SUPIR Sample's widget names (as a user would set the node). */
export function nodeSettings(g: GoldenCase): SamplerRunSettings & { tile_size: number; tile_stride: number } {
  const call = g.json.call as OfficialCall;
  const p = call.constructor.params;
  if (!p.guider_config.target.endsWith('LinearCFG')) throw new Error(`${g.name}: guider ${p.guider_config.target} is not LinearCFG`);
  return {
    sampler: call.constructor.target.endsWith('RestoreDPMPP2MSampler') ? DPMPP_OFFICIAL : 'RestoreEDM',
    steps: p.num_steps,
    // LinearCFG(scale, scale_min): `scale` at σmax is the node's cfg_scale_start, scale_min its cfg_scale.
    cfg_scale: p.guider_config.params.scale_min,
    cfg_scale_start: p.guider_config.params.scale,
    linear_cfg: true,
    control_scale: call.kwargs.control_scale,
    control_scale_start: call.kwargs.control_scale_start,
    linear_control_scale: call.kwargs.use_linear_control_scale,
    restoration_scale: p.restore_cfg,
    s_churn: p.s_churn,
    s_noise: p.s_noise,
    tile_size: p.tile_size ?? 0,
    tile_stride: p.tile_stride ?? 0,
  };
}

/**
 * Named sampler settings from the SUPIR paper and code (supir-reference.md, "Defaults"), and the
 * few-step settings ComfyUI-SUPIR uses with Lightning SDXL bases: choosing one on SUPIR Sample
 * replaces the widgets it lists, so a workflow can say "paper" and mean exactly the paper's settings.
 */
import { DPMPP_GUIDED, type SamplerName, type SamplerSettings } from './sampler-run.ts';

/**
 * A preset's settings; `sampler` only where the settings are meant for one sampler (the Lightning
 * preset's 10 steps are a DPM++ schedule, not a RestoreEDM one). Without it the node's sampler
 * widget stays as set.
 */
export interface SamplerPreset extends SamplerSettings {
  sampler?: SamplerName;
}

export const PRESETS = {
  /** The README's empirical "quality" settings (SUPIR-v0Q). */
  'SUPIR quality': { steps: 50, cfg_scale: 6.0, cfg_scale_start: 3.0, linear_cfg: true, control_scale: 1.0, control_scale_start: 0.0, linear_control_scale: false, restoration_scale: -1, s_churn: 5, s_noise: 1.02 },
  /** The README's empirical "fidelity" settings (SUPIR-v0F): lower CFG, weaker control. */
  'SUPIR fidelity': { steps: 50, cfg_scale: 4.0, cfg_scale_start: 1.0, linear_cfg: true, control_scale: 0.93, control_scale_start: 0.0, linear_control_scale: false, restoration_scale: -1, s_churn: 5, s_noise: 1.01 },
  /** The paper: restoration guidance τ_r = 4, 100 steps, CFG 7.5. */
  paper: { steps: 100, cfg_scale: 7.5, cfg_scale_start: 7.5, linear_cfg: false, control_scale: 1.0, control_scale_start: 0.0, linear_control_scale: false, restoration_scale: 4, s_churn: 5, s_noise: 1.003 },
  /**
   * For few-step "Lightning" SDXL bases (e.g. Juggernaut XL Lightning), as ComfyUI-SUPIR's Lightning
   * example (kijai/ComfyUI-SUPIR example_workflows/supir_lightning_example_02.json) samples them:
   * RestoreDPMPP2MSampler, 10 steps, CFG 2 → 1.5, control 1 → 0.9, s_noise 1.003, restoration off
   * (ComfyUI-SUPIR forces restore_cfg −1 for its DPM++ samplers). Its DPM++ sampler applies the
   * linear control ramp, which the official RestoreDPMPP2MSampler does not, so the preset picks our
   * DPM++ variant that does; with restoration_scale −1 that variant adds nothing else. s_churn is
   * unused by DPM++ (0).
   */
  Lightning: { sampler: DPMPP_GUIDED, steps: 10, cfg_scale: 1.5, cfg_scale_start: 2.0, linear_cfg: true, control_scale: 0.9, control_scale_start: 1.0, linear_control_scale: true, restoration_scale: -1, s_churn: 0, s_noise: 1.003 },
} as const satisfies Record<string, SamplerPreset>;

export const PRESET_NAMES = ['custom', ...Object.keys(PRESETS)] as const;

/**
 * The widget values with the preset's settings laid over them, its sampler included where it names
 * one ('custom' keeps them as they are).
 */
export function withPreset<T extends SamplerSettings & { sampler?: string }>(args: T, preset: string): T {
  const settings = (PRESETS as Record<string, SamplerPreset>)[preset];
  return settings ? { ...args, ...settings } : args;
}

/**
 * Named sampler settings from the SUPIR paper and code (supir-reference.md, "Defaults"):
 * choosing one on SUPIR Sample replaces the widgets it lists, so a workflow can say "paper"
 * and mean exactly the paper's settings.
 */
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

export const PRESETS = {
  /** The README's empirical "quality" settings (SUPIR-v0Q). */
  'SUPIR quality': { steps: 50, cfg_scale: 6.0, cfg_scale_start: 3.0, linear_cfg: true, control_scale: 1.0, control_scale_start: 0.0, linear_control_scale: false, restoration_scale: -1, s_churn: 5, s_noise: 1.02 },
  /** The README's empirical "fidelity" settings (SUPIR-v0F): lower CFG, weaker control. */
  'SUPIR fidelity': { steps: 50, cfg_scale: 4.0, cfg_scale_start: 1.0, linear_cfg: true, control_scale: 0.93, control_scale_start: 0.0, linear_control_scale: false, restoration_scale: -1, s_churn: 5, s_noise: 1.01 },
  /** The paper: restoration guidance τ_r = 4, 100 steps, CFG 7.5. */
  paper: { steps: 100, cfg_scale: 7.5, cfg_scale_start: 7.5, linear_cfg: false, control_scale: 1.0, control_scale_start: 0.0, linear_control_scale: false, restoration_scale: 4, s_churn: 5, s_noise: 1.003 },
} as const satisfies Record<string, SamplerSettings>;

export const PRESET_NAMES = ['custom', ...Object.keys(PRESETS)] as const;

/** The widget values with the preset's settings laid over them ('custom' keeps them as they are). */
export function withPreset<T extends SamplerSettings>(args: T, preset: string): T {
  const settings = (PRESETS as Record<string, SamplerSettings>)[preset];
  return settings ? { ...args, ...settings } : args;
}

import { describe, expect, it } from 'vitest';
import { checkWidgetValue } from '../../nodes/api/widgets.ts';
import { samplerSigmas } from '../../nodes/supir/lib/denoiser.ts';
import { karrasSigmas } from '../../nodes/supir/lib/sampler-dpmpp.ts';
import { GUIDANCE_SIGMA_MAX } from '../../nodes/supir/lib/sampler-guidance.ts';
import { PRESET_NAMES, PRESETS, withPreset } from '../../nodes/supir/lib/sampler-presets.ts';
import { DPMPP_GUIDED, runSampler } from '../../nodes/supir/lib/sampler-run.ts';
import SupirSample from '../../nodes/supir/sample.ts';
import { tempEnv } from '../support/fake-context.ts';

describe('SUPIR Sample presets', () => {
  const custom = { sampler: 'RestoreEDM', steps: 12, cfg_scale: 2, cfg_scale_start: 2, linear_cfg: false, control_scale: 0.5, control_scale_start: 0.1, linear_control_scale: true, restoration_scale: -1, s_churn: 0, s_noise: 1, seed: 7 };

  it('custom keeps the widgets; a preset replaces exactly its settings', () => {
    expect(withPreset(custom, 'custom')).toEqual(custom);
    const paper = withPreset(custom, 'paper');
    expect(paper).toMatchObject({ steps: 100, cfg_scale: 7.5, restoration_scale: 4, linear_cfg: false, seed: 7 });
    expect(withPreset(custom, 'SUPIR fidelity')).toMatchObject({ cfg_scale: 4.0, cfg_scale_start: 1.0, s_noise: 1.01, control_scale: 0.93 });
    // The paper's presets leave the sampler widget alone.
    for (const name of ['paper', 'SUPIR quality', 'SUPIR fidelity']) expect(withPreset(custom, name).sampler, name).toBe('RestoreEDM');
  });

  it('offers every preset on the node, and each preset value passes the node widgets own checks', () => {
    const { env, cleanup } = tempEnv();
    try {
      expect(checkWidgetValue(SupirSample.widgets.preset!, 'paper', env)).toBeUndefined();
      expect(checkWidgetValue(SupirSample.widgets.preset!, 'Lightning', env)).toBeUndefined();
      for (const settings of Object.values(PRESETS)) {
        for (const [name, value] of Object.entries(settings)) expect(checkWidgetValue(SupirSample.widgets[name]!, value, env), name).toBeUndefined();
      }
    } finally {
      cleanup();
    }
  });

  it('Lightning is ComfyUI-SUPIR\'s Lightning example: DPM++ with the control ramp, 10 steps, CFG 2 → 1.5, control 1 → 0.9', () => {
    expect(PRESET_NAMES).toContain('Lightning');
    const lightning = withPreset(custom, 'Lightning');
    expect(lightning).toEqual({
      ...custom,
      sampler: DPMPP_GUIDED,
      steps: 10,
      cfg_scale_start: 2,
      cfg_scale: 1.5,
      linear_cfg: true,
      control_scale_start: 1,
      control_scale: 0.9,
      linear_control_scale: true,
      restoration_scale: -1,
      s_churn: 0,
      s_noise: 1.003,
    });
  });

  it('a Lightning run makes 10 network calls on the DPM++ Karras schedule, ramping CFG and control as the preset says', async () => {
    const args = withPreset(custom, 'Lightning');
    const size = 4 * 2 * 2;
    const calls: Array<{ sigma: number; control: number }> = [];
    const steps: Array<{ sigma: number; cfg: number; control: number }> = [];
    // A network that predicts x0 = 0 for the uncond half and 1 for the cond half: CFG gives the scale back.
    const out = await runSampler(args, {
      denoiser: async (x, sigma, _cond, cs) => {
        calls.push({ sigma: sigma[0]!, control: cs });
        return Float32Array.from(x, (_, i) => (i < size ? 0 : 1));
      },
      cond: {},
      shape: [1, 4, 2, 2],
      noise: new Float32Array(size).fill(0.5),
      drawNoise: () => new Float32Array(size),
      xCenter: new Float32Array(size),
      onStep: (_i, _x, denoised, info) => {
        expect(denoised[0]).toBeCloseTo(info.cfgScale, 6);
        steps.push({ sigma: info.sigma, cfg: info.cfgScale, control: info.controlScale });
      },
    });
    expect(calls).toHaveLength(10);
    const legacy = samplerSigmas(10);
    const karras = karrasSigmas(10, legacy[9]!, legacy[0]!);
    expect(steps.map((s) => s.sigma)).toEqual(Array.from(karras.subarray(0, 10)));
    for (const [i, s] of steps.entries()) {
      const ramp = s.sigma / GUIDANCE_SIGMA_MAX;
      expect(s.cfg, `cfg at step ${i}`).toBeCloseTo(1.5 + 0.5 * ramp, 5);
      expect(s.control, `control at step ${i}`).toBeCloseTo(0.9 + 0.1 * ramp, 12);
      expect(calls[i]!.control).toBe(s.control);
    }
    // From about 1 at the first step down to about 0.9 at the last: a ramp, not the official DPM++'s constant.
    expect(steps[0]!.control).toBeGreaterThan(0.99);
    expect(steps[9]!.control).toBeLessThan(0.905);
    expect(steps[0]!.cfg).toBeGreaterThan(1.99);
    // The last step lands on the guided x0 itself.
    expect(out[0]).toBeCloseTo(steps[9]!.cfg, 6);
  });
});

import { describe, expect, it } from 'vitest';
import { checkWidgetValue } from '../../nodes/api/widgets.ts';
import { PRESETS, withPreset } from '../../nodes/supir/lib/sampler-presets.ts';
import SupirSample from '../../nodes/supir/sample.ts';
import { tempEnv } from '../support/fake-context.ts';

describe('SUPIR Sample presets', () => {
  const custom = { steps: 12, cfg_scale: 2, cfg_scale_start: 2, linear_cfg: false, control_scale: 0.5, control_scale_start: 0.1, linear_control_scale: true, restoration_scale: -1, s_churn: 0, s_noise: 1, seed: 7 };

  it('custom keeps the widgets; a preset replaces exactly its settings', () => {
    expect(withPreset(custom, 'custom')).toEqual(custom);
    const paper = withPreset(custom, 'paper');
    expect(paper).toMatchObject({ steps: 100, cfg_scale: 7.5, restoration_scale: 4, linear_cfg: false, seed: 7 });
    expect(withPreset(custom, 'SUPIR fidelity')).toMatchObject({ cfg_scale: 4.0, cfg_scale_start: 1.0, s_noise: 1.01, control_scale: 0.93 });
  });

  it('offers every preset on the node, and each preset value passes the node widgets own checks', () => {
    const { env, cleanup } = tempEnv();
    try {
      expect(checkWidgetValue(SupirSample.widgets.preset!, 'paper', env)).toBeUndefined();
      for (const settings of Object.values(PRESETS)) {
        for (const [name, value] of Object.entries(settings)) expect(checkWidgetValue(SupirSample.widgets[name]!, value, env), name).toBeUndefined();
      }
    } finally {
      cleanup();
    }
  });
});

import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { boolean, combo, float, int, seed, string, type FloatWidget, type IntWidget } from '../api/widgets.ts';
import { applyOverrides, applySettingWidgets, FROM_PRESET, PRESETS, presetConfig, realEsrganConfig, SETTING_WIDGETS, SettingError, type DegradeConfig } from './lib/presets.ts';
import { runBatch } from './run-batch.ts';

/**
 * One widget per main range (blur sigma, resize factor, noise, JPEG quality, per stage) and two
 * probabilities. Each defaults to -1, which keeps the chosen preset's value: the preset fills in
 * everything, the JSON `ranges` edit it, and every widget set to something else than -1 has the
 * last word. The descriptions quote the Real-ESRGAN numbers.
 */
const REFERENCE = realEsrganConfig();
const settingWidgets = Object.fromEntries(
  SETTING_WIDGETS.map((w) => {
    const spec = {
      default: FROM_PRESET,
      min: FROM_PRESET,
      max: w.hi,
      step: w.step,
      description: `${w.description} -1: the preset's (Real-ESRGAN: ${w.get(REFERENCE)}).`,
    };
    return [w.name, w.kind === 'int' ? int(spec) : float(spec)];
  }),
) as Record<string, IntWidget | FloatWidget>;

type Values = Record<string, unknown> & { preset: string; ranges: string };

/** The preset, then the JSON edits, then the widgets; throws an InputError naming the culprit. */
function settings(values: Values): DegradeConfig {
  let base: DegradeConfig;
  try {
    base = applyOverrides(presetConfig(values.preset), values.ranges);
  } catch (e) {
    throw new InputError('ranges', (e as Error).message);
  }
  try {
    return applySettingWidgets(base, values);
  } catch (e) {
    if (e instanceof SettingError) throw new InputError(e.widget, e.message);
    throw e;
  }
}

/**
 * Real-ESRGAN second-order degradation (blur, resize, noise, JPEG twice, then a final sinc and JPEG
 * in a random order), the synthetic low-quality inputs SUPIR, DiffBIR and Real-ESRGAN train on.
 * The work runs in a worker thread (worker.ts), so the server stays responsive; every draw comes
 * from the seed, in the order lib/pipeline.ts documents, and the `params` output lists them as JSON
 * with the settings used.
 */
export default defineNode({
  id: 'DegradeRealESRGAN',
  displayName: 'Degrade (Real-ESRGAN)',
  category: 'degrade',
  description:
    'Makes a realistic low-quality version of an image with the Real-ESRGAN second-order degradation ' +
    '(random blur, resize, noise and JPEG, twice, then sinc and JPEG); params lists everything drawn. ' +
    'The preset sets every range; a range widget other than -1 overrides it.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    preset: combo({
      options: PRESETS,
      default: 'Real-ESRGAN (x4)',
      description:
        'Real-ESRGAN (x4): the published training ranges. light: milder ranges of our own. DiffBIR: the ' +
        'Real-ESRGAN ranges, with the result resized back to the input size (bicubic). The range widgets ' +
        'below override it where they are not -1.',
    }),
    seed: seed({ default: 0, description: 'Every random choice is drawn from this seed.' }),
    scale: int({ default: 4, min: 1, max: 16, description: 'The low-quality image is 1/scale of the input size.' }),
    resize_back: boolean({
      default: false,
      description: 'Resize the result back to the input size with bicubic (always on with the DiffBIR preset).',
    }),
    sharpen_first: boolean({
      default: false,
      description: 'Unsharp-mask the input first (51x51 Gaussian, sigma 8, weight 0.5), as Real-ESRGAN training does.',
    }),
    ...settingWidgets,
    ranges: string({
      default: '',
      multiline: true,
      maxLength: 10_000,
      description:
        'Optional JSON edits of the preset for what has no widget, e.g. {"stage1": {"resizeProb": [0.2, 0.7, 0.1], ' +
        '"noise": {"grayProb": 0}}, "resizeFirstProb": 0.5}. Stage keys: blurProb, resizeProb, resizeRange, jpegRange, ' +
        'blur {sigmaX, sigmaY, betaGaussian, betaPlateau, sincProb}, noise {sigma, poissonScale, gaussianProb, grayProb}. ' +
        'Range widgets other than -1 win over these.',
    }),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate(values) {
    try {
      settings(values as Values);
      return [];
    } catch (e) {
      return [[(e as InputError).input, (e as Error).message.replace(/^input '[^']*': /, '')]];
    }
  },
  async execute(args, ctx) {
    const { image, preset, seed: seedValue, scale, resize_back, sharpen_first, ranges } = args;
    if (Math.floor(image.h / scale) < 1 || Math.floor(image.w / scale) < 1) {
      throw new InputError('scale', `a ${image.w}x${image.h} image is smaller than the scale ${scale}`);
    }
    const base = settings(args as unknown as Values);
    const cfg = { ...base, resizeBack: base.resizeBack || resize_back, usm: sharpen_first };
    const { image: out, params } = await runBatch('degrade', image, seedValue, { cfg, scale }, ctx);
    const drawn = {
      preset,
      seed: seedValue,
      scale,
      resizeBack: cfg.resizeBack,
      usm: cfg.usm,
      ranges: ranges.trim() ? JSON.parse(ranges) : null,
      settings: { stage1: cfg.stage1, stage2: cfg.stage2, finalSincProb: cfg.finalSincProb, resizeFirstProb: cfg.resizeFirstProb },
      images: params,
    };
    return { image: out, params: JSON.stringify(drawn, null, 2) };
  },
});

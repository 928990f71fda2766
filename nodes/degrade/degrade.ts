import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import { boolean, combo, int, seed, string } from '../api/widgets.ts';
import { degradeImage } from './lib/pipeline.ts';
import { applyOverrides, PRESETS, presetConfig } from './lib/presets.ts';

/**
 * Real-ESRGAN second-order degradation (blur, resize, noise, JPEG twice, then a final sinc and JPEG
 * in a random order), the synthetic low-quality inputs SUPIR, DiffBIR and Real-ESRGAN train on.
 * The ranges are the preset's (see lib/presets.ts); every draw comes from the seed, in the order
 * lib/pipeline.ts documents, and the `params` output lists them as JSON.
 */
export default defineNode({
  id: 'DegradeRealESRGAN',
  displayName: 'Degrade (Real-ESRGAN)',
  category: 'degrade',
  description:
    'Makes a realistic low-quality version of an image with the Real-ESRGAN second-order degradation ' +
    '(random blur, resize, noise and JPEG, twice, then sinc and JPEG); params lists everything drawn.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    preset: combo({
      options: PRESETS,
      default: 'Real-ESRGAN (x4)',
      description:
        'Real-ESRGAN (x4): the published training ranges. light: milder ranges of our own. DiffBIR: the ' +
        'Real-ESRGAN ranges, with the result resized back to the input size (bicubic).',
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
    ranges: string({
      default: '',
      multiline: true,
      maxLength: 10_000,
      description:
        'Optional JSON edits of the preset ranges, e.g. {"stage1": {"jpegRange": [60, 95], "noise": {"sigma": [1, 10]}}, ' +
        '"stage2": {"blurProb": 0.5}, "finalSincProb": 0.5}. Stage keys: blurProb, resizeProb, resizeRange, jpegRange, ' +
        'blur {sigmaX, sigmaY, betaGaussian, betaPlateau, sincProb}, noise {sigma, poissonScale, gaussianProb, grayProb}.',
    }),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate({ preset, ranges }) {
    try {
      applyOverrides(presetConfig(preset), ranges);
      return [];
    } catch (e) {
      return [['ranges', (e as Error).message]];
    }
  },
  async execute({ image, preset, seed: seedValue, scale, resize_back, sharpen_first, ranges }, ctx) {
    if (Math.floor(image.h / scale) < 1 || Math.floor(image.w / scale) < 1) {
      throw new InputError('scale', `a ${image.w}x${image.h} image is smaller than the scale ${scale}`);
    }
    let base;
    try {
      base = applyOverrides(presetConfig(preset), ranges);
    } catch (e) {
      throw new InputError('ranges', (e as Error).message);
    }
    const cfg = { ...base, resizeBack: base.resizeBack || resize_back, usm: sharpen_first };
    const rng = ctx.rng(seedValue);
    const results: ImageTensor[] = [];
    const params: Record<string, unknown>[] = [];
    for (let i = 0; i < image.n; i++) {
      ctx.checkAborted();
      const r = await degradeImage(batchItem(image, i), rng, cfg, scale, (step, total) => ctx.progress(i * total + step, image.n * total));
      results.push(r.image);
      params.push(r.params);
    }
    const first = results[0]!;
    const out = createImage(image.n, first.c, first.h, first.w);
    results.forEach((r, i) => out.data.set(r.data, i * r.data.length));
    const drawn = { preset, seed: seedValue, scale, resizeBack: cfg.resizeBack, usm: cfg.usm, ranges: ranges.trim() ? JSON.parse(ranges) : null, images: params };
    return { image: out, params: JSON.stringify(drawn, null, 2) };
  },
});

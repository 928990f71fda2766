/**
 * The single operations of the Real-ESRGAN degradation as nodes, for custom chains: each has its
 * own ranges as widgets (defaults: the Real-ESRGAN stage-1 numbers), draws from its seed and lists
 * what it drew in `params` (JSON, one entry per image). They run the same code as the pipeline
 * (lib/ops.ts) in the same worker thread.
 */
import { defineNode, type AnyNodeDefinition, type NodeContext } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import type { ImageTensor } from '../api/tensor.ts';
import { combo, float, int, seed } from '../api/widgets.ts';
import type { KernelKind } from './lib/kernels.ts';
import type { OpArgs, OpName } from './lib/ops.ts';
import { realEsrganConfig } from './lib/presets.ts';
import { RESIZE_MODES, type ResizeMode } from './lib/resize.ts';
import { runBatch } from './run-batch.ts';

type Values = Record<string, unknown>;

/** Problems with min/max widget pairs: [max widget, reason] when min > max. */
function rangeProblems(v: Values, pairs: Array<[string, string]>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [lo, hi] of pairs) {
    if ((v[lo] as number) > (v[hi] as number)) out.push([hi, `${hi} (${String(v[hi])}) is below ${lo} (${String(v[lo])})`]);
  }
  return out;
}

/** Throws the first problem as an InputError naming the widget. */
function check(problems: Array<[string, string]>): void {
  const p = problems[0];
  if (p) throw new InputError(p[0], p[1]);
}

const seedWidget = seed({ default: 0, description: 'Every random choice is drawn from this seed; each image of a batch gets its own draws.' });

/**
 * What every seeded operation node executes: refuse the range problems its `validate` reports (a
 * prompt sent past validation still gets them as InputErrors), run `op` on the batch, and list
 * the draws of each image under the seed as the `params` JSON.
 */
async function runSeeded<K extends OpName>(
  op: K,
  v: { image: ImageTensor; seed: number },
  problems: Array<[string, string]>,
  args: OpArgs[K],
  ctx: NodeContext,
  opts?: { sameDraws?: boolean },
): Promise<{ image: ImageTensor; params: string }> {
  check(problems);
  const r = await runBatch(op, v.image, v.seed, args, ctx, opts);
  return { image: r.image, params: JSON.stringify({ seed: v.seed, images: r.params }, null, 2) };
}

/** The published numbers the widgets start from: Real-ESRGAN's first stage and its final sinc. */
const PUBLISHED = realEsrganConfig();
const STAGE1 = PUBLISHED.stage1;
const KINDS = STAGE1.blur.kernelList;
const KIND_PROBS = STAGE1.blur.kernelProb;

const blurPairs: Array<[string, string]> = [
  ['size_min', 'size_max'],
  ['sigma_min', 'sigma_max'],
  ['beta_gaussian_min', 'beta_gaussian_max'],
  ['beta_plateau_min', 'beta_plateau_max'],
];

function blurProblems(v: Values): Array<[string, string]> {
  const out = rangeProblems(v, blurPairs);
  const lo = v.size_min as number;
  const hi = v.size_max as number;
  if (lo === hi && lo % 2 === 0) out.push(['size_max', `no odd kernel size between ${lo} and ${hi}`]);
  if (v.kernel === 'random' && KINDS.every((k) => (v[`${k}_prob`] as number) === 0) && (v.sinc_prob as number) < 1) {
    out.push(['iso_prob', 'every kernel probability is 0']);
  }
  return out;
}

export const DegradeBlur = defineNode({
  id: 'DegradeBlur',
  displayName: 'Blur (random kernel)',
  category: 'degrade',
  description:
    'Blurs with a random Real-ESRGAN kernel (Gaussian, generalized Gaussian, plateau, isotropic or not, or sinc), ' +
    'reflect padding. Pick a kind to force it; set min = max for a fixed value.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    seed: seedWidget,
    kernel: combo({
      options: ['random', ...KINDS, 'sinc'],
      default: 'random',
      description: 'random: the kind is drawn by the probabilities below (sinc with sinc_prob); otherwise always this kind.',
    }),
    size_min: int({ default: 7, min: 1, max: 21, description: 'Smallest kernel size (odd sizes are drawn uniformly).' }),
    size_max: int({ default: 21, min: 1, max: 21, description: 'Largest kernel size.' }),
    sigma_min: float({ default: STAGE1.blur.sigmaX[0], min: 0.05, max: 20, step: 0.05, description: 'Lowest sigma (pixels), x and y.' }),
    sigma_max: float({ default: STAGE1.blur.sigmaX[1], min: 0.05, max: 20, step: 0.05, description: 'Highest sigma (pixels), x and y.' }),
    beta_gaussian_min: float({ default: STAGE1.blur.betaGaussian[0], min: 0.05, max: 8, step: 0.05, description: 'Generalized Gaussian beta: drawn from U(min, 1) or U(1, max), 50/50.' }),
    beta_gaussian_max: float({ default: STAGE1.blur.betaGaussian[1], min: 0.05, max: 8, step: 0.05, description: 'Generalized Gaussian beta, highest.' }),
    beta_plateau_min: float({ default: STAGE1.blur.betaPlateau[0], min: 0.05, max: 8, step: 0.05, description: 'Plateau beta: drawn from U(min, 1) or U(1, max), 50/50.' }),
    beta_plateau_max: float({ default: STAGE1.blur.betaPlateau[1], min: 0.05, max: 8, step: 0.05, description: 'Plateau beta, highest.' }),
    sinc_prob: float({ default: STAGE1.blur.sincProb, min: 0, max: 1, step: 0.01, description: 'With kernel random: probability of a sinc kernel instead.' }),
    ...Object.fromEntries(
      KINDS.map((k, i) => [`${k}_prob`, float({ default: KIND_PROBS[i]!, min: 0, max: 1, step: 0.01, description: `With kernel random: weight of ${k} kernels.` })]),
    ),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate: (v) => blurProblems(v),
  execute(v, ctx) {
    const blur = {
      kernelList: [...KINDS],
      kernelProb: KINDS.map((k) => (v as Values)[`${k}_prob`] as number),
      sigmaX: [v.sigma_min, v.sigma_max] as [number, number],
      sigmaY: [v.sigma_min, v.sigma_max] as [number, number],
      rotation: [-Math.PI, Math.PI] as [number, number],
      betaGaussian: [v.beta_gaussian_min, v.beta_gaussian_max] as [number, number],
      betaPlateau: [v.beta_plateau_min, v.beta_plateau_max] as [number, number],
      sincProb: v.sinc_prob,
      sizeRange: [v.size_min, v.size_max] as [number, number],
    };
    return runSeeded('blur', v, blurProblems(v), { blur, kind: v.kernel as 'random' | KernelKind }, ctx);
  },
});

function resizeProblems(v: Values): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if ((v.up_prob as number) + (v.down_prob as number) + (v.keep_prob as number) <= 0) out.push(['keep_prob', 'up, down and keep probabilities are all 0']);
  return out;
}

export const DegradeResize = defineNode({
  id: 'DegradeResize',
  displayName: 'Resize (random)',
  category: 'degrade',
  description:
    'Resizes by a random factor as Real-ESRGAN does (up U(1, max), down U(min, 1), or keep; area, bilinear or ' +
    'bicubic without antialiasing). One draw for the whole batch, so that its images keep one size.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    seed: seed({ default: 0, description: 'The resize is drawn from this seed (one draw for the whole batch).' }),
    up_prob: float({ default: STAGE1.resizeProb[0], min: 0, max: 1, step: 0.01, description: 'Weight of enlarging.' }),
    down_prob: float({ default: STAGE1.resizeProb[1], min: 0, max: 1, step: 0.01, description: 'Weight of shrinking.' }),
    keep_prob: float({ default: STAGE1.resizeProb[2], min: 0, max: 1, step: 0.01, description: 'Weight of keeping the size.' }),
    scale_min: float({ default: STAGE1.resizeRange[0], min: 0.01, max: 1, step: 0.01, description: 'Shrinking draws the factor from U(scale_min, 1).' }),
    scale_max: float({ default: STAGE1.resizeRange[1], min: 1, max: 4, step: 0.01, description: 'Enlarging draws the factor from U(1, scale_max).' }),
    mode: combo({ options: ['random', ...RESIZE_MODES], default: 'random', description: 'random: area, bilinear or bicubic with equal odds.' }),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate: (v) => resizeProblems(v),
  execute(v, ctx) {
    const args = {
      resizeProb: [v.up_prob, v.down_prob, v.keep_prob] as [number, number, number],
      resizeRange: [v.scale_min, v.scale_max] as [number, number],
      mode: v.mode as 'random' | ResizeMode,
    };
    return runSeeded('resize', v, resizeProblems(v), args, ctx, { sameDraws: true });
  },
});

const noisePairs: Array<[string, string]> = [
  ['sigma_min', 'sigma_max'],
  ['poisson_scale_min', 'poisson_scale_max'],
];

export const DegradeNoise = defineNode({
  id: 'DegradeNoise',
  displayName: 'Add Noise',
  category: 'degrade',
  description:
    'Adds Gaussian noise (sigma on the 0..255 scale) or Poisson noise (on the 8-bit image), in colour or gray, ' +
    'drawn as Real-ESRGAN does; the result is clamped to 0..1.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    seed: seedWidget,
    gaussian_prob: float({ default: STAGE1.noise.gaussianProb, min: 0, max: 1, step: 0.01, description: 'Probability of Gaussian noise (else Poisson).' }),
    sigma_min: float({ default: STAGE1.noise.sigma[0], min: 0, max: 255, step: 0.5, description: 'Lowest Gaussian sigma (0..255 scale).' }),
    sigma_max: float({ default: STAGE1.noise.sigma[1], min: 0, max: 255, step: 0.5, description: 'Highest Gaussian sigma.' }),
    poisson_scale_min: float({ default: STAGE1.noise.poissonScale[0], min: 0, max: 20, step: 0.05, description: 'Lowest Poisson scale.' }),
    poisson_scale_max: float({ default: STAGE1.noise.poissonScale[1], min: 0, max: 20, step: 0.05, description: 'Highest Poisson scale.' }),
    gray_prob: float({ default: STAGE1.noise.grayProb, min: 0, max: 1, step: 0.01, description: 'Probability of gray noise (one field for all channels).' }),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate: (v) => rangeProblems(v, noisePairs),
  execute(v, ctx) {
    const cfg = {
      gaussianProb: v.gaussian_prob,
      sigma: [v.sigma_min, v.sigma_max] as [number, number],
      poissonScale: [v.poisson_scale_min, v.poisson_scale_max] as [number, number],
      grayProb: v.gray_prob,
    };
    return runSeeded('noise', v, rangeProblems(v, noisePairs), cfg, ctx);
  },
});

const jpegPairs: Array<[string, string]> = [['quality_min', 'quality_max']];

export const DegradeJPEG = defineNode({
  id: 'DegradeJPEG',
  displayName: 'JPEG Compress',
  category: 'degrade',
  description: 'Compresses with real JPEG (libjpeg via sharp, 4:2:0) at a quality drawn from the range, and decodes again.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    seed: seedWidget,
    quality_min: int({ default: STAGE1.jpegRange[0], min: 1, max: 100, description: 'Lowest quality.' }),
    quality_max: int({ default: STAGE1.jpegRange[1], min: 1, max: 100, description: 'Highest quality.' }),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate: (v) => rangeProblems(v, jpegPairs),
  execute: (v, ctx) => runSeeded('jpeg', v, rangeProblems(v, jpegPairs), { quality: [v.quality_min, v.quality_max] }, ctx),
});

const sincPairs: Array<[string, string]> = [
  ['size_min', 'size_max'],
  ['omega_min', 'omega_max'],
];

function sincProblems(v: Values): Array<[string, string]> {
  const out = rangeProblems(v, sincPairs);
  if (v.size_min === v.size_max && (v.size_min as number) % 2 === 0) out.push(['size_max', `no odd kernel size between ${String(v.size_min)} and ${String(v.size_max)}`]);
  return out;
}

export const DegradeSinc = defineNode({
  id: 'DegradeSinc',
  displayName: 'Sinc Filter',
  category: 'degrade',
  description:
    "Real-ESRGAN's final sinc filter (circular low-pass, ringing like an over-sharpened resize): with the given " +
    'probability, a sinc kernel of random size and cutoff omega_c, reflect padding.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    seed: seedWidget,
    probability: float({ default: PUBLISHED.finalSincProb, min: 0, max: 1, step: 0.01, description: 'Probability that the filter is applied (else the image passes unchanged).' }),
    size_min: int({ default: 7, min: 1, max: 21, description: 'Smallest kernel size (odd sizes are drawn uniformly).' }),
    size_max: int({ default: 21, min: 1, max: 21, description: 'Largest kernel size.' }),
    omega_min: float({ default: Math.PI / 3, min: 0.01, max: Math.PI, step: 0.01, description: 'Lowest cutoff omega_c (radians per pixel; pi/3).' }),
    omega_max: float({ default: Math.PI, min: 0.01, max: Math.PI, step: 0.01, description: 'Highest cutoff omega_c (pi: barely filtered).' }),
  },
  outputs: { image: 'IMAGE', params: 'STRING' },
  validate: (v) => sincProblems(v),
  execute(v, ctx) {
    const args = { prob: v.probability, sizeRange: [v.size_min, v.size_max] as [number, number], omega: [v.omega_min, v.omega_max] as [number, number] };
    return runSeeded('sinc', v, sincProblems(v), args, ctx);
  },
});

export const DegradeUnsharpMask = defineNode({
  id: 'DegradeUnsharpMask',
  displayName: 'Unsharp Mask',
  category: 'degrade',
  description:
    'Sharpens as Real-ESRGAN training sharpens its ground truth (BasicSR USMSharp: 51x51 Gaussian, sigma 8), ' +
    'only where the detail exceeds the threshold.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    weight: float({ default: 0.5, min: 0, max: 4, step: 0.05, description: 'How much of the detail (image - blurred) is added.' }),
    threshold: float({ default: 10, min: 0, max: 255, step: 1, description: 'Detail below this (0..255 scale) is left alone (a soft mask).' }),
  },
  outputs: { image: 'IMAGE' },
  async execute(v, ctx) {
    const r = await runBatch('usm', v.image, 0, { weight: v.weight, threshold: v.threshold }, ctx);
    return { image: r.image };
  },
});

/** In menu order, after Degrade (Real-ESRGAN). */
export const degradeOpNodes: AnyNodeDefinition[] = [DegradeBlur, DegradeResize, DegradeNoise, DegradeJPEG, DegradeSinc, DegradeUnsharpMask];

/**
 * Settings of the Real-ESRGAN second-order degradation (BasicSR `train_realesrnet_x4plus`, see
 * ../shared/docs/degradation-reference.md) and the presets the DegradeRealESRGAN node offers.
 */
import type { BlurConfig } from './kernels.ts';
import type { NoiseConfig } from './noise.ts';

export interface StageConfig {
  blur: BlurConfig;
  /** Probability that this stage blurs at all (1 in stage 1, 0.8 in stage 2). */
  blurProb: number;
  /** Probabilities of resizing up, down, or keeping the size. */
  resizeProb: [number, number, number];
  /** Scale range: up draws U(1, hi), down U(lo, 1). */
  resizeRange: [number, number];
  noise: NoiseConfig;
  /** JPEG quality range, integers, inclusive. */
  jpegRange: [number, number];
}

export interface DegradeConfig {
  stage1: StageConfig;
  stage2: StageConfig;
  /** Probability of the final sinc filter (else identity). */
  finalSincProb: number;
  /** Probability of [resize -> sinc -> JPEG] as the final step (else [JPEG -> resize -> sinc]). */
  resizeFirstProb: number;
  /** Unsharp-mask the clean input first (training does; off by default). */
  usm: boolean;
  /** Resize the LQ back to the input size with bicubic (DiffBIR). */
  resizeBack: boolean;
}

const KINDS: BlurConfig['kernelList'] = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'];
const KIND_PROB = [0.45, 0.25, 0.12, 0.03, 0.12, 0.03];

function blur(sigma: [number, number]): BlurConfig {
  return {
    kernelList: [...KINDS],
    kernelProb: [...KIND_PROB],
    sigmaX: sigma,
    sigmaY: sigma,
    rotation: [-Math.PI, Math.PI],
    betaGaussian: [0.5, 4],
    betaPlateau: [1, 2],
    sincProb: 0.1,
  };
}

/** The paper settings of Real-ESRGAN (x4plus), which SUPIR's v0Q follows. */
export function realEsrganConfig(): DegradeConfig {
  return {
    stage1: {
      blur: blur([0.2, 3]),
      blurProb: 1,
      resizeProb: [0.2, 0.7, 0.1],
      resizeRange: [0.15, 1.5],
      noise: { gaussianProb: 0.5, sigma: [1, 30], poissonScale: [0.05, 3], grayProb: 0.4 },
      jpegRange: [30, 95],
    },
    stage2: {
      blur: blur([0.2, 1.5]),
      blurProb: 0.8,
      resizeProb: [0.3, 0.4, 0.3],
      resizeRange: [0.3, 1.2],
      noise: { gaussianProb: 0.5, sigma: [1, 25], poissonScale: [0.05, 2.5], grayProb: 0.4 },
      jpegRange: [30, 95],
    },
    finalSincProb: 0.8,
    resizeFirstProb: 0.5,
    usm: false,
    resizeBack: false,
  };
}

/**
 * A milder variant (SUPIR's v0F is trained on a "light degradation" it does not publish; these
 * ranges are ours): roughly half the blur, a third of the noise, higher JPEG qualities, and a
 * second stage that blurs less often.
 */
export function lightConfig(): DegradeConfig {
  const base = realEsrganConfig();
  return {
    ...base,
    stage1: {
      ...base.stage1,
      blur: { ...blur([0.2, 1.5]), sincProb: 0.05 },
      resizeRange: [0.5, 1.5],
      noise: { gaussianProb: 0.5, sigma: [1, 10], poissonScale: [0.05, 1], grayProb: 0.4 },
      jpegRange: [60, 95],
    },
    stage2: {
      ...base.stage2,
      blur: { ...blur([0.2, 1]), sincProb: 0.05 },
      blurProb: 0.5,
      resizeRange: [0.5, 1.2],
      noise: { gaussianProb: 0.5, sigma: [1, 8], poissonScale: [0.05, 0.8], grayProb: 0.4 },
      jpegRange: [70, 95],
    },
    finalSincProb: 0.5,
  };
}

export const PRESETS = ['Real-ESRGAN (x4)', 'light', 'DiffBIR (restore to original size)'] as const;
export type PresetName = (typeof PRESETS)[number];

export function presetConfig(name: string): DegradeConfig {
  switch (name) {
    case 'light':
      return lightConfig();
    case 'DiffBIR (restore to original size)':
      return { ...realEsrganConfig(), resizeBack: true };
    default:
      return realEsrganConfig();
  }
}

const RANGE_KEYS = {
  blur: ['sigmaX', 'sigmaY', 'betaGaussian', 'betaPlateau'],
  noise: ['sigma', 'poissonScale'],
} as const;
const STAGE_KEYS = ['blurProb', 'resizeProb', 'resizeRange', 'jpegRange', 'blur', 'noise'];

const isPair = (v: unknown): v is [number, number] =>
  Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && v[0] <= v[1];
const isProb = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1;

/**
 * Applies edits of the ranges, as JSON, to a preset, e.g.
 * `{"stage1": {"jpegRange": [60, 95], "noise": {"sigma": [1, 10]}}, "finalSincProb": 0.5}`.
 * Keys: stage1/stage2 { blurProb, resizeProb [up, down, keep], resizeRange, jpegRange,
 * blur { sigmaX, sigmaY, betaGaussian, betaPlateau, sincProb }, noise { sigma, poissonScale,
 * gaussianProb, grayProb } }, finalSincProb, resizeFirstProb. Throws an Error naming what is wrong.
 */
export function applyOverrides(base: DegradeConfig, text: string): DegradeConfig {
  if (text.trim() === '') return base;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('expected a JSON object');
  const cfg = structuredClone(base);
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'finalSincProb' || key === 'resizeFirstProb') {
      if (!isProb(value)) throw new Error(`${key} must be a probability in 0..1`);
      cfg[key] = value;
    } else if (key === 'stage1' || key === 'stage2') {
      applyStage(cfg[key], value, key);
    } else {
      throw new Error(`unknown key '${key}' (expected stage1, stage2, finalSincProb, resizeFirstProb)`);
    }
  }
  return cfg;
}

function applyStage(stage: StageConfig, value: unknown, where: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where} must be an object`);
  for (const [key, v] of Object.entries(value)) {
    const at = `${where}.${key}`;
    switch (key) {
      case 'blurProb':
        if (!isProb(v)) throw new Error(`${at} must be a probability in 0..1`);
        stage.blurProb = v;
        break;
      case 'resizeProb':
        if (!Array.isArray(v) || v.length !== 3 || !v.every(isProb)) throw new Error(`${at} must be three probabilities [up, down, keep]`);
        const [up, down, keep] = v as [number, number, number];
        if (up + down + keep <= 0) throw new Error(`${at} must not be all zero`);
        stage.resizeProb = [up, down, keep];
        break;
      case 'resizeRange':
        if (!isPair(v) || v[0] <= 0 || v[0] > 1 || v[1] < 1) throw new Error(`${at} must be [lo, hi] with 0 < lo <= 1 <= hi`);
        stage.resizeRange = v;
        break;
      case 'jpegRange':
        if (!isPair(v) || !v.every(Number.isInteger) || v[0] < 1 || v[1] > 100) throw new Error(`${at} must be integers [lo, hi] in 1..100`);
        stage.jpegRange = v;
        break;
      case 'blur':
      case 'noise': {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${at} must be an object`);
        const target = stage[key] as unknown as Record<string, unknown>;
        const probKey = key === 'blur' ? ['sincProb'] : ['gaussianProb', 'grayProb'];
        for (const [k, x] of Object.entries(v)) {
          if ((RANGE_KEYS[key] as readonly string[]).includes(k)) {
            if (!isPair(x) || x[0] <= 0) throw new Error(`${at}.${k} must be a positive range [lo, hi]`);
            target[k] = x;
          } else if (probKey.includes(k)) {
            if (!isProb(x)) throw new Error(`${at}.${k} must be a probability in 0..1`);
            target[k] = x;
          } else {
            throw new Error(`unknown key '${at}.${k}'`);
          }
        }
        break;
      }
      default:
        throw new Error(`unknown key '${at}' (expected one of ${STAGE_KEYS.join(', ')})`);
    }
  }
}

/** A setting the DegradeRealESRGAN node edits with its own widget; -1 keeps the preset's value. */
export interface SettingWidget {
  name: string;
  kind: 'float' | 'int';
  /** Allowed values besides -1. */
  lo: number;
  hi: number;
  /** Whether `lo` itself is allowed (sigmas must be above 0). */
  loOpen: boolean;
  step: number;
  description: string;
  get(cfg: DegradeConfig): number;
  set(cfg: DegradeConfig, v: number): void;
}

/** The value of a setting widget that means "the preset's". */
export const FROM_PRESET = -1;

function rangeWidgets(): SettingWidget[] {
  const out: SettingWidget[] = [];
  for (const stage of ['stage1', 'stage2'] as const) {
    const n = stage === 'stage1' ? 1 : 2;
    const pair = (
      key: string,
      what: string,
      lims: [[number, number], [number, number]],
      loOpen: boolean,
      step: number,
      get: (s: StageConfig) => [number, number],
      set: (s: StageConfig, end: 0 | 1, v: number) => void,
      kind: 'float' | 'int' = 'float',
    ) => {
      (['min', 'max'] as const).forEach((end, i) => {
        out.push({
          name: `${stage}_${key}_${end}`,
          kind,
          lo: lims[i]![0],
          hi: lims[i]![1],
          loOpen,
          step,
          description: `Stage ${n}: the ${end === 'min' ? 'lowest' : 'highest'} ${what}.`,
          get: (cfg) => get(cfg[stage])[i]!,
          set: (cfg, v) => set(cfg[stage], i as 0 | 1, v),
        });
      });
    };
    pair('blur_sigma', 'blur sigma (pixels; x and y drawn from the same range)', [[0, 20], [0, 20]], true, 0.05,
      (s) => s.blur.sigmaX,
      (s, end, v) => {
        s.blur.sigmaX[end] = v;
        s.blur.sigmaY[end] = v;
      });
    pair('resize_scale', 'resize factor (down draws U(min, 1), up U(1, max))', [[0, 1], [1, 4]], true, 0.01,
      (s) => s.resizeRange,
      (s, end, v) => void (s.resizeRange[end] = v));
    pair('noise_sigma', 'Gaussian noise sigma (0..255 scale)', [[0, 255], [0, 255]], false, 0.5,
      (s) => s.noise.sigma,
      (s, end, v) => void (s.noise.sigma[end] = v));
    pair('poisson_scale', 'Poisson noise scale', [[0, 20], [0, 20]], false, 0.05,
      (s) => s.noise.poissonScale,
      (s, end, v) => void (s.noise.poissonScale[end] = v));
    pair('jpeg_quality', 'JPEG quality', [[1, 100], [1, 100]], false, 1,
      (s) => s.jpegRange,
      (s, end, v) => void (s.jpegRange[end] = v),
      'int');
  }
  const prob = (name: string, description: string, get: (c: DegradeConfig) => number, set: (c: DegradeConfig, v: number) => void): SettingWidget => ({
    name, kind: 'float', lo: 0, hi: 1, loOpen: false, step: 0.01, description, get, set,
  });
  out.push(
    prob('stage2_blur_prob', 'Probability that stage 2 blurs at all.', (c) => c.stage2.blurProb, (c, v) => void (c.stage2.blurProb = v)),
    prob('final_sinc_prob', 'Probability of the final sinc filter.', (c) => c.finalSincProb, (c, v) => void (c.finalSincProb = v)),
  );
  return out;
}

/** The node's setting widgets, in the order it shows them. */
export const SETTING_WIDGETS: readonly SettingWidget[] = rangeWidgets();

/** A setting widget whose value cannot be used. */
export class SettingError extends Error {
  constructor(
    readonly widget: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Puts the widget values other than -1 over `base` (a preset, with any JSON edits), then checks
 * that each min/max pair is in order. Throws a SettingError naming the widget.
 */
export function applySettingWidgets(base: DegradeConfig, values: Record<string, unknown>): DegradeConfig {
  const cfg = structuredClone(base);
  for (const w of SETTING_WIDGETS) {
    const v = values[w.name];
    if (v === undefined || v === FROM_PRESET) continue;
    const ok = typeof v === 'number' && Number.isFinite(v) && (w.loOpen ? v > w.lo : v >= w.lo) && v <= w.hi && (w.kind === 'float' || Number.isInteger(v));
    if (!ok) throw new SettingError(w.name, `must be -1 (the preset's) or ${w.kind === 'int' ? 'an integer ' : ''}in ${w.loOpen ? '(' : '['}${w.lo}, ${w.hi}], got ${String(v)}`);
    w.set(cfg, v);
  }
  for (let i = 0; i + 1 < SETTING_WIDGETS.length; i++) {
    const lo = SETTING_WIDGETS[i]!;
    const hi = SETTING_WIDGETS[i + 1]!;
    if (!lo.name.endsWith('_min') || hi.name !== lo.name.replace(/_min$/, '_max')) continue;
    if (lo.get(cfg) > hi.get(cfg)) {
      const culprit = values[hi.name] !== undefined && values[hi.name] !== FROM_PRESET ? hi.name : lo.name;
      throw new SettingError(culprit, `the range is empty: min ${lo.get(cfg)} > max ${hi.get(cfg)}`);
    }
  }
  return cfg;
}

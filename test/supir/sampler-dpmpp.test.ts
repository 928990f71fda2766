/**
 * The samplers on toy denoisers (the official runs are replayed in sampler.test.ts): DPM++ 2M
 * with our guidance hooks on equals a hand-written float64 transcription on 3 steps, both samplers turn noise into
 * samples of a known Gaussian with its exact denoiser, and the random draws and guidance hooks are
 * used where the official code uses them.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { samplerSigmas } from '../../nodes/supir/lib/denoiser.ts';
import { karrasSigmas, sampleDpmpp2m } from '../../nodes/supir/lib/sampler-dpmpp.ts';
import { cfgScaleAt, controlScaleAt, restoreWeightAt, type BatchedDenoiser, type GuidanceOptions } from '../../nodes/supir/lib/sampler-guidance.ts';
import { churnGamma, sampleRestoreEdm } from '../../nodes/supir/lib/sampler.ts';

const SHAPE = [1, 4, 8, 8] as const;
const SIZE = 256;

/** Pointwise toy: the uncond and cond halves differ, and the control scale matters. */
function toyPair(x: number, sigma: number, cs: number, i: number): [number, number] {
  const a = 1 / (1 + sigma * sigma);
  return [x * a + 0.1, x * a * (1 - 0.2 * cs) - 0.3 * Math.cos(i)];
}

const toy: BatchedDenoiser<null> = async (x, sigma, _cond, cs) => {
  const out = new Float32Array(x.length);
  const half = x.length / 2;
  for (let i = 0; i < half; i++) {
    const [u, c] = toyPair(x[i]!, sigma[0]!, cs, i);
    out[i] = u;
    out[half + i] = c;
  }
  return out;
};

const normal = (seed: number, n = SIZE): Float32Array => new Rng(seed).fillNormal(new Float32Array(n));

function baseOpts(over: Partial<GuidanceOptions<null>> = {}): GuidanceOptions<null> {
  return {
    denoiser: toy,
    cond: null,
    shape: SHAPE,
    noise: normal(1),
    drawNoise: (i) => normal(100 + i),
    steps: 3,
    cfg: { scale: 4, scaleMin: 7.5 },
    control: { scale: 1, start: 0.2, linear: true },
    restoreCfg: 2,
    xCenter: normal(7),
    sNoise: 1.003,
    ...over,
  };
}

/** The official RestoreDPMPP2MSampler (plus our guidance hooks), transcribed in float64. */
function referenceDpmpp(o: GuidanceOptions<null>, eta: number): Float64Array {
  const legacy = samplerSigmas(o.steps);
  const smin = legacy[o.steps - 1]!;
  const smax = legacy[0]!;
  const s = Array.from({ length: o.steps }, (_, i) => (smax ** (1 / 7) + (o.steps === 1 ? 0 : i / (o.steps - 1)) * (smin ** (1 / 7) - smax ** (1 / 7))) ** 7);
  s.push(0);
  let x = Float64Array.from(o.noise, (v) => v * Math.sqrt(1 + smax * smax));
  let old: Float64Array | null = null;
  for (let i = 0; i < o.steps; i++) {
    const sigma = s[i]!;
    const next = s[i + 1]!;
    const cs = o.control.linear ? (sigma / 14.6146) * (o.control.start - o.control.scale) + o.control.scale : o.control.scale;
    const scale = ((o.cfg.scale - o.cfg.scaleMin) * sigma) / 14.6146 + o.cfg.scaleMin;
    const k = next > 0.05 && o.restoreCfg > 0 ? (sigma / 14.6146) ** o.restoreCfg : 0;
    const d = x.map((v, j) => {
      const [u, c] = toyPair(v, sigma, cs, j);
      const cfg = u + scale * (c - u);
      return cfg - (cfg - o.xCenter![j]!) * k;
    });
    if (next === 0) x = d;
    else {
      const t = -Math.log(sigma);
      const h = -Math.log(next) - t;
      const m1 = (next / sigma) * Math.exp(-eta * h);
      const m2 = Math.expm1(-h - eta * h);
      if (!old) x = x.map((v, j) => m1 * v - m2 * d[j]!);
      else {
        const r = (t + Math.log(s[i - 1]!)) / h;
        const prev = old;
        x = x.map((v, j) => m1 * v - m2 * ((1 + 1 / (2 * r)) * d[j]! - (1 / (2 * r)) * prev[j]!));
        if (eta) {
          const eps = o.drawNoise(i);
          x = x.map((v, j) => v + eps[j]! * next * Math.sqrt(-Math.expm1(-2 * eta * h)) * o.sNoise);
        }
      }
    }
    old = d;
  }
  return x;
}

function maxRelDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return m;
}

describe('DPM++ 2M (Karras)', () => {
  it('Karras sigmas run from the schedule\'s first sigma to its smallest, then 0', () => {
    const legacy = samplerSigmas(8);
    const k = karrasSigmas(8, legacy[7]!, legacy[0]!);
    expect(k).toHaveLength(9);
    expect(k[0]).toBeCloseTo(14.614641, 4);
    expect(k[7]).toBeCloseTo(legacy[7]!, 5);
    expect(k[8]).toBe(0);
    for (let i = 0; i < 8; i++) expect(k[i]!).toBeGreaterThan(k[i + 1]!);
    // ρ = 7: the 7th roots are evenly spaced.
    const roots = Array.from(k.subarray(0, 8), (v) => v ** (1 / 7));
    for (let i = 1; i < 7; i++) expect(roots[i + 1]! - roots[i]!).toBeCloseTo(roots[1]! - roots[0]!, 5);
  });

  it.each([1, 0])('equals a hand-written reference on 3 steps (eta %i), guidance hooks on', async (eta) => {
    const o = baseOpts();
    const got = await sampleDpmpp2m({ ...o, eta });
    expect(maxRelDiff(got, referenceDpmpp(o, eta))).toBeLessThan(2e-6);
  });

  it('draws SDE noise only on steps 1..n-2, and none with eta 0', async () => {
    const drawn: number[] = [];
    await sampleDpmpp2m(baseOpts({ steps: 6, drawNoise: (i) => (drawn.push(i), normal(i)) }));
    expect(drawn).toEqual([1, 2, 3, 4]);
    drawn.length = 0;
    await sampleDpmpp2m({ ...baseOpts({ steps: 6, drawNoise: (i) => (drawn.push(i), normal(i)) }), eta: 0 });
    expect(drawn).toEqual([]);
  });
});

describe('RestoreEDM schedule pieces', () => {
  it('churn gamma, LinearCFG scale, linear control scale and the restoration weight follow the official formulas', () => {
    expect(churnGamma(5, 50, 3)).toBeCloseTo(0.1, 12);
    expect(churnGamma(100, 10, 3)).toBeCloseTo(Math.SQRT2 - 1, 12);
    expect(churnGamma(5, 50, 3, 4, Infinity)).toBe(0);
    expect(cfgScaleAt({ scale: 7.5, scaleMin: 4 }, 0)).toBe(4);
    expect(cfgScaleAt({ scale: 7.5, scaleMin: 4 }, 14.6146)).toBeCloseTo(7.5, 5);
    expect(controlScaleAt({ scale: 1, start: 0, linear: true }, 14.614641189575195)).toBeCloseTo(-2.8183853950647375e-6, 12);
    expect(controlScaleAt({ scale: 0.9, start: 0, linear: false }, 3)).toBe(0.9);
    expect(restoreWeightAt(4, 7.30730, 1)).toBeCloseTo(0.0625, 6);
    expect(restoreWeightAt(-1, 7, 1)).toBe(0);
    expect(restoreWeightAt(4, 7, 0.05)).toBe(0);
  });

  it('draws churn noise on every step with s_churn > 0 and never without', async () => {
    const drawn: number[] = [];
    const drawNoise = (i: number): Float32Array => (drawn.push(i), normal(i));
    await sampleRestoreEdm({ ...baseOpts({ steps: 5, drawNoise }), sChurn: 2 });
    expect(drawn).toEqual([0, 1, 2, 3, 4]);
    drawn.length = 0;
    await sampleRestoreEdm({ ...baseOpts({ steps: 5, drawNoise }), sChurn: 0 });
    expect(drawn).toEqual([]);
  });

  it('restoration guidance pulls the result toward x_center, more with a smaller τ_r', async () => {
    const o = baseOpts({ steps: 10, cfg: { scale: 1, scaleMin: 1 } });
    const dist = async (restoreCfg: number): Promise<number> => {
      const x = await sampleRestoreEdm({ ...o, restoreCfg, sChurn: 0 });
      return Math.hypot(...x.map((v, i) => v - o.xCenter![i]!));
    };
    const [off, weak, strong] = [await dist(-1), await dist(4), await dist(0.25)];
    expect(weak).toBeLessThan(off);
    expect(strong).toBeLessThan(0.75 * weak);
  });
});

describe('both samplers on a Gaussian with its exact denoiser', () => {
  // Data N(0.5, 0.5²) per element: D(x, σ) = μ + s²/(s²+σ²)·(x−μ), the same for cond and uncond.
  // The last step jumps from the schedule's smallest sigma to x = D (as the official samplers do),
  // so the result has the posterior mean's spread s²/√(s²+σ_last²), not s. Euler with churn loses a
  // little more (first-order steps from the churned σ̂; the official sampler has no Heun step).
  const mu = 0.5;
  const sd = 0.5;
  const steps = 50;
  const sigmaLast = samplerSigmas(steps)[steps - 1]!;
  const expectedStd = (sd * sd) / Math.sqrt(sd * sd + sigmaLast * sigmaLast);
  const exact: BatchedDenoiser<null> = async (x, sigma) => x.map((v) => mu + ((sd * sd) / (sd * sd + sigma[0]! ** 2)) * (v - mu));
  const stats = (x: Float32Array): { mean: number; std: number } => {
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    return { mean, std: Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length) };
  };
  const opts = (): GuidanceOptions<null> =>
    baseOpts({ denoiser: exact, shape: [1, 4, 32, 32], noise: normal(3, 4096), drawNoise: (i) => normal(50 + i, 4096), steps, cfg: { scale: 1, scaleMin: 1 }, restoreCfg: -1, xCenter: undefined, sNoise: 1 });

  it.each([
    ['RestoreEDM, no churn', () => sampleRestoreEdm({ ...opts(), sChurn: 0 })],
    ['RestoreEDM, churn 5', () => sampleRestoreEdm({ ...opts(), sChurn: 5 })],
    ['DPM++ 2M SDE', () => sampleDpmpp2m(opts())],
    ['DPM++ 2M', () => sampleDpmpp2m({ ...opts(), eta: 0 })],
  ])('%s reaches the data distribution', async (_name, run) => {
    const { mean, std } = stats(await run());
    expect(Math.abs(mean - mu)).toBeLessThan(0.04);
    expect(Math.abs(std - expectedStd)).toBeLessThan(0.03);
  });
});

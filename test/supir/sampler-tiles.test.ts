/**
 * Tiled sampling: window origins and Gaussian weights as TiledRestoreEDMSampler computes them,
 * exact equality with the untiled sampler when one tile covers the latent, and equality with the
 * official scheme (every tile runs a whole step, the stepped tiles are averaged) on a toy
 * denoiser that looks at its whole tile, so tiling really changes the result.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { samplerSigmas } from '../../nodes/supir/lib/denoiser.ts';
import { churnGamma, sampleRestoreEdm, type BatchedDenoiser, type RestoreEdmOptions } from '../../nodes/supir/lib/sampler.ts';
import { copyWindow, gaussianTileWeights, latentWindows, normalisedTileWeights, tiledDenoiser, type LatentWindow } from '../../nodes/supir/lib/sampler-tiles.ts';

const origins = (wins: LatentWindow[]): { ys: number[]; xs: number[] } => ({ ys: [...new Set(wins.map((w) => w.y))], xs: [...new Set(wins.map((w) => w.x))] });

describe('latent windows (_sliding_windows)', () => {
  it.each([
    [16, 16, 16, 8, [0], [0]],
    [40, 24, 16, 8, [0, 8, 16, 24], [0, 8]],
    [20, 36, 16, 12, [0, 4], [0, 12, 20]],
    [136, 200, 128, 64, [0, 8], [0, 64, 72]],
    [128, 192, 128, 64, [0], [0, 64]],
  ])('%ix%i latent, tile %i stride %i', (h, w, tile, stride, ys, xs) => {
    const wins = latentWindows(h, w, tile, stride);
    expect(origins(wins)).toEqual({ ys, xs });
    expect(wins).toHaveLength(ys.length * xs.length);
    // Row by row, as the official loop nests hi outside wi.
    expect(wins.slice(0, xs.length).every((win) => win.y === 0)).toBe(true);
    expect(wins.every((win) => win.h === tile && win.w === tile)).toBe(true);
  });

  it('uses the whole axis where the latent is smaller than the tile', () => {
    expect(latentWindows(8, 40, 16, 8)).toEqual([0, 8, 16, 24].map((x) => ({ y: 0, x, h: 8, w: 16 })));
  });
});

describe('Gaussian tile weights (gaussian_weights)', () => {
  it('are the official outer product: var 0.01, x midpoint (W-1)/2, y midpoint H/2', () => {
    const peak = 1 / Math.sqrt(2 * Math.PI * 0.01); // 3.98942...
    const w = gaussianTileWeights(128, 128);
    const col = (x: number): number => Math.exp(-((x - 63.5) ** 2) / 128 ** 2 / 0.02) * peak;
    const row = (y: number): number => Math.exp(-((y - 64) ** 2) / 128 ** 2 / 0.02) * peak;
    for (const [y, x] of [[0, 0], [64, 63], [64, 64], [127, 5], [10, 127]] as const) expect(w[y * 128 + x]).toBeCloseTo(row(y) * col(x), 12);
    expect(w[64 * 128 + 63]).toBeCloseTo(peak * peak * Math.exp(-0.25 / 128 ** 2 / 0.02), 12);
    expect(w[0]! / peak ** 2).toBeCloseTo(Math.exp(-12.5) * Math.exp(-(63.5 ** 2) / 128 ** 2 / 0.02), 12);
    // Columns are symmetric, rows are not (midpoint H/2).
    expect(w[3 * 128]).toBe(w[3 * 128 + 127]);
    expect(w[0]).not.toBe(w[127 * 128]);
  });

  it('normalised over overlapping windows they sum to 1 everywhere', () => {
    const wins = latentWindows(40, 24, 16, 8);
    const maps = normalisedTileWeights(40, 24, wins);
    const sum = new Float64Array(40 * 24);
    wins.forEach((win, j) => {
      for (let y = 0; y < win.h; y++) for (let x = 0; x < win.w; x++) sum[(win.y + y) * 24 + win.x + x]! += maps[j]![y * win.w + x]!;
    });
    for (const v of sum) expect(v).toBeCloseTo(1, 6);
  });
});

/** A per-tile toy over [x; x]: mixes each cell with its tile's mean and with the control slice. */
function toy(): BatchedDenoiser<Float32Array> {
  return async (x, sigma, control, cs) => {
    const half = x.length / 2;
    let mean = 0;
    for (let i = 0; i < half; i++) mean += x[i]!;
    mean /= half;
    const a = 1 / (1 + sigma[0]! ** 2);
    const out = new Float32Array(x.length);
    for (let i = 0; i < half; i++) {
      out[i] = 0.9 * a * x[i]! + 0.1 * mean + 0.05 * control[i]!;
      out[half + i] = a * x[i]! * (1 - 0.1 * cs) - 0.2 * mean + 0.1 * control[i]!;
    }
    return out;
  };
}

const H = 24;
const W = 16;
const SIZE = 4 * H * W;
const normal = (seed: number): Float32Array => new Rng(seed).fillNormal(new Float32Array(SIZE));
const control = normal(9);

function options(denoiser: BatchedDenoiser<Float32Array>): RestoreEdmOptions<Float32Array> {
  return {
    denoiser,
    cond: control,
    shape: [1, 4, H, W],
    noise: normal(1),
    drawNoise: (i) => normal(20 + i),
    steps: 4,
    cfg: { scale: 4, scaleMin: 7.5 },
    control: { scale: 1, start: 0, linear: true },
    restoreCfg: 4,
    xCenter: normal(5),
    sChurn: 2,
    sNoise: 1.003,
  };
}

function tiledOver(wins: LatentWindow[]): BatchedDenoiser<Float32Array> {
  const slices = wins.map((win) => {
    const s = new Float32Array(4 * win.h * win.w);
    copyWindow(control, s, win, 4, H, W);
    return s;
  });
  return tiledDenoiser(toy(), [1, 4, H, W], wins, (j) => slices[j]!);
}

/** TiledRestoreEDMSampler as the official code runs it (float64): a full step per tile, stepped tiles averaged. */
async function officialTiled(o: RestoreEdmOptions<Float32Array>, wins: LatentWindow[]): Promise<Float64Array> {
  const sigmas = samplerSigmas(o.steps);
  const weights = gaussianTileWeights(wins[0]!.h, wins[0]!.w);
  const inner = toy();
  const cut = (full: ArrayLike<number>, win: LatentWindow): Float32Array => {
    const t = new Float32Array(4 * win.h * win.w);
    copyWindow(Float32Array.from(full), t, win, 4, H, W);
    return t;
  };
  let x = Float64Array.from(o.noise, (v) => v * Math.sqrt(1 + sigmas[0]! ** 2));
  for (let i = 0; i < o.steps; i++) {
    const [sigma, next] = [sigmas[i]!, sigmas[i + 1]!];
    const gamma = churnGamma(o.sChurn, o.steps, sigma);
    const sigmaHat = sigma * (1 + gamma);
    const eps = o.drawNoise(i);
    const sum = new Float64Array(SIZE);
    const count = new Float64Array(SIZE);
    for (const win of wins) {
      const xt = Array.from(cut(x, win));
      const et = cut(eps, win);
      const xc = cut(o.xCenter!, win);
      if (gamma > 0) xt.forEach((v, k) => (xt[k] = v + et[k]! * o.sNoise * Math.sqrt(sigmaHat ** 2 - sigma ** 2)));
      const cs = (sigma / 14.6146) * (o.control.start - o.control.scale) + o.control.scale;
      const raw = await inner(Float32Array.from([...xt, ...xt]), [sigmaHat, sigmaHat], cut(control, win), cs);
      const scale = ((o.cfg.scale - o.cfg.scaleMin) * sigmaHat) / 14.6146 + o.cfg.scaleMin;
      const k = next > 0.05 ? (sigma / 14.6146) ** o.restoreCfg : 0;
      const stepped = xt.map((v, j) => {
        const u = raw[j]!;
        let d = u + scale * (raw[xt.length + j]! - u);
        d -= (d - xc[j]!) * k;
        return v + ((next - sigmaHat) * (v - d)) / sigmaHat;
      });
      for (let p = 0; p < 4; p++) {
        for (let y = 0; y < win.h; y++) {
          for (let c = 0; c < win.w; c++) {
            const at = p * H * W + (win.y + y) * W + win.x + c;
            const wt = weights[y * win.w + c]!;
            sum[at] = sum[at]! + stepped[(p * win.h + y) * win.w + c]! * wt;
            count[at] = count[at]! + wt;
          }
        }
      }
    }
    x = sum.map((v, j) => v / count[j]!);
  }
  return x;
}

describe('tiled sampling', () => {
  it('one window covering the latent gives exactly the untiled result', async () => {
    const untiled = await sampleRestoreEdm(options(toy()));
    const tiled = await sampleRestoreEdm(options(tiledOver(latentWindows(H, W, 32, 8))));
    expect(tiled).toEqual(untiled);
  });

  it('blending the tiles\' x0 equals the official blend of tiles stepped on their own', async () => {
    const wins = latentWindows(H, W, 12, 8); // origins y 0, 8, 12 and x 0, 4: flush windows included
    expect(wins.length).toBe(6);
    const ours = await sampleRestoreEdm(options(tiledOver(wins)));
    const official = await officialTiled(options(toy()), wins);
    let worst = 0;
    for (let i = 0; i < SIZE; i++) worst = Math.max(worst, Math.abs(ours[i]! - official[i]!) / (1 + Math.abs(official[i]!)));
    expect(worst).toBeLessThan(1e-5);
    // And tiling does change the result with this denoiser (it reads the tile mean).
    const untiled = await sampleRestoreEdm(options(toy()));
    expect(Math.max(...ours.map((v, i) => Math.abs(v - untiled[i]!)))).toBeGreaterThan(1e-3);
  });

  it('runs every window once per call, in order', async () => {
    const seen: number[] = [];
    const wins = latentWindows(H, W, 12, 8);
    const den = tiledDenoiser<null, number>(async (x, _s, j) => (seen.push(j), new Float32Array(x.length)), [1, 4, H, W], wins, (j) => j);
    await den(new Float32Array(2 * SIZE), [1, 1], null, 1);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

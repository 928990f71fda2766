import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../nodes/image/codec.ts';
import { grey, laplacianVariance, lumaY, msSsim, msSsimLevels, noiseSigma, psnr, ssim, toPlanes8, type Plane } from '../../nodes/compare/lib/metrics.ts';
import { Rng } from '../../nodes/api/rng.ts';

/** scikit-image 0.19.3's values for three image pairs (see ../shared/metrics/README.md). */
const DIR = path.resolve(import.meta.dirname, '../../../shared/metrics');
interface Case {
  name: string;
  ref: string;
  dist: string;
  psnr_rgb: number;
  psnr_y: number;
  ssim_rgb: number;
  ssim_y: number;
  ssim_rgb_skimage_default: number;
}
const cases = (JSON.parse(fs.readFileSync(path.join(DIR, 'metrics.json'), 'utf8')) as { cases: Case[] }).cases;
interface MsSsimCase {
  name: string;
  ref: string;
  dist: string;
  ms_ssim_rgb: number;
  ms_ssim_per_channel_rgb: number[];
  levels: Array<{ shape_hw: [number, number]; ssim_per_channel: number[]; cs_per_channel: number[] }>;
}
/** pytorch-msssim 1.0.0's values for the same pairs (../shared/metrics/ms_ssim.json). */
const msSsimRef = JSON.parse(fs.readFileSync(path.join(DIR, 'ms_ssim.json'), 'utf8')) as { tolerance: { abs: number }; cases: MsSsimCase[] };
const load = async (file: string): Promise<Plane[]> =>
  toPlanes8(await decodeImage(fs.readFileSync(path.join(DIR, file)), { maxPixels: 1e8 } as never));

describe('metrics against scikit-image', () => {
  it('has the three reference pairs', () => {
    expect(cases.map((c) => c.name)).toEqual(['astronaut_jpeg30_noise8', 'coffee_blur2', 'chelsea_bicubic_x4']);
  });

  for (const c of cases) {
    it(`${c.name}: PSNR within 1e-3 dB and SSIM within 1e-4 under every convention`, async () => {
      const [ref, dist] = await Promise.all([load(c.ref), load(c.dist)]);
      expect(Math.abs(psnr(ref, dist) - c.psnr_rgb)).toBeLessThan(1e-3);
      expect(Math.abs(psnr([lumaY(ref)], [lumaY(dist)]) - c.psnr_y)).toBeLessThan(1e-3);
      expect(Math.abs(ssim(ref, dist) - c.ssim_rgb)).toBeLessThan(1e-4);
      expect(Math.abs(ssim([lumaY(ref)], [lumaY(dist)]) - c.ssim_y)).toBeLessThan(1e-4);
      expect(Math.abs(ssim(ref, dist, { gaussian: false }) - c.ssim_rgb_skimage_default)).toBeLessThan(1e-4);
    });
  }
});

describe('MS-SSIM against pytorch-msssim', () => {
  it('has the three reference pairs and a tolerance of 1e-4', () => {
    expect(msSsimRef.cases.map((c) => c.name)).toEqual(cases.map((c) => c.name));
    expect(msSsimRef.tolerance.abs).toBe(1e-4);
  });

  for (const c of msSsimRef.cases) {
    it(`${c.name}: every scale's size, SSIM and contrast-structure per channel, and the result, within 1e-4`, async () => {
      const [ref, dist] = await Promise.all([load(c.ref), load(c.dist)]);
      // pytorch-msssim is called as ms_ssim(X = dist, Y = ref).
      const levels = msSsimLevels(dist, ref);
      expect(levels.map((l) => [l.h, l.w])).toEqual(c.levels.map((l) => l.shape_hw));
      levels.forEach((level, s) => {
        for (let ch = 0; ch < 3; ch++) {
          expect(Math.abs(level.ssim[ch]! - c.levels[s]!.ssim_per_channel[ch]!), `scale ${s} channel ${ch} ssim`).toBeLessThan(msSsimRef.tolerance.abs);
          expect(Math.abs(level.cs[ch]! - c.levels[s]!.cs_per_channel[ch]!), `scale ${s} channel ${ch} cs`).toBeLessThan(msSsimRef.tolerance.abs);
        }
      });
      for (let ch = 0; ch < 3; ch++) {
        expect(Math.abs(msSsim([dist[ch]!], [ref[ch]!]) - c.ms_ssim_per_channel_rgb[ch]!)).toBeLessThan(msSsimRef.tolerance.abs);
      }
      expect(Math.abs(msSsim(dist, ref) - c.ms_ssim_rgb)).toBeLessThan(msSsimRef.tolerance.abs);
    });
  }
});

describe('MS-SSIM and the no-reference statistics', () => {
  it('MS-SSIM is 1 for identical images and ranks the distortions as SSIM does', async () => {
    const scores: Array<{ ssim: number; ms: number }> = [];
    for (const c of cases) {
      const [ref, dist] = await Promise.all([load(c.ref), load(c.dist)]);
      expect(msSsim(ref, ref)).toBeCloseTo(1, 12);
      const ms = msSsim(ref, dist);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(1);
      scores.push({ ssim: c.ssim_rgb, ms });
    }
    // Larger structures survive blur and x4 bicubic better than fine ones, so MS-SSIM (which
    // weights coarse scales) is above single-scale SSIM on every pair.
    for (const s of scores) expect(s.ms).toBeGreaterThan(s.ssim);
  });

  it('noise sigma recovers added Gaussian noise on a smooth image', () => {
    const w = 256;
    const h = 256;
    const rng = new Rng(7);
    const data = new Float64Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = 60 + 0.3 * x + 0.2 * y + 8 * rng.normal();
    expect(noiseSigma({ data, w, h })).toBeGreaterThan(7.6);
    expect(noiseSigma({ data, w, h })).toBeLessThan(8.4);
    const clean = new Float64Array(w * h).map((_, i) => 60 + 0.3 * (i % w));
    expect(noiseSigma({ data: clean, w, h })).toBeLessThan(1e-9);
  });

  it('sharpness (Laplacian variance) drops when the photo is blurred', async () => {
    const [ref, dist] = await Promise.all([load('coffee_blur2_ref.png'), load('coffee_blur2_dist.png')]);
    const sharp = laplacianVariance(grey(ref));
    const blurred = laplacianVariance(grey(dist));
    expect(blurred).toBeLessThan(sharp / 4);
  });
});

import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { addGaussianNoise, addPoissonNoise, randomNoise, samplePoisson, type NoiseConfig } from '../../nodes/degrade/lib/noise.ts';

function flat(value: number, n = 1, c = 3, h = 128, w = 128): ImageTensor {
  return createImage(n, c, h, w, new Float32Array(n * c * h * w).fill(value));
}

function stats(a: Float32Array, b: Float32Array): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d;
    s2 += d * d;
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean) };
}

describe('Gaussian noise', () => {
  it('has the drawn sigma (in 0..255 units) and zero mean', () => {
    const img = flat(0.5);
    for (const sigma of [1, 10, 25]) {
      const out = addGaussianNoise(img, new Rng(sigma), sigma, false);
      const { mean, std } = stats(out.data, img.data);
      expect(Math.abs(std - sigma / 255) / (sigma / 255)).toBeLessThan(0.02);
      expect(Math.abs(mean)).toBeLessThan(0.2 / 255);
    }
  });

  it('colour noise is independent per channel; gray noise is one field', () => {
    const img = flat(0.5);
    const plane = 128 * 128;
    const colour = addGaussianNoise(img, new Rng(1), 10, false);
    const gray = addGaussianNoise(img, new Rng(1), 10, true);
    let same = 0;
    for (let i = 0; i < plane; i++) {
      expect(gray.data[i]).toBe(gray.data[plane + i]);
      expect(gray.data[i]).toBe(gray.data[2 * plane + i]);
      if (colour.data[i] === colour.data[plane + i]) same++;
    }
    expect(same).toBeLessThan(plane / 100);
  });

  it('clamps to 0..1', () => {
    const out = addGaussianNoise(flat(0.99), new Rng(2), 30, false);
    expect(Math.max(...out.data)).toBeLessThanOrEqual(1);
    const low = addGaussianNoise(flat(0.01), new Rng(2), 30, false);
    expect(Math.min(...low.data)).toBeGreaterThanOrEqual(0);
  });
});

describe('Poisson noise', () => {
  it('samples Poisson(lam) with the right mean and variance', () => {
    const rng = new Rng(12);
    for (const lam of [0.3, 3, 40, 250]) {
      let s = 0;
      let s2 = 0;
      const N = 20_000;
      for (let i = 0; i < N; i++) {
        const k = samplePoisson(rng, lam);
        expect(Number.isInteger(k) && k >= 0).toBe(true);
        s += k;
        s2 += k * k;
      }
      const mean = s / N;
      const variance = s2 / N - mean * mean;
      expect(Math.abs(mean - lam)).toBeLessThan(4 * Math.sqrt(lam / N));
      expect(Math.abs(variance - lam) / lam).toBeLessThan(0.05);
    }
    expect(samplePoisson(rng, 0)).toBe(0);
  });

  it('preserves the mean and has the Poisson variance', () => {
    // Two distinct 8-bit values: vals = 2, so lambda = img*2 and noise std = sqrt(img*2)/2 * scale.
    const img = flat(0.5);
    img.data[0] = 0.2;
    const scale = 0.5;
    const out = addPoissonNoise(img, new Rng(3), scale, false);
    const { mean, std } = stats(out.data, img.data);
    const q = Math.round(0.5 * 255) / 255;
    const expected = (Math.sqrt(q * 2) / 2) * scale;
    // The difference between the image and its 8-bit rounding shifts the mean by under 1/510.
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(std - expected) / expected).toBeLessThan(0.1);
  });

  it('keeps the mean of a natural-looking image, many levels (PTRS path)', () => {
    const rng = new Rng(4);
    const img = createImage(1, 3, 128, 128);
    for (let i = 0; i < img.data.length; i++) img.data[i] = Math.round(rng.uniform() * 255) / 255;
    const scale = 1;
    const out = addPoissonNoise(img, new Rng(5), scale, false);
    const { mean, std } = stats(out.data, img.data);
    // vals = 256: noise variance = E[img]/256 (before clamping).
    expect(Math.abs(mean)).toBeLessThan(0.003);
    expect(std).toBeGreaterThan(0.7 * Math.sqrt(0.5 / 256));
    expect(std).toBeLessThan(1.1 * Math.sqrt(0.5 / 256));
  });

  it('gray Poisson noise is one field for all channels', () => {
    const img = flat(0.4, 1, 3, 32, 32);
    const out = addPoissonNoise(img, new Rng(6), 2, true);
    const plane = 32 * 32;
    for (let i = 0; i < plane; i++) {
      expect(out.data[i]).toBe(out.data[plane + i]);
      expect(out.data[i]).toBe(out.data[2 * plane + i]);
    }
  });
});

describe('randomNoise', () => {
  const cfg: NoiseConfig = { gaussianProb: 0.5, sigma: [1, 30], poissonScale: [0.05, 3], grayProb: 0.4 };
  it('draws types, ranges and gray at the configured rates, deterministically', () => {
    const img = flat(0.5, 1, 3, 4, 4);
    const rng = new Rng(8);
    let gaussian = 0;
    let gray = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const { drawn } = randomNoise(img, rng, cfg);
      if (drawn.type === 'gaussian') {
        gaussian++;
        expect(drawn.sigma).toBeGreaterThanOrEqual(1);
        expect(drawn.sigma).toBeLessThanOrEqual(30);
      } else {
        expect(drawn.type).toBe('poisson');
        expect(drawn.scale).toBeGreaterThanOrEqual(0.05);
        expect(drawn.scale).toBeLessThanOrEqual(3);
      }
      if (drawn.gray) gray++;
    }
    expect(Math.abs(gaussian / N - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(gray / N - 0.4)).toBeLessThan(0.03);
    const big = flat(0.3, 2, 3, 16, 16);
    const a = randomNoise(big, new Rng(9), cfg);
    const b = randomNoise(big, new Rng(9), cfg);
    expect(a.drawn).toEqual(b.drawn);
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(b.image.data.buffer))).toBe(true);
  });
});

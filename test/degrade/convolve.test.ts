import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { convolve, ERROR_BUDGET, planKernel, reflectIndex, trimKernel } from '../../nodes/degrade/lib/convolve.ts';
import { gaussianKernel, generalizedGaussianKernel, plateauKernel, randomKernel, sincKernel, type Kernel } from '../../nodes/degrade/lib/kernels.ts';
import { realEsrganConfig } from '../../nodes/degrade/lib/presets.ts';
import { maxAbsDiff } from '../support/close.ts';

function randomImage(seed: number, n: number, c: number, h: number, w: number): ImageTensor {
  const rng = new Rng(seed);
  const img = createImage(n, c, h, w);
  for (let i = 0; i < img.data.length; i++) img.data[i] = rng.uniform();
  return img;
}

/** Naive correlation with reflect-101 padding, in float64. */
function naive(img: ImageTensor, k: Kernel): Float64Array {
  const { n, c, h, w } = img;
  const r = (k.size - 1) / 2;
  const out = new Float64Array(img.data.length);
  const refl = (i: number, len: number): number => {
    // numpy 'reflect' / cv2 BORDER_REFLECT_101, repeated for pads past the size.
    while (i < 0 || i >= len) i = i < 0 ? -i : 2 * (len - 1) - i;
    return i;
  };
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let i = 0; i < k.size; i++) for (let j = 0; j < k.size; j++) {
        acc += k.data[i * k.size + j]! * img.data[p * h * w + refl(y + i - r, h) * w + refl(x + j - r, w)]!;
      }
      out[p * h * w + y * w + x] = acc;
    }
  }
  return out;
}

describe('convolve', () => {
  it('reflect index is reflect-101', () => {
    expect([-3, -2, -1, 0, 4, 5, 6].map((i) => reflectIndex(i, 5))).toEqual([3, 2, 1, 0, 4, 3, 2]);
    expect(reflectIndex(-7, 3)).toBe(1);
    expect(reflectIndex(5, 1)).toBe(0);
  });

  it('identity kernel is the identity, padded or not', () => {
    const img = randomImage(1, 2, 3, 17, 23);
    const id = new Float32Array(21 * 21);
    id[10 * 21 + 10] = 1;
    expect(convolve(img, { size: 21, data: id, kind: 'iso', params: {} }).data).toEqual(img.data);
    expect(convolve(img, { size: 1, data: Float32Array.of(1), kind: 'iso', params: {} }).data).toEqual(img.data);
    expect(convolve(img, { size: 21, data: id, kind: 'iso', params: {} }, { path: 'direct' }).data).toEqual(img.data);
  });

  it('matches a naive 2-D reflect-padded correlation on every path, to the error budget plus float32 rounding', () => {
    const tol = ERROR_BUDGET + 1e-6;
    const img = randomImage(2, 2, 3, 19, 26);
    const kernels = [
      gaussianKernel(21, 2.5, 2.5, 0), // separable
      gaussianKernel(9, 1.5, 0.6, 0), // axis-aligned: separable
      gaussianKernel(21, 2.8, 0.9, 0.7), // rotated: low-rank or direct
      generalizedGaussianKernel(15, 2, 1.2, -1.1, 0.7),
      plateauKernel(21, 1.8, 1.8, 0, 1.5),
      sincKernel(13, 1.1, 21),
      sincKernel(7, 2.5),
    ];
    // Asymmetric kernel: checks correlation (not flipped convolution).
    const asym = new Float32Array(25);
    asym[0] = 0.5;
    asym[7] = 0.25;
    asym[19] = 0.25;
    kernels.push({ size: 5, data: asym, kind: 'aniso', params: {} });
    for (const k of kernels) {
      const ref = naive(img, k);
      expect(maxAbsDiff(convolve(img, k).data, ref)).toBeLessThan(tol);
      expect(maxAbsDiff(convolve(img, k, { path: 'direct' }).data, ref)).toBeLessThan(tol);
      expect(maxAbsDiff(convolve(img, k, { path: 'separable' }).data, ref)).toBeLessThan(tol);
    }
    // Images smaller than the kernel radius still reflect correctly.
    const tiny = randomImage(3, 1, 1, 4, 3);
    const big = gaussianKernel(21, 3, 2, 0.4);
    expect(maxAbsDiff(convolve(tiny, big).data, naive(tiny, big))).toBeLessThan(tol);
    expect(maxAbsDiff(convolve(tiny, big, { path: 'direct' }).data, naive(tiny, big))).toBeLessThan(tol);
    expect(maxAbsDiff(convolve(tiny, gaussianKernel(21, 3, 3, 0)).data, naive(tiny, gaussianKernel(21, 3, 3, 0)))).toBeLessThan(tol);
  });

  it('uses one separable term for isotropic and axis-aligned Gaussians, none wasted on zero rings', () => {
    for (const k of [gaussianKernel(21, 1.7, 1.7, 0), gaussianKernel(15, 2.5, 0.6, 0)]) {
      const plan = planKernel(k.data, k.size);
      expect(plan.kind).toBe('separable');
      if (plan.kind === 'separable') expect(plan.terms).toHaveLength(1);
    }
    const img = randomImage(4, 1, 3, 64, 48);
    const k = gaussianKernel(21, 1.7, 1.7, 0);
    expect(maxAbsDiff(convolve(img, k).data, convolve(img, k, { path: 'direct' }).data)).toBeLessThan(2 * ERROR_BUDGET + 1e-6);
    // Zero rings are trimmed without changing anything.
    expect(trimKernel(sincKernel(7, 2, 21).data, 21).size).toBe(7);
    expect(planKernel(sincKernel(7, 2, 21).data, 21).size).toBe(7);
  });

  it('plans within the error budget: dropped taps and SVD terms move no 0..1 output by more than ERROR_BUDGET', () => {
    // 300 Real-ESRGAN stage-1 kernels: the plan's own error (L1 of kernel - applied kernel) is
    // under the budget, and the result matches the naive float64 correlation to the budget plus
    // float32 rounding. The budget is 2e-6, far under the 1e-4 that an 8-bit output (step 3.9e-3)
    // could ever show.
    expect(ERROR_BUDGET).toBeLessThanOrEqual(1e-5);
    const rng = new Rng(77);
    const cfg = realEsrganConfig().stage1.blur;
    const img = randomImage(8, 1, 3, 29, 33);
    const kinds = new Set<string>();
    let worst = 0;
    for (let i = 0; i < 300; i++) {
      const k = randomKernel(rng, cfg);
      const plan = planKernel(k.data, k.size);
      kinds.add(`${k.kind}/${plan.kind}`);
      expect(plan.error).toBeLessThanOrEqual(ERROR_BUDGET);
      if (i % 10 === 0) worst = Math.max(worst, maxAbsDiff(convolve(img, k).data, naive(img, k)));
    }
    expect(worst).toBeLessThan(ERROR_BUDGET + 2e-6);
    // Both plan kinds are exercised.
    expect([...kinds].some((k) => k.endsWith('/separable'))).toBe(true);
    expect([...kinds].some((k) => k.endsWith('/direct'))).toBe(true);
  });

  it('is exact where nothing is dropped, on a larger image (many SIMD blocks, odd plane count)', () => {
    const img = randomImage(6, 1, 3, 150, 131);
    const k = sincKernel(21, 0.9);
    expect(maxAbsDiff(convolve(img, k, { path: 'direct' }).data, naive(img, k))).toBeLessThan(2e-6);
    const g = gaussianKernel(17, 2.5, 0.7, 2.2);
    expect(maxAbsDiff(convolve(img, g).data, naive(img, g))).toBeLessThan(2e-6 + ERROR_BUDGET);
  });

  it('is deterministic and keeps the batch shape', () => {
    const img = randomImage(5, 3, 3, 20, 20);
    const k = plateauKernel(11, 1.5, 0.8, 0.5, 1.2);
    const a = convolve(img, k);
    const b = convolve(img, k);
    expect([a.n, a.c, a.h, a.w]).toEqual([3, 3, 20, 20]);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
  });
});

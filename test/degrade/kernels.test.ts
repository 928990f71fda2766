import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import {
  besselJ1,
  gaussianKernel,
  kernelSizes,
  generalizedGaussianKernel,
  plateauKernel,
  randomFinalSinc,
  randomKernel,
  sincKernel,
  type BlurConfig,
  type Kernel,
  type KernelKind,
} from '../../nodes/degrade/lib/kernels.ts';

const STAGE1: BlurConfig = {
  kernelList: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
  kernelProb: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
  sigmaX: [0.2, 3],
  sigmaY: [0.2, 3],
  rotation: [-Math.PI, Math.PI],
  betaGaussian: [0.5, 4],
  betaPlateau: [1, 2],
  sincProb: 0.1,
};

const sum = (k: Kernel): number => k.data.reduce((a, b) => a + b, 0);
const at = (k: Kernel, r: number, c: number): number => k.data[r * k.size + c]!;

/** Second moments (covariance) of a kernel about its centre: [xx, xy, yy], x along columns. */
function moments(k: Kernel): [number, number, number] {
  const half = (k.size - 1) / 2;
  let xx = 0;
  let xy = 0;
  let yy = 0;
  for (let r = 0; r < k.size; r++) {
    for (let c = 0; c < k.size; c++) {
      const v = at(k, r, c);
      const x = c - half;
      const y = r - half;
      xx += v * x * x;
      xy += v * x * y;
      yy += v * y * y;
    }
  }
  return [xx, xy, yy];
}

describe('closed-form kernels', () => {
  it('Gaussian: sums to 1, matches exp(-q/2), symmetric, recovers sigma and rotation from moments', () => {
    const k = gaussianKernel(21, 1.5, 1.5, 0);
    expect(k.kind).toBe('iso');
    expect(sum(k)).toBeCloseTo(1, 6);
    const ratio = at(k, 10, 11) / at(k, 10, 10);
    expect(ratio).toBeCloseTo(Math.exp(-0.5 / 2.25), 6);
    for (let r = 0; r < 21; r++) for (let c = 0; c < 21; c++) {
      expect(at(k, r, c)).toBeCloseTo(at(k, c, r), 9);
      expect(at(k, r, c)).toBeCloseTo(at(k, 20 - r, c), 9);
    }
    const [xx, xy, yy] = moments(k);
    expect(Math.sqrt(xx)).toBeCloseTo(1.5, 3);
    expect(Math.sqrt(yy)).toBeCloseTo(1.5, 3);
    expect(xy).toBeCloseTo(0, 6);

    const theta = 0.6;
    const a = gaussianKernel(21, 2, 1, theta);
    expect(a.kind).toBe('aniso');
    expect(sum(a)).toBeCloseTo(1, 6);
    const [axx, axy, ayy] = moments(a);
    const c = Math.cos(theta);
    const s = Math.sin(theta);
    expect(axx).toBeCloseTo(c * c * 4 + s * s * 1, 2);
    expect(ayy).toBeCloseTo(s * s * 4 + c * c * 1, 2);
    expect(axy).toBeCloseTo(c * s * (4 - 1), 2);
    // Eigenvalues of the moment matrix give sigma_x^2 and sigma_y^2.
    const tr = axx + ayy;
    const det = axx * ayy - axy * axy;
    const l1 = tr / 2 + Math.sqrt((tr * tr) / 4 - det);
    const l2 = tr / 2 - Math.sqrt((tr * tr) / 4 - det);
    expect(Math.sqrt(l1)).toBeCloseTo(2, 2);
    expect(Math.sqrt(l2)).toBeCloseTo(1, 2);
    expect(Math.atan2(2 * axy, axx - ayy) / 2).toBeCloseTo(theta, 2);
    // Point symmetric.
    for (let r = 0; r < 21; r++) for (let cc = 0; cc < 21; cc++) expect(at(a, r, cc)).toBeCloseTo(at(a, 20 - r, 20 - cc), 9);
  });

  it('generalized Gaussian and plateau follow exp(-q^beta/2) and 1/(q^beta+1)', () => {
    const g = generalizedGaussianKernel(11, 1.2, 0.8, 0.3, 2.5);
    const p = plateauKernel(11, 1.2, 0.8, 0.3, 1.5);
    expect(g.kind).toBe('generalized_aniso');
    expect(p.kind).toBe('plateau_aniso');
    for (const k of [g, p]) expect(sum(k)).toBeCloseTo(1, 6);
    // q at (x, y) = (1, 0) for the rotated covariance.
    const c = Math.cos(0.3);
    const s = Math.sin(0.3);
    const sxx = c * c * 1.44 + s * s * 0.64;
    const sxy = c * s * (1.44 - 0.64);
    const syy = s * s * 1.44 + c * c * 0.64;
    const q = syy / (sxx * syy - sxy * sxy);
    expect(at(g, 5, 6) / at(g, 5, 5)).toBeCloseTo(Math.exp(-0.5 * Math.pow(q, 2.5)), 5);
    expect(at(p, 5, 6) / at(p, 5, 5)).toBeCloseTo(1 / (Math.pow(q, 1.5) + 1), 5);
    expect(generalizedGaussianKernel(9, 1, 1, 0, 1).kind).toBe('generalized_iso');
    // beta = 1 generalized equals the plain Gaussian.
    const g1 = generalizedGaussianKernel(9, 1.3, 0.7, 1, 1);
    const gg = gaussianKernel(9, 1.3, 0.7, 1);
    for (let i = 0; i < 81; i++) expect(g1.data[i]).toBeCloseTo(gg.data[i]!, 7);
  });

  it('sinc: J1 closed form, centre tap, circular symmetry, padding', () => {
    expect(besselJ1(1)).toBeCloseTo(0.44005058574, 7);
    expect(besselJ1(3.8317059702)).toBeCloseTo(0, 7);
    expect(besselJ1(10)).toBeCloseTo(0.04347274617, 7);
    const wc = 1.7;
    const k = sincKernel(13, wc);
    expect(sum(k)).toBeCloseTo(1, 6);
    const ratio = at(k, 6, 8) / at(k, 6, 6);
    expect(ratio).toBeCloseTo(((wc * besselJ1(wc * 2)) / (2 * Math.PI * 2)) / ((wc * wc) / (4 * Math.PI)), 5);
    for (let r = 0; r < 13; r++) for (let c = 0; c < 13; c++) {
      expect(at(k, r, c)).toBeCloseTo(at(k, c, r), 9);
      expect(at(k, r, c)).toBeCloseTo(at(k, 12 - r, c), 9);
    }
    const padded = sincKernel(13, wc, 21);
    expect(padded.size).toBe(21);
    expect(padded.params.size).toBe(13);
    expect(sum(padded)).toBeCloseTo(1, 6);
    expect(at(padded, 0, 0)).toBe(0);
    expect(at(padded, 10, 10)).toBe(at(k, 6, 6));
  });
});

describe('randomKernel', () => {
  it('draws every parameter in range with the published kind and sinc frequencies', () => {
    const rng = new Rng(1234);
    const N = 10_000;
    const counts = new Map<KernelKind, number>();
    const sizes = new Map<number, number>();
    let betaBelow1 = 0;
    let betaCount = 0;
    for (let i = 0; i < N; i++) {
      const k = randomKernel(rng, STAGE1);
      expect(k.size).toBe(21);
      counts.set(k.kind, (counts.get(k.kind) ?? 0) + 1);
      const size = k.params.size!;
      sizes.set(size, (sizes.get(size) ?? 0) + 1);
      expect([7, 9, 11, 13, 15, 17, 19, 21]).toContain(size);
      if (k.kind === 'sinc') {
        const lo = size < 13 ? Math.PI / 3 : Math.PI / 5;
        expect(k.params.omegaC).toBeGreaterThanOrEqual(lo);
        expect(k.params.omegaC).toBeLessThanOrEqual(Math.PI);
        continue;
      }
      const { sigmaX, sigmaY, theta, beta } = k.params as Record<string, number>;
      expect(sigmaX).toBeGreaterThanOrEqual(0.2);
      expect(sigmaX).toBeLessThanOrEqual(3);
      expect(sigmaY).toBeGreaterThanOrEqual(0.2);
      expect(sigmaY).toBeLessThanOrEqual(3);
      expect(Math.abs(theta!)).toBeLessThanOrEqual(Math.PI);
      if (k.kind.endsWith('_iso') || k.kind === 'iso') {
        expect(sigmaY).toBe(sigmaX);
        expect(theta).toBe(0);
      }
      if (k.kind.startsWith('generalized')) {
        expect(beta).toBeGreaterThanOrEqual(0.5);
        expect(beta).toBeLessThanOrEqual(4);
      }
      if (k.kind.startsWith('plateau')) {
        expect(beta).toBeGreaterThanOrEqual(1);
        expect(beta).toBeLessThanOrEqual(2);
      }
      if (beta !== undefined) {
        betaCount++;
        if (beta < 1) betaBelow1++;
      }
    }
    expect(Math.abs((counts.get('sinc') ?? 0) / N - 0.1)).toBeLessThan(0.02);
    STAGE1.kernelList.forEach((kind, i) => {
      expect(Math.abs((counts.get(kind) ?? 0) / N - 0.9 * STAGE1.kernelProb[i]!)).toBeLessThan(0.02);
    });
    for (const n of sizes.values()) expect(Math.abs(n / N - 1 / 8)).toBeLessThan(0.02);
    // Generalized betas fall below 1 half of the time; plateau betas never do (range starts at 1).
    expect(betaBelow1 / betaCount).toBeGreaterThan(0.2);
  });

  it('final sinc: probability, omega range, padding; deterministic per seed', () => {
    const rng = new Rng(7);
    let count = 0;
    for (let i = 0; i < 5000; i++) {
      const k = randomFinalSinc(rng, 0.8);
      if (!k) continue;
      count++;
      expect(k.size).toBe(21);
      expect(k.params.omegaC).toBeGreaterThanOrEqual(Math.PI / 3);
      expect(k.params.omegaC).toBeLessThanOrEqual(Math.PI);
    }
    expect(Math.abs(count / 5000 - 0.8)).toBeLessThan(0.02);
    expect(randomFinalSinc(new Rng(1), 0)).toBeNull();
    const a = randomKernel(new Rng(99), STAGE1);
    const b = randomKernel(new Rng(99), STAGE1);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
  });
});

describe('kernel size ranges', () => {
  it('draws only odd sizes inside the range, and 7..21 by default', () => {
    expect(kernelSizes()).toEqual([7, 9, 11, 13, 15, 17, 19, 21]);
    expect(kernelSizes([8, 13])).toEqual([9, 11, 13]);
    expect(kernelSizes([1, 1])).toEqual([1]);
    expect(() => kernelSizes([10, 10])).toThrow(/no odd kernel size/);
    const rng = new Rng(21);
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) seen.add(randomKernel(rng, { ...STAGE1, sizeRange: [9, 13] }).params.size!);
    expect([...seen].sort((a, b) => a - b)).toEqual([9, 11, 13]);
    const sinc = randomFinalSinc(new Rng(3), 1, [15, 15], [1, 1]);
    expect(sinc?.params).toMatchObject({ size: 15, omegaC: 1 });
  });
});

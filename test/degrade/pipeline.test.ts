import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import DegradeRealESRGAN from '../../nodes/degrade/degrade.ts';
import { degradeImage, resizeTorch, round8 } from '../../nodes/degrade/lib/pipeline.ts';
import { realEsrganConfig } from '../../nodes/degrade/lib/presets.ts';
import { decodeImage } from '../../nodes/image/codec.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

const { env, cleanup } = tempEnv();
afterAll(cleanup);

const ASTRONAUT = path.resolve(import.meta.dirname, '../../assets/inputs/astronaut.png');
let astronaut: ImageTensor;
let small: ImageTensor;
beforeAll(async () => {
  astronaut = await decodeImage(fs.readFileSync(ASTRONAUT), env.limits);
  small = round8(resizeTorch(astronaut, 96, 96, 'area'));
});

/** Every widget at its default, as the executor fills them in. */
const defaults: Record<string, unknown> & { preset: string; seed: number; ranges: string } = {
  ...(Object.fromEntries(Object.entries(DegradeRealESRGAN.widgets).map(([k, w]) => [k, w.default])) as Record<string, unknown>),
  preset: 'Real-ESRGAN (x4)',
  seed: 0,
  ranges: '',
};
async function degrade(image: ImageTensor, args: Record<string, unknown>): Promise<{ image: ImageTensor; params: string }> {
  const out = await runNode(DegradeRealESRGAN, { image, ...defaults, ...args }, fakeContext(env));
  return { image: out.image as ImageTensor, params: out.params as string };
}

function psnr(a: ImageTensor, b: ImageTensor): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i]! - b.data[i]!) ** 2;
  return 10 * Math.log10(a.data.length / se);
}

const within = (v: unknown, lo: number, hi: number): boolean => typeof v === 'number' && v >= lo - 1e-12 && v <= hi + 1e-12;
const KINDS = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso', 'sinc'];
const SIZES = [7, 9, 11, 13, 15, 17, 19, 21];
type Rec = Record<string, unknown>;

function checkKernel(k: Rec, sigma: [number, number]): void {
  expect(KINDS).toContain(k.kind);
  expect(SIZES).toContain(k.size);
  if (k.kind === 'sinc') {
    expect(within(k.omegaC, (k.size as number) < 13 ? Math.PI / 3 : Math.PI / 5, Math.PI), JSON.stringify(k)).toBe(true);
    return;
  }
  expect(within(k.sigmaX, ...sigma) && within(k.sigmaY, ...sigma), JSON.stringify(k)).toBe(true);
  expect(within(k.theta, -Math.PI, Math.PI)).toBe(true);
  if (String(k.kind).endsWith('_iso') || k.kind === 'iso') expect([k.sigmaX, k.theta]).toEqual([k.sigmaY, 0]);
  if (String(k.kind).startsWith('generalized')) expect(within(k.beta, 0.5, 4)).toBe(true);
  if (String(k.kind).startsWith('plateau')) expect(within(k.beta, 1, 2)).toBe(true);
}

function checkResize(r: Rec, range: [number, number]): void {
  expect(['area', 'bilinear', 'bicubic']).toContain(r.mode);
  if (r.type === 'up') expect(within(r.scale, 1, range[1])).toBe(true);
  else if (r.type === 'down') expect(within(r.scale, range[0], 1)).toBe(true);
  else expect([r.type, r.scale]).toEqual(['keep', 1]);
}

function checkNoise(n: Rec, sigma: [number, number], poisson: [number, number]): void {
  expect(typeof n.gray).toBe('boolean');
  if (n.type === 'gaussian') expect(within(n.sigma, ...sigma)).toBe(true);
  else {
    expect(n.type).toBe('poisson');
    expect(within(n.scale, ...poisson)).toBe(true);
  }
}

describe('resizeTorch (torch interpolate, align_corners false, no antialias)', () => {
  const row = (values: number[]): ImageTensor => ({ data: Float32Array.from(values), n: 1, c: 1, h: 1, w: values.length });
  const close = (got: ImageTensor, want: number[]) => want.forEach((v, i) => expect(got.data[i]).toBeCloseTo(v, 5));
  it('matches torch on small rows', () => {
    close(resizeTorch(row([0, 1, 2, 3]), 2, 1, 'bilinear'), [0.5, 2.5]);
    close(resizeTorch(row([0, 1, 2, 3]), 2, 1, 'area'), [0.5, 2.5]);
    // bicubic A = -0.75 at t = 0.5: taps -0.09375, 0.59375, 0.59375, -0.09375, edges clamped
    close(resizeTorch(row([0, 1, 2, 3]), 2, 1, 'bicubic'), [0.40625, 2.59375]);
    // enlarging: bilinear clamps the source coordinate at 0
    close(resizeTorch(row([0, 1]), 4, 1, 'bilinear'), [0, 0.25, 0.75, 1]);
    // adaptive average pooling 3 -> 2: [0, 2) and [1, 3)
    close(resizeTorch(row([0, 3, 6]), 2, 1, 'area'), [1.5, 4.5]);
    // a scale factor sets the coordinate scale: 4 * 0.6 -> 2 pixels, source step 1 / 0.6
    close(resizeTorch(row([0, 1, 2, 3]), 2, 1, 'bilinear', 1 / 0.6, 1), [1 / 1.2 - 0.5, 1.5 / 0.6 - 0.5]);
  });
});

describe('DegradeRealESRGAN', () => {
  it('is deterministic by seed: same seed same bytes, another seed another image', async () => {
    const a = await degrade(small, { seed: 1234 });
    const b = await degrade(small, { seed: 1234 });
    const c = await degrade(small, { seed: 1235 });
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(b.image.data.buffer))).toBe(true);
    expect(a.params).toBe(b.params);
    expect(Buffer.from(a.image.data.buffer).equals(Buffer.from(c.image.data.buffer))).toBe(false);
    expect(a.params).not.toBe(c.params);
  });

  it('draws the same parameters from a seed whatever the image size (noise fields come from child generators)', async () => {
    // The noise of each stage draws millions of values for a large image and few for a small one;
    // they come from a child Rng seeded by two words, so everything drawn after the noise (JPEG
    // quality, stage 2, the final order) is the same for a 96x96 and a 200x200 image.
    const big = round8(resizeTorch(astronaut, 200, 200, 'area'));
    const strip = (p: Record<string, unknown>): unknown => JSON.parse(JSON.stringify(p, (k, v) => (k === 'size' || k === 'input' || k === 'output' ? undefined : v)));
    for (const seed of [1, 2, 3, 4]) {
      const a = await degradeImage(small, new Rng(seed), realEsrganConfig(), 4);
      const b = await degradeImage(big, new Rng(seed), realEsrganConfig(), 4);
      expect(strip(b.params)).toEqual(strip(a.params));
      expect(b.image.w).toBe(50);
    }
  });

  it('gives 1/scale of the input, on the 8-bit grid, or the input size when resized back', async () => {
    const x4 = await degrade(small, { seed: 3 });
    expect([x4.image.n, x4.image.c, x4.image.h, x4.image.w]).toEqual([1, 3, 24, 24]);
    for (const v of x4.image.data) expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
    const x2 = await degrade(small, { seed: 3, scale: 2 });
    expect([x2.image.h, x2.image.w]).toEqual([48, 48]);
    const odd = await degrade(resizeTorch(small, 90, 70, 'area'), { seed: 3, scale: 4 });
    expect([odd.image.h, odd.image.w]).toEqual([17, 22]);
    const back = await degrade(small, { seed: 3, resize_back: true });
    expect([back.image.h, back.image.w]).toEqual([96, 96]);
    const diffbir = await degrade(small, { seed: 3, preset: 'DiffBIR (restore to original size)' });
    expect([diffbir.image.h, diffbir.image.w]).toEqual([96, 96]);
    expect(JSON.parse(diffbir.params).resizeBack).toBe(true);
    const light = await degrade(small, { seed: 3, preset: 'light', sharpen_first: true });
    expect([light.image.h, light.image.w]).toEqual([24, 24]);
    for (const v of light.image.data) expect(v >= 0 && v <= 1).toBe(true);
    await expect(degrade(resizeTorch(small, 3, 3, 'area'), { scale: 4 })).rejects.toThrow(/scale/);
  });

  it('processes a batch with one draw per image', async () => {
    const batch = { ...small, n: 2, data: new Float32Array([...small.data, ...small.data]) };
    const out = await degrade(batch, { seed: 9 });
    expect([out.image.n, out.image.h, out.image.w]).toEqual([2, 24, 24]);
    const images = JSON.parse(out.params).images as Rec[];
    expect(images).toHaveLength(2);
    expect(JSON.stringify(images[0])).not.toBe(JSON.stringify(images[1]));
  });

  it('reports every drawn value, within the published ranges', async () => {
    const seen = { order: new Set<unknown>(), mode: new Set<unknown>(), noise: new Set<unknown>(), kinds: new Set<unknown>(), sinc: new Set<boolean>(), blur2: new Set<boolean>() };
    for (let seed = 0; seed < 60; seed++) {
      const { params } = await degrade(small, { seed });
      const all = JSON.parse(params) as Rec;
      expect(all).toMatchObject({ preset: 'Real-ESRGAN (x4)', seed, scale: 4, resizeBack: false, usm: false });
      const p = (all.images as Rec[])[0]!;
      const s1 = p.stage1 as Rec;
      const s2 = p.stage2 as Rec;
      const fin = p.final as Rec;
      checkKernel(s1.blur as Rec, [0.2, 3]);
      checkResize(s1.resize as Rec, [0.15, 1.5]);
      checkNoise(s1.noise as Rec, [1, 30], [0.05, 3]);
      const q1 = (s1.jpeg as Rec).quality;
      expect(Number.isInteger(q1) && within(q1, 30, 95)).toBe(true);
      if (s2.blur !== null) checkKernel(s2.blur as Rec, [0.2, 1.5]);
      checkResize(s2.resize as Rec, [0.3, 1.2]);
      checkNoise(s2.noise as Rec, [1, 25], [0.05, 2.5]);
      expect(['resize-sinc-jpeg', 'jpeg-resize-sinc']).toContain(fin.order);
      expect(['area', 'bilinear', 'bicubic']).toContain(fin.resizeMode);
      const q2 = (fin.jpeg as Rec).quality;
      expect(Number.isInteger(q2) && within(q2, 30, 95)).toBe(true);
      if (fin.sinc !== null) {
        const k = fin.sinc as Rec;
        expect(k.kind).toBe('sinc');
        expect(SIZES).toContain(k.size);
        expect(within(k.omegaC, Math.PI / 3, Math.PI)).toBe(true);
      }
      expect(p.output).toEqual([24, 24]);
      seen.order.add(fin.order);
      seen.mode.add((s1.resize as Rec).mode);
      seen.noise.add((s1.noise as Rec).type);
      seen.kinds.add((s1.blur as Rec).kind);
      seen.sinc.add(fin.sinc !== null);
      seen.blur2.add(s2.blur !== null);
    }
    // The random choices all happen.
    expect(seen.order.size).toBe(2);
    expect(seen.mode.size).toBe(3);
    expect(seen.noise.size).toBe(2);
    expect(seen.kinds.size).toBeGreaterThanOrEqual(4);
    expect(seen.sinc.size).toBe(2);
    expect(seen.blur2.size).toBe(2);
  });

  it('takes edits of the ranges as JSON, and refuses bad ones', async () => {
    const ranges = JSON.stringify({
      stage1: { jpegRange: [90, 95], noise: { sigma: [2, 3], poissonScale: [0.1, 0.2] }, blur: { sincProb: 0 } },
      stage2: { blurProb: 0, resizeProb: [0, 0, 1] },
      finalSincProb: 0,
    });
    for (let seed = 0; seed < 10; seed++) {
      const all = JSON.parse((await degrade(small, { seed, ranges })).params) as Rec;
      expect(all.ranges).toEqual(JSON.parse(ranges));
      const p = (all.images as Rec[])[0]!;
      const s1 = p.stage1 as Rec;
      const s2 = p.stage2 as Rec;
      expect(within((s1.jpeg as Rec).quality, 90, 95)).toBe(true);
      checkNoise(s1.noise as Rec, [2, 3], [0.1, 0.2]);
      expect((s1.blur as Rec).kind).not.toBe('sinc');
      expect(s2.blur).toBeNull();
      expect((s2.resize as Rec).type).toBe('keep');
      expect((p.final as Rec).sinc).toBeNull();
    }
    const validate = DegradeRealESRGAN.validate!;
    const base = { ...defaults } as Parameters<typeof validate>[0];
    expect(validate({ ...base, ranges: '' }, env)).toEqual([]);
    for (const bad of ['{', '[1]', '{"stage3": {}}', '{"stage1": {"jpegRange": [95, 30]}}', '{"stage1": {"noise": {"nope": [1, 2]}}}', '{"finalSincProb": 2}']) {
      expect(validate({ ...base, ranges: bad }, env), bad).toHaveLength(1);
      await expect(degrade(small, { ranges: bad }), bad).rejects.toThrow(/ranges/);
    }
  });

  it('takes the main ranges from their own widgets: -1 keeps the preset, other values win over preset and JSON', async () => {
    const ranges = JSON.stringify({ stage1: { jpegRange: [31, 33] } });
    for (let seed = 0; seed < 6; seed++) {
      const all = JSON.parse(
        (
          await degrade(small, {
            seed,
            preset: 'light',
            ranges,
            stage1_jpeg_quality_min: 90,
            stage1_jpeg_quality_max: 91,
            stage1_noise_sigma_min: 4,
            stage1_noise_sigma_max: 4,
            stage1_poisson_scale_min: 0.5,
            stage1_poisson_scale_max: 0.5,
            stage2_blur_prob: 0,
            final_sinc_prob: 1,
          })
        ).params,
      ) as Rec;
      const settings = all.settings as Rec;
      // Widgets win over JSON; unset widgets keep light's values.
      expect((settings.stage1 as Rec).jpegRange).toEqual([90, 91]);
      expect(((settings.stage2 as Rec).noise as Rec).sigma).toEqual([1, 8]);
      expect(((settings.stage1 as Rec).blur as Rec).sigmaX).toEqual([0.2, 1.5]);
      const p = (all.images as Rec[])[0]!;
      const s1 = p.stage1 as Rec;
      expect([90, 91]).toContain((s1.jpeg as Rec).quality);
      const noise = s1.noise as Rec;
      expect(noise.type === 'gaussian' ? noise.sigma : noise.scale).toBe(noise.type === 'gaussian' ? 4 : 0.5);
      expect((p.stage2 as Rec).blur).toBeNull();
      expect((p.final as Rec).sinc).not.toBeNull();
    }
    const validate = DegradeRealESRGAN.validate!;
    const check = (extra: Record<string, unknown>) => validate({ ...defaults, ...extra } as Parameters<typeof validate>[0], env);
    expect(check({})).toEqual([]);
    expect(check({ stage1_blur_sigma_min: 0 })[0]![0]).toBe('stage1_blur_sigma_min');
    expect(check({ stage2_jpeg_quality_min: 80, stage2_jpeg_quality_max: 60 })[0]![0]).toBe('stage2_jpeg_quality_max');
    // A widget against the preset's other end: light's stage-1 sigma max is 1.5.
    expect(check({ preset: 'light', stage1_blur_sigma_min: 2 })[0]![0]).toBe('stage1_blur_sigma_min');
    expect(check({ stage1_resize_scale_max: 0.5 })[0]![0]).toBe('stage1_resize_scale_max');
    await expect(degrade(small, { stage2_noise_sigma_min: 30, stage2_noise_sigma_max: 10 })).rejects.toThrow(/stage2_noise_sigma_max/);
  });

  it('matches the reference statistic: 150 draws on astronaut 512 -> 128, PSNR against the area-downsampled original', async () => {
    const ref = round8(resizeTorch(astronaut, 128, 128, 'area'));
    const cfg = realEsrganConfig();
    const values: number[] = [];
    for (let seed = 0; seed < 150; seed++) {
      const { image } = await degradeImage(astronaut, new Rng(seed), cfg, 4);
      values.push(psnr(image, ref));
    }
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
    console.log(`PSNR over 150 seeds: mean ${mean.toFixed(2)} dB, std ${std.toFixed(2)} (reference 21.8 +- 1.0, std 1.9)`);
    expect(mean).toBeGreaterThan(20.8);
    expect(mean).toBeLessThan(22.8);
    expect(std).toBeGreaterThan(1.2);
    expect(std).toBeLessThan(2.6);
  }, 180_000);
});

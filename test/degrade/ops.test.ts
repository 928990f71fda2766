import { afterAll, describe, expect, it } from 'vitest';
import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import { InputError } from '../../nodes/api/errors.ts';
import { Rng } from '../../nodes/api/rng.ts';
import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { DegradeBlur, DegradeJPEG, DegradeNoise, DegradeResize, DegradeSinc, DegradeUnsharpMask } from '../../nodes/degrade/ops.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';

const { env, cleanup } = tempEnv();
afterAll(cleanup);

type Rec = Record<string, unknown>;
const bytes = (img: ImageTensor): Buffer => Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
const defaultsOf = (node: AnyNodeDefinition): Rec => Object.fromEntries(Object.entries(node.widgets).map(([k, w]) => [k, w.default]));

/** A textured test image (seeded), n images of c x h x w. */
function texture(seed: number, n = 1, h = 48, w = 64): ImageTensor {
  const rng = new Rng(seed);
  const img = createImage(n, 3, h, w);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 0.5 + 0.3 * Math.sin(i / 7) * Math.cos(i / 131) + 0.1 * rng.uniform();
  return img;
}

async function run(node: AnyNodeDefinition, args: Rec): Promise<{ image: ImageTensor; params: Rec[] | undefined }> {
  const out = await runNode(node, { ...defaultsOf(node), ...args }, fakeContext(env));
  return { image: out.image as ImageTensor, params: out.params === undefined ? undefined : (JSON.parse(out.params as string).images as Rec[]) };
}

/** Same seed: same bytes and params; another seed: another image. */
async function checkSeeded(node: AnyNodeDefinition, args: Rec): Promise<void> {
  const img = texture(1);
  const a = await run(node, { ...args, image: img, seed: 5 });
  const b = await run(node, { ...args, image: img, seed: 5 });
  const c = await run(node, { ...args, image: img, seed: 6 });
  expect(bytes(a.image).equals(bytes(b.image))).toBe(true);
  expect(a.params).toEqual(b.params);
  expect(bytes(a.image).equals(bytes(c.image)) && JSON.stringify(a.params) === JSON.stringify(c.params)).toBe(false);
}

/** validate names the widget, and execute throws an InputError naming it too. */
async function checkRefused(node: AnyNodeDefinition, args: Rec, widget: string): Promise<void> {
  const values = { ...defaultsOf(node), ...args };
  const problems = node.validate!(values as never, env);
  expect(problems.map((p) => p[0])).toContain(widget);
  const err = await runNode(node, { ...values, image: texture(1) }, fakeContext(env)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).input).toBe(widget);
}

describe('Blur (random kernel)', () => {
  it('is seeded', () => checkSeeded(DegradeBlur, {}), 30_000);

  it('honours the kind, size and sigma ranges, and draws per image of a batch', async () => {
    for (let seed = 0; seed < 8; seed++) {
      const { params } = await run(DegradeBlur, { image: texture(2), seed, kernel: 'aniso', size_min: 9, size_max: 11, sigma_min: 1.2, sigma_max: 1.4 });
      const k = params![0]!.kernel as Rec;
      expect(k.kind).toBe('aniso');
      expect([9, 11]).toContain(k.size);
      for (const s of [k.sigmaX, k.sigmaY] as number[]) expect(s >= 1.2 && s <= 1.4).toBe(true);
    }
    const sinc = await run(DegradeBlur, { image: texture(2), kernel: 'sinc', size_min: 7, size_max: 7 });
    expect(sinc.params![0]!.kernel).toMatchObject({ kind: 'sinc', size: 7 });
    // Random kinds follow the weights: only plateau_iso can come out.
    const weights = { iso_prob: 0, aniso_prob: 0, generalized_iso_prob: 0, generalized_aniso_prob: 0, plateau_iso_prob: 1, plateau_aniso_prob: 0, sinc_prob: 0 };
    const batch = await run(DegradeBlur, { image: texture(3, 2), seed: 1, ...weights });
    expect(batch.params!.map((p) => (p.kernel as Rec).kind)).toEqual(['plateau_iso', 'plateau_iso']);
    expect((batch.params![0]!.kernel as Rec).beta).not.toBe((batch.params![1]!.kernel as Rec).beta);
    expect(batch.image.n).toBe(2);
  }, 30_000);

  it('refuses empty ranges, naming the widget', async () => {
    await checkRefused(DegradeBlur, { sigma_min: 3, sigma_max: 1 }, 'sigma_max');
    await checkRefused(DegradeBlur, { size_min: 8, size_max: 8 }, 'size_max');
    await checkRefused(DegradeBlur, { iso_prob: 0, aniso_prob: 0, generalized_iso_prob: 0, generalized_aniso_prob: 0, plateau_iso_prob: 0, plateau_aniso_prob: 0 }, 'iso_prob');
  }, 30_000);
});

describe('Resize (random)', () => {
  it('is seeded', () => checkSeeded(DegradeResize, {}), 30_000);

  it('honours the probabilities, range and mode, with one size for a whole batch', async () => {
    for (let seed = 0; seed < 6; seed++) {
      const { image, params } = await run(DegradeResize, { image: texture(4, 2), seed, up_prob: 0, down_prob: 1, keep_prob: 0, scale_min: 0.5, mode: 'bilinear' });
      const [p0, p1] = params!;
      expect(p0).toMatchObject({ type: 'down', mode: 'bilinear' });
      expect((p0!.scale as number) >= 0.5 && (p0!.scale as number) <= 1).toBe(true);
      expect(p1).toEqual(p0);
      expect([image.n, image.h, image.w]).toEqual([2, Math.floor(48 * (p0!.scale as number)), Math.floor(64 * (p0!.scale as number))]);
    }
    const up = await run(DegradeResize, { image: texture(4), up_prob: 1, down_prob: 0, keep_prob: 0, scale_max: 2 });
    expect(up.params![0]!.type).toBe('up');
    expect(up.image.w).toBeGreaterThanOrEqual(64);
    const keep = await run(DegradeResize, { image: texture(4), up_prob: 0, down_prob: 0, keep_prob: 1 });
    expect(bytes(keep.image).equals(bytes(texture(4)))).toBe(true);
  }, 30_000);

  it('refuses all-zero probabilities, naming the widget', () => checkRefused(DegradeResize, { up_prob: 0, down_prob: 0, keep_prob: 0 }, 'keep_prob'), 30_000);
});

describe('Add Noise', () => {
  it('is seeded', () => checkSeeded(DegradeNoise, {}), 30_000);

  it('honours the type and level: Gaussian sigma 5 measures 5/255 on a flat image; gray noise is one field', async () => {
    const flat = createImage(1, 3, 64, 64, new Float32Array(3 * 64 * 64).fill(0.5));
    const { image, params } = await run(DegradeNoise, { image: flat, gaussian_prob: 1, sigma_min: 5, sigma_max: 5, gray_prob: 0 });
    expect(params![0]).toEqual({ type: 'gaussian', sigma: 5, gray: false });
    let s2 = 0;
    for (const v of image.data) s2 += (v - 0.5) ** 2;
    expect(Math.abs(Math.sqrt(s2 / image.data.length) * 255 - 5)).toBeLessThan(0.15);
    const gray = await run(DegradeNoise, { image: flat, gaussian_prob: 0, poisson_scale_min: 1, poisson_scale_max: 2, gray_prob: 1 });
    expect(gray.params![0]).toMatchObject({ type: 'poisson', gray: true });
    const p = gray.params![0]!.scale as number;
    expect(p >= 1 && p <= 2).toBe(true);
    for (let i = 0; i < 64 * 64; i++) expect(gray.image.data[i]).toBe(gray.image.data[2 * 64 * 64 + i]);
  }, 30_000);

  it('refuses empty ranges, naming the widget', () => checkRefused(DegradeNoise, { poisson_scale_min: 2, poisson_scale_max: 1 }, 'poisson_scale_max'), 30_000);
});

describe('JPEG Compress', () => {
  it('is seeded', () => checkSeeded(DegradeJPEG, {}), 30_000);

  it('honours the quality range and lands on the 8-bit grid', async () => {
    for (let seed = 0; seed < 5; seed++) {
      const { image, params } = await run(DegradeJPEG, { image: texture(5), seed, quality_min: 40, quality_max: 42 });
      expect([40, 41, 42]).toContain(params![0]!.quality);
      for (const v of image.data) expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
    }
  }, 30_000);

  it('refuses an empty range, naming the widget', () => checkRefused(DegradeJPEG, { quality_min: 90, quality_max: 30 }, 'quality_max'), 30_000);
});

describe('Sinc Filter', () => {
  it('is seeded', () => checkSeeded(DegradeSinc, { probability: 1 }), 30_000);

  it('honours the probability, size and cutoff ranges', async () => {
    const img = texture(6);
    const off = await run(DegradeSinc, { image: img, probability: 0 });
    expect(off.params![0]).toEqual({ sinc: null });
    expect(bytes(off.image).equals(bytes(img))).toBe(true);
    for (let seed = 0; seed < 5; seed++) {
      const on = await run(DegradeSinc, { image: img, seed, probability: 1, size_min: 9, size_max: 9, omega_min: 1, omega_max: 1.2 });
      const k = on.params![0]!.sinc as Rec;
      expect(k).toMatchObject({ kind: 'sinc', size: 9 });
      expect((k.omegaC as number) >= 1 && (k.omegaC as number) <= 1.2).toBe(true);
      expect(bytes(on.image).equals(bytes(img))).toBe(false);
    }
  }, 30_000);

  it('refuses empty ranges, naming the widget', async () => {
    await checkRefused(DegradeSinc, { omega_min: 2, omega_max: 1 }, 'omega_max');
    await checkRefused(DegradeSinc, { size_min: 10, size_max: 10 }, 'size_max');
  }, 30_000);
});

describe('Unsharp Mask', () => {
  it('leaves flat areas alone and steepens an edge, overshooting on both sides', async () => {
    const h = 40;
    const w = 80;
    const img = createImage(1, 3, h, w);
    for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data[(c * h + y) * w + x] = x < w / 2 ? 0.3 : 0.7;
    const { image } = await run(DegradeUnsharpMask, { image: img });
    const at = (x: number) => image.data[20 * w + x]!;
    expect(at(w / 2 - 1)).toBeLessThan(0.3 - 0.01);
    expect(at(w / 2)).toBeGreaterThan(0.7 + 0.01);
    const off = await run(DegradeUnsharpMask, { image: img, weight: 0 });
    expect(bytes(off.image).equals(bytes(img))).toBe(true);
  }, 30_000);
});

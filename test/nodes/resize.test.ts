import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../nodes/api/errors.ts';
import { batchItem, type ImageTensor } from '../../nodes/api/tensor.ts';
import ImageResize, { resample } from '../../nodes/image/resize.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { at, imageFrom, random8 } from '../support/images.ts';

const { env, cleanup } = tempEnv();
afterAll(cleanup);

const defaults = { mode: 'scale', scale: 2, width: 1024, height: 1024, method: 'lanczos' };
async function resize(image: ImageTensor, args: Partial<typeof defaults>): Promise<ImageTensor> {
  const out = await runNode(ImageResize, { image, ...defaults, ...args }, fakeContext(env));
  return out.image as ImageTensor;
}

const METHODS = ['lanczos', 'bicubic', 'area', 'nearest', 'bilinear'];

describe('ImageResize', () => {
  it('gives the requested sizes in scale and size mode, for every method', async () => {
    const image = random8(1, 3, 6, 10);
    for (const method of METHODS) {
      const up = await resize(image, { method, scale: 1.5 });
      expect([up.n, up.c, up.h, up.w], method).toEqual([1, 3, 9, 15]);
      const exact = await resize(image, { method, mode: 'size', width: 7, height: 13 });
      expect([exact.h, exact.w], method).toEqual([13, 7]);
      const tiny = await resize(image, { method, scale: 0.01 });
      expect([tiny.h, tiny.w], method).toEqual([1, 1]);
    }
  });

  it('area downscale by 2 gives exact block means', async () => {
    const image = random8(1, 3, 4, 4, 7);
    const out = await resize(image, { method: 'area', scale: 0.5 });
    expect([out.h, out.w]).toEqual([2, 2]);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 2; x++) {
          const mean =
            (at(image, 0, c, 2 * y, 2 * x) + at(image, 0, c, 2 * y, 2 * x + 1) +
              at(image, 0, c, 2 * y + 1, 2 * x) + at(image, 0, c, 2 * y + 1, 2 * x + 1)) / 4;
          expect(at(out, 0, c, y, x)).toBe(Math.fround(mean));
        }
      }
    }
  });

  it('area downscale weighs pixels by the fraction they cover', () => {
    const row = imageFrom(1, 1, 1, 3, (_n, _c, _y, x) => [0.3, 0.6, 0.9][x]!);
    const out = resample(row, 2, 1, 'area');
    expect(out.data[0]).toBeCloseTo((2 * 0.3 + 0.6) / 3, 6);
    expect(out.data[1]).toBeCloseTo((0.6 + 2 * 0.9) / 3, 6);
  });

  it('keeps a constant image constant (within 16-bit rounding) for every method and direction', async () => {
    const image = imageFrom(1, 3, 29, 37, (_n, c) => 0.3 + c * 0.2);
    for (const method of METHODS) {
      for (const [width, height] of [[16, 11], [80, 61], [50, 13]]) {
        const out = await resize(image, { method, mode: 'size', width, height });
        for (let c = 0; c < 3; c++) {
          const plane = out.data.subarray(c * out.h * out.w, (c + 1) * out.h * out.w);
          const want = 0.3 + c * 0.2;
          const worst = plane.reduce((m, v) => Math.max(m, Math.abs(v - want)), 0);
          expect(worst, `${method} ${width}x${height}`).toBeLessThanOrEqual(2 / 65535);
        }
      }
    }
  });

  it('nearest upscale by 2 repeats each pixel', async () => {
    const image = random8(1, 3, 3, 5, 3);
    const out = await resize(image, { method: 'nearest', scale: 2 });
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 10; x++) {
        expect(Math.abs(at(out, 0, 1, y, x) - at(image, 0, 1, y >> 1, x >> 1))).toBeLessThan(1 / 65535);
      }
    }
  });

  it('aligns pixel centres when enlarging, with no half-pixel shift', async () => {
    const ramp = imageFrom(1, 1, 1, 8, (_n, _c, _y, x) => x / 7);
    const out = await resize(ramp, { method: 'bilinear', scale: 2 });
    for (let i = 0; i < 16; i++) {
      const source = Math.min(7, Math.max(0, (i + 0.5) / 2 - 0.5));
      expect(out.data[i], `pixel ${i}`).toBeCloseTo(source / 7, 6);
    }
  });

  it('lanczos upscale keeps a ramp in order and its mean', async () => {
    const ramp = imageFrom(1, 1, 8, 16, (_n, _c, _y, x) => x / 15);
    const out = await resize(ramp, { method: 'lanczos', scale: 2 });
    const row = Array.from(out.data.subarray(8 * 32, 9 * 32));
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    expect(mean).toBeCloseTo(0.5, 2);
    expect(row[0]!).toBeLessThan(row[16]!);
    expect(row[16]!).toBeLessThan(row[31]!);
  });

  it('resizes each item of a batch on its own', async () => {
    const batch = random8(2, 3, 8, 8, 11);
    for (const method of METHODS) {
      const both = await resize(batch, { method, mode: 'size', width: 5, height: 3 });
      const second = await resize(batchItem(batch, 1), { method, mode: 'size', width: 5, height: 3 });
      expect(both.n).toBe(2);
      expect(Array.from(batchItem(both, 1).data), method).toEqual(Array.from(second.data));
    }
  });

  it('refuses a result over the pixel limit, naming the widget', async () => {
    const small = tempEnv({ maxPixels: 10_000 });
    try {
      const ctx = fakeContext(small.env);
      const image = random8(1, 3, 60, 60);
      const err = await runNode(ImageResize, { image, ...defaults, scale: 2 }, ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect(err).toMatchObject({ input: 'scale', code: 'TOO_LARGE' });
      const bySize = runNode(ImageResize, { image, ...defaults, mode: 'size', width: 200, height: 200 }, ctx);
      await expect(bySize).rejects.toMatchObject({ input: 'width' });
      const ok = await runNode(ImageResize, { image, ...defaults, mode: 'size', width: 100, height: 100 }, ctx);
      expect((ok.image as ImageTensor).w).toBe(100);
    } finally {
      small.cleanup();
    }
  });
});

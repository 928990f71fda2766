import { describe, expect, it } from 'vitest';
import { Rng } from '../../nodes/api/rng.ts';
import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { jpegCompress } from '../../nodes/degrade/lib/jpeg.ts';

/** A smooth photo-like test image with some texture, 3 channels. */
function testImage(n = 1, c = 3, h = 96, w = 128): ImageTensor {
  const rng = new Rng(11);
  const img = createImage(n, c, h, w);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = 0.5 + 0.3 * Math.sin(x / (7 + ch) + b) * Math.cos(y / 9) + 0.1 * (rng.uniform() - 0.5);
    img.data[((b * c + ch) * h + y) * w + x] = v;
  }
  return img;
}

function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

describe('jpegCompress', () => {
  it('error falls monotonically as quality rises', async () => {
    const img = testImage();
    const errors: number[] = [];
    for (const q of [30, 60, 90]) {
      const out = await jpegCompress(img, q);
      expect([out.n, out.c, out.h, out.w]).toEqual([1, 3, 96, 128]);
      errors.push(mse(out.data, img.data));
    }
    expect(errors[0]!).toBeGreaterThan(errors[1]!);
    expect(errors[1]!).toBeGreaterThan(errors[2]!);
    expect(errors[2]!).toBeGreaterThan(0);
  });

  it('is batch-aware, clamps first, returns 8-bit values and is deterministic', async () => {
    const img = testImage(2);
    img.data[0] = 5;
    img.data[1] = -3;
    const a = await jpegCompress(img, 50);
    const b = await jpegCompress(img, 50);
    expect([a.n, a.c, a.h, a.w]).toEqual([2, 3, 96, 128]);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    for (const v of a.data) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
      expect(Math.abs(v * 255 - Math.round(v * 255))).toBeLessThan(1e-4);
    }
    // Each item compressed on its own: item 1 equals compressing item 1 alone.
    const plane = 3 * 96 * 128;
    const single = await jpegCompress(createImage(1, 3, 96, 128, img.data.slice(plane)), 50);
    expect(a.data.subarray(plane)).toEqual(single.data);
  });

  it('handles one-channel images', async () => {
    const img = testImage(1, 1);
    const out = await jpegCompress(img, 40);
    expect([out.n, out.c]).toEqual([1, 1]);
    expect(mse(out.data, img.data)).toBeLessThan(0.01);
  });
});

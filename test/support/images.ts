import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { Rng } from '../../nodes/api/rng.ts';

/** An image whose value at (n, c, y, x) is `fn(n, c, y, x)`. */
export function imageFrom(
  n: number,
  c: number,
  h: number,
  w: number,
  fn: (n: number, c: number, y: number, x: number) => number,
): ImageTensor {
  const image = createImage(n, c, h, w);
  let i = 0;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) image.data[i++] = fn(b, ch, y, x);
  return image;
}

/** Random values on the 8-bit grid (k / 255), so that an 8-bit round trip must be exact. */
export function random8(n: number, c: number, h: number, w: number, seed = 1): ImageTensor {
  const rng = new Rng(seed);
  return imageFrom(n, c, h, w, () => rng.int(0, 255) / 255);
}

/** Value at (n, c, y, x). */
export function at(image: ImageTensor, n: number, c: number, y: number, x: number): number {
  return image.data[((n * image.c + c) * image.h + y) * image.w + x]!;
}

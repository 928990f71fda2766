/** Float32 NCHW tensor with explicit shape. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** A batch of images, NCHW, values in 0..1. */
export interface ImageTensor {
  data: Float32Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

/** A batch of latents, NCHW, with what produced it so that mismatched pairs are caught. */
export interface LatentTensor {
  data: Float32Array;
  n: number;
  c: number;
  h: number;
  w: number;
  /** Whether the VAE scale factor (0.13025 for SDXL) has been applied. */
  scaled: boolean;
  /** Pixels per latent cell (8 for SDXL). */
  downscale: number;
}

export function createImage(n: number, c: number, h: number, w: number, data?: Float32Array): ImageTensor {
  for (const [name, v] of [['n', n], ['c', c], ['h', h], ['w', w]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`image ${name} must be a positive integer, got ${v}`);
  }
  const size = n * c * h * w;
  if (data && data.length !== size) {
    throw new RangeError(`image data has ${data.length} values, shape ${n}x${c}x${h}x${w} needs ${size}`);
  }
  return { data: data ?? new Float32Array(size), n, c, h, w };
}

/** The `index`-th image of a batch, sharing memory with the batch. */
export function batchItem(image: ImageTensor, index: number): ImageTensor {
  const plane = image.c * image.h * image.w;
  return { ...image, n: 1, data: image.data.subarray(index * plane, (index + 1) * plane) };
}

export function shapeOf(t: { n: number; c: number; h: number; w: number }): string {
  return `${t.n}x${t.c}x${t.h}x${t.w}`;
}

/**
 * Bytes held by a value: typed arrays counted by their buffers' lengths, walking plain objects and
 * arrays. The executor's cache budget is kept with this.
 */
export function bytesOf(value: unknown, seen = new Set<ArrayBufferLike>()): number {
  if (value === null || typeof value !== 'object') return typeof value === 'string' ? value.length * 2 : 8;
  if (ArrayBuffer.isView(value)) {
    if (seen.has(value.buffer)) return 0;
    seen.add(value.buffer);
    return value.buffer.byteLength;
  }
  let total = 0;
  for (const item of Array.isArray(value) ? value : Object.values(value)) total += bytesOf(item, seen);
  return total;
}

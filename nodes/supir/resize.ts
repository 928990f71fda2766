import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { createImage, type ImageTensor } from '../api/tensor.ts';
import { float, int } from '../api/widgets.ts';

/** Python's round() / numpy.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * PIL2Tensor's sizes: (w0, h0) = the upscaled size, given back for the final resize; the
 * working size has its short side raised to min_size, then each side rounded to `multiple`.
 */
export function supirSizes(w: number, h: number, upscale: number, minSize: number, multiple: number): { w0: number; h0: number; w: number; h: number } {
  let [fw, fh] = [w * upscale, h * upscale];
  const [w0, h0] = [roundHalfEven(fw), roundHalfEven(fh)];
  if (Math.min(fw, fh) < minSize) {
    const s = minSize / Math.min(fw, fh);
    [fw, fh] = [fw * s, fh * s];
  }
  const snap = (v: number): number => Math.max(1, roundHalfEven(v / multiple)) * multiple;
  return { w0, h0, w: snap(fw), h: snap(fh) };
}

const PRECISION_BITS = 22; // Pillow's fixed point for 8-bit resampling (32 - 8 - 2)

/** Pillow's bicubic (a = -0.5). */
function cubic(x: number): number {
  const t = Math.abs(x);
  if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * -0.5;
  return 0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: first tap and integer weights. */
function pillowTaps(inSize: number, outSize: number): Array<{ first: number; k: Int32Array }> {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const taps: Array<{ first: number; k: Int32Array }> = [];
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const first = Math.max(0, Math.trunc(centre - support + 0.5));
    const count = Math.min(inSize, Math.trunc(centre + support + 0.5)) - first;
    const inv = 1 / filterScale; // Pillow multiplies by the reciprocal: same rounding
    const w = Array.from({ length: count }, (_, x) => cubic((x + first - centre + 0.5) * inv));
    const total = w.reduce((a, b) => a + b, 0);
    const k = Int32Array.from(w, (v) => {
      const p = (total !== 0 ? v / total : v) * (1 << PRECISION_BITS);
      return Math.trunc(p < 0 ? p - 0.5 : p + 0.5);
    });
    taps.push({ first, k });
  }
  return taps;
}

/** One Pillow 8-bit pass along x (stride 1) or y (stride w) of a uint8 plane. */
function pillowPass(src: Uint8Array, w: number, h: number, horizontal: boolean, out: number): Uint8Array {
  const [ow, oh] = horizontal ? [out, h] : [w, out];
  const taps = pillowTaps(horizontal ? w : h, out);
  const dst = new Uint8Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const { first, k } = taps[horizontal ? x : y]!;
      let ss = 1 << (PRECISION_BITS - 1);
      for (let t = 0; t < k.length; t++) ss += src[horizontal ? y * w + first + t : (first + t) * w + x]! * k[t]!;
      dst[y * ow + x] = Math.min(255, Math.max(0, Math.floor(ss / (1 << PRECISION_BITS))));
    }
  }
  return dst;
}

/**
 * `Image.resize((w, h), Image.BICUBIC)` on an 8-bit RGB image, bit for bit: the input is rounded to
 * 8 bits, each axis is a fixed-point pass (horizontal first, into an 8-bit image), and taps are
 * widened when shrinking (antialiasing), as Pillow does. The official code resizes 8-bit PIL
 * images, so the working image holds 8-bit levels whatever the source's depth.
 */
export function pillowBicubic8(image: ImageTensor, tw: number, th: number): ImageTensor {
  const { n, c, h, w } = image;
  const out = createImage(n, c, th, tw);
  for (let p = 0; p < n * c; p++) {
    let plane: Uint8Array = Uint8Array.from(image.data.subarray(p * h * w, (p + 1) * h * w), (v) => Math.min(255, Math.max(0, Math.round(v * 255))));
    if (tw !== w) plane = pillowPass(plane, w, h, true, tw);
    if (th !== h) plane = pillowPass(plane, tw, h, false, th);
    for (let i = 0; i < plane.length; i++) out.data[p * th * tw + i] = plane[i]! / 255;
  }
  return out;
}

/**
 * `F.interpolate(x, size, mode='bicubic')` (align_corners False, no antialias, A = -0.75, edge
 * taps clamped): how Tensor2PIL brings the result back to (w0, h0). It differs from Pillow's
 * bicubic (A = -0.5, widened taps when shrinking), so the last resize of a SUPIR graph should
 * use this for parity. Values are neither clamped nor quantised.
 */
export function torchBicubic(image: ImageTensor, tw: number, th: number): ImageTensor {
  const { n, c, h, w } = image;
  const axis = (inSize: number, outSize: number): Array<{ idx: number[]; k: number[] }> =>
    Array.from({ length: outSize }, (_, o) => {
      const src = (inSize / outSize) * (o + 0.5) - 0.5;
      const i0 = Math.floor(src);
      const t = src - i0;
      const A = -0.75;
      const near = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1;
      const far = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
      const idx = [i0 - 1, i0, i0 + 1, i0 + 2].map((i) => Math.min(inSize - 1, Math.max(0, i)));
      return { idx, k: [far(t + 1), near(t), near(1 - t), far(2 - t)] };
    });
  const xs = axis(w, tw);
  const ys = axis(h, th);
  const out = createImage(n, c, th, tw);
  for (let p = 0; p < n * c; p++) {
    const src = image.data.subarray(p * h * w, (p + 1) * h * w);
    for (let y = 0; y < th; y++) {
      const { idx: yi, k: yk } = ys[y]!;
      for (let x = 0; x < tw; x++) {
        const { idx: xi, k: xk } = xs[x]!;
        let sum = 0;
        for (let a = 0; a < 4; a++) {
          let row = 0;
          for (let b = 0; b < 4; b++) row += xk[b]! * src[yi[a]! * w + xi[b]!]!;
          sum += yk[a]! * row;
        }
        out.data[p * th * tw + y * tw + x] = sum;
      }
    }
  }
  return out;
}

/**
 * SUPIR's size preprocessing (PIL2Tensor, reference step 1): upscale, raise the short side to
 * min_size, snap both sides to `multiple` (aspect may shift slightly), Pillow bicubic. width and
 * height are the upscaled size (w0, h0) that the result is resized back to at the end.
 */
export default defineNode({
  id: 'SupirResize',
  displayName: 'SUPIR Resize',
  category: 'supir',
  description:
    "SUPIR's input sizing: scales by upscale, raises the short side to min_size, rounds both sides to a multiple of 64 (Pillow bicubic, 8-bit, as the official code). width/height are the size to resize the result back to.",
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    upscale: float({ default: 1, min: 0.1, max: 16, step: 0.1, description: 'Output size relative to the input.' }),
    min_size: int({ default: 1024, min: 64, max: 8192, step: 64, description: 'SUPIR works with the short side at least this long (1024: what SDXL was trained at).' }),
    multiple: int({ default: 64, min: 8, max: 512, step: 8, description: 'Both sides are rounded to a multiple of this (64 for SDXL: 8 latent cells).' }),
  },
  outputs: { image: 'IMAGE', width: 'INT', height: 'INT' },
  execute({ image, upscale, min_size, multiple }, ctx) {
    const size = supirSizes(image.w, image.h, upscale, min_size, multiple);
    const { maxPixels } = ctx.env.limits;
    if (size.w * size.h > maxPixels) {
      throw new InputError('upscale', `the working size would be ${size.w}x${size.h}, over the limit of ${maxPixels} pixels`, 'TOO_LARGE');
    }
    ctx.checkAborted();
    return { image: pillowBicubic8(image, size.w, size.h), width: size.w0, height: size.h0 };
  },
});

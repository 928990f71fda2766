/**
 * Resizing as BasicSR calls torch.nn.functional.interpolate: align_corners = false, no antialias,
 * bicubic A = -0.75, area = adaptive average pooling. Not ../../image/resize.ts, which widens its
 * filters when shrinking: that antialiasing would change the LQ statistics.
 */
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { Arena, runTaps, runTranspose } from './simd.ts';

export type ResizeMode = 'area' | 'bilinear' | 'bicubic';
export const RESIZE_MODES: readonly ResizeMode[] = ['area', 'bilinear', 'bicubic'];

/** Per output index, `count` (index, weight) taps; unused taps have weight 0. */
interface Taps {
  count: number;
  index: Int32Array;
  weight: Float32Array;
}

/**
 * torch.nn.functional.interpolate on one axis. `srcPerDst` is the coordinate scale (1 / factor
 * when torch is given a scale factor, src / dst when given a size).
 */
function axisTaps(src: number, dst: number, mode: ResizeMode, srcPerDst: number): Taps {
  const clampIdx = (i: number) => (i < 0 ? 0 : i > src - 1 ? src - 1 : i);
  if (mode === 'area') {
    // adaptive_avg_pool: [floor(o * src / dst), ceil((o + 1) * src / dst))
    let count = 1;
    for (let o = 0; o < dst; o++) count = Math.max(count, Math.ceil(((o + 1) * src) / dst) - Math.floor((o * src) / dst));
    const index = new Int32Array(dst * count);
    const weight = new Float32Array(dst * count);
    for (let o = 0; o < dst; o++) {
      const a = Math.floor((o * src) / dst);
      const b = Math.ceil(((o + 1) * src) / dst);
      for (let j = 0; j < count; j++) {
        index[o * count + j] = Math.min(a + j, src - 1);
        weight[o * count + j] = a + j < b ? 1 / (b - a) : 0;
      }
    }
    return { count, index, weight };
  }
  const count = mode === 'bilinear' ? 2 : 4;
  const index = new Int32Array(dst * count);
  const weight = new Float32Array(dst * count);
  for (let o = 0; o < dst; o++) {
    const t0 = o * count;
    if (mode === 'bilinear') {
      let real = srcPerDst * (o + 0.5) - 0.5;
      if (real < 0) real = 0;
      const i0 = Math.floor(real);
      const l1 = real - i0;
      index[t0] = Math.min(i0, src - 1);
      index[t0 + 1] = i0 < src - 1 ? i0 + 1 : i0;
      weight[t0] = 1 - l1;
      weight[t0 + 1] = l1;
    } else {
      const real = srcPerDst * (o + 0.5) - 0.5;
      const i0 = Math.floor(real);
      const t = real - i0;
      const A = -0.75;
      const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
      const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
      const ws = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
      for (let k = 0; k < 4; k++) {
        index[t0 + k] = clampIdx(i0 - 1 + k);
        weight[t0 + k] = ws[k]!;
      }
    }
  }
  return { count, index, weight };
}

/**
 * Separable torch-style resize of every image in a batch; `sx`/`sy` override the coordinate scale.
 * Both passes run as SIMD row passes (simd.ts): the vertical one directly (each output row is a
 * weighted sum of 2-4 source rows), the horizontal one on the transposed intermediate (each output
 * column is then a weighted sum of source columns, stored as rows), so the work is two SIMD
 * transposes and contiguous multiply-adds instead of per-pixel gathers.
 */
export function resizeTorch(img: ImageTensor, tw: number, th: number, mode: ResizeMode, sx?: number, sy?: number): ImageTensor {
  const { n, c, h, w, data } = img;
  if (tw === w && th === h && (mode === 'area' || ((sx ?? 1) === 1 && (sy ?? 1) === 1))) return img;
  const xs = axisTaps(w, tw, mode, sx ?? w / tw);
  const ys = axisTaps(h, th, mode, sy ?? h / th);
  const out = createImage(n, c, th, tw);
  const arena = new Arena();
  const srcId = arena.alloc(h * w);
  const vId = arena.alloc(th * w);
  const vtId = arena.alloc(w * th);
  const htId = arena.alloc(tw * th);
  const resId = arena.alloc(th * tw);
  const yOffs = arena.alloc(ys.index.length);
  const yWts = arena.alloc(ys.index.length);
  const xOffs = arena.alloc(xs.index.length);
  const xWts = arena.alloc(xs.index.length);
  arena.reserve();
  // Byte offsets of the source rows (vertical pass) and of the transposed columns (horizontal).
  arena.i32(yOffs).set(Array.from(ys.index, (i) => i * w * 4));
  arena.f32(yWts).set(ys.weight);
  arena.i32(xOffs).set(Array.from(xs.index, (i) => i * th * 4));
  arena.f32(xWts).set(xs.weight);
  const src = arena.f32(srcId);
  const res = arena.f32(resId);
  const od = out.data;
  for (let p = 0; p < n * c; p++) {
    src.set(data.subarray(p * h * w, (p + 1) * h * w));
    for (let y = 0; y < th; y++) runTaps(arena, srcId, vId, w, yOffs, yWts, ys.count, false, y * ys.count, 0, y * w);
    runTranspose(arena, vId, vtId, th, w);
    for (let x = 0; x < tw; x++) runTaps(arena, vtId, htId, th, xOffs, xWts, xs.count, false, x * xs.count, 0, x * th);
    runTranspose(arena, htId, resId, tw, th);
    od.set(res, p * th * tw);
  }
  return out;
}

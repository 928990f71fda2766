import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import { combo, float, int } from '../api/widgets.ts';

/** Filters as (support radius, weight at distance x), the Pillow definitions. */
const FILTERS = {
  bilinear: [1, (x: number) => Math.max(0, 1 - Math.abs(x))],
  bicubic: [2, cubic],
  lanczos: [3, (x: number) => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0)],
} as const;
export type Method = keyof typeof FILTERS | 'area' | 'nearest';

export default defineNode({
  id: 'ImageResize',
  displayName: 'Resize Image',
  category: 'image',
  description: 'Resizes every image of the batch by a factor or to an exact size (the aspect ratio may change).',
  inputs: {
    image: { type: 'IMAGE' },
    size_of: { type: 'IMAGE', optional: true, description: 'When linked, the result takes this image\'s size (mode, scale, width and height are not used).' },
  },
  widgets: {
    mode: combo({ options: ['scale', 'size', 'fit'], default: 'scale', description: 'scale: by a factor; size: exactly width x height; fit: the largest size within width x height that keeps the proportions.' }),
    scale: float({ default: 2, min: 0.01, max: 16, step: 0.01, description: 'Used in scale mode.' }),
    width: int({ default: 1024, min: 1, max: 16384, description: 'Exact width in size mode.' }),
    height: int({ default: 1024, min: 1, max: 16384, description: 'Exact height in size mode.' }),
    method: combo({
      options: ['lanczos', 'bicubic', 'area', 'nearest', 'bilinear'],
      default: 'lanczos',
      description: 'area averages exactly when shrinking (best against aliasing); lanczos keeps the most detail.',
    }),
  },
  outputs: { image: 'IMAGE' },
  execute({ image, size_of, mode, scale, width, height, method }, ctx) {
    const bySize = mode === 'size';
    const factor = mode === 'fit' ? Math.min(width / image.w, height / image.h) : scale;
    const tw = size_of ? size_of.w : bySize ? width : Math.max(1, Math.round(image.w * factor));
    const th = size_of ? size_of.h : bySize ? height : Math.max(1, Math.round(image.h * factor));
    const { maxPixels } = ctx.env.limits;
    if (tw * th > maxPixels) {
      const reason = `the result would be ${tw}x${th} (${tw * th} pixels), over the limit of ${maxPixels} pixels`;
      throw new InputError(bySize ? 'width' : 'scale', reason, 'TOO_LARGE');
    }
    if (tw === image.w && th === image.h) return { image };
    const out = createImage(image.n, image.c, th, tw);
    const plane = image.c * th * tw;
    for (let i = 0; i < image.n; i++) {
      ctx.checkAborted();
      const resized = resample(batchItem(image, i), tw, th, method as Method);
      out.data.set(resized.data, i * plane);
      ctx.progress(i + 1, image.n);
    }
    return { image: out };
  },
});

/**
 * Separable resampling in float64 accumulators, by hand for every method: sharp was tried and
 * rejected. On uint16 input libvips filters with 12-bit fixed-point taps, which tilts flat areas
 * by up to ~20/65535 when shrinking, and when enlarging it samples half an output pixel off
 * centre, so an upscaled image sits shifted against its source (libvips issue #4841). Here every
 * axis uses pixel-centre alignment and weights that sum to one, so flat areas stay flat.
 */
export function resample(item: ImageTensor, tw: number, th: number, method: Method): ImageTensor {
  const out = createImage(1, item.c, th, tw);
  resampleRows(item, tw, th, method, (ch, y, row) => out.data.set(row, (ch * th + y) * tw));
  return out;
}

/**
 * resample() one output row at a time, channel by channel (`row` is reused: copy what you keep),
 * holding only the few source rows that the current output row's filter taps reach: what resample
 * gives, value for value, without a buffer of the output's size.
 */
export function resampleRows(item: ImageTensor, tw: number, th: number, method: Method, onRow: (ch: number, y: number, row: Float64Array) => void): void {
  const { c, h, w, data } = item;
  const xs = axisTaps(w, tw, method);
  const ys = axisTaps(h, th, method);
  // Source rows filtered along x, kept while output rows still need them. They stay in float64 so
  // that a 2x area shrink is the exact block mean.
  const rows = new Map<number, Float64Array>();
  const spare: Float64Array[] = [];
  const acc = new Float64Array(tw);
  for (let ch = 0; ch < c; ch++) {
    const src = ch * h * w;
    spare.push(...rows.values());
    rows.clear();
    for (let y = 0; y < th; y++) {
      const first = ys.index[ys.start[y]!]!;
      for (const [k, r] of rows) if (k < first) rows.delete(k), spare.push(r);
      acc.fill(0);
      for (let t = ys.start[y]!; t < ys.start[y + 1]!; t++) {
        const k = ys.index[t]!;
        let filtered = rows.get(k);
        if (!filtered) {
          filtered = spare.pop() ?? new Float64Array(tw);
          const line = src + k * w;
          for (let x = 0; x < tw; x++) {
            let sum = 0;
            for (let s = xs.start[x]!; s < xs.start[x + 1]!; s++) sum += xs.weight[s]! * data[line + xs.index[s]!]!;
            filtered[x] = sum;
          }
          rows.set(k, filtered);
        }
        const wgt = ys.weight[t]!;
        for (let x = 0; x < tw; x++) acc[x]! += wgt * filtered[x]!;
      }
      onRow(ch, y, acc);
    }
  }
}

/**
 * For each output position, the source indices and weights that make it (CSR layout). Filters are
 * widened by the shrink factor so that shrinking does not alias; taps past an edge are dropped and
 * the rest renormalised. Area shrinking weighs each source pixel by the fraction of the output
 * pixel it covers (OpenCV INTER_AREA, exact block means); area enlarging has nothing to average
 * and interpolates linearly between pixel centres.
 */
function axisTaps(src: number, dst: number, method: Method): { start: Int32Array; index: Int32Array; weight: Float64Array } {
  const index: number[] = [];
  const weight: number[] = [];
  const start = new Int32Array(dst + 1);
  const ratio = src / dst;
  const kind = method === 'area' && dst > src ? 'bilinear' : method;
  for (let o = 0; o < dst; o++) {
    const centre = (o + 0.5) * ratio;
    if (kind === 'nearest') {
      index.push(Math.min(src - 1, Math.floor(centre))), weight.push(1);
    } else if (kind === 'area') {
      const from = o * ratio;
      const to = from + ratio;
      for (let j = Math.floor(from); j < Math.min(src, Math.ceil(to)); j++) {
        const cover = Math.min(to, j + 1) - Math.max(from, j);
        if (cover > 1e-12) index.push(j), weight.push(cover / ratio);
      }
    } else {
      const [radius, filter] = FILTERS[kind];
      const stretch = Math.max(1, ratio);
      const first = index.length;
      let total = 0;
      for (let j = Math.max(0, Math.floor(centre - radius * stretch)); j < Math.min(src, Math.ceil(centre + radius * stretch)); j++) {
        const wgt = filter((j + 0.5 - centre) / stretch);
        if (wgt !== 0) index.push(j), weight.push(wgt), (total += wgt);
      }
      for (let t = first; t < index.length; t++) weight[t]! /= total;
    }
    start[o + 1] = index.length;
  }
  return { start, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Keys' cubic with a = -0.5 (Catmull-Rom), as Pillow and libvips use. */
function cubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/**
 * Image-quality metrics on 8-bit planes (values 0..255 held as float64), matching scikit-image's
 * `skimage.metrics` (checked against its values in test/compare/metrics.test.ts):
 * - PSNR with data range 255;
 * - SSIM (Wang et al. 2004): Gaussian window sigma 1.5 truncated at 3.5 sigma (11x11), population
 *   covariance, K1 0.01, K2 0.03, the map averaged without the 5-pixel border scikit-image crops;
 *   or scikit-image's default, a 7x7 uniform window with sample covariance;
 * - MS-SSIM (Wang et al. 2003) as pytorch-msssim computes it: five scales, its 2x2 average pooling
 *   between them (odd sides zero-padded);
 * - no-reference: variance of the Laplacian (sharpness) and Immerkær's noise sigma.
 */
import { batchItem, type ImageTensor } from '../../api/tensor.ts';

export interface Plane {
  data: Float64Array;
  w: number;
  h: number;
}

/** One image of a batch as 8-bit values, rounded and clamped exactly as Save Image writes them. */
export function toPlanes8(image: ImageTensor, index = 0): Plane[] {
  const item = image.n === 1 ? image : batchItem(image, index);
  const plane = image.w * image.h;
  const planes: Plane[] = [];
  for (let c = 0; c < image.c; c++) {
    const data = new Float64Array(plane);
    for (let p = 0; p < plane; p++) {
      const v = item.data[c * plane + p]!;
      data[p] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
    }
    planes.push({ data, w: image.w, h: image.h });
  }
  return planes;
}

/** BT.601 luma as the super-resolution literature computes it: 16..235, not rounded. */
export function lumaY(rgb: Plane[]): Plane {
  const [r, g, b] = rgb as [Plane, Plane, Plane];
  const data = new Float64Array(r.data.length);
  for (let i = 0; i < data.length; i++) data[i] = 16 + (65.481 * r.data[i]! + 128.553 * g.data[i]! + 24.966 * b.data[i]!) / 255;
  return { data, w: r.w, h: r.h };
}

/** Grey as OpenCV converts it (0.299 R + 0.587 G + 0.114 B), for the no-reference statistics. */
export function grey(rgb: Plane[]): Plane {
  if (rgb.length === 1) return rgb[0]!;
  const [r, g, b] = rgb as [Plane, Plane, Plane];
  const data = new Float64Array(r.data.length);
  for (let i = 0; i < data.length; i++) data[i] = 0.299 * r.data[i]! + 0.587 * g.data[i]! + 0.114 * b.data[i]!;
  return { data, w: r.w, h: r.h };
}

/** Drops `border` pixels on every side (the SR convention of cropping `scale` pixels). */
export function cropPlane(p: Plane, border: number): Plane {
  if (border <= 0) return p;
  const w = p.w - 2 * border;
  const h = p.h - 2 * border;
  if (w <= 0 || h <= 0) throw new RangeError(`a ${border}-pixel border leaves nothing of a ${p.w}x${p.h} image`);
  const data = new Float64Array(w * h);
  for (let y = 0; y < h; y++) data.set(p.data.subarray((y + border) * p.w + border, (y + border) * p.w + border + w), y * w);
  return { data, w, h };
}

/** PSNR in dB over every value of every plane; Infinity for identical images. */
export function psnr(a: Plane[], b: Plane[], dataRange = 255): number {
  let sum = 0;
  let count = 0;
  for (let c = 0; c < a.length; c++) {
    const x = a[c]!.data;
    const y = b[c]!.data;
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      sum += d * d;
    }
    count += x.length;
  }
  const mse = sum / count;
  return mse === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / mse);
}

export interface SsimOptions {
  /** Gaussian sigma-1.5 11x11 window and population covariance (Wang et al.), else 7x7 uniform with sample covariance. */
  gaussian: boolean;
  dataRange?: number;
}

/** Normalised 1-D window: Gaussian as scipy's gaussian_filter1d builds it (radius int(3.5 sigma + 0.5)), or a box. */
function window1d(gaussian: boolean, sigma = 1.5): Float64Array {
  if (!gaussian) return new Float64Array(7).fill(1 / 7);
  const radius = Math.floor(3.5 * sigma + 0.5);
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += k[i + radius] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

/**
 * Separable filter over the positions where the whole window fits ("valid"). scikit-image filters
 * with reflected borders and then crops (window - 1) / 2 pixels, so the values it averages are
 * exactly these.
 */
function filterValid(src: Float64Array, w: number, h: number, k: Float64Array): Float64Array {
  const n = k.length;
  const ow = w - n + 1;
  const oh = h - n + 1;
  const tmp = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * src[row + x + i]!;
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i]! * tmp[(y + i) * ow + x]!;
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** Mean SSIM and mean contrast-structure term of one plane pair. */
function ssimPlane(a: Plane, b: Plane, opts: SsimOptions): { ssim: number; cs: number } {
  const k = window1d(opts.gaussian);
  const n = k.length;
  if (a.w < n || a.h < n) throw new RangeError(`SSIM needs images of at least ${n}x${n} pixels, got ${a.w}x${a.h}`);
  const R = opts.dataRange ?? 255;
  const C1 = (0.01 * R) ** 2;
  const C2 = (0.03 * R) ** 2;
  const covNorm = opts.gaussian ? 1 : (n * n) / (n * n - 1);
  const x = a.data;
  const y = b.data;
  const xx = new Float64Array(x.length);
  const yy = new Float64Array(x.length);
  const xy = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    xx[i] = x[i]! * x[i]!;
    yy[i] = y[i]! * y[i]!;
    xy[i] = x[i]! * y[i]!;
  }
  const [ux, uy, uxx, uyy, uxy] = [x, y, xx, yy, xy].map((p) => filterValid(p, a.w, a.h, k)) as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  let ssim = 0;
  let cs = 0;
  for (let i = 0; i < ux.length; i++) {
    const mx = ux[i]!;
    const my = uy[i]!;
    const vx = covNorm * (uxx[i]! - mx * mx);
    const vy = covNorm * (uyy[i]! - my * my);
    const vxy = covNorm * (uxy[i]! - mx * my);
    const csi = (2 * vxy + C2) / (vx + vy + C2);
    cs += csi;
    ssim += ((2 * mx * my + C1) / (mx * mx + my * my + C1)) * csi;
  }
  return { ssim: ssim / ux.length, cs: cs / ux.length };
}

/** SSIM per plane, averaged over the planes (scikit-image's `channel_axis`). */
export function ssim(a: Plane[], b: Plane[], opts: SsimOptions = { gaussian: true }): number {
  let total = 0;
  for (let c = 0; c < a.length; c++) total += ssimPlane(a[c]!, b[c]!, opts).ssim;
  return total / a.length;
}

const MS_SSIM_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/**
 * 2x2 average pooling as pytorch-msssim does it between scales: avg_pool2d(2, stride 2, padding
 * (H % 2, W % 2)) with count_include_pad, so an odd side is zero-padded by one on both sides and
 * the zeros are averaged in (a 75-wide plane gives 38 columns, the first and last half-weighted).
 */
function halve(p: Plane): Plane {
  const padX = p.w % 2;
  const padY = p.h % 2;
  const w = (p.w >> 1) + padX;
  const h = (p.h >> 1) + padY;
  const data = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let dy = 0; dy < 2; dy++) {
        const sy = 2 * y - padY + dy;
        if (sy < 0 || sy >= p.h) continue;
        for (let dx = 0; dx < 2; dx++) {
          const sx = 2 * x - padX + dx;
          if (sx >= 0 && sx < p.w) sum += p.data[sy * p.w + sx]!;
        }
      }
      data[y * w + x] = sum / 4;
    }
  }
  return { data, w, h };
}

/** One scale of MS-SSIM: the plane size there and each plane pair's mean SSIM and contrast-structure. */
export interface MsSsimLevel {
  w: number;
  h: number;
  ssim: number[];
  cs: number[];
}

/** The scales MS-SSIM uses for this size: five, or as many as fit an 11x11 window (at least one). */
function msSsimScales(w: number, h: number): number {
  let scales = 1;
  while (scales < MS_SSIM_WEIGHTS.length && Math.min(w, h) >> scales >= 11) scales++;
  return scales;
}

/** SSIM and contrast-structure of every plane pair at every scale. */
export function msSsimLevels(a: Plane[], b: Plane[]): MsSsimLevel[] {
  const scales = msSsimScales(a[0]!.w, a[0]!.h);
  let xs = a;
  let ys = b;
  const levels: MsSsimLevel[] = [];
  for (let s = 0; s < scales; s++) {
    const terms = xs.map((x, c) => ssimPlane(x, ys[c]!, { gaussian: true }));
    levels.push({ w: xs[0]!.w, h: xs[0]!.h, ssim: terms.map((t) => t.ssim), cs: terms.map((t) => t.cs) });
    xs = xs.map(halve);
    ys = ys.map(halve);
  }
  return levels;
}

/**
 * MS-SSIM as pytorch-msssim 1.0.0 computes it (checked against its values in
 * test/compare/metrics.test.ts): per plane, Π relu(cs_l)^w_l over the first scales times
 * relu(ssim)^w at the last, weighted as Wang et al. 2003, then averaged over the planes. Images
 * too small for five scales (pytorch-msssim refuses them: under 161 px) use as many scales as fit,
 * with the weights renormalised.
 */
export function msSsim(a: Plane[], b: Plane[]): number {
  const levels = msSsimLevels(a, b);
  const weights = MS_SSIM_WEIGHTS.slice(0, levels.length);
  const norm = weights.reduce((s, v) => s + v, 0);
  let total = 0;
  for (let c = 0; c < a.length; c++) {
    let value = 1;
    levels.forEach((level, s) => {
      const term = Math.max(s === levels.length - 1 ? level.ssim[c]! : level.cs[c]!, 0);
      value *= term ** (weights[s]! / norm);
    });
    total += value;
  }
  return total / a.length;
}

/** Variance of the 4-neighbour Laplacian (OpenCV's ksize 1) over the interior: higher is sharper. */
export function laplacianVariance(p: Plane): number {
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (let y = 1; y < p.h - 1; y++) {
    for (let x = 1; x < p.w - 1; x++) {
      const i = y * p.w + x;
      const v = p.data[i - 1]! + p.data[i + 1]! + p.data[i - p.w]! + p.data[i + p.w]! - 4 * p.data[i]!;
      sum += v;
      sq += v * v;
      n++;
    }
  }
  if (n === 0) return 0;
  const mean = sum / n;
  return sq / n - mean * mean;
}

/**
 * Immerkær's fast noise estimate (1996): sigma of additive Gaussian noise from the mean absolute
 * response to a mask that cancels smooth image structure. In 8-bit units.
 */
export function noiseSigma(p: Plane): number {
  let sum = 0;
  for (let y = 1; y < p.h - 1; y++) {
    for (let x = 1; x < p.w - 1; x++) {
      const i = y * p.w + x;
      const d = p.data;
      const v =
        d[i - p.w - 1]! - 2 * d[i - p.w]! + d[i - p.w + 1]! - 2 * d[i - 1]! + 4 * d[i]! - 2 * d[i + 1]! + d[i + p.w - 1]! - 2 * d[i + p.w]! + d[i + p.w + 1]!;
      sum += Math.abs(v);
    }
  }
  const n = (p.w - 2) * (p.h - 2);
  return n > 0 ? (Math.sqrt(Math.PI / 2) * sum) / (6 * n) : 0;
}

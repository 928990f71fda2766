/**
 * The inputs of bench/restore-quality.ts: crops of the shared test photos, the synthetic
 * degradations each MAXIM model is matched with (made with our own Degrade nodes where one
 * exists), and the plain filters a user has instead (libvips through sharp). Every random draw
 * comes from a fixed seed, so a rerun degrades the same way.
 */
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import type { NodeEnv } from '../nodes/api/env.ts';
import type { ImageTensor } from '../nodes/api/tensor.ts';
import { createImage } from '../nodes/api/tensor.ts';
import { cropPlane, psnr, ssim, toPlanes8 } from '../nodes/compare/lib/metrics.ts';
import DegradeRealESRGAN from '../nodes/degrade/degrade.ts';
import { DegradeBlur, DegradeJPEG, DegradeNoise } from '../nodes/degrade/ops.ts';
import { convolve } from '../nodes/degrade/lib/convolve.ts';
import { hwcUint8ToImage, imageToHwcUint8 } from '../nodes/image/codec.ts';
import { fakeContext, runNode } from '../test/support/fake-context.ts';
import type { AnyNodeDefinition } from '../nodes/api/define.ts';

export const PHOTO_DIR = path.resolve(import.meta.dirname, '../../shared/testimages');
export const PHOTOS = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg'] as const;

/** Where each photo's 128x128 crop for the same-size (x1) measurements starts: a face, a cat's face, a cup, the rocket. */
const CROP_AT: Record<string, { left: number; top: number }> = {
  'astronaut.png': { left: 176, top: 48 },
  'chelsea.png': { left: 160, top: 60 },
  'coffee.png': { left: 236, top: 120 },
  'rocket.jpg': { left: 300, top: 150 },
};

export interface Score {
  psnr: number;
  ssim: number;
}

/** PSNR (dB) and SSIM (Gaussian window) over RGB at 8 bits, `border` pixels left out on each side. */
export function score(image: ImageTensor, clean: ImageTensor, border = 0): Score {
  const a = toPlanes8(image).map((p) => cropPlane(p, border));
  const b = toPlanes8(clean).map((p) => cropPlane(p, border));
  return { psnr: psnr(a, b), ssim: ssim(a, b) };
}

async function fromSharp(s: Sharp): Promise<ImageTensor> {
  const { data, info } = await s.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return hwcUint8ToImage(new Uint8Array(data), info.width, info.height, 3);
}

/** A 128x128 crop of the photo at its own resolution (the x1 measurements). */
export function cropOf(photo: string, side = 128): Promise<ImageTensor> {
  const at = CROP_AT[photo] ?? { left: 0, top: 0 };
  return fromSharp(sharp(path.join(PHOTO_DIR, photo)).extract({ ...at, width: side, height: side }));
}

/**
 * The x4 case: the clean high-resolution image (the photo's centre, at most 512 px a side, a
 * multiple of 4) and its clean quarter-size version (libvips bicubic, antialiased).
 */
export async function pairOf(photo: string, maxSide = 512): Promise<{ hr: ImageTensor; lr: ImageTensor }> {
  const file = path.join(PHOTO_DIR, photo);
  const meta = await sharp(file).metadata();
  const w = Math.min(maxSide, meta.width!) & ~3;
  const h = Math.min(maxSide, meta.height!) & ~3;
  const region = { left: (meta.width! - w) >> 1, top: (meta.height! - h) >> 1, width: w, height: h };
  const hr = await fromSharp(sharp(file).extract(region));
  const lr = await fromSharp(sharp(file).extract(region).resize(w / 4, h / 4, { kernel: 'cubic' }));
  return { hr, lr };
}

/** A node's execute with its widgets at their defaults, then `values` over them. */
async function run(node: AnyNodeDefinition, env: NodeEnv, values: Record<string, unknown>): Promise<ImageTensor> {
  const defaults = Object.fromEntries(Object.entries(node.widgets).map(([k, w]) => [k, (w as { default: unknown }).default]));
  return (await runNode(node, { ...defaults, ...values }, fakeContext(env))).image as ImageTensor;
}

/** Colour Gaussian noise of sigma (0..255 scale), clamped: the Add Noise node. */
export const gaussianNoise = (env: NodeEnv, image: ImageTensor, sigma: number, seed: number): Promise<ImageTensor> =>
  run(DegradeNoise, env, { image, seed, gaussian_prob: 1, sigma_min: sigma, sigma_max: sigma, gray_prob: 0 });

/** An isotropic Gaussian blur of sigma (13x13): the Blur node with the kind forced. */
export const gaussianBlur = (env: NodeEnv, image: ImageTensor, sigma: number, seed: number): Promise<ImageTensor> =>
  run(DegradeBlur, env, { image, seed, kernel: 'iso', size_min: 13, size_max: 13, sigma_min: sigma, sigma_max: sigma });

/** JPEG at one quality (libjpeg, 4:2:0): the JPEG Compress node. */
export const jpeg = (env: NodeEnv, image: ImageTensor, quality: number, seed: number): Promise<ImageTensor> =>
  run(DegradeJPEG, env, { image, seed, quality_min: quality, quality_max: quality });

/** The Degrade (Real-ESRGAN) node's `light` preset at x4: a quarter-size, mildly degraded image. */
export const degradeLight = (env: NodeEnv, image: ImageTensor, seed: number): Promise<ImageTensor> =>
  run(DegradeRealESRGAN, env, { image, seed, preset: 'light', scale: 4 });

/**
 * Linear motion blur: a line `length` px long at `angleDeg`, antialiased (each tap weighted by
 * 1 - its distance to the line), reflect padding (the degradation library's convolution).
 */
export function motionBlur(image: ImageTensor, length: number, angleDeg: number): ImageTensor {
  const size = length % 2 ? length : length + 1;
  const r = (size - 1) / 2;
  const [dx, dy] = [Math.cos((angleDeg * Math.PI) / 180), Math.sin((angleDeg * Math.PI) / 180)];
  const data = new Float32Array(size * size);
  let sum = 0;
  for (let y = -r; y <= r; y++) {
    for (let x = -r; x <= r; x++) {
      const along = x * dx + y * dy;
      const across = Math.abs(-x * dy + y * dx);
      const wgt = Math.abs(along) <= (length - 1) / 2 + 0.5 ? Math.max(0, 1 - across) : 0;
      data[(y + r) * size + (x + r)] = wgt;
      sum += wgt;
    }
  }
  for (let i = 0; i < data.length; i++) data[i]! /= sum;
  return convolve(image, { size, data, kind: 'aniso', params: { length, angle: angleDeg } });
}

/** Low light: every value raised to the power gamma (darker mid-tones), then scaled down. */
export function lowLight(image: ImageTensor, gamma = 2.2, scale = 0.7): ImageTensor {
  const out = createImage(image.n, image.c, image.h, image.w);
  for (let i = 0; i < out.data.length; i++) out.data[i] = scale * Math.max(0, image.data[i]!) ** gamma;
  return out;
}

/**
 * Haze by the scattering model I = J t + A (1 - t): airlight A = 0.9, transmission t from 0.45 at
 * the top to 0.75 at the bottom (farther away at the top, as in most outdoor photos).
 */
export function haze(image: ImageTensor, airlight = 0.9): ImageTensor {
  const out = createImage(image.n, image.c, image.h, image.w);
  const plane = image.h * image.w;
  for (let i = 0; i < out.data.length; i++) {
    const y = Math.floor((i % plane) / image.w);
    const t = 0.45 + (0.3 * y) / Math.max(1, image.h - 1);
    out.data[i] = image.data[i]! * t + airlight * (1 - t);
  }
  return out;
}

/** The plain filters a user has (libvips through sharp), on the 8-bit image. */
export const FILTERS = {
  'median 3x3': (s: Sharp) => s.median(3),
  'unsharp σ1': (s: Sharp) => s.sharpen({ sigma: 1 }),
  normalise: (s: Sharp) => s.normalise(),
} as const;
export type FilterName = keyof typeof FILTERS;

export function filter(image: ImageTensor, name: FilterName): Promise<ImageTensor> {
  const raw = sharp(imageToHwcUint8(image), { raw: { width: image.w, height: image.h, channels: 3 } });
  return fromSharp(FILTERS[name](raw));
}

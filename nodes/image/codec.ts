import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import type { Limits } from '../api/env.ts';
import { StudioError } from '../api/errors.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import { describeContent, FORMAT_NAMES, sniffImageFormat } from './format.ts';

export type EncodeFormat = 'png' | 'jpeg' | 'webp';

export interface EncodeOptions {
  /** JPEG / WebP quality 1..100 (default 95). */
  quality?: number;
  /** Which item of a batch to encode (default 0). */
  index?: number;
  /** zlib level for PNG, 0..9 (default 6); previews trade size for speed. */
  compressionLevel?: number;
}

/** Sample formats deeper than 8 bits: decoding them at 8 bits would throw away what they carry. */
const DEEP_DEPTHS = new Set(['ushort', 'short', 'uint', 'int', 'float', 'double', 'complex', 'dpcomplex']);

/**
 * Decodes an image file into a 1xCxHxW float tensor in sRGB, 3 channels, 0..1. The size is checked
 * from the header before any pixel is decoded, and sharp gets the same limit as `limitInputPixels`
 * in case the header lies (decompression bombs).
 */
export async function decodeImage(bytes: Uint8Array, limits: Limits, what = 'image'): Promise<ImageTensor> {
  // Decide the format from the bytes before libvips sees them (a file dropped into inputs/ by hand
  // never went through the upload check): vector and unknown formats are never rendered.
  if (!sniffImageFormat(bytes)) throw new StudioError('BAD_IMAGE', `${what} is not a readable image: it holds ${describeContent(bytes)} (accepted: ${Object.values(FORMAT_NAMES).join(', ')})`);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw badImage(what, err);
  }
  const { width, height } = meta;
  if (!width || !height) throw new StudioError('BAD_IMAGE', `${what} has no readable size`);
  if (Math.max(width, height) > limits.maxImageSide) {
    throw new StudioError('TOO_LARGE', `${what} is ${width}x${height}, over the limit of ${limits.maxImageSide} pixels on a side`);
  }
  if (width * height > limits.maxPixels) {
    throw new StudioError(
      'TOO_LARGE',
      `${what} is ${width}x${height} (${width * height} pixels), over the limit of ${limits.maxPixels} pixels`,
    );
  }
  const deep = DEEP_DEPTHS.has(meta.depth);
  const limitInputPixels = Number.isFinite(limits.maxPixels) ? Math.max(1, Math.floor(limits.maxPixels)) : false;
  let raw: { data: Buffer; info: OutputInfo };
  try {
    // failOn 'error' refuses truncated and broken data but accepts files with harmless warnings
    // (stray bytes after a JPEG marker) that cameras and editors write all the time.
    raw = await sharp(bytes, { limitInputPixels, failOn: 'error' })
      .rotate()
      .toColourspace(deep ? 'rgb16' : 'srgb')
      .removeAlpha()
      .raw(deep ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw badImage(what, err);
  }
  const { info } = raw;
  if (info.channels !== 3) throw new StudioError('BAD_IMAGE', `${what} decoded to ${info.channels} channels, not 3`);
  if (!deep) return hwcUint8ToImage(raw.data, info.width, info.height, 3);
  const aligned = raw.data.byteOffset % 2 === 0 ? raw.data : Buffer.from(raw.data);
  return hwcUint16ToImage(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2), info.width, info.height, 3);
}

/** Encodes one image of a batch; floats are rounded and clamped here, never handed to sharp. */
export async function encodeImage(image: ImageTensor, format: EncodeFormat, opts: EncodeOptions = {}): Promise<Buffer> {
  const index = opts.index ?? 0;
  const hwc = imageToHwcUint8(image, index);
  const quality = Math.min(100, Math.max(1, Math.round(opts.quality ?? 95)));
  let pipeline = sharp(hwc, { raw: { width: image.w, height: image.h, channels: rawChannels(image.c) } });
  switch (format) {
    case 'png':
      return pipeline.png({ compressionLevel: opts.compressionLevel ?? 6 }).toBuffer();
    case 'jpeg':
      if (image.c === 2 || image.c === 4) pipeline = pipeline.removeAlpha();
      // Chroma subsampling would blur exactly the fine colour detail a restoration recovers.
      return pipeline.jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
    case 'webp':
      return pipeline.webp({ quality }).toBuffer();
  }
}

/** A JPEG of the first image fitted inside 512x512, small enough to send on every step. */
export async function encodePreview(
  image: ImageTensor,
): Promise<{ format: 'jpeg'; bytes: Buffer; width: number; height: number }> {
  let pipeline = sharp(imageToHwcUint8(image, 0), { raw: { width: image.w, height: image.h, channels: rawChannels(image.c) } });
  if (image.c === 2 || image.c === 4) pipeline = pipeline.removeAlpha();
  const { data, info } = await pipeline
    .resize({ width: 512, height: 512, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 95 })
    .toBuffer({ resolveWithObject: true });
  return { format: 'jpeg', bytes: data, width: info.width, height: info.height };
}

/** One batch item as interleaved 8-bit samples; NaN becomes 0, values are clamped to 0..1. */
export function imageToHwcUint8(image: ImageTensor, index = 0): Buffer {
  if (!Number.isInteger(index) || index < 0 || index >= image.n) {
    throw new RangeError(`batch index ${index} is out of range for a batch of ${image.n}`);
  }
  const { data } = image.n === 1 ? image : batchItem(image, index);
  const { c, h, w } = image;
  const plane = h * w;
  const out = Buffer.allocUnsafe(plane * c);
  for (let ch = 0; ch < c; ch++) {
    const base = ch * plane;
    for (let p = 0; p < plane; p++) {
      const v = data[base + p]!;
      // `v > 0` is false for NaN, so NaN lands on 0 instead of poisoning the rounding.
      out[p * c + ch] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
    }
  }
  return out;
}

export function hwcUint8ToImage(hwc: Uint8Array, width: number, height: number, channels: number): ImageTensor {
  return hwcToImage(hwc, width, height, channels, 1 / 255);
}

export function hwcUint16ToImage(hwc: Uint16Array, width: number, height: number, channels: number): ImageTensor {
  return hwcToImage(hwc, width, height, channels, 1 / 65535);
}

function hwcToImage(hwc: ArrayLike<number>, width: number, height: number, c: number, scale: number): ImageTensor {
  const image = createImage(1, c, height, width);
  const plane = width * height;
  if (hwc.length !== plane * c) throw new RangeError(`expected ${plane * c} samples, got ${hwc.length}`);
  const out = image.data;
  for (let ch = 0; ch < c; ch++) {
    const base = ch * plane;
    for (let p = 0; p < plane; p++) out[base + p] = hwc[p * c + ch]! * scale;
  }
  return image;
}

function rawChannels(c: number): 1 | 2 | 3 | 4 {
  if (c === 1 || c === 2 || c === 3 || c === 4) return c;
  throw new RangeError(`cannot encode an image with ${c} channels (1 to 4 are supported)`);
}

function badImage(what: string, err: unknown): StudioError {
  const reason = err instanceof Error ? err.message.split('\n')[0]!.trim() : String(err);
  // The header passed the size check but the decoder found more pixels than it promised.
  if (/pixel limit/i.test(reason)) return new StudioError('TOO_LARGE', `${what} holds more pixels than allowed (${reason})`);
  return new StudioError('BAD_IMAGE', `${what} is not a readable image (${reason || 'unknown error'})`);
}

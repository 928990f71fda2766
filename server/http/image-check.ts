import path from 'node:path';
import sharp from 'sharp';
import type { Metadata } from 'sharp';
import { StudioError } from '../../nodes/api/errors.ts';

/** Extensions served inline as images by /api/view and accepted by /api/upload, with their types. */
export const IMAGE_CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.gif': 'image/gif',
};

export function imageContentType(name: string): string | undefined {
  return IMAGE_CONTENT_TYPES[path.extname(name).toLowerCase()];
}

/**
 * Proves that uploaded bytes are an image Load Image will be able to read, without holding the
 * decoded pixels: the size is read from the header and checked against the limit first, then
 * libvips decodes the whole file (failing on truncated or corrupt data, and on more pixels than
 * the header promised) into a thumbnail. Errors carry the codes of nodes/image/codec.ts.
 */
export async function checkImageBytes(bytes: Uint8Array, maxPixels: number, what = 'uploaded file'): Promise<{ width: number; height: number; format: string }> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw badImage(what, err);
  }
  const { width, height, format } = meta;
  if (!width || !height) throw new StudioError('BAD_IMAGE', `${what} has no readable size`);
  if (width * height > maxPixels) {
    throw new StudioError('TOO_LARGE', `${what} is ${width}x${height} (${width * height} pixels), over the limit of ${maxPixels} pixels`);
  }
  try {
    await sharp(bytes, { limitInputPixels: Math.max(1, Math.floor(maxPixels)), failOn: 'error' })
      .resize({ width: 64, height: 64, fit: 'inside' })
      .raw()
      .toBuffer();
  } catch (err) {
    throw badImage(what, err);
  }
  return { width, height, format };
}

function badImage(what: string, err: unknown): StudioError {
  const reason = err instanceof Error ? (err.message.split('\n')[0] ?? '').trim() : String(err);
  if (/pixel limit/i.test(reason)) return new StudioError('TOO_LARGE', `${what} holds more pixels than allowed`);
  return new StudioError('BAD_IMAGE', `${what} is not a readable image (${reason || 'unknown error'})`);
}

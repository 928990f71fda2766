import path from 'node:path';
import sharp from 'sharp';
import type { Metadata, Sharp } from 'sharp';
import { StudioError } from '../../nodes/api/errors.ts';
import type { ServerLimits } from '../config.ts';
import { describeContent, FORMAT_NAMES, sniffImageFormat, type ImageFormat } from '../../nodes/image/format.ts';

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

/** What an upload may hold: the formats of the names Load Image lists (.png .jpg .jpeg .webp .tif .tiff). */
export const UPLOAD_FORMATS: readonly ImageFormat[] = ['png', 'jpeg', 'webp', 'tiff'];
/** What /api/view makes thumbnails of: the upload formats and GIF (served inline as image/gif). */
export const THUMBNAIL_FORMATS: readonly ImageFormat[] = [...UPLOAD_FORMATS, 'gif'];

/** The limits a check applies, read from the header before anything is decoded. */
export type ImageLimits = Pick<ServerLimits, 'maxPixels' | 'maxImageSide'>;

/** A decode that takes longer than this is given up (a backstop: the header checks come first). */
export const DECODE_TIMEOUT_S = 20;


function formatList(formats: readonly ImageFormat[]): string {
  return formats.map((f) => FORMAT_NAMES[f]).join(', ');
}

/**
 * Everything that can be learnt without decoding pixels: the format from the magic numbers (only
 * `formats` go further), then width and height from the header (sharp's metadata reads only the
 * header of these formats), checked against the longest side and the pixel limit. Throws
 * BAD_IMAGE or TOO_LARGE naming `what`.
 */
export async function readImageHeader(
  bytes: Uint8Array,
  limits: ImageLimits,
  what: string,
  formats: readonly ImageFormat[] = UPLOAD_FORMATS,
): Promise<{ width: number; height: number; format: ImageFormat }> {
  const format = sniffImageFormat(bytes);
  if (format === undefined || !formats.includes(format)) {
    const found = format === undefined ? describeContent(bytes) : FORMAT_NAMES[format];
    throw new StudioError('BAD_IMAGE', `${what} holds ${found}, not an image of a format this server accepts (${formatList(formats)})`);
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false, sequentialRead: true }).metadata();
  } catch (err) {
    throw badImage(what, err);
  }
  if (meta.format !== format) {
    throw new StudioError('BAD_IMAGE', `${what} starts like ${FORMAT_NAMES[format]} but is not a readable ${FORMAT_NAMES[format]} image`);
  }
  const { width, height } = meta;
  if (!width || !height) throw new StudioError('BAD_IMAGE', `${what} has no readable size`);
  if (Math.max(width, height) > limits.maxImageSide) {
    throw new StudioError('TOO_LARGE', `${what} is ${width}x${height}; a side may have at most ${limits.maxImageSide} pixels`);
  }
  if (width * height > limits.maxPixels) {
    throw new StudioError('TOO_LARGE', `${what} is ${width}x${height} (${width * height} pixels), over the limit of ${limits.maxPixels} pixels`);
  }
  return { width, height, format };
}

/** The decoder options for an image whose header has passed: bounded in pixels and in time, read once, front to back. */
function decoder(bytes: Uint8Array, limits: ImageLimits): Sharp {
  return sharp(bytes, { limitInputPixels: Math.max(1, Math.floor(limits.maxPixels)), sequentialRead: true, failOn: 'error' }).timeout({ seconds: DECODE_TIMEOUT_S });
}

/**
 * Proves that uploaded bytes are an image Load Image will be able to read, without holding the
 * decoded pixels: the header is checked first (readImageHeader), then libvips decodes the whole
 * file (failing on truncated or corrupt data, and on more pixels than the header promised) into a
 * thumbnail. Errors carry the codes of nodes/image/codec.ts.
 */
export async function checkImageBytes(bytes: Uint8Array, limits: ImageLimits, what = 'uploaded file'): Promise<{ width: number; height: number; format: ImageFormat }> {
  const header = await readImageHeader(bytes, limits, what, UPLOAD_FORMATS);
  await decoding(async () => {
    try {
      await decoder(bytes, limits).resize({ width: 64, height: 64, fit: 'inside' }).raw().toBuffer();
    } catch (err) {
      throw badImage(what, err);
    }
  });
  return header;
}

/** A JPEG of at most size x size of a stored image, after the same header checks as an upload. */
export async function thumbnailJpeg(bytes: Uint8Array, size: number, limits: ImageLimits, what: string): Promise<Buffer> {
  await readImageHeader(bytes, limits, what, THUMBNAIL_FORMATS);
  return decoding(async () => {
    try {
      return await decoder(bytes, limits).rotate().resize(size, size, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 85 }).toBuffer();
    } catch (err) {
      throw badImage(what, err);
    }
  });
}

/**
 * At most two decodes at once. Each holds one of libuv's four threads while it runs, and file
 * reads (every /api/view, every static file) wait for the same threads: a burst of uploads must
 * not leave the rest of the server waiting.
 */
const MAX_DECODES = 2;
let running = 0;
const waiting: Array<() => void> = [];

async function decoding<T>(work: () => Promise<T>): Promise<T> {
  // A finished decode hands its slot straight to the next in line, so no newcomer slips in between.
  if (running >= MAX_DECODES) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function badImage(what: string, err: unknown): StudioError {
  const reason = err instanceof Error ? (err.message.split('\n')[0] ?? '').trim() : String(err);
  if (/pixel limit/i.test(reason)) return new StudioError('TOO_LARGE', `${what} holds more pixels than allowed`);
  if (/timeout/i.test(reason)) return new StudioError('BAD_IMAGE', `${what} took more than ${DECODE_TIMEOUT_S} s to decode, which no image of the allowed size should`);
  return new StudioError('BAD_IMAGE', `${what} is not a readable image (${reason || 'unknown error'})`);
}

/**
 * The picture a caption server receives: SUPIR captions the stage-1 image at short side 512
 * (LLaVA's own processor then brings it to 336), sent as a base64 PNG.
 */
import sharp from 'sharp';
import { imageToHwcUint8 } from '../image/codec.ts';
import type { TileRect } from '../api/sockets.ts';
import type { ImageTensor } from '../api/tensor.ts';

export const CAPTION_SHORT_SIDE = 512;

export interface EncodedImage {
  /** PNG bytes, base64 (no data: prefix). */
  base64: string;
  mime: 'image/png';
  width: number;
  height: number;
}

/** The size with the short side at `short` (never below 1 px along the long side). */
export function shortSideSize(width: number, height: number, short = CAPTION_SHORT_SIDE): { width: number; height: number } {
  const scale = short / Math.min(width, height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * One image of the batch (or one rectangle of it), resized so its short side is 512 px, as an RGB
 * PNG: vision servers expect RGB.
 */
export async function encodeForCaption(image: ImageTensor, index: number, rect?: TileRect): Promise<EncodedImage> {
  const region = rect ?? { x: 0, y: 0, w: image.w, h: image.h };
  let pipeline = sharp(rgb(imageToHwcUint8(image, index), image.c), { raw: { width: image.w, height: image.h, channels: 3 } });
  // extract() before resize() cuts the tile out of the full-size image first.
  if (rect) pipeline = pipeline.extract({ left: rect.x, top: rect.y, width: rect.w, height: rect.h });
  const size = shortSideSize(region.w, region.h);
  if (size.width !== region.w || size.height !== region.h) pipeline = pipeline.resize({ width: size.width, height: size.height, fit: 'fill', kernel: 'lanczos3' });
  const png = await pipeline.png({ compressionLevel: 6 }).toBuffer();
  return { base64: png.toString('base64'), mime: 'image/png', ...size };
}

/**
 * Interleaved samples of 1-4 channels as RGB: grey is repeated, alpha dropped before sharp sees
 * it (sharp would premultiply by alpha around the resize, shifting the colours of the picture).
 */
function rgb(hwc: Buffer, c: number): Buffer {
  if (c === 3) return hwc;
  const pixels = hwc.length / c;
  const out = Buffer.allocUnsafe(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const grey = c <= 2;
    out[p * 3] = hwc[p * c]!;
    out[p * 3 + 1] = hwc[p * c + (grey ? 0 : 1)]!;
    out[p * 3 + 2] = hwc[p * c + (grey ? 0 : 2)]!;
  }
  return out;
}

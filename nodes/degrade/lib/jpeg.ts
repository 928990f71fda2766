/**
 * JPEG compression as a degradation: each batch item is rounded to 8 bits, encoded with libjpeg
 * (via sharp, 4:2:0 chroma subsampling as real-world JPEGs and BasicSR's DiffJPEG use) and decoded.
 */
import sharp from 'sharp';
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { hwcUint8ToImage, imageToHwcUint8 } from '../../image/codec.ts';

export async function jpegCompress(image: ImageTensor, quality: number): Promise<ImageTensor> {
  if (!Number.isFinite(quality)) throw new RangeError(`JPEG quality must be a number, got ${quality}`);
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const plane = h * w;
  const colour = c >= 3 ? 3 : 1;
  for (let b = 0; b < n; b++) {
    const item = image.data.subarray(b * c * plane, (b + 1) * c * plane);
    // imageToHwcUint8 clamps to 0..1 and rounds.
    const hwc = imageToHwcUint8(createImage(1, colour, h, w, item.subarray(0, colour * plane)));
    const encoded = await sharp(hwc, { raw: { width: w, height: h, channels: colour as 1 | 3 } })
      .jpeg({ quality: q, chromaSubsampling: '4:2:0' })
      .toBuffer();
    let dec = sharp(encoded);
    if (colour === 1) dec = dec.toColourspace('b-w');
    const { data, info } = await dec.raw().toBuffer({ resolveWithObject: true });
    if (info.width !== w || info.height !== h || info.channels !== colour) {
      throw new Error(`JPEG round trip gave ${info.width}x${info.height}x${info.channels}, expected ${w}x${h}x${colour}`);
    }
    const decoded = hwcUint8ToImage(data, w, h, colour);
    const dst = out.data.subarray(b * c * plane, (b + 1) * c * plane);
    dst.set(decoded.data);
    // Channels past the colour ones (alpha) are kept, clamped like the rest.
    for (let i = colour * plane; i < c * plane; i++) {
      const v = item[i]!;
      dst[i] = v > 0 ? (v < 1 ? v : 1) : 0;
    }
  }
  return out;
}

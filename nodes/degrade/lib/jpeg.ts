/**
 * JPEG compression as a degradation: each batch item is rounded to 8 bits, encoded with libjpeg
 * (via sharp, 4:2:0 chroma subsampling as real-world JPEGs and BasicSR's DiffJPEG use) and decoded.
 * Huffman-table optimisation is off: it only changes the file size, never the decoded pixels, and
 * costs an extra pass over the coefficients.
 */
import sharp from 'sharp';
import { createImage, type ImageTensor } from '../../api/tensor.ts';

/** 8-bit value -> float, as a table (v / 255 exactly as the division gives it). */
const FROM8 = Float32Array.from({ length: 256 }, (_, v) => v / 255);

export async function jpegCompress(image: ImageTensor, quality: number): Promise<ImageTensor> {
  if (!Number.isFinite(quality)) throw new RangeError(`JPEG quality must be a number, got ${quality}`);
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const plane = h * w;
  const colour = c >= 3 ? 3 : 1;
  // Plain typed arrays for the loops (element access on a Buffer is several times slower in V8),
  // wrapped as Buffers only to hand them to sharp. A Uint8ClampedArray store clamps (NaN -> 0) and
  // rounds half to even, which here is Math.round(v * 255): for a float32 v, v * 255 is exact in
  // float64, and in 0..1 it is k + 0.5 only at v = 0.5 (127.5), where both give 128.
  const hwc = new Uint8ClampedArray(colour * plane);
  for (let b = 0; b < n; b++) {
    const item = image.data.subarray(b * c * plane, (b + 1) * c * plane);
    // Planar float -> interleaved 8-bit.
    if (colour === 3) {
      // One pass writing consecutive bytes (three planes read in step) is several times faster
      // than three strided passes.
      for (let p = 0, o = 0; p < plane; p++, o += 3) {
        hwc[o] = item[p]! * 255;
        hwc[o + 1] = item[plane + p]! * 255;
        hwc[o + 2] = item[2 * plane + p]! * 255;
      }
    } else {
      for (let p = 0; p < plane; p++) hwc[p] = item[p]! * 255;
    }
    const encoded = await sharp(Buffer.from(hwc.buffer, hwc.byteOffset, hwc.length), { raw: { width: w, height: h, channels: colour as 1 | 3 } })
      .jpeg({ quality: q, chromaSubsampling: '4:2:0', optimiseCoding: false })
      .toBuffer();
    // sequentialRead: libvips decodes top to bottom in one pass instead of into a random-access
    // image first (same pixels, a few tenths of a ms less at 512x512).
    let dec = sharp(encoded, { sequentialRead: true });
    if (colour === 1) dec = dec.toColourspace('b-w');
    const { data: decoded, info } = await dec.raw().toBuffer({ resolveWithObject: true });
    const data = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.length);
    if (info.width !== w || info.height !== h || info.channels !== colour) {
      throw new Error(`JPEG round trip gave ${info.width}x${info.height}x${info.channels}, expected ${w}x${h}x${colour}`);
    }
    const dst = out.data.subarray(b * c * plane, (b + 1) * c * plane);
    if (colour === 3) {
      for (let p = 0, o = 0; p < plane; p++, o += 3) {
        dst[p] = FROM8[data[o]!]!;
        dst[plane + p] = FROM8[data[o + 1]!]!;
        dst[2 * plane + p] = FROM8[data[o + 2]!]!;
      }
    } else {
      for (let p = 0; p < plane; p++) dst[p] = FROM8[data[p]!]!;
    }
    // Channels past the colour ones (alpha) are kept, clamped like the rest.
    for (let i = colour * plane; i < c * plane; i++) {
      const v = item[i]!;
      dst[i] = v > 0 ? (v < 1 ? v : 1) : 0;
    }
  }
  return out;
}

import zlib from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../nodes/api/env.ts';
import { StudioError } from '../../nodes/api/errors.ts';
import {
  decodeImage,
  encodeImage,
  encodePreview,
  hwcUint8ToImage,
  imageToHwcUint8,
} from '../../nodes/image/codec.ts';
import { at, imageFrom, random8 } from '../support/images.ts';
import { pngChunk } from '../../nodes/image/png-text.ts';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof StudioError) return err.code;
    throw err;
  }
  return 'no error';
}

/** A PNG whose header claims any size, with almost no pixel data: a cheap decompression bomb. */
function lyingPng(width: number, height: number): Buffer {
  const chunk = pngChunk;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(100))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImage / encodeImage', () => {
  it('round-trips an 8-bit image through PNG exactly', async () => {
    const image = random8(1, 3, 17, 23);
    const decoded = await decodeImage(await encodeImage(image, 'png'), DEFAULT_LIMITS);
    expect([decoded.n, decoded.c, decoded.h, decoded.w]).toEqual([1, 3, 17, 23]);
    expect(Array.from(decoded.data)).toEqual(Array.from(image.data));
  });

  it('keeps 16-bit precision of a 16-bit PNG', async () => {
    const w = 16, h = 8;
    const u16 = new Uint16Array(w * h * 3);
    // Values that are not multiples of 257, so that an 8-bit detour would change them.
    for (let i = 0; i < u16.length; i++) u16[i] = (i * 4099 + 1) % 65536;
    const png = await sharp(u16, { raw: { width: w, height: h, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    const decoded = await decodeImage(png, DEFAULT_LIMITS);
    for (let p = 0; p < w * h; p++) {
      for (let c = 0; c < 3; c++) {
        expect(Math.round(decoded.data[c * w * h + p]! * 65535)).toBe(u16[p * 3 + c]);
      }
    }
  });

  it('turns grey and RGBA images into 3-channel RGB', async () => {
    const grey = await sharp(Buffer.from([0, 51, 102, 255]), { raw: { width: 2, height: 2, channels: 1 } }).png().toBuffer();
    const g = await decodeImage(grey, DEFAULT_LIMITS);
    expect(g.c).toBe(3);
    expect(at(g, 0, 2, 0, 1)).toBeCloseTo(0.2, 6);
    const rgba = await sharp(Buffer.from([255, 0, 0, 0, 0, 255, 0, 255]), { raw: { width: 2, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const r = await decodeImage(rgba, DEFAULT_LIMITS);
    expect(r.c).toBe(3);
    expect([at(r, 0, 0, 0, 0), at(r, 0, 1, 0, 1)]).toEqual([1, 1]);
  });

  it('applies the EXIF orientation', async () => {
    // 16 wide, 8 high, left half black, right half white; orientation 6 means "rotate 90° clockwise".
    const raw = Buffer.alloc(16 * 8 * 3);
    for (let y = 0; y < 8; y++) for (let x = 8; x < 16; x++) raw.fill(255, (y * 16 + x) * 3, (y * 16 + x) * 3 + 3);
    const jpeg = await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const decoded = await decodeImage(jpeg, DEFAULT_LIMITS);
    expect([decoded.w, decoded.h]).toEqual([8, 16]);
    expect(at(decoded, 0, 0, 2, 4)).toBeLessThan(0.1);
    expect(at(decoded, 0, 0, 13, 4)).toBeGreaterThan(0.9);
  });

  it('refuses bytes that are not an image, and truncated files, as BAD_IMAGE', async () => {
    expect(await codeOf(decodeImage(new TextEncoder().encode('hello, not an image'), DEFAULT_LIMITS))).toBe('BAD_IMAGE');
    expect(await codeOf(decodeImage(new Uint8Array(0), DEFAULT_LIMITS))).toBe('BAD_IMAGE');
    const png = await encodeImage(random8(1, 3, 64, 64), 'png');
    expect(await codeOf(decodeImage(png.subarray(0, png.length >> 1), DEFAULT_LIMITS))).toBe('BAD_IMAGE');
    await expect(decodeImage(Buffer.from('junk'), DEFAULT_LIMITS, '"x.png"')).rejects.toThrow(/"x\.png" is not a readable image/);
  });

  it('decides the format from the bytes: an SVG named .png is never rendered, nor is a side over the limit decoded', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>');
    await expect(decodeImage(svg, DEFAULT_LIMITS, '"drawing.png"')).rejects.toThrow(/"drawing\.png" is not a readable image: it holds SVG/);
    const wide = await encodeImage(random8(1, 3, 1, 2000), 'png');
    await expect(decodeImage(wide, { ...DEFAULT_LIMITS, maxImageSide: 1999 })).rejects.toThrow(/is 2000x1, over the limit of 1999 pixels on a side/);
    expect((await decodeImage(wide, { ...DEFAULT_LIMITS, maxImageSide: 2000 })).w).toBe(2000);
  });

  it('refuses images over the pixel limit from the header, before decoding', async () => {
    const png = await encodeImage(random8(1, 3, 100, 120), 'png');
    await expect(decodeImage(png, { ...DEFAULT_LIMITS, maxPixels: 11_999 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect((await decodeImage(png, { ...DEFAULT_LIMITS, maxPixels: 12_000 })).w).toBe(120);
    // The header says 9000x9000 but the data could never fill it: only a header check says TOO_LARGE.
    expect(await codeOf(decodeImage(lyingPng(9000, 9000), DEFAULT_LIMITS))).toBe('TOO_LARGE');
  });

  it('refuses a real 9000x9000 image under the default limit', async () => {
    const big = await sharp({ create: { width: 9000, height: 9000, channels: 3, background: '#123456' } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    await expect(decodeImage(big, DEFAULT_LIMITS)).rejects.toThrow(/9000x9000/);
  });

  it('rounds and clamps floats when encoding', async () => {
    const image = imageFrom(1, 3, 1, 4, (_n, _c, _y, x) => [-0.5, 1.7, Number.NaN, 0.5 / 255 + 1e-6][x]!);
    expect(Array.from(imageToHwcUint8(image).subarray(0, 12))).toEqual([0, 0, 0, 255, 255, 255, 0, 0, 0, 1, 1, 1]);
    const decoded = await decodeImage(await encodeImage(image, 'png'), DEFAULT_LIMITS);
    expect(Array.from(decoded.data.subarray(0, 4))).toEqual([0, 1, 0, 1 / 255].map(Math.fround));
  });

  it('encodes the chosen item of a batch, and JPEG / WebP close to the source', async () => {
    const batch = imageFrom(2, 3, 32, 32, (n) => (n === 0 ? 0.2 : 0.8));
    const second = await decodeImage(await encodeImage(batch, 'png', { index: 1 }), DEFAULT_LIMITS);
    expect(at(second, 0, 1, 5, 5)).toBeCloseTo(Math.round(0.8 * 255) / 255, 6);
    for (const format of ['jpeg', 'webp'] as const) {
      const bytes = await encodeImage(batch, format, { quality: 90 });
      expect((await sharp(bytes).metadata()).format).toBe(format);
      const back = await decodeImage(bytes, DEFAULT_LIMITS);
      expect(Math.abs(at(back, 0, 0, 16, 16) - 0.2)).toBeLessThan(0.02);
    }
    await expect(encodeImage(batch, 'png', { index: 2 })).rejects.toThrow(RangeError);
  });

  it('converts between HWC bytes and NCHW floats', () => {
    const hwc = Uint8Array.from([0, 255, 51, 102, 153, 204]);
    const image = hwcUint8ToImage(hwc, 2, 1, 3);
    expect(at(image, 0, 0, 0, 1)).toBeCloseTo(0.4, 6);
    expect(Array.from(imageToHwcUint8(image))).toEqual(Array.from(hwc));
  });
});

describe('encodePreview', () => {
  it('fits the image inside 512 pixels as JPEG', async () => {
    const preview = await encodePreview(imageFrom(1, 3, 600, 1024, (_n, c) => c / 2));
    expect(preview).toMatchObject({ format: 'jpeg', width: 512, height: 300 });
    expect((await sharp(preview.bytes).metadata()).width).toBe(512);
  });

  it('does not enlarge small images', async () => {
    const preview = await encodePreview(imageFrom(1, 3, 50, 100, () => 0.5));
    expect([preview.width, preview.height]).toEqual([100, 50]);
  });
});

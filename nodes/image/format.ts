/**
 * What an image file is, from its first bytes (magic numbers), before any decoder sees it: the
 * upload check, thumbnails and Load Image all ask here, so an SVG named .png is never rendered.
 */

/** The raster formats the server ever hands to the decoder, as sharp names them. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff' | 'gif';

export const FORMAT_NAMES: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', tiff: 'TIFF', gif: 'GIF' };

/**
 * The format of an image from its first bytes (magic numbers), or undefined when they are none of
 * ours. The name's extension is never trusted: an SVG named .png is an SVG, and libvips would
 * happily render it, nested `<use>` elements and all.
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (offset: number, ...expected: number[]): boolean => expected.every((b, i) => bytes[offset + i] === b);
  const ascii = (offset: number, text: string): boolean => at(offset, ...Array.from(text, (c) => c.charCodeAt(0)));
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  // Classic TIFF (42) and BigTIFF (43), little- and big-endian.
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a) || at(0, 0x49, 0x49, 0x2b, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2b)) return 'tiff';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  return undefined;
}

/** Words for what bytes that are not an accepted image hold, for the error message. */
export function describeContent(bytes: Uint8Array): string {
  // Latin-1, one character per byte (no Buffer: the editor sniffs dropped files with this module too).
  const text = String.fromCharCode(...bytes.subarray(0, 4096));
  const trimmed = text.replace(/^\xef\xbb\xbf/, '').trimStart();
  if (trimmed.startsWith('<')) {
    if (/<svg[\s>/]/i.test(text)) return 'SVG (a vector drawing in XML)';
    if (/<(!doctype html|html|script|body)[\s>]/i.test(text)) return 'HTML';
    return 'XML or HTML text';
  }
  const known: Array<[RegExp, string]> = [
    [/^\x1f\x8b/, 'gzip-compressed data (an SVGZ?)'],
    [/^....ftyp(avif|avis|heic|heix|mif1|msf1)/s, 'AVIF/HEIF'],
    [/^\xff\x0a|^\x00\x00\x00\x0cJXL /, 'JPEG XL'],
    [/^\x00\x00\x00\x0cjP {2}|^\xff\x4f\xff\x51/, 'JPEG 2000'],
    [/^BM/, 'BMP'],
    [/^\x00\x00\x01\x00/, 'an icon (ICO)'],
    [/^%PDF/, 'PDF'],
    [/^PK\x03\x04/, 'a ZIP archive'],
    [/^8BPS/, 'a Photoshop document'],
    [/^SIMPLE {2}=/, 'FITS'],
    [/^P[1-7]\s/, 'a Netpbm image'],
  ];
  for (const [pattern, name] of known) if (pattern.test(text)) return name;
  return 'data of no image format this server knows';
}

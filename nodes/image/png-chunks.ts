/**
 * PNG chunk walking and text-chunk fields, pure TypeScript: the server (Save Image, tests) and
 * the editor (opening a dropped PNG) read workflows out of PNGs with this one parser and differ
 * only in how they inflate and decode bytes.
 */
import { StudioError } from '../api/errors.ts';

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

export interface PngChunk {
  type: string;
  /** Offset of the chunk's length field in the file. */
  start: number;
  data: Uint8Array;
}

/** One text chunk, split into its fields; `body` is still compressed when `compressed`. */
export interface PngTextField {
  key: string;
  /** tEXt and zTXt bodies are Latin-1, iTXt bodies UTF-8. */
  encoding: 'latin1' | 'utf8';
  compressed: boolean;
  body: Uint8Array;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

export function checkPngSignature(png: Uint8Array): void {
  if (!isPng(png)) throw new StudioError('BAD_IMAGE', 'not a PNG file (bad signature)');
}

export function* pngChunks(png: Uint8Array): Generator<PngChunk> {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let pos = PNG_SIGNATURE.length;
  while (pos + 12 <= png.length) {
    const length = view.getUint32(pos);
    if (pos + 12 + length > png.length) throw new StudioError('BAD_IMAGE', 'PNG chunk runs past the end of the file');
    yield { type: latin1(png.subarray(pos + 4, pos + 8)), start: pos, data: png.subarray(pos + 8, pos + 8 + length) };
    pos += 12 + length;
  }
}

/** The text chunks before IEND, in file order; malformed ones are skipped. */
export function pngTextFields(png: Uint8Array): PngTextField[] {
  checkPngSignature(png);
  const out: PngTextField[] = [];
  for (const { type, data } of pngChunks(png)) {
    if (type === 'IEND') break;
    if (type !== 'tEXt' && type !== 'zTXt' && type !== 'iTXt') continue;
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const key = latin1(data.subarray(0, nul));
    if (type === 'tEXt') out.push({ key, encoding: 'latin1', compressed: false, body: data.subarray(nul + 1) });
    else if (type === 'zTXt') out.push({ key, encoding: 'latin1', compressed: true, body: data.subarray(nul + 2) });
    else {
      const langEnd = data.indexOf(0, nul + 3);
      const transEnd = langEnd < 0 ? -1 : data.indexOf(0, langEnd + 1);
      if (transEnd < 0) continue;
      out.push({ key, encoding: 'utf8', compressed: data[nul + 1] === 1, body: data.subarray(transEnd + 1) });
    }
  }
  return out;
}

/** True ISO-8859-1 (TextDecoder's 'latin1' is windows-1252, which differs at 0x80-0x9f). */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

import zlib from 'node:zlib';
import { StudioError } from '../api/errors.ts';
import { checkPngSignature, pngChunks, pngTextFields } from './png-chunks.ts';

/** Inflated text is capped so that a tiny compressed chunk cannot fill the memory. */
const MAX_INFLATED = 64 * 1024 * 1024;

/**
 * JSON with every character above 0x7e written as \uXXXX: tEXt holds Latin-1 only, and ASCII text
 * reads back the same whether a reader assumes Latin-1 or UTF-8.
 */
export function asciiJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('value cannot be written as JSON');
  return text.replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Returns a copy of `png` with one tEXt chunk per entry inserted before the first IDAT. */
export function addPngTextChunks(png: Uint8Array, entries: Record<string, string>): Uint8Array {
  checkPngSignature(png);
  let idat = -1;
  for (const chunk of pngChunks(png)) {
    if (chunk.type === 'IDAT') {
      idat = chunk.start;
      break;
    }
  }
  if (idat < 0) throw new StudioError('BAD_IMAGE', 'PNG has no IDAT chunk');
  const added = Object.entries(entries).map(([key, text]) => {
    if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(key) || key.startsWith(' ') || key.endsWith(' ') || key.includes('  ')) {
      throw new RangeError(`PNG text keyword ${JSON.stringify(key)} must be 1-79 printable Latin-1 characters`);
    }
    if (/[^\x00-\xff]/.test(text)) throw new RangeError(`PNG text for ${JSON.stringify(key)} is not Latin-1`);
    return pngChunk('tEXt', Buffer.concat([Buffer.from(key, 'latin1'), Buffer.of(0), Buffer.from(text, 'latin1')]));
  });
  return Buffer.concat([png.subarray(0, idat), ...added, png.subarray(idat)]);
}

/** Reads tEXt, zTXt and iTXt chunks; a keyword seen twice keeps its last value, as PIL does. */
export function readPngTextChunks(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of pngTextFields(png)) {
    try {
      out[field.key] = Buffer.from(field.compressed ? inflate(field.body) : field.body).toString(field.encoding);
    } catch {
      // A damaged text chunk is skipped: the image itself is still good.
    }
  }
  return out;
}

function inflate(data: Uint8Array): Buffer {
  return zlib.inflateSync(data, { maxOutputLength: MAX_INFLATED });
}


/** One PNG chunk: length, type, data and the CRC over type and data. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

import zlib from 'node:zlib';
import { StudioError } from '../api/errors.ts';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
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
  checkSignature(png);
  let idat = -1;
  for (const chunk of chunks(png)) {
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
  checkSignature(png);
  const out: Record<string, string> = {};
  for (const chunk of chunks(png)) {
    if (chunk.type === 'IEND') break;
    if (chunk.type !== 'tEXt' && chunk.type !== 'zTXt' && chunk.type !== 'iTXt') continue;
    const data = Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.length);
    const nul = data.indexOf(0);
    if (nul < 1) continue;
    const key = data.toString('latin1', 0, nul);
    try {
      if (chunk.type === 'tEXt') out[key] = data.toString('latin1', nul + 1);
      else if (chunk.type === 'zTXt') out[key] = inflate(data.subarray(nul + 2)).toString('latin1');
      else {
        const compressed = data[nul + 1] === 1;
        const langEnd = data.indexOf(0, nul + 3);
        const transEnd = langEnd < 0 ? -1 : data.indexOf(0, langEnd + 1);
        if (transEnd < 0) continue;
        const body = data.subarray(transEnd + 1);
        out[key] = (compressed ? inflate(body) : body).toString('utf8');
      }
    } catch {
      // A damaged text chunk is skipped: the image itself is still good.
    }
  }
  return out;
}

interface Chunk {
  type: string;
  start: number;
  data: Uint8Array;
}

function* chunks(png: Uint8Array): Generator<Chunk> {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let pos = SIGNATURE.length;
  while (pos + 12 <= png.length) {
    const length = view.getUint32(pos);
    if (pos + 12 + length > png.length) throw new StudioError('BAD_IMAGE', 'PNG chunk runs past the end of the file');
    const type = Buffer.from(png.buffer, png.byteOffset + pos + 4, 4).toString('latin1');
    yield { type, start: pos, data: png.subarray(pos + 8, pos + 8 + length) };
    pos += 12 + length;
  }
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

function inflate(data: Uint8Array): Buffer {
  return zlib.inflateSync(data, { maxOutputLength: MAX_INFLATED });
}

function checkSignature(png: Uint8Array): void {
  if (png.length < SIGNATURE.length || SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new StudioError('BAD_IMAGE', 'not a PNG file (bad signature)');
  }
}

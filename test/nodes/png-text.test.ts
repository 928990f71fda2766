import zlib from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../nodes/api/env.ts';
import { decodeImage, encodeImage } from '../../nodes/image/codec.ts';
import { addPngTextChunks, asciiJson, pngChunk, readPngTextChunks } from '../../nodes/image/png-text.ts';
import { random8 } from '../support/images.ts';

const chunk = pngChunk;

/** Inserts raw chunks right after IHDR (8-byte signature + 25-byte IHDR chunk). */
function withChunks(png: Buffer, ...chunks: Buffer[]): Buffer {
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

function chunkTypes(png: Uint8Array): string[] {
  const buf = Buffer.from(png);
  const types: string[] = [];
  for (let pos = 8; pos + 12 <= buf.length; pos += 12 + buf.readUInt32BE(pos)) types.push(buf.toString('latin1', pos + 4, pos + 8));
  return types;
}

describe('PNG text chunks', () => {
  it('round-trips tEXt entries, before IDAT, and the file still decodes to the same pixels', async () => {
    const image = random8(1, 3, 9, 11);
    const png = await encodeImage(image, 'png');
    const workflow = { nodes: [{ id: 1, title: 'Löwe 🦁 "quoted"\n' }], version: 0.4 };
    const tagged = addPngTextChunks(png, { workflow: asciiJson(workflow), prompt: asciiJson({ '1': { class_type: 'LoadImage' } }) });
    const types = chunkTypes(tagged);
    expect(types.indexOf('tEXt')).toBeLessThan(types.indexOf('IDAT'));
    expect(types.filter((t) => t === 'tEXt')).toHaveLength(2);
    const text = readPngTextChunks(tagged);
    expect(JSON.parse(text.workflow!)).toEqual(workflow);
    expect(JSON.parse(text.prompt!)).toEqual({ '1': { class_type: 'LoadImage' } });
    const meta = await sharp(tagged).metadata();
    expect(meta.comments?.map((c) => c.keyword).sort()).toEqual(['prompt', 'workflow']);
    const decoded = await decodeImage(tagged, DEFAULT_LIMITS);
    expect(Array.from(decoded.data)).toEqual(Array.from(image.data));
  });

  it('asciiJson escapes everything outside ASCII and parses back', () => {
    const value = { s: 'é – 😀 \u007f', n: [1, 2.5, null] };
    const text = asciiJson(value);
    expect(text).toMatch(/^[\x20-\x7e]*$/);
    expect(text).toContain('\\u00e9');
    expect(JSON.parse(text)).toEqual(value);
    expect(() => asciiJson(undefined)).toThrow(TypeError);
  });

  it('reads iTXt (plain and compressed) and zTXt chunks', async () => {
    const png = await encodeImage(random8(1, 3, 4, 4), 'png');
    const itxt = (key: string, text: string, compressed: boolean): Buffer =>
      chunk('iTXt', Buffer.concat([
        Buffer.from(key, 'latin1'), Buffer.from([0, compressed ? 1 : 0, 0]), Buffer.from('en', 'latin1'), Buffer.from([0]),
        Buffer.from('Schlüssel', 'utf8'), Buffer.from([0]),
        compressed ? zlib.deflateSync(Buffer.from(text, 'utf8')) : Buffer.from(text, 'utf8'),
      ]));
    const ztxt = chunk('zTXt', Buffer.concat([Buffer.from('ztext\0\0', 'latin1'), zlib.deflateSync(Buffer.from('café', 'latin1'))]));
    const tagged = withChunks(png, itxt('plain', 'grüße ✓', false), itxt('packed', '{"a":"日本"}', true), ztxt);
    expect(readPngTextChunks(tagged)).toEqual({ plain: 'grüße ✓', packed: '{"a":"日本"}', ztext: 'café' });
  });

  it('refuses keywords and text that tEXt cannot hold', async () => {
    const png = await encodeImage(random8(1, 3, 4, 4), 'png');
    expect(() => addPngTextChunks(png, { '': 'x' })).toThrow(RangeError);
    expect(() => addPngTextChunks(png, { ['k'.repeat(80)]: 'x' })).toThrow(RangeError);
    expect(() => addPngTextChunks(png, { key: 'snow ☃' })).toThrow(RangeError);
    expect(readPngTextChunks(addPngTextChunks(png, { key: 'naïve' }))).toEqual({ key: 'naïve' });
  });

  it('refuses data that is not a PNG', async () => {
    const jpeg = await encodeImage(random8(1, 3, 4, 4), 'jpeg');
    expect(() => readPngTextChunks(jpeg)).toThrow(expect.objectContaining({ code: 'BAD_IMAGE' }));
    expect(() => addPngTextChunks(new Uint8Array(3), { a: 'b' })).toThrow(expect.objectContaining({ code: 'BAD_IMAGE' }));
  });
});

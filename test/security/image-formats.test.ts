/**
 * What reaches the image decoder: only PNG, JPEG, WebP and TIFF bytes (GIF too for thumbnails),
 * decided from the magic numbers whatever the name says, and only once the header's width and
 * height are within the side and pixel limits. An SVG named .png with nested `<use>` elements
 * costs libvips seconds of CPU per request (and, four at once, stalls every file read of the
 * server); a 1 x 60,000,000 PNG is under the pixel limit and took 10-28 s to decode. Both must be
 * refused at once, from their first bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeContent, sniffImageFormat } from '../../nodes/image/format.ts';
import { pngBytes, startTestServer, userInputs, type TestServer } from '../server/helpers.ts';
import { pngChunk } from '../../nodes/image/png-text.ts';

/**
 * A 2.4 KB SVG whose nine levels of ten `<use>` each ask for 10^9 translucent full-page shapes
 * (librsvg gives up after 500,000, seconds of rendering later): the "billion laughs" of SVG.
 */
export function nestedUseSvg(): Buffer {
  let svg = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="1024" height="1024"><defs>';
  svg += '<rect id="l0" width="1024" height="1024" fill-opacity="0.5"/>';
  for (let level = 1; level <= 9; level++) {
    svg += `<g id="l${level}">${Array.from({ length: 10 }, () => `<use xlink:href="#l${level - 1}"/>`).join('')}</g>`;
  }
  return Buffer.from(`${svg}</defs><use xlink:href="#l9"/></svg>`);
}

/**
 * A valid 1-bit greyscale PNG of width x height zeros, deflated as a stream from one reused block
 * of rows: 1 x 60,000,000 is 120 MB of rows but 117 KB of file, built in a fraction of a second
 * without holding the rows.
 */
export async function stripPng(width: number, height: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const rowBytes = 1 + Math.ceil(width / 8);
  const rowsPerBlock = Math.max(1, Math.floor((1 << 20) / rowBytes));
  const block = Buffer.alloc(rowBytes * rowsPerBlock);
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (b: Buffer) => parts.push(b));
  const ended = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  for (let rows = height; rows > 0; rows -= rowsPerBlock) {
    if (!deflate.write(block.subarray(0, Math.min(rows, rowsPerBlock) * rowBytes))) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  deflate.end();
  await ended;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', Buffer.alloc(0))]);
}

interface ErrorBody {
  error: { code: string; message: string };
}

describe('image formats and sizes, from the bytes', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const t0 = performance.now();
    const value = await work();
    return { value, ms: performance.now() - t0 };
  };

  it('knows the formats by their magic numbers, not by their names', async () => {
    expect(sniffImageFormat(await pngBytes(2, 2))).toBe('png');
    expect(sniffImageFormat(await sharp(await pngBytes(2, 2)).jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImageFormat(await sharp(await pngBytes(2, 2)).webp().toBuffer())).toBe('webp');
    expect(sniffImageFormat(await sharp(await pngBytes(2, 2)).tiff().toBuffer())).toBe('tiff');
    expect(sniffImageFormat(await sharp(await pngBytes(2, 2)).gif().toBuffer())).toBe('gif');
    expect(sniffImageFormat(nestedUseSvg())).toBeUndefined();
    expect(describeContent(nestedUseSvg())).toMatch(/^SVG/);
    expect(describeContent(Buffer.from('\ufeff  <?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'))).toMatch(/^SVG/);
    expect(describeContent(zlib.gzipSync(nestedUseSvg()))).toMatch(/gzip/);
    expect(describeContent(Buffer.from('<!doctype html><script>alert(1)</script>'))).toBe('HTML');
    expect(describeContent(Buffer.from('\x00\x00\x00\x1cftypavif\x00\x00\x00\x00', 'latin1'))).toBe('AVIF/HEIF');
    expect(describeContent(Buffer.from('BM\x00\x00', 'latin1'))).toBe('BMP');
  });

  it('refuses an SVG named .png with nested <use> from its first bytes, one at a time or four at once, while /api/view keeps answering', async () => {
    const svg = nestedUseSvg();
    expect(svg.length).toBeLessThan(3 * 1024);
    const one = await timed(() => server.upload('laughs.png', svg));
    expect(one.value.status).toBe(400);
    const body = (await one.value.json()) as ErrorBody;
    expect(body.error.code).toBe('BAD_IMAGE');
    expect(body.error.message).toMatch(/holds SVG .*not an image of a format this server accepts \(PNG, JPEG, WebP, TIFF\)/);
    // Rendering it took libvips 4-35 s of CPU (depending on the shapes); refusing it takes milliseconds.
    expect(one.ms).toBeLessThan(3000);

    fs.writeFileSync(path.join(server.dirs.folders.outputs, 'small.png'), await pngBytes(8, 8));
    const burst = await timed(() =>
      Promise.all([
        ...['a', 'b', 'c', 'd'].map((n) => server.upload(`laughs-${n}.png`, svg).then((r) => r.status)),
        timed(() => server.api('/api/view?file=small.png').then((r) => r.status)),
      ]),
    );
    const [a, b, c, d, view] = burst.value as [number, number, number, number, { value: number; ms: number }];
    expect([a, b, c, d]).toEqual([400, 400, 400, 400]);
    expect(view.value).toBe(200);
    expect(view.ms).toBeLessThan(3000);
    expect(burst.ms).toBeLessThan(3000);
    expect(userInputs(server)).toEqual([]);
  });

  it('refuses a 1 x 60,000,000 PNG (under the pixel limit) from its header: a side over the limit', async () => {
    const strip = await stripPng(1, 60_000_000);
    expect(strip.length).toBeLessThan(256 * 1024);
    const { value: res, ms } = await timed(() => server.upload('strip.png', strip));
    expect(res.status).toBe(413);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('TOO_LARGE');
    expect(body.error.message).toContain('1x60000000');
    expect(body.error.message).toContain('a side may have at most 32768 pixels');
    // Accepted after 10-28 s of decoding before; the header says enough.
    expect(ms).toBeLessThan(3000);
    // The same for the other way round, and a strip within the side limit is fine.
    const wide = await server.upload('wide.png', await stripPng(40_000, 1));
    expect(wide.status).toBe(413);
    const ok = await server.upload('narrow.png', await stripPng(1, 30_000));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ name: 'narrow.png', width: 1, height: 30_000 });
  });

  it('refuses formats it does not decode for uploads, naming what the bytes are', async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['gif.png', await sharp(await pngBytes(4, 4)).gif().toBuffer(), /holds GIF,/],
      ['svgz.png', zlib.gzipSync(nestedUseSvg()), /holds gzip-compressed data/],
      ['bitmap.jpg', Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60)]), /holds BMP,/],
      ['page.webp', Buffer.from('<html><body><script>alert(1)</script></body></html>'), /holds HTML,/],
      ['heic.tif', Buffer.concat([Buffer.from('\x00\x00\x00\x18ftypheic', 'latin1'), Buffer.alloc(64)]), /holds AVIF\/HEIF,/],
    ];
    for (const [name, bytes, message] of cases) {
      const { value: res, ms } = await timed(() => server.upload(name, bytes));
      expect(res.status, name).toBe(400);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code, name).toBe('BAD_IMAGE');
      expect(body.error.message, name).toMatch(message);
      expect(ms, name).toBeLessThan(3000);
    }
    // Right magic number, wrong rest: still not an image.
    const fakePng = await server.upload('fake.png', Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('<svg/>')]));
    expect(fakePng.status).toBe(400);
    expect(userInputs(server)).toEqual(['narrow.png']);
  });

  it('still accepts real PNG, JPEG, WebP and TIFF uploads, also under a name of another of these formats', async () => {
    const png = await pngBytes(20, 10);
    const cases: Array<[string, Buffer]> = [
      ['real.png', png],
      ['real.jpg', await sharp(png).jpeg().toBuffer()],
      ['real.webp', await sharp(png).webp().toBuffer()],
      ['real.tiff', await sharp(png).tiff().toBuffer()],
      ['jpeg-inside.png', await sharp(png).jpeg().toBuffer()],
    ];
    for (const [name, bytes] of cases) {
      const res = await server.upload(name, bytes);
      expect(res.status, name).toBe(200);
      expect(await res.json(), name).toMatchObject({ name, width: 20, height: 10 });
    }
    // Cut short after a valid header: refused by the full decode that follows the header checks.
    const truncated = await server.upload('truncated.png', png.subarray(0, Math.floor(png.length * 0.6)));
    expect(truncated.status).toBe(400);
  });

  it('makes thumbnails only of checked formats within the limits, refusing the rest at once', async () => {
    const outputs = server.dirs.folders.outputs;
    fs.writeFileSync(path.join(outputs, 'laughs.png'), nestedUseSvg());
    fs.writeFileSync(path.join(outputs, 'strip.png'), await stripPng(1, 60_000_000));
    fs.writeFileSync(path.join(outputs, 'anim.gif'), await sharp(await pngBytes(30, 20)).gif().toBuffer());
    fs.writeFileSync(path.join(outputs, 'photo.png'), await pngBytes(300, 200));
    for (const [file, message] of [
      ['laughs.png', /holds SVG/],
      ['strip.png', /1x60000000; a side may have at most 32768/],
    ] as const) {
      const { value: res, ms } = await timed(() => server.api(`/api/view?file=${file}&thumb=64`));
      expect(res.status, file).toBe(400);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code, file).toBe('BAD_IMAGE');
      expect(body.error.message, file).toMatch(message);
      expect(ms, file).toBeLessThan(3000);
    }
    for (const [file, width, height] of [
      ['photo.png', 64, 43],
      ['anim.gif', 30, 20],
    ] as const) {
      const res = await server.api(`/api/view?file=${file}&thumb=64`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect([meta.format, meta.width, meta.height], file).toEqual(['jpeg', width, height]);
    }
  });
});

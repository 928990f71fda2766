/**
 * The file rules, attacked through the API: traversal in every spelling (view, upload, Load Image,
 * Save Image, workflows, the editor's static files), symlinks that escape, uploads that are not
 * images or are too big, a PNG decompression bomb, outputs that would render as pages, and a
 * pickle checkpoint that would run code. Files beside the data root stand for everything outside.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { openCheckpoint } from '../../server/models/checkpoint/checkpoint.ts';
import { EventRecorder, pngBytes, startTestServer, userInputs, type TestServer } from '../server/helpers.ts';
import { pngChunk } from '../../nodes/image/png-text.ts';

/** A 1-bit greyscale PNG that declares width x height of zeros: a few KB that decode to gigabytes. */
export function pngBomb(width: number, height: number): Buffer {
  const chunk = pngChunk;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  // Each row: filter byte 0 and width/8 zero bytes. Deflate squeezes the zeros ~1000:1.
  const raw = Buffer.alloc((1 + Math.ceil(width / 8)) * height);
  const idat = zlib.deflateSync(raw, { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

/** A protocol-0 pickle that runs `touch canary` when a real unpickler loads it (the classic payload). */
function evilPickle(canary: string): Buffer {
  return Buffer.from(`cos\nsystem\n(S'touch ${canary}'\ntR.`, 'latin1');
}

/** A one-entry STORED zip laid out as torch.save does (archive/data.pkl), holding the pickle. */
function evilCkpt(canary: string): Buffer {
  const name = Buffer.from('archive/data.pkl');
  const data = Buffer.concat([Buffer.from([0x80, 0x02]), evilPickle(canary)]);
  const crc = zlib.crc32(data) >>> 0;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(name.length, 28);
  const localPart = Buffer.concat([local, name, data]);
  const centralPart = Buffer.concat([central, name]);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(centralPart.length, 12);
  end.writeUInt32LE(localPart.length, 16);
  return Buffer.concat([localPart, centralPart, end]);
}

/** GET with the path sent exactly as written (fetch would normalise "/../"). */
function rawGet(url: string, pathAndQuery: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'GET', path: pathAndQuery }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('files through the API', () => {
  let server: TestServer;
  let ws: EventRecorder;
  let secretPng: string;
  let secretBytes: Buffer;

  beforeAll(async () => {
    server = await startTestServer({ limits: { maxUploadBytes: 256 * 1024 } });
    ws = await EventRecorder.connect(server.url);
    secretPng = path.join(server.parent, 'secret.png');
    secretBytes = await pngBytes(9, 9);
    fs.writeFileSync(secretPng, secretBytes);
    fs.writeFileSync(path.join(server.parent, 'passwd'), 'root:x:0:0');
  });
  afterAll(async () => {
    ws.close();
    await server.close();
  });

  const run = async (prompt: Record<string, unknown>): Promise<{ status: number; body: { error?: { code: string }; node_errors?: Array<{ code: string }>; prompt_id?: string } }> => {
    const res = await server.postJson('/api/prompt', { prompt });
    return { status: res.status, body: (await res.json()) as never };
  };

  it('serves nothing from outside /api/view however the name is encoded (double, overlong UTF-8, backslash, fullwidth)', async () => {
    const spellings = [
      '%252e%252e%252fsecret.png',
      '%c0%ae%c0%ae%c0%afsecret.png',
      '%c0%ae%c0%ae/secret.png',
      '..%5csecret.png',
      '%2e%2e%5csecret.png',
      '\uff0e\uff0e\uff0fsecret.png',
      '....//secret.png',
      '.%2e/secret.png',
      './../secret.png',
      'a/./../../secret.png',
      '%2fetc%2fpasswd',
      'file:///etc/passwd',
      '\\\\host\\share\\x.png',
      'secret.png%00.png',
    ];
    for (const folder of ['outputs', 'inputs', 'temp']) {
      for (const spelling of spellings) {
        // Spellings with % are sent as written (already encoded); the others are encoded once.
        const file = spelling.includes('%') ? spelling : encodeURIComponent(spelling);
        for (const query of [`file=${file}`, `subfolder=${file}&file=secret.png`, `subfolder=%2e%2e&file=${file}`]) {
          const res = await rawGet(server.url, `/api/view?folder=${folder}&${query}`);
          expect([400, 404], `${folder} ${query}`).toContain(res.status);
          expect(res.body.includes(secretBytes)).toBe(false);
        }
      }
    }
  });

  it('serves no file outside the editor folder through the static route', async () => {
    for (const p of ['/../../secret.png', '/%2e%2e/%2e%2e/passwd', '/..%2f..%2fpasswd', '/assets/..%2f..%2f..%2fpackage.json', '/%2e%2e%5cpasswd']) {
      const res = await rawGet(server.url, p);
      expect(res.body.includes(secretBytes), p).toBe(false);
      expect(res.body.toString('latin1'), p).not.toContain('root:x:0:0');
      expect(res.body.toString('latin1'), p).not.toContain('"supir-studio"');
    }
  });

  it('Load Image and Save Image refuse names that leave their folders, symlinks included', async () => {
    fs.symlinkSync(secretPng, path.join(server.dirs.folders.inputs, 'link.png'));
    fs.mkdirSync(path.join(server.dirs.folders.inputs, 'sub'));
    fs.symlinkSync(server.parent, path.join(server.dirs.folders.inputs, 'sub', 'up'), 'dir');
    for (const image of ['../secret.png', secretPng, 'link.png', 'sub/up/secret.png', '..\\secret.png', 'a\u0000.png']) {
      const res = await run({ '1': { class_type: 'LoadImage', inputs: { image } }, '2': { class_type: 'PreviewImage', inputs: { image: ['1', 0] } } });
      expect(res.status, image).toBe(400);
      expect(res.body.error?.code).toBe('VALIDATION');
    }
    fs.symlinkSync(server.parent, path.join(server.dirs.folders.outputs, 'escape'), 'dir');
    for (const prefix of ['../evil', '../../evil', '/tmp/evil', 'escape/evil', 'a/../../evil', 'C:\\evil']) {
      const res = await run({
        '1': { class_type: 'LoadImage', inputs: { image: 'chelsea.png' } },
        '2': { class_type: 'SaveImage', inputs: { image: ['1', 0], filename_prefix: prefix } },
      });
      if (res.status === 200) {
        // Only the symlinked folder passes validation (the name itself is fine); the run must refuse it.
        const done = await ws.done(res.body.prompt_id!);
        expect(done, prefix).toMatchObject({ status: 'error' });
        const entry = (await (await server.api(`/api/history/${res.body.prompt_id}`)).json()) as HistoryEntry;
        expect(entry.error?.code, prefix).toBe('BAD_PATH');
      } else {
        expect(res.status, prefix).toBe(400);
      }
    }
    expect(fs.readdirSync(server.parent).sort()).toEqual(['data', 'passwd', 'secret.png']);
  });

  it('sends outputs inline only as images; HTML, SVG, scripts and the rest only as downloads, never sniffed', async () => {
    const out = server.dirs.folders.outputs;
    fs.writeFileSync(path.join(out, 'page.html'), '<script>alert(document.cookie)</script>');
    fs.writeFileSync(path.join(out, 'vector.svg'), '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    fs.writeFileSync(path.join(out, 'code.js'), 'alert(1)');
    fs.writeFileSync(path.join(out, 'noext'), '<html><script>alert(1)</script>');
    fs.writeFileSync(path.join(out, 'fake.png'), '<html><script>alert(1)</script></html>');
    fs.writeFileSync(path.join(out, 'real.png'), await pngBytes(4, 4));
    for (const name of ['page.html', 'vector.svg', 'code.js', 'noext']) {
      const res = await server.api(`/api/view?file=${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('content-type'), name).toBe('application/octet-stream');
      expect(res.headers.get('content-disposition'), name).toMatch(/^attachment/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    }
    for (const name of ['fake.png', 'real.png']) {
      const res = await server.api(`/api/view?file=${name}`);
      // An HTML file named .png is still declared an image, and nosniff stops the browser guessing.
      expect(res.headers.get('content-type'), name).toBe('image/png');
      expect(res.headers.get('content-disposition')).toBeNull();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('keeps an upload only if its bytes decode as an image, whatever its name says', async () => {
    const fakes: Array<[string, Buffer]> = [
      ['page.png', Buffer.from('<html><script>alert(1)</script></html>')],
      ['vector.png', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')],
      ['gifar.gif', Buffer.concat([Buffer.from('GIF89a'), Buffer.from('<script>alert(1)</script>')])],
      ['zip.png', evilCkpt('/nonexistent')],
      ['jpeg.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1])],
    ];
    for (const [name, bytes] of fakes) {
      const res = await server.upload(name, bytes);
      expect([400], name).toContain(res.status);
      expect(((await res.json()) as { error: { code: string } }).error.code, name).toMatch(/BAD_IMAGE|BAD_INPUT/);
    }
    const tooBig = await server.upload('big.png', Buffer.alloc(300 * 1024, 1));
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('TOO_LARGE');
    expect(userInputs(server).filter((n) => !['link.png', 'sub'].includes(n))).toEqual([]);
  });

  it('refuses a PNG decompression bomb (20000 x 20000 in a few KB) from its header, without decoding it', async () => {
    const bomb = pngBomb(20_000, 20_000);
    expect(bomb.length).toBeLessThan(100 * 1024);
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const res = await server.upload('bomb.png', bomb);
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: 'TOO_LARGE' });
    expect(body.error.message).toContain('20000x20000');
    // Decoding would take >1 s and 400 MB-1.2 GB; the header check takes milliseconds.
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    expect(userInputs(server)).not.toContain('bomb.png');

    // Placed by hand where Load Image and the thumbnailer can reach it: refused the same way.
    fs.writeFileSync(path.join(server.dirs.folders.inputs, 'placed-bomb.png'), bomb);
    fs.writeFileSync(path.join(server.dirs.folders.outputs, 'placed-bomb.png'), bomb);
    const prompt = await run({ '1': { class_type: 'LoadImage', inputs: { image: 'placed-bomb.png' } }, '2': { class_type: 'PreviewImage', inputs: { image: ['1', 0] } } });
    expect(prompt.status).toBe(200);
    expect(await ws.done(prompt.body.prompt_id!)).toMatchObject({ status: 'error' });
    const entry = (await (await server.api(`/api/history/${prompt.body.prompt_id}`)).json()) as HistoryEntry;
    expect(entry.error).toMatchObject({ node_id: '1', code: 'TOO_LARGE' });
    const thumb = await server.api('/api/view?file=placed-bomb.png&thumb=64');
    expect(thumb.status).toBe(400);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('never unpickles a checkpoint: not uploadable, not loadable by nodes, and refused by the converter', async () => {
    const canary = path.join(server.parent, 'pwned');
    const ckpt = evilCkpt(canary);
    // Not an image, whatever it is called.
    for (const name of ['evil.ckpt', 'evil.pt', 'evil.png']) {
      const res = await server.upload(name, ckpt);
      expect(res.status, name).toBe(400);
    }
    // Dropped into the models folder by hand: nodes only list .onnx files, so it cannot be chosen.
    fs.writeFileSync(path.join(server.dirs.folders.models, 'evil.ckpt'), ckpt);
    fs.writeFileSync(path.join(server.dirs.folders.models, 'evil.pth'), evilPickle(canary));
    const nodes = (await (await server.api('/api/nodes')).json()) as { nodes: Array<{ id: string; widgets: Array<{ name: string; options?: string[] }> }> };
    const listed = nodes.nodes.flatMap((n) => n.widgets.flatMap((w) => w.options ?? []));
    expect(listed.filter((o) => /evil/.test(o))).toEqual([]);
    const res = await run({
      '1': { class_type: 'LoadUpscaleModel', inputs: { model_name: 'evil.ckpt', provider: 'cpu' } },
      '2': { class_type: 'LoadImage', inputs: { image: 'chelsea.png' } },
      '3': { class_type: 'UpscaleImage', inputs: { model: ['1', 0], image: ['2', 0] } },
      '4': { class_type: 'PreviewImage', inputs: { image: ['3', 0] } },
    });
    expect(res.status).toBe(400);
    expect(res.body.node_errors?.map((e) => e.code)).toContain('not_in_list');
    // The only code that reads checkpoints (supir-studio convert) refuses it before anything runs.
    await expect(openCheckpoint(path.join(server.dirs.folders.models, 'evil.ckpt'))).rejects.toThrow(/refused to load: the pickle asks for os\.system/);
    expect(fs.existsSync(canary)).toBe(false);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { EventRecorder, pngBytes, startTestServer, userInputs, type TestServer } from './helpers.ts';

const loadAndSave = (image: string): Record<string, unknown> => ({
  prompt: {
    '1': { class_type: 'LoadImage', inputs: { image } },
    '2': { class_type: 'SaveImage', inputs: { image: ['1', 0], filename_prefix: 'bad' } },
  },
});

describe('bad images', () => {
  // A 10 000-pixel limit: a 200x200 image is over it, a 16x16 one is not.
  let server: TestServer;
  let ws: EventRecorder;

  beforeAll(async () => {
    server = await startTestServer({ limits: { maxPixels: 10_000, maxUploadBytes: 64 * 1024 } });
    ws = await EventRecorder.connect(server.url);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
  });

  const inputs = (): string[] => userInputs(server);

  it('refuses an upload that is not an image with 400 BAD_IMAGE and keeps nothing', async () => {
    const res = await server.upload('corrupt.png', Buffer.from('\x89PNG\r\n\x1a\nthis is not a png at all'));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'BAD_IMAGE' } });

    const png = await pngBytes(40, 40);
    const truncated = await server.upload('truncated.png', png.subarray(0, Math.floor(png.length * 0.6)));
    expect(truncated.status).toBe(400);
    expect(await truncated.json()).toMatchObject({ error: { code: 'BAD_IMAGE' } });

    const empty = await server.upload('empty.png', new Uint8Array(0));
    expect(empty.status).toBe(400);
    expect(inputs()).toEqual([]);
  });

  it('refuses an image over the pixel limit with 413 and a body over the size limit with 413', async () => {
    const res = await server.upload('big.png', await sharp({ create: { width: 200, height: 200, channels: 3, background: '#808080' } }).png().toBuffer());
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('TOO_LARGE');
    expect(body.error.message).toContain('200x200');

    const huge = await server.upload('huge.png', Buffer.alloc(100 * 1024, 7));
    expect(huge.status).toBe(413);
    expect(inputs()).toEqual([]);
  });

  it('refuses names Load Image would not list', async () => {
    const res = await server.upload('notes.html', await pngBytes(8, 8));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'BAD_INPUT' } });
  });

  it('keeps both files when the same name is uploaded twice, unless overwrite=1', async () => {
    const bytes = await pngBytes(8, 8);
    expect(await (await server.upload('same.png', bytes)).json()).toMatchObject({ name: 'same.png' });
    expect(await (await server.upload('same.png', bytes)).json()).toMatchObject({ name: 'same (1).png' });
    expect(await (await server.upload('same.png', bytes, '&overwrite=1')).json()).toMatchObject({ name: 'same.png' });
    expect(await (await server.upload('x.png', bytes, '&subfolder=a/b')).json()).toMatchObject({ name: 'x.png', subfolder: 'a/b' });
    expect(fs.existsSync(path.join(server.dirs.folders.inputs, 'a', 'b', 'x.png'))).toBe(true);
  });

  it('fails a prompt whose Load Image reads an over-limit or corrupt file, naming the node, and keeps working', async () => {
    fs.writeFileSync(path.join(server.dirs.folders.inputs, 'placed-big.png'), await pngBytes(200, 200));
    fs.writeFileSync(path.join(server.dirs.folders.inputs, 'placed-corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\ngarbage'));

    for (const [file, code] of [
      ['placed-big.png', 'TOO_LARGE'],
      ['placed-corrupt.png', 'BAD_IMAGE'],
    ] as const) {
      const res = await server.postJson('/api/prompt', loadAndSave(file));
      expect(res.status).toBe(200);
      const { prompt_id } = (await res.json()) as { prompt_id: string };
      expect(await ws.done(prompt_id)).toMatchObject({ status: 'error' });
      const error = ws.of(prompt_id).find((m) => m.type === 'error');
      expect(error).toMatchObject({ node_id: '1', node_type: 'LoadImage', code });
      const entry = (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
      expect(entry.status).toBe('error');
      expect(entry.error).toMatchObject({ node_id: '1', code });
      expect(entry.error!.message).toContain('Load Image (#1)');
      expect(entry.error!.message).toContain(file);
    }

    const ok = await server.postJson('/api/prompt', loadAndSave('same.png'));
    const { prompt_id } = (await ok.json()) as { prompt_id: string };
    expect(await ws.done(prompt_id)).toMatchObject({ status: 'success' });
  });
});

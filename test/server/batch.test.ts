/**
 * A batch through the server: queued over HTTP, followed over the websocket, stopped with the
 * interrupt route (the editor's Stop) and queued again, as a person restoring an archive would.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiPrompt, HistoryEntry } from '../../server/engine/index.ts';
import { faultNodes } from './fault-nodes.ts';
import { EventRecorder, startTestServer, submitPrompt, type TestServer } from './helpers.ts';

/** 50 scans → a slow step (20 ms per image) → Save named after each scan. */
const batch: ApiPrompt = {
  '1': { class_type: 'LoadImageFolder', inputs: { folder: 'archive', pattern: '*.png' } },
  '2': { class_type: 'TestSlowImage', inputs: { image: ['1', 0], steps: 2, ms: 10 } },
  '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: 'archive/{name}' } },
};

describe('a batch over the wire', () => {
  let server: TestServer;
  let ws: EventRecorder;

  beforeAll(async () => {
    server = await startTestServer({ persist: false }, faultNodes);
    ws = await EventRecorder.connect(server.url);
    const dir = path.join(server.dirs.folders.inputs, 'archive');
    fs.mkdirSync(dir);
    for (let i = 1; i <= 50; i++) {
      await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i, g: 2 * i, b: 3 * i } } }).png().toFile(path.join(dir, `photo ${i}.png`));
    }
  });
  afterAll(async () => {
    ws.close();
    await server?.close();
  });

  it('is stopped midway with the interrupt route, queued again, and writes every output once', async () => {
    const first = await submitPrompt(server.url, batch);
    await ws.waitFor((m) => m.type === 'batch' && m.prompt_id === first.prompt_id && m.done >= 10);
    expect(await (await server.postJson('/api/interrupt', { prompt_id: first.prompt_id })).json()).toEqual({ interrupted: true });
    expect(await ws.done(first.prompt_id)).toMatchObject({ status: 'interrupted' });
    const out = path.join(server.dirs.folders.outputs, 'archive');
    const stopped = fs.readdirSync(out);
    expect(stopped.length).toBeGreaterThanOrEqual(10);
    expect(stopped.length).toBeLessThan(50);

    // Queued again: the images saved are skipped (their files exist); only the others run.
    const second = await submitPrompt(server.url, batch);
    expect(await ws.done(second.prompt_id)).toMatchObject({ status: 'success' });
    const events = [...ws.of(first.prompt_id), ...ws.of(second.prompt_id)];
    const saved = events.flatMap((e) => (e.type === 'node_done' && !e.cached && e.node_id.startsWith('3:') ? e.files.map((f) => f.filename) : []));
    expect(saved).toHaveLength(50);
    expect(new Set(saved).size).toBe(50);
    const last = ws.of(second.prompt_id).filter((e) => e.type === 'batch').at(-1);
    expect(last).toMatchObject({ total: 50, done: 50 - stopped.length, resumed: stopped.length, failed: 0, running: null });
    expect(fs.readdirSync(out).sort()).toEqual(Array.from({ length: 50 }, (_, k) => `photo ${k + 1}.png`).sort());
    for (let i = 1; i <= 50; i++) {
      const { data } = await sharp(path.join(out, `photo ${i}.png`)).raw().toBuffer({ resolveWithObject: true });
      expect([...data.subarray(0, 3)]).toEqual([i, 2 * i, 3 * i]);
    }
    // The history lists every image's output, each under its branch named by its file.
    const entry = (await (await server.api(`/api/history/${second.prompt_id}`)).json()) as HistoryEntry;
    expect(Object.keys(entry.outputs).filter((id) => id.startsWith('3:'))).toHaveLength(50);
    expect(entry.branches?.['3:6']).toEqual({ of: '3', index: 6, label: 'photo 7.png' });
  }, 60_000);

  it('refuses a folder outside the inputs folder when queued', async () => {
    const res = await fetch(`${server.url}/api/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: { ...batch, '1': { class_type: 'LoadImageFolder', inputs: { folder: '../outputs' } } } }),
    });
    expect(res.status).toBe(400);
    const body = JSON.stringify(await res.json());
    expect(body).toMatch(/Load Images \(folder\): folder: folder \\"..\/outputs\\" must be a relative path/);
  });
});

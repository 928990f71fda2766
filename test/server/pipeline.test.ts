import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { buildWorkflow, EventRecorder, pngBytes, startTestServer, type TestServer } from './helpers.ts';

/** Load → Resize → Save, the smallest real restoration-shaped graph. */
const resizeWorkflow = (scale: number): Record<string, unknown> =>
  buildWorkflow([
    { id: 1, type: 'LoadImage', widgets: { image: 'photo.png' } },
    { id: 2, type: 'ImageResize', widgets: { mode: 'scale', scale, method: 'area' }, inputs: { image: [1, 0, 'IMAGE'] } },
    { id: 3, type: 'SaveImage', widgets: { filename_prefix: 'run/out', format: 'png' }, inputs: { image: [2, 0, 'IMAGE'] } },
  ]);

describe('queueing a workflow over HTTP with events over the websocket', () => {
  let server: TestServer;
  let ws: EventRecorder;

  beforeAll(async () => {
    server = await startTestServer();
    ws = await EventRecorder.connect(server.url);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
  });

  it('uploads a PNG into the inputs folder and lists it on Load Image', async () => {
    const res = await server.upload('photo.png', await pngBytes(64, 48));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: 'photo.png', subfolder: '', folder: 'inputs', width: 64, height: 48 });

    const nodes = (await (await server.api('/api/nodes')).json()) as { nodes: Array<{ id: string; widgets: Array<{ name: string; options?: string[] }> }> };
    const load = nodes.nodes.find((n) => n.id === 'LoadImage')!;
    expect(load.widgets.find((w) => w.name === 'image')!.options).toContain('photo.png');
  });

  it('sends status on connect, then the events of the run in order, and serves the output', async () => {
    expect(ws.messages[0]).toEqual({ type: 'status', queue_remaining: 0, running: null });

    const res = await server.postJson('/api/prompt', { workflow: resizeWorkflow(0.5), client_id: 'test' });
    expect(res.status).toBe(200);
    const { prompt_id, number } = (await res.json()) as { prompt_id: string; number: number };
    expect(typeof prompt_id).toBe('string');
    expect(number).toBe(1);
    expect(await ws.done(prompt_id)).toMatchObject({ status: 'success' });

    const seq = ws.of(prompt_id).filter((m) => m.type !== 'progress').map((m) => (m.type.startsWith('node_') && 'node_id' in m ? `${m.type}:${m.node_id}` : m.type));
    expect(seq).toEqual([
      'prompt_start',
      'cached',
      'node_start:1',
      'node_done:1',
      'node_start:2',
      'node_done:2',
      'node_start:3',
      'node_done:3',
      'prompt_done',
    ]);
    expect(ws.of(prompt_id)[0]).toMatchObject({ type: 'prompt_start', nodes: ['1', '2', '3'] });
    // Status events around the run tell the editor that something is and then is not running.
    expect(ws.messages.some((m) => m.type === 'status' && m.running === prompt_id)).toBe(true);

    const entry = (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
    expect(entry).toMatchObject({ status: 'success', executed: ['1', '2', '3'], cached: [], client_id: 'test' });
    const file = entry.outputs['3']![0]!;
    expect(file).toMatchObject({ folder: 'outputs', kind: 'image', width: 32, height: 24 });
    expect(file.filename).toMatch(/^run\/out_\d{5}_\.png$/);

    const view = await server.api(`/api/view?file=${encodeURIComponent(file.filename)}&folder=outputs`);
    expect(view.status).toBe(200);
    expect(view.headers.get('content-type')).toBe('image/png');
    expect(view.headers.get('x-content-type-options')).toBe('nosniff');
    const meta = await sharp(Buffer.from(await view.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([32, 24]);
  });

  it('re-runs only what changed: the loader comes from the cache', async () => {
    const res = await server.postJson('/api/prompt', { workflow: resizeWorkflow(0.25) });
    expect(res.status).toBe(200);
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    await ws.done(prompt_id);

    const entry = (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
    expect(entry.status).toBe('success');
    expect(entry.executed).toEqual(['2', '3']);
    expect(entry.cached).toEqual(['1']);
    expect(entry.outputs['3']![0]).toMatchObject({ width: 16, height: 12 });

    const events = ws.of(prompt_id);
    expect(events.find((m) => m.type === 'cached')).toMatchObject({ nodes: ['1'] });
    const started = events.flatMap((m) => (m.type === 'node_start' ? [m.node_id] : []));
    expect(started).toEqual(['2', '3']);
  });

  it('lists the queue and the history, and deletes history entries', async () => {
    expect(await (await server.api('/api/queue')).json()).toEqual({ running: null, pending: [] });
    const history = (await (await server.api('/api/history')).json()) as HistoryEntry[];
    expect(history).toHaveLength(2);
    const last = (await (await server.api('/api/history?max_items=1')).json()) as HistoryEntry[];
    expect(last.map((e) => e.id)).toEqual([history[1]!.id]);

    expect((await server.api(`/api/history/${history[0]!.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await server.api(`/api/history/${history[0]!.id}`)).status).toBe(404);
    expect((await server.api('/api/history/nope', { method: 'DELETE' })).status).toBe(404);
    expect(await (await server.api('/api/history', { method: 'DELETE' })).json()).toEqual({ deleted: 1 });
    expect(await (await server.api('/api/history')).json()).toEqual([]);
  });
});

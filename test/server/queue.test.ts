import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineNode } from '../../nodes/api/define.ts';
import { createImage } from '../../nodes/api/tensor.ts';
import { int } from '../../nodes/api/widgets.ts';
import type { ApiPrompt, HistoryEntry } from '../../server/engine/index.ts';
import { testNodes } from '../support/test-nodes.ts';
import { EventRecorder, startTestServer, type TestServer } from './helpers.ts';

/** Shows a grey preview of the given size, then waits so the preview arrives before the end. */
const TestPreview = defineNode({
  id: 'TestPreview',
  displayName: 'Test Preview',
  category: 'test',
  description: 'Sends one preview image.',
  output: true,
  inputs: {},
  widgets: { width: int({ default: 64, min: 1, max: 4096 }), height: int({ default: 32, min: 1, max: 4096 }) },
  outputs: {},
  async execute({ width, height }, ctx) {
    const image = createImage(1, 3, height, width);
    image.data.fill(0.5);
    ctx.preview(image);
    await new Promise((r) => setTimeout(r, 100));
    return {};
  },
});

/** slow (steps x ms) → output; `tag` makes each prompt's cache key unique. */
const slow = (steps: number, ms: number): ApiPrompt => ({
  '1': { class_type: 'TestSlow', inputs: { steps, ms } },
  '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } },
});

describe('the queue over HTTP', () => {
  let server: TestServer;
  let ws: EventRecorder;
  let uniq = 0;

  const submit = async (prompt: ApiPrompt, extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await server.postJson('/api/prompt', { prompt, ...extra });
    expect(res.status).toBe(200);
    return ((await res.json()) as { prompt_id: string }).prompt_id;
  };
  const history = async (id: string): Promise<HistoryEntry> => (await (await server.api(`/api/history/${id}`)).json()) as HistoryEntry;

  beforeAll(async () => {
    server = await startTestServer({}, [...testNodes, TestPreview]);
    ws = await EventRecorder.connect(server.url);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
  });

  it('records a node failing mid-queue with its id and runs the next prompt', async () => {
    const failing = await submit({
      '1': { class_type: 'TestSlow', inputs: { steps: 3, ms: 5 + uniq++ } },
      '2': { class_type: 'TestFail', inputs: { value: ['1', 0], fail: true } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] } },
    });
    const next = await submit({
      '1': { class_type: 'TestConst', inputs: { value: 4242 } },
      '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } },
    });
    expect(await ws.done(failing)).toMatchObject({ status: 'error' });
    expect(await ws.done(next)).toMatchObject({ status: 'success' });

    const failed = await history(failing);
    expect(failed.status).toBe('error');
    expect(failed.executed).toEqual(['1']);
    expect(failed.error).toMatchObject({ node_id: '2', node_type: 'TestFail', code: 'BAD_INPUT' });
    expect(failed.error!.message).toContain('Test Fail (#2)');
    expect(ws.of(failing).find((m) => m.type === 'error')).toMatchObject({ node_id: '2' });
    expect((await history(next)).status).toBe('success');
  });

  it('interrupts the running prompt', async () => {
    const id = await submit(slow(1000, 10 + uniq++));
    await ws.waitFor((m) => m.type === 'progress' && m.prompt_id === id);
    expect(await (await server.postJson('/api/interrupt', { prompt_id: 'someone-else' })).json()).toEqual({ interrupted: false });
    expect(await (await server.postJson('/api/interrupt', { prompt_id: id })).json()).toEqual({ interrupted: true });
    expect(await ws.done(id)).toMatchObject({ status: 'interrupted' });
    expect(ws.of(id).find((m) => m.type === 'interrupted')).toMatchObject({ node_id: '1' });
    expect((await history(id)).status).toBe('interrupted');

    // And the queue goes on.
    const after = await submit(slow(2, 1 + uniq++));
    expect(await ws.done(after)).toMatchObject({ status: 'success' });
  });

  it('cancels pending prompts one by one or all at once', async () => {
    const running = await submit(slow(1000, 10 + uniq++));
    const a = await submit(slow(1, 100 + uniq++));
    const b = await submit(slow(1, 100 + uniq++));
    const c = await submit(slow(1, 100 + uniq++), { front: true });
    const queue = (await (await server.api('/api/queue')).json()) as { running: { id: string } | null; pending: Array<{ id: string }> };
    expect(queue.pending.map((p) => p.id)).toEqual([c, a, b]);

    expect((await server.api(`/api/queue/${a}`, { method: 'DELETE' })).status).toBe(200);
    expect((await history(a)).status).toBe('cancelled');
    expect((await server.api(`/api/queue/${a}`, { method: 'DELETE' })).status).toBe(404);
    expect((await server.api(`/api/queue/${running}`, { method: 'DELETE' })).status).toBe(404);
    expect(await (await server.api('/api/queue', { method: 'DELETE' })).json()).toEqual({ cleared: 2 });
    expect((await history(b)).status).toBe('cancelled');

    expect(await (await server.api('/api/interrupt', { method: 'POST' })).json()).toEqual({ interrupted: true });
    expect(await ws.done(running)).toMatchObject({ status: 'interrupted' });
    expect(await (await server.api('/api/queue')).json()).toEqual({ running: null, pending: [] });
  });

  it('sends previews as binary frames', async () => {
    const id = await submit({ '1': { class_type: 'TestPreview', inputs: { width: 640, height: 320 } } });
    const preview = await ws.waitFor((m) => m.type === 'preview' && m.prompt_id === id);
    if (preview.type !== 'preview') throw new Error('unreachable');
    expect(preview).toMatchObject({ node_id: '1', format: 'jpeg', width: 512, height: 256 });
    const meta = await sharp(preview.bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 512, 256]);
    await ws.done(id);
  });

  it('answers 429 when the queue is full', async () => {
    const small = await startTestServer({ maxPending: 1 }, testNodes);
    try {
      const post = (prompt: ApiPrompt): Promise<Response> => small.postJson('/api/prompt', { prompt });
      const first = (await (await post(slow(1000, 10))).json()) as { prompt_id: string };
      // The first leaves the pending list as soon as it starts, before the answer comes back.
      expect(small.queue.list().running?.id).toBe(first.prompt_id);
      expect((await post(slow(1, 1))).status).toBe(200);
      const full = await post(slow(1, 2));
      expect(full.status).toBe(429);
      expect(await full.json()).toMatchObject({ error: { code: 'QUEUE_FULL' } });
    } finally {
      await small.close();
    }
  });
});

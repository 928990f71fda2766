/**
 * The websocket events and the history name the sweep branch of every node copy, with the
 * branch's values as its caption, so that a client labels branches from what the server ran, not
 * from a workflow that may have changed since (the editor did that before).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiPrompt, HistoryEntry } from '../../server/engine/index.ts';
import { faultNodes } from './fault-nodes.ts';
import { EventRecorder, startTestServer, submitPrompt, type TestServer } from './helpers.ts';

/** Grey square → slow pass-through (swept: steps x ms) → Save, copied per branch. */
const sweep: ApiPrompt = {
  '1': { class_type: 'TestSolid', inputs: { size: 8, value: 77 } },
  '2': { class_type: 'TestSlowImage', inputs: { image: ['1', 0], steps: 2, ms: 1 } },
  '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: 'branches/b' } },
  '4': { class_type: 'Sweep', inputs: { target: '2', x_widget: 'steps', x_values: '1:3', y_widget: 'ms', y_values: '0, 2' } },
};

describe('sweep branches over the wire', () => {
  let server: TestServer;
  let ws: EventRecorder;

  beforeAll(async () => {
    server = await startTestServer({ persist: false }, faultNodes);
    ws = await EventRecorder.connect(server.url);
  });
  afterAll(async () => {
    ws.close();
    await server?.close();
  });

  it('sends each copy with its branch: node, number and values; plain nodes without', async () => {
    const { prompt_id } = await submitPrompt(server.url, sweep);
    expect(await ws.done(prompt_id)).toMatchObject({ status: 'success' });
    const labels = ['steps=1, ms=0', 'steps=2, ms=0', 'steps=3, ms=0', 'steps=1, ms=2', 'steps=2, ms=2', 'steps=3, ms=2'];
    const events = ws.of(prompt_id) as Array<{ type: string; node_id?: string; branch?: unknown }>;
    for (const [type, id] of [['node_start', '2'], ['node_done', '2'], ['node_done', '3'], ['progress', '2']] as const) {
      const copies = events.filter((e) => e.type === type && e.node_id?.startsWith(`${id}:`));
      // Progress is throttled, but the last step of each branch always goes out.
      const byId = new Map(copies.map((e) => [e.node_id, e.branch]));
      expect([...byId.entries()].sort(), `${type} ${id}`).toEqual(labels.map((label, index) => [`${id}:${index}`, { of: id, index, label }]));
    }
    expect(events.filter((e) => e.node_id === '1').length).toBeGreaterThan(0);
    expect(events.filter((e) => e.node_id === '1' && 'branch' in e)).toEqual([]);

    const entry = (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
    expect(Object.keys(entry.branches!).sort()).toEqual([...labels.keys()].flatMap((k) => [`2:${k}`, `3:${k}`]).sort());
    expect(entry.branches!['3:4']).toEqual({ of: '3', index: 4, label: 'steps=2, ms=2' });
    expect(entry.outputs['3:4']).toHaveLength(1);
  });

  it('keeps the branches of a run that was all cached, and sends none for a prompt without a sweep', async () => {
    const again = await submitPrompt(server.url, sweep);
    expect(await ws.done(again.prompt_id)).toMatchObject({ status: 'success' });
    const entry = (await (await server.api(`/api/history/${again.prompt_id}`)).json()) as HistoryEntry;
    expect(entry.executed).toEqual([]);
    expect(entry.branches!['2:5']).toEqual({ of: '2', index: 5, label: 'steps=3, ms=2' });
    // Cached copies with files are announced with their branch too.
    const cachedDone = (ws.of(again.prompt_id) as Array<{ type: string; node_id?: string; cached?: boolean; branch?: unknown }>).filter((e) => e.type === 'node_done' && e.node_id?.startsWith('3:'));
    expect(cachedDone).toHaveLength(6);
    expect(cachedDone.every((e) => e.cached === true && e.branch !== undefined)).toBe(true);

    const plain = { '1': sweep['1']!, '2': sweep['2']!, '3': sweep['3']! };
    const { prompt_id } = await submitPrompt(server.url, plain);
    expect(await ws.done(prompt_id)).toMatchObject({ status: 'success' });
    const plainEntry = (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
    expect(plainEntry).not.toHaveProperty('branches');
    expect(ws.of(prompt_id).filter((e) => 'branch' in e)).toEqual([]);
  });
});

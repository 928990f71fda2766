/**
 * GET /api/history without max_items (or limit) sends the newest 200 entries, not the whole history
 * (which holds up to historyLimit entries, each with its prompt and workflow); max_items asks for
 * more, up to what the history holds; offset and limit page through all of it, which is how
 * `npm run load` reads its 500 results (tools/read-history.ts). Entries are made cheaply: prompts
 * queued behind a slow one and then cancelled are recorded in the history at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiPrompt, HistoryEntry } from '../../server/engine/index.ts';
import { DEFAULT_HISTORY_ITEMS } from '../../server/http/history.ts';
import { testNodes } from '../support/test-nodes.ts';
import { readAllHistory } from '../../tools/read-history.ts';
import { startTestServer, submitPrompt, type TestServer } from './helpers.ts';

const HISTORY_LIMIT = 260;
const slow = (steps: number): ApiPrompt => ({
  '1': { class_type: 'TestSlow', inputs: { steps, ms: 20 } },
  '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } },
});

describe('the history list', () => {
  let server: TestServer;
  const ids: string[] = [];

  beforeAll(async () => {
    server = await startTestServer({ historyLimit: HISTORY_LIMIT, persist: false }, testNodes);
    // One slow prompt runs (up to 10 s, interrupted below) while 300 wait behind it...
    const running = await submitPrompt(server.url, slow(500));
    for (let i = 0; i < 300; i++) ids.push((await submitPrompt(server.url, slow(1000 + i))).prompt_id);
    // ...and are cancelled: 300 history entries, of which the history keeps the newest 260.
    expect(await (await server.api('/api/queue', { method: 'DELETE' })).json()).toEqual({ cleared: 300 });
    await server.postJson('/api/interrupt', { prompt_id: running.prompt_id });
    await server.queue.whenDone(running.prompt_id);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  const list = async (query = ''): Promise<{ status: number; total: string | null; body: unknown }> => {
    const res = await server.api(`/api/history${query}`);
    return { status: res.status, total: res.headers.get('x-total-count'), body: await res.json() };
  };

  it('sends the newest 200 entries by default, oldest first, and says how many there are', async () => {
    expect(DEFAULT_HISTORY_ITEMS).toBe(200);
    const { status, total, body } = await list();
    expect(status).toBe(200);
    expect(total).toBe(String(HISTORY_LIMIT));
    const entries = body as HistoryEntry[];
    expect(entries).toHaveLength(200);
    // The interrupted prompt finished last, so it is the newest; before it, the newest 199 cancelled ones.
    expect(entries.at(-1)!.status).toBe('interrupted');
    expect(entries.slice(0, -1).map((e) => e.id)).toEqual(ids.slice(-199));
  });

  it('sends more when max_items asks, up to everything the history holds', async () => {
    const more = (await list('?max_items=250')).body as HistoryEntry[];
    expect(more).toHaveLength(250);
    expect(more.slice(0, -1).map((e) => e.id)).toEqual(ids.slice(-249));
    // Past the history's limit there is nothing more to send: every entry it holds.
    const all = (await list('?max_items=100000')).body as HistoryEntry[];
    expect(all).toHaveLength(HISTORY_LIMIT);
    expect(all[0]!.id).toBe(ids[300 - (HISTORY_LIMIT - 1)]);
    expect((await list('?max_items=3')).body).toHaveLength(3);
    expect((await list('?max_items=0')).body).toEqual([]);
  });

  it('pages through the whole history with offset (from the oldest) and limit, each page saying the total', async () => {
    const all = (await list('?max_items=100000')).body as HistoryEntry[];
    const first = await list('?offset=0&limit=10');
    expect(first.status).toBe(200);
    expect(first.total).toBe(String(HISTORY_LIMIT));
    expect((first.body as HistoryEntry[]).map((e) => e.id)).toEqual(all.slice(0, 10).map((e) => e.id));
    // Without limit a page has 200 entries; the last page is short; past the end there is nothing.
    expect((await list('?offset=0')).body).toHaveLength(200);
    const tail = (await list('?offset=250')).body as HistoryEntry[];
    expect(tail.map((e) => e.id)).toEqual(all.slice(250).map((e) => e.id));
    expect(tail.at(-1)!.status).toBe('interrupted');
    expect((await list(`?offset=${HISTORY_LIMIT}`)).body).toEqual([]);
    expect((await list('?offset=100000&limit=5')).body).toEqual([]);
    // Page by page, everything, in order, once.
    const paged: HistoryEntry[] = [];
    for (let offset = 0; offset < HISTORY_LIMIT; offset += 70) paged.push(...((await list(`?offset=${offset}&limit=70`)).body as HistoryEntry[]));
    expect(paged.map((e) => e.id)).toEqual(all.map((e) => e.id));
    // limit alone is max_items: the newest N.
    expect(((await list('?limit=5')).body as HistoryEntry[]).map((e) => e.id)).toEqual(all.slice(-5).map((e) => e.id));
  });

  it('refuses an offset or limit that is not a non-negative integer, and limit with max_items', async () => {
    for (const name of ['offset', 'limit']) {
      for (const bad of ['-1', '1.5', 'x', '']) {
        const { status, body } = await list(`?${name}=${encodeURIComponent(bad)}`);
        expect(status, `${name}=${bad}`).toBe(400);
        expect(JSON.stringify(body)).toContain(`${name} must be a non-negative integer`);
      }
    }
    const both = await list('?limit=5&max_items=5');
    expect(both.status).toBe(400);
    expect(JSON.stringify(both.body)).toContain('give limit or max_items, not both');
  });

  it('refuses a max_items that is not a non-negative integer', async () => {
    for (const bad of ['-1', '1.5', 'ten', '', '1e3']) {
      const { status, body } = await list(`?max_items=${encodeURIComponent(bad)}`);
      expect(status, bad).toBe(400);
      expect(JSON.stringify(body)).toContain('max_items must be a non-negative integer');
    }
  });
});

describe('reading the whole history (npm run load)', () => {
  let server: TestServer;
  const ids: string[] = [];

  beforeAll(async () => {
    server = await startTestServer({ persist: false }, testNodes);
    // 500 entries, as in `npm run load`: one slow prompt interrupted, 499 cancelled behind it.
    const running = await submitPrompt(server.url, slow(500));
    for (let i = 0; i < 499; i++) ids.push((await submitPrompt(server.url, slow(1000 + i))).prompt_id);
    await server.api('/api/queue', { method: 'DELETE' });
    await server.postJson('/api/interrupt', { prompt_id: running.prompt_id });
    await server.queue.whenDone(running.prompt_id);
    ids.push(running.prompt_id);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  });

  it('reads all 500 entries page by page, where GET /api/history alone sends the newest 200', async () => {
    const res = await server.api('/api/history');
    expect(res.headers.get('x-total-count')).toBe('500');
    expect((await res.json()) as unknown[]).toHaveLength(DEFAULT_HISTORY_ITEMS);
    const all = await readAllHistory(server.url);
    expect(all.map((e) => e.id)).toEqual(ids);
    // Any page size, even one that divides nothing.
    expect((await readAllHistory(server.url, {}, 7)).map((e) => e.id)).toEqual(ids);
  });
});

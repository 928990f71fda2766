/**
 * Scale-out on BullMQ + Redis with real parts: a redis-server, `serve --queue` and `worker`
 * processes of the CLI. Waits are on events (websocket messages, process output), bounded by the
 * test's timeout, never on fixed sleeps.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredHistoryEntry } from '../../server/engine/journal.ts';
import type { ServerMessage } from '../../server/ws/protocol.ts';
import { EventRecorder, submitPrompt } from '../server/helpers.ts';
import { cheapPrompt, listTree, startRedis, startStudio, startWorkerProcess, type Proc, type TestRedis } from './harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-scale-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function redis(opts: Parameters<typeof startRedis>[0] = {}): Promise<TestRedis> {
  const r = await startRedis(opts);
  cleanups.push(() => r.stop());
  return r;
}

function track<T extends Proc>(p: T): T {
  cleanups.push(() => p.kill());
  return p;
}

async function history(url: string): Promise<StoredHistoryEntry[]> {
  return (await (await fetch(`${url}/api/history`)).json()) as StoredHistoryEntry[];
}

/** Resolves once the server's history holds `ids` (polled on each queue status message; bounded by the test's timeout). */
async function historyHolds(url: string, ws: EventRecorder, ids: string[]): Promise<StoredHistoryEntry[]> {
  for (;;) {
    // Counted before asking: a message that overtakes the answer still counts.
    const seen = ws.messages.length;
    const entries = await history(url);
    const have = new Set(entries.map((e) => e.id));
    if (ids.every((id) => have.has(id))) return entries;
    await ws.waitFor((m) => ws.messages.indexOf(m) >= seen && (m.type === 'status' || m.type === 'prompt_done'));
  }
}

describe('scale-out on BullMQ + Redis', () => {
  it('3 workers, 100 prompts, one worker killed mid-prompt: each done exactly once, history complete, every event delivered', { timeout: 240_000 }, async () => {
    const r = await redis();
    const data = path.join(tempRoot(), 'data');
    const server = track(await startStudio(r.url, data));
    const names = ['w1', 'w2', 'w3'];
    const workers = await Promise.all(names.map(async (name) => track(await startWorkerProcess(r.url, data, name))));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());

    // Prompt 15 is slow (4 s): the worker that starts it is killed (SIGKILL: no shutdown code
    // runs) while it runs it, however late the event reaches this test.
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push((await submitPrompt(server.url, i === 15 ? cheapPrompt(i, 80, 50) : cheapPrompt(i))).prompt_id);
    const killed = ids[15]!;
    const start = (await ws.waitFor((m) => m.type === 'prompt_start' && m.prompt_id === killed)) as Extract<ServerMessage, { type: 'prompt_start' }>;
    const victimWorker = start.worker!;
    await workers[names.indexOf(victimWorker)]!.kill('SIGKILL');
    await Promise.all(ids.map((id) => ws.done(id)));
    const entries = await historyHolds(server.url, ws, ids);

    // Exactly once: one history entry per prompt, all successful, each with one file of its own.
    expect(entries).toHaveLength(100);
    expect(new Set(entries.map((e) => e.id))).toEqual(new Set(ids));
    expect(entries.filter((e) => e.status !== 'success').map((e) => [e.id, e.status, e.error?.message])).toEqual([]);
    const files = entries.map((e) => e.outputs['3']?.map((f) => f.filename) ?? []);
    expect(files.every((f) => f.length === 1)).toBe(true);
    const saved = files.flat();
    expect(new Set(saved).size).toBe(100);
    // A retried prompt left no second file, and no scratch file came back.
    expect(listTree(path.join(data, 'outputs'))).toEqual([...saved].sort());

    // The history says who ran what: the killed prompt twice, first by w1, then by another worker.
    const victim = entries.find((e) => e.id === killed)!;
    expect(victim.attempts).toBe(2);
    expect(victim.workers![0]).toBe(victimWorker);
    expect(victim.worker).not.toBe(victimWorker);
    for (const e of entries) {
      expect(e.worker).toMatch(/^w[123]$/);
      expect(e.workers!.at(-1)).toBe(e.worker);
    }
    expect(new Set(entries.map((e) => e.worker)).size).toBeGreaterThanOrEqual(2);

    // Every event of each prompt's finishing run reached the client, in order, and one prompt_done.
    for (const e of entries) {
      const events = ws.of(e.id);
      const lastStart = events.findLastIndex((m) => m.type === 'prompt_start');
      const run = events.slice(lastStart).map((m) => (m.type === 'node_start' || m.type === 'node_done' ? `${m.type}:${m.node_id}` : m.type));
      expect(run.filter((t) => t !== 'progress')).toEqual(['prompt_start', 'cached', 'node_start:1', 'node_done:1', 'node_start:2', 'node_done:2', 'node_start:3', 'node_done:3', 'prompt_done']);
      expect(run.filter((t) => t === 'progress').length).toBeGreaterThan(0);
      const save = events.find((m) => m.type === 'node_done' && m.node_id === '3') as Extract<ServerMessage, { type: 'node_done' }>;
      expect(save.files.map((f) => f.filename)).toEqual(e.outputs['3']!.map((f) => f.filename));
      expect(events.filter((m) => m.type === 'prompt_done')).toHaveLength(1);
    }
  });

  it('a server killed mid-queue and started again loses nothing: the queue waits in Redis, finished work is recorded', { timeout: 240_000 }, async () => {
    const r = await redis();
    const data = path.join(tempRoot(), 'data');
    let server = await startStudio(r.url, data);
    const port = Number(new URL(server.url).port);
    const workers = await Promise.all(['a', 'b'].map(async (name) => track(await startWorkerProcess(r.url, data, name))));
    let ws = await EventRecorder.connect(server.url);

    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await submitPrompt(server.url, cheapPrompt(i, 4, 25))).prompt_id);
    let doneCount = 0;
    await ws.waitFor((m) => m.type === 'prompt_done' && ++doneCount >= 5);
    ws.close();
    await server.kill('SIGKILL');
    // The workers go on meanwhile; their uploads wait for the server. It comes back on its port.
    server = track(await startStudio(r.url, data, port));
    ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());

    const entries = await historyHolds(server.url, ws, ids);
    expect(entries).toHaveLength(40);
    expect(entries.filter((e) => e.status !== 'success').map((e) => [e.id, e.status, e.error?.message])).toEqual([]);
    const fileNames = entries.flatMap((e) => e.outputs['3']!.map((f) => f.filename));
    expect(new Set(fileNames).size).toBe(40);
    expect(listTree(path.join(data, 'outputs'))).toEqual([...fileNames].sort());
    const queue = (await (await fetch(`${server.url}/api/queue`)).json()) as { running: unknown; pending: unknown[] };
    expect(queue).toEqual({ running: null, pending: [] });
    expect(workers).toHaveLength(2);
  });
});

describe('Redis going away', () => {
  it('keeps the server up: /api/system says why, prompts are refused with 503, and all works again once Redis is back', { timeout: 120_000 }, async () => {
    const r = await redis();
    const data = path.join(tempRoot(), 'data');
    const server = track(await startStudio(r.url, data));
    await r.stop({ keep: true });

    const system = async (): Promise<{ connected: boolean; error: string | null }> =>
      ((await (await fetch(`${server.url}/api/system`)).json()) as { queue: { connected: boolean; error: string | null } }).queue;
    const until = async (connected: boolean): Promise<void> => {
      // Bounded by the test's timeout; the server notices a closed socket at once and reconnects within 2 s.
      while ((await system()).connected !== connected) await new Promise((resolve) => setTimeout(resolve, 100));
    };
    await until(false);
    expect((await system()).error).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
    const refused = await fetch(`${server.url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: cheapPrompt(1, 1, 0) }) });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/Redis .* is unreachable/);
    expect((await fetch(`${server.url}/api/history`)).status).toBe(200);

    const again = await redis({ port: r.port, dir: r.dir });
    await until(true);
    const worker = track(await startWorkerProcess(again.url, data, 'late'));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    const { prompt_id } = await submitPrompt(server.url, cheapPrompt(2, 1, 0));
    await ws.done(prompt_id);
    const [entry] = await historyHolds(server.url, ws, [prompt_id]);
    expect(entry!.status).toBe('success');
    expect(worker.first).toContain('"late"');
  });
});

describe('interrupt and cancel with workers', () => {
  it('POST /api/interrupt stops the prompt on its worker; DELETE /api/queue/:id removes a waiting one', { timeout: 120_000 }, async () => {
    const r = await redis();
    const data = path.join(tempRoot(), 'data');
    const server = track(await startStudio(r.url, data));
    track(await startWorkerProcess(r.url, data, 'solo'));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    const slow = (await submitPrompt(server.url, cheapPrompt(1, 2000, 50))).prompt_id;
    const waiting = (await submitPrompt(server.url, cheapPrompt(2))).prompt_id;
    await ws.waitFor((m) => m.type === 'progress' && m.prompt_id === slow);
    const cancel = await fetch(`${server.url}/api/queue/${waiting}`, { method: 'DELETE' });
    expect(cancel.status).toBe(200);
    // Recorded as cancelled once Redis removed it (so the worker, freed below, cannot take it).
    await historyHolds(server.url, ws, [waiting]);
    const interrupt = await fetch(`${server.url}/api/interrupt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt_id: slow }) });
    expect(await interrupt.json()).toEqual({ interrupted: true });
    expect(await ws.done(slow)).toMatchObject({ status: 'interrupted' });
    const entries = await historyHolds(server.url, ws, [slow, waiting]);
    expect(Object.fromEntries(entries.map((e) => [e.id, e.status]))).toEqual({ [slow]: 'interrupted', [waiting]: 'cancelled' });
    expect(ws.of(waiting).filter((m) => m.type === 'prompt_start')).toEqual([]);
  });
});

describe('Redis restarted', () => {
  it('with its append-only file, a Redis killed with prompts queued keeps them: they run once it is back', { timeout: 120_000 }, async () => {
    const r = await redis({ persist: true });
    const data = path.join(tempRoot(), 'data');
    const server = track(await startStudio(r.url, data));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await submitPrompt(server.url, cheapPrompt(i, 1, 0))).prompt_id);
    await r.stop({ keep: true });
    const again = await redis({ port: r.port, dir: r.dir, persist: true });
    track(await startWorkerProcess(again.url, data, 'after'));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    const entries = await historyHolds(server.url, ws, ids);
    expect(entries.map((e) => [e.status, e.worker])).toEqual(ids.map(() => ['success', 'after']));
  });
});

describe('routing', () => {
  it('a prompt that loads a model pack goes to the worker that has it loaded; others hand it back', { timeout: 120_000 }, async () => {
    const r = await redis();
    const data = path.join(tempRoot(), 'data');
    // A pack the workers "load": Load SUPIR Model validates by its manifest; left unlinked, it never runs.
    fs.mkdirSync(path.join(data, 'models', 'fake-pack'), { recursive: true });
    fs.writeFileSync(path.join(data, 'models', 'fake-pack', 'manifest.json'), '{}');
    const withPack = (i: number): Record<string, unknown> => ({ ...cheapPrompt(i, 2, 10), '9': { class_type: 'LoadSupirModel', inputs: { pack: 'fake-pack', provider: 'cpu' } } });
    const server = track(await startStudio(r.url, data));
    await Promise.all(['r1', 'r2'].map(async (name) => track(await startWorkerProcess(r.url, data, name))));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());

    const first = (await submitPrompt(server.url, withPack(0))).prompt_id;
    const [entry] = await historyHolds(server.url, ws, [first]);
    const holder = entry!.worker!;
    // Once the server has read the holder's announcement (every 2 s), prompts needing the pack go to it.
    type System = { queue: { workers: Array<{ id: string; packs: string[] }> } };
    const announced = async (): Promise<boolean> => ((await (await fetch(`${server.url}/api/system`)).json()) as System).queue.workers.some((w) => w.id === holder && w.packs.includes('LoadSupirModel:fake-pack'));
    while (!(await announced())) await ws.waitFor(() => false, 250).catch(() => undefined);
    const ids: string[] = [];
    for (let i = 1; i <= 8; i++) ids.push((await submitPrompt(server.url, withPack(i))).prompt_id);
    const entries = (await historyHolds(server.url, ws, ids)).filter((e) => ids.includes(e.id));
    expect(entries.map((e) => [e.status, e.worker, e.attempts])).toEqual(ids.map(() => ['success', holder, 1]));
  });
});

describe('stopping a worker', () => {
  it('SIGTERM lets the running prompt finish on that worker, then the worker leaves', { timeout: 120_000 }, async () => {
    const r = await redis();
    const data = path.join(tempRoot(), 'data');
    const server = track(await startStudio(r.url, data));
    const worker = track(await startWorkerProcess(r.url, data, 'polite'));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    const id = (await submitPrompt(server.url, cheapPrompt(1, 20, 50))).prompt_id;
    await ws.waitFor((m) => m.type === 'prompt_start' && m.prompt_id === id);
    const exited = new Promise<number | null>((resolve) => worker.proc.once('exit', (code) => resolve(code)));
    worker.proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    const [entry] = await historyHolds(server.url, ws, [id]);
    expect(entry).toMatchObject({ status: 'success', worker: 'polite', attempts: 1 });
    // Its announcement is gone at once (the server's list follows within 2 s).
    const client = new Redis(r.url);
    cleanups.push(() => client.disconnect());
    expect(await client.exists('supir:worker:polite')).toBe(0);
  });
});

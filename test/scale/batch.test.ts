/**
 * Batches with `serve --queue` (real redis-server, real worker processes): each image is a job of
 * its own (a BullMQ flow under the batch prompt), so workers share a batch, a killed worker's image
 * runs again elsewhere without leaving a second file, and the server merges it all into one
 * history entry and one event stream. Queued again, a batch whose outputs the server's outputs
 * folder holds runs nothing. Waits are on events, bounded by the test's timeout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StoredHistoryEntry } from '../../server/engine/journal.ts';
import type { ServerMessage } from '../../server/ws/protocol.ts';
import { EventRecorder, submitPrompt } from '../server/helpers.ts';
import { cheapPrompt, listTree, startRedis, startStudio, startWorkerProcess, type Proc } from './harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track<T extends Proc>(p: T): T {
  cleanups.push(() => p.kill());
  return p;
}

const IMAGES = 24;

/**
 * Load Images (folder) → a slow pass-through (5 steps of 200 ms: long enough that the kill, sent
 * within a poll of the announcement that names the image, lands in
 * the middle of an image) → Save Image named after each scan. The number of steps comes from an
 * Integer node that depends on no image: it runs once per worker, and is reported once.
 */
const batch = {
  '1': { class_type: 'LoadImageFolder', inputs: { folder: 'scans', pattern: '*.png', sort: 'name', start: 0, limit: 0 } },
  '2': { class_type: 'PrimitiveInt', inputs: { value: 5 } },
  '3': { class_type: 'TestSlowImage', inputs: { image: ['1', 0], steps: ['2', 0], ms: 200 } },
  '4': { class_type: 'SaveImage', inputs: { image: ['3', 0], filename_prefix: 'restored/{name}', format: 'png', quality: 95 } },
};

type Batch = Extract<ServerMessage, { type: 'batch' }>;

async function entryOf(url: string, id: string): Promise<StoredHistoryEntry> {
  return (await (await fetch(`${url}/api/history/${id}`)).json()) as StoredHistoryEntry;
}

describe('a batch on the scale-out queue', () => {
  it('24 images on 3 workers, one killed mid-image: every output once, one history entry, per-image events; queued again, nothing runs', { timeout: 240_000 }, async () => {
    const r = await startRedis();
    cleanups.push(() => r.stop());
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-scale-batch-'));
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const data = path.join(root, 'data');
    const scans = path.join(data, 'inputs', 'scans');
    fs.mkdirSync(scans, { recursive: true });
    for (let i = 1; i <= IMAGES; i++) {
      await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i * 10, g: 255 - i * 10, b: 100 } } }).png().toFile(path.join(scans, `scan_${i}.png`));
    }
    const server = track(await startStudio(r.url, data));
    const names = ['w1', 'w2', 'w3'];
    const workers = await Promise.all(names.map(async (name) => track(await startWorkerProcess(r.url, data, name))));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    const redis = new Redis(r.url);
    cleanups.push(() => redis.disconnect());

    const { prompt_id: id } = await submitPrompt(server.url, batch);
    // w1 is killed (SIGKILL: no shutdown code runs) while it runs an image, as its announcement says.
    let victim: string | null = null;
    while (victim === null) {
      const announced = await redis.get('supir:worker:w1');
      const running = announced ? (JSON.parse(announced) as { running: string | null }).running : null;
      if (running?.startsWith(`${id}.i`)) victim = running;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await workers[0]!.kill('SIGKILL');
    const victimIndex = Number(victim.slice(`${id}.i`.length));

    expect(await ws.done(id)).toMatchObject({ status: 'success' });
    const entry = await entryOf(server.url, id);
    expect(entry.status).toBe('success');
    expect(entry.error).toBeNull();

    // Every image's output exactly once, under its own name; no `-2` copy, no scratch file.
    const expected = Array.from({ length: IMAGES }, (_, k) => `restored/scan_${k + 1}.png`).sort();
    expect(listTree(path.join(data, 'outputs'))).toEqual(expected);
    const outputs = Object.entries(entry.outputs).filter(([node]) => node.startsWith('4:'));
    expect(outputs).toHaveLength(IMAGES);
    expect(outputs.flatMap(([, files]) => files.map((f) => f.filename)).sort()).toEqual(expected);
    for (let k = 0; k < IMAGES; k++) {
      const { data: pixels } = await sharp(path.join(data, 'outputs', 'restored', `scan_${k + 1}.png`)).raw().toBuffer({ resolveWithObject: true });
      expect([...pixels.subarray(0, 3)]).toEqual([(k + 1) * 10, 255 - (k + 1) * 10, 100]);
    }

    // The history entry: every image done, the killed one run twice (by w1, then by another).
    expect(entry.batch).toMatchObject({ node: '1', total: IMAGES, done: IMAGES, resumed: 0, failed: 0 });
    const items = entry.batch!.items;
    expect(items.map((i) => [i.index, i.status, i.files.map((f) => f.filename)])).toEqual(expected.map((_, k) => [k, 'done', [`restored/scan_${k + 1}.png`]]));
    expect(items[victimIndex]!.attempts).toBe(2);
    expect(items[victimIndex]!.worker).not.toBe('w1');
    expect(new Set(items.map((i) => i.worker)).size).toBeGreaterThanOrEqual(2);
    expect(entry.workers).toContain('w1');
    expect(entry.attempts).toBe(IMAGES + 1);
    expect(entry.branches?.['4:6']).toEqual({ of: '4', index: 6, label: 'scan_7.png' });

    // The client saw one prompt, per-image progress with an estimate, every image's save.
    const events = ws.of(id);
    expect(events.filter((m) => m.type === 'prompt_start')).toHaveLength(1);
    expect(events.filter((m) => m.type === 'prompt_done')).toHaveLength(1);
    const progress = events.filter((m): m is Batch => m.type === 'batch');
    expect(progress.length).toBeGreaterThanOrEqual(IMAGES);
    expect(progress.at(-1)).toMatchObject({ total: IMAGES, done: IMAGES, resumed: 0, failed: 0, running: null });
    expect(progress.some((m) => m.eta_ms !== undefined && m.done < IMAGES)).toBe(true);
    expect(progress.map((m) => m.done)).toEqual([...progress.map((m) => m.done)].sort((a, b) => a - b));
    const saves = new Set(events.flatMap((m) => (m.type === 'node_done' && m.node_id.startsWith('4:') && !m.cached ? [m.node_id] : [])));
    expect(saves.size).toBe(IMAGES);
    // The Integer node belongs to no image: reported once, whichever worker ran it first.
    expect(events.filter((m) => m.type === 'node_done' && m.node_id === '2')).toHaveLength(1);

    // Queued again: the server finds every output in its outputs folder and queues no image.
    const mtimes = expected.map((f) => fs.statSync(path.join(data, 'outputs', f)).mtimeMs);
    const { prompt_id: again } = await submitPrompt(server.url, batch);
    expect(await ws.done(again)).toMatchObject({ status: 'success' });
    const second = await entryOf(server.url, again);
    expect(second.batch).toMatchObject({ total: IMAGES, done: 0, resumed: IMAGES, failed: 0 });
    expect(second.executed).toEqual([]);
    expect(second.workers).toBeUndefined();
    expect(Object.keys(second.outputs).filter((node) => node.startsWith('4:'))).toHaveLength(IMAGES);
    const rerun = ws.of(again);
    expect(rerun.filter((m) => m.type === 'node_start')).toEqual([]);
    expect(rerun.filter((m): m is Batch => m.type === 'batch').at(-1)).toMatchObject({ total: IMAGES, done: 0, resumed: IMAGES, running: null });
    expect(listTree(path.join(data, 'outputs'))).toEqual(expected);
    expect(expected.map((f) => fs.statSync(path.join(data, 'outputs', f)).mtimeMs)).toEqual(mtimes);
    // Nothing of either batch stays in Redis once recorded (removed just after the entry is on disk).
    await vi.waitFor(async () => expect([...(await redis.keys('supir:prompts:*.i*')), ...(await redis.keys('supir:batches:*-*'))]).toEqual([]), { timeout: 10_000 });
  });

  it('interrupted, its images not started are passed over; queued again, only the images without their file run', { timeout: 180_000 }, async () => {
    const r = await startRedis();
    cleanups.push(() => r.stop());
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-scale-batch-'));
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const data = path.join(root, 'data');
    const scans = path.join(data, 'inputs', 'scans');
    fs.mkdirSync(scans, { recursive: true });
    for (let i = 1; i <= 20; i++) {
      await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: i, g: i, b: i } } }).png().toFile(path.join(scans, `scan_${i}.png`));
    }
    // With an output that belongs to no image (a counter-named Save of a constant image): it runs once per run (or is cached).
    const prompt = {
      ...batch,
      '5': { class_type: 'TestSolid', inputs: { size: 8, value: 3 } },
      '6': { class_type: 'SaveImage', inputs: { image: ['5', 0], filename_prefix: 'shared/solid', format: 'png', quality: 95 } },
    };
    const server = track(await startStudio(r.url, data));
    await Promise.all(['a', 'b'].map(async (name) => track(await startWorkerProcess(r.url, data, name))));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());

    const { prompt_id: first } = await submitPrompt(server.url, prompt);
    await ws.waitFor((m) => m.type === 'batch' && m.prompt_id === first && m.done >= 4);
    const interrupt = await fetch(`${server.url}/api/interrupt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt_id: first }) });
    expect(await interrupt.json()).toEqual({ interrupted: true });
    expect(await ws.done(first)).toMatchObject({ status: 'interrupted' });
    const stopped = await entryOf(server.url, first);
    expect(stopped.status).toBe('interrupted');
    const done = stopped.batch!.done;
    expect(done).toBeGreaterThanOrEqual(4);
    expect(done).toBeLessThan(20);
    expect(stopped.batch!.failed).toBe(0);
    expect(new Set(stopped.batch!.items.map((i) => i.status))).toEqual(new Set(['done', 'not run']));
    const restored = (): string[] => listTree(path.join(data, 'outputs', 'restored'));
    expect(restored()).toHaveLength(done);
    expect(listTree(path.join(data, 'outputs', 'shared'))).toEqual(['solid_00001_.png']);
    expect(ws.of(first).filter((m) => m.type === 'interrupted')).toHaveLength(1);

    // One saved image deleted since: it runs again with those never run; the others are resumed.
    const gone = restored()[0]!;
    fs.rmSync(path.join(data, 'outputs', 'restored', gone));
    const { prompt_id: second } = await submitPrompt(server.url, prompt);
    expect(await ws.done(second)).toMatchObject({ status: 'success' });
    const entry = await entryOf(server.url, second);
    expect(entry.batch).toMatchObject({ total: 20, resumed: done - 1, done: 21 - done, failed: 0 });
    const ran = entry.batch!.items.filter((i) => i.status === 'done').map((i) => i.source);
    expect(ran).toContain(gone);
    expect(restored()).toEqual(Array.from({ length: 20 }, (_, k) => `scan_${k + 1}.png`).sort());
    // The output of no image ran once more, or came from the cache of the worker that ran it before.
    const shared = listTree(path.join(data, 'outputs', 'shared'));
    expect([['solid_00001_.png'], ['solid_00001_.png', 'solid_00002_.png']]).toContainEqual(shared);
    expect(entry.outputs['6']!.map((f) => f.filename)).toEqual([`shared/${shared.at(-1)}`]);
    const started = ws.of(second).flatMap((m) => (m.type === 'node_start' && m.node_id.startsWith('4:') ? [m.node_id] : []));
    expect(started).toHaveLength(21 - done);
  });

  it('a server killed mid-batch and started again records the whole batch; a waiting batch is cancelled with its images', { timeout: 180_000 }, async () => {
    const r = await startRedis();
    cleanups.push(() => r.stop());
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-scale-batch-'));
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const data = path.join(root, 'data');
    const scans = path.join(data, 'inputs', 'scans');
    fs.mkdirSync(scans, { recursive: true });
    for (let i = 1; i <= 20; i++) {
      await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: i, g: 0, b: 0 } } }).png().toFile(path.join(scans, `scan_${i}.png`));
    }
    let server = await startStudio(r.url, data);
    const port = Number(new URL(server.url).port);
    await Promise.all(['x', 'y'].map(async (name) => track(await startWorkerProcess(r.url, data, name))));
    let ws = await EventRecorder.connect(server.url);
    const { prompt_id: id } = await submitPrompt(server.url, batch);
    await ws.waitFor((m) => m.type === 'batch' && m.prompt_id === id && m.done >= 3);
    ws.close();
    await server.kill('SIGKILL');
    // The workers go on meanwhile (their uploads wait for the server); it comes back on its port.
    server = track(await startStudio(r.url, data, port));
    ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    let entry: StoredHistoryEntry | undefined;
    await vi.waitFor(
      async () => {
        entry = ((await (await fetch(`${server.url}/api/history`)).json()) as StoredHistoryEntry[]).find((e) => e.id === id);
        expect(entry).toBeDefined();
      },
      { timeout: 120_000, interval: 200 },
    );
    expect(entry!.status).toBe('success');
    expect(entry!.batch).toMatchObject({ total: 20, done: 20, resumed: 0, failed: 0 });
    const expected = Array.from({ length: 20 }, (_, k) => `restored/scan_${k + 1}.png`).sort();
    expect(listTree(path.join(data, 'outputs'))).toEqual(expected);
    expect(Object.values(entry!.outputs).flat().map((f) => f.filename).sort()).toEqual(expected);

    // A batch still waiting (the workers are busy with a slow prompt) is cancelled whole: none of its images runs.
    const slow = (await submitPrompt(server.url, cheapPrompt(1, 40, 50, 'slow/p'))).prompt_id;
    const slow2 = (await submitPrompt(server.url, cheapPrompt(2, 40, 50, 'slow/p'))).prompt_id;
    fs.rmSync(path.join(data, 'outputs', 'restored'), { recursive: true });
    const { prompt_id: waiting } = await submitPrompt(server.url, batch);
    expect((await fetch(`${server.url}/api/queue/${waiting}`, { method: 'DELETE' })).status).toBe(200);
    await ws.done(slow);
    await ws.done(slow2);
    await vi.waitFor(async () => expect((await entryOf(server.url, waiting)).status).toBe('cancelled'), { timeout: 30_000, interval: 200 });
    expect(ws.of(waiting).filter((m) => m.type === 'prompt_start' || m.type === 'node_start')).toEqual([]);
    expect(listTree(path.join(data, 'outputs', 'restored'))).toEqual([]);
  });

  it('an image that cannot be read fails alone: the others are saved, the batch ends as failed naming it', { timeout: 120_000 }, async () => {
    const r = await startRedis();
    cleanups.push(() => r.stop());
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-scale-batch-'));
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const data = path.join(root, 'data');
    const scans = path.join(data, 'inputs', 'scans');
    fs.mkdirSync(scans, { recursive: true });
    for (let i = 1; i <= 6; i++) {
      if (i === 4) fs.writeFileSync(path.join(scans, 'scan_4.png'), 'not a png');
      else await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: i, g: i, b: 0 } } }).png().toFile(path.join(scans, `scan_${i}.png`));
    }
    const server = track(await startStudio(r.url, data));
    track(await startWorkerProcess(r.url, data, 'only'));
    const ws = await EventRecorder.connect(server.url);
    cleanups.push(() => ws.close());
    const fast = { ...batch, '2': { class_type: 'PrimitiveInt', inputs: { value: 1 } } };
    const { prompt_id: id } = await submitPrompt(server.url, fast);
    expect(await ws.done(id)).toMatchObject({ status: 'error' });
    const entry = await entryOf(server.url, id);
    expect(entry.status).toBe('error');
    expect(entry.batch).toMatchObject({ total: 6, done: 5, failed: 1, resumed: 0 });
    expect(entry.batch!.items[3]).toMatchObject({ source: 'scan_4.png', status: 'failed', error: expect.stringContaining('scan_4.png') });
    expect(entry.error?.message).toContain('scan_4.png');
    expect(listTree(path.join(data, 'outputs'))).toEqual([1, 2, 3, 5, 6].map((i) => `restored/scan_${i}.png`));
    expect(ws.of(id).filter((m) => m.type === 'error')).toHaveLength(1);
  });
});

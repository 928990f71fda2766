import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { QueueJournal, type JournalItem } from '../../server/engine/journal.ts';

const item = (id: string, order: number, number = order): JournalItem => ({
  id,
  number,
  client_id: null,
  created_at: 1,
  prompt: { '1': { class_type: 'TestConst', inputs: { value: order } } },
  workflow: null,
  order,
  attempts: 0,
});

const entry = (id: string, number: number): HistoryEntry => ({
  id,
  number,
  client_id: null,
  created_at: 1,
  started_at: 2,
  finished_at: 3,
  status: 'success',
  executed: ['1'],
  cached: [],
  timings_ms: { '1': 1 },
  outputs: { '1': [{ folder: 'outputs', filename: `run/out_${number}.png`, kind: 'image', width: 4, height: 4 }] },
  error: null,
  prompt: { '1': { class_type: 'TestConst', inputs: {} } },
  workflow: null,
});

const files = (dir: string): string[] => fs.readdirSync(dir).sort();

describe('QueueJournal', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-journal-'));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives back items in queue order and history in the order it finished, with output references', async () => {
    const j = new QueueJournal(dir);
    j.load();
    for (const i of [item('b', 2), item('front', -1), item('a', 1), item('done2', 4), item('done1', 3)]) void j.putItem(i);
    void j.finish(entry('done2', 4));
    void j.finish(entry('done1', 3));
    j.markRunning({ id: 'a', started_at: 5, node: { id: '1', type: 'TestConst', title: 'Test Const' } });
    await j.close();

    const state = new QueueJournal(dir).load();
    expect(state.items.map((i) => i.id)).toEqual(['front', 'a', 'b']);
    expect(state.history.map((h) => h.id)).toEqual(['done2', 'done1']);
    expect(state.history[0]!.outputs['1']![0]!.filename).toBe('run/out_4.png');
    expect(state.running).toEqual({ id: 'a', started_at: 5, node: { id: '1', type: 'TestConst', title: 'Test Const' } });
  });

  it('groups a burst of records into a few flushes (group commit), each record acknowledged once it is in the file', async () => {
    let syncs = 0;
    const open = fs.promises.open.bind(fs.promises);
    vi.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      const handle = await open(...args);
      const datasync = handle.datasync.bind(handle);
      handle.datasync = async () => {
        syncs++;
        return datasync();
      };
      return handle;
    });
    const j = new QueueJournal(dir);
    j.load();
    const acks = Array.from({ length: 300 }, (_, i) => j.putItem(item(`p${i}`, i)));
    await Promise.all(acks);
    // Acknowledged means readable from disk by a fresh process.
    expect(new QueueJournal(dir).load().items).toHaveLength(300);
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThan(10);
    await j.close();
  });

  it('ignores a last line cut short by a crash, and skips a damaged line in the middle', async () => {
    const j = new QueueJournal(dir);
    j.load();
    await j.putItem(item('a', 1));
    await j.putItem(item('b', 2));
    await j.close();
    const logFile = path.join(dir, files(dir).find((n) => n.startsWith('journal-'))!);
    const good = fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    expect(good).toHaveLength(2);
    // A damaged line between the two good ones, and a last line cut short with no newline.
    fs.writeFileSync(logFile, `${[good[0], '{"t":"put","item":{"id":"broken"', good[1]].join('\n')}\n{"t":"put","item":{"id":"torn","num`);
    const state = new QueueJournal(dir).load();
    expect(state.items.map((i) => i.id)).toEqual(['a', 'b']);
  });

  it('compacts a long log into a snapshot, deletes the old files, and reads the same state back', async () => {
    const j = new QueueJournal(dir, { compactBytes: 4000 });
    j.load();
    for (let i = 0; i < 40; i++) {
      void j.putItem(item(`p${i}`, i));
      if (i % 2 === 0) void j.finish(entry(`p${i}`, i));
    }
    await j.removeHistory('p0');
    await j.flush();
    const names = files(dir);
    expect(names.some((n) => /^snapshot-\d+\.json$/.test(n))).toBe(true);
    // Only the newest generation is left: one snapshot and (once something was written after it) its log.
    const snapshots = names.filter((n) => n.startsWith('snapshot-'));
    expect(snapshots).toHaveLength(1);
    const gen = Number(/\d+/.exec(snapshots[0]!)![0]);
    expect(names.filter((n) => n.startsWith('journal-') && n !== `journal-${gen}.log`)).toEqual([]);
    await j.close();
    const state = new QueueJournal(dir).load();
    expect(state.items.map((i) => i.id)).toEqual(Array.from({ length: 20 }, (_, k) => `p${2 * k + 1}`));
    expect(state.history.map((h) => h.id)).toEqual(Array.from({ length: 19 }, (_, k) => `p${2 * k + 2}`));
  });

  it('falls back to the older snapshot and logs when the newest snapshot is incomplete, and removes leftovers', async () => {
    const j = new QueueJournal(dir, { compactBytes: 2000 });
    j.load();
    for (let i = 0; i < 20; i++) await j.putItem(item(`p${i}`, i));
    await j.close();
    const snap = files(dir).find((n) => n.startsWith('snapshot-'))!;
    const gen = Number(/\d+/.exec(snap)![0]);
    // A later snapshot without its `end` record (as a damaged disk could leave), and a temporary file.
    fs.writeFileSync(path.join(dir, `snapshot-${gen + 1}.json`), `${JSON.stringify({ t: 'put', item: item('ghost', 99) })}\n`);
    fs.writeFileSync(path.join(dir, `snapshot-${gen + 2}.json.123.tmp`), 'half');
    const state = new QueueJournal(dir).load();
    expect(state.items.map((i) => i.id)).toEqual(Array.from({ length: 20 }, (_, k) => `p${k}`));
    expect(files(dir).some((n) => n.endsWith('.tmp'))).toBe(false);
  });

  it('forgets deleted history, one entry or all', async () => {
    const j = new QueueJournal(dir);
    j.load();
    for (const id of ['h1', 'h2', 'h3']) void j.finish(entry(id, 1));
    await j.removeHistory('h2');
    await j.close();
    expect(new QueueJournal(dir).load().history.map((h) => h.id)).toEqual(['h1', 'h3']);
    const again = new QueueJournal(dir);
    again.load();
    await again.removeHistory();
    await again.close();
    expect(new QueueJournal(dir).load().history).toEqual([]);
  });
});

import { constants as bufferConstants } from 'node:buffer';
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
const logOf = (dir: string): string => path.join(dir, files(dir).find((n) => /^journal-\d+\.log$/.test(n))!);

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
  it('skips a line whose checksum fails (bytes changed inside a queued prompt id), reports it and keeps a copy of the file', async () => {
    const id = '6f1c2b9e-0d4a-4c47-9a55-3f0b8c2d7e11';
    const j = new QueueJournal(dir);
    j.load();
    await j.putItem(item(id, 1));
    await j.finish(entry(id, 1));
    await j.close();
    const logFile = logOf(dir);
    const lines = fs.readFileSync(logFile, 'utf8').split('\n');
    expect(lines[0]).toContain(id);
    // 10 bytes of the id replaced by other hex digits: the line is still valid JSON, naming another prompt.
    const at = lines[0]!.indexOf(id) + 9;
    lines[0] = lines[0]!.slice(0, at) + 'aaaaaaaaaa' + lines[0]!.slice(at + 10);
    expect(() => JSON.parse(lines[0]!.slice(lines[0]!.indexOf('{')))).not.toThrow();
    fs.writeFileSync(logFile, lines.join('\n'));

    const state = new QueueJournal(dir).load();
    // Without the checksum the damaged `put` would bring back a prompt that already ran, to run again.
    expect(state.items).toEqual([]);
    expect(state.history.map((h) => h.id)).toEqual([id]);
    expect(state.damage).toEqual([{ file: path.basename(logFile), line: 1, problem: 'checksum mismatch', kept_as: expect.stringMatching(/^journal-0\.log\.damaged-/) }]);
    expect(fs.readFileSync(path.join(dir, state.damage[0]!.kept_as!), 'utf8')).toBe(lines.join('\n'));
  });

  it('reads journals written before lines had checksums', async () => {
    const legacy = [{ t: 'put', item: item('old1', 1) }, { t: 'put', item: item('old2', 2) }, { t: 'finish', entry: entry('old1', 1) }];
    fs.writeFileSync(path.join(dir, 'journal-3.log'), legacy.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const j = new QueueJournal(dir);
    const state = j.load();
    expect(state.items.map((i) => i.id)).toEqual(['old2']);
    expect(state.history.map((h) => h.id)).toEqual(['old1']);
    expect(state.damage).toEqual([]);
    // New records go on in the same log, with checksums.
    await j.putItem(item('new', 3));
    await j.close();
    const last = fs.readFileSync(path.join(dir, 'journal-3.log'), 'utf8').trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(/^[0-9a-f]{8} \{/);
    expect(new QueueJournal(dir).load().items.map((i) => i.id)).toEqual(['old2', 'new']);
  });

  it('a record appended after a last line cut short by a crash is not lost', async () => {
    const j = new QueueJournal(dir);
    j.load();
    await j.putItem(item('a', 1));
    await j.close();
    fs.appendFileSync(logOf(dir), '0badc0de {"t":"put","item":{"id":"torn"');
    const again = new QueueJournal(dir);
    expect(again.load().items.map((i) => i.id)).toEqual(['a']);
    await again.putItem(item('b', 2));
    await again.close();
    const state = new QueueJournal(dir).load();
    expect(state.items.map((i) => i.id)).toEqual(['a', 'b']);
    expect(state.damage).toEqual([]);
  });

  it('sets a snapshot it cannot use aside (renamed, never deleted) and does not compact over it', async () => {
    const j = new QueueJournal(dir, { compactBytes: 2000 });
    j.load();
    for (let i = 0; i < 20; i++) await j.finish(entry(`h${i}`, i));
    await j.close();
    const snap = files(dir).find((n) => /^snapshot-\d+\.json$/.test(n))!;
    // The snapshot loses its end (as a damaged disk could leave it): it cannot be trusted.
    const text = fs.readFileSync(path.join(dir, snap), 'utf8');
    const damaged = text.slice(0, text.trimEnd().lastIndexOf('\n') + 1);
    fs.writeFileSync(path.join(dir, snap), damaged);

    const next = new QueueJournal(dir, { compactBytes: 2000 });
    const state = next.load();
    expect(state.damage).toEqual([{ file: snap, problem: 'incomplete: it has no end record', kept_as: expect.stringMatching(new RegExp(`^${snap.replace('.', '\\.')}\\.corrupt-`)) }]);
    expect(next.health()).toMatchObject({ ok: true, damage: state.damage });
    const keptAs = state.damage[0]!.kept_as!;
    // Enough new records for several compactions: the damaged snapshot is still there, byte for byte.
    for (let i = 0; i < 40; i++) await next.finish(entry(`n${i}`, 100 + i));
    await next.close();
    expect(files(dir).filter((n) => /^snapshot-\d+\.json$/.test(n)).length).toBe(1);
    expect(fs.readFileSync(path.join(dir, keptAs), 'utf8')).toBe(damaged);
    expect(new QueueJournal(dir).load().history.map((h) => h.id)).toContain('n39');
  });

  it('a write that fails (ENOSPC) is refused, said in health(), and a retry stores the whole state again', async () => {
    const j = new QueueJournal(dir, { retryMs: 60_000 });
    j.load();
    await j.putItem(item('before', 1));
    await j.close();
    // Writes of the next generation go to a device that is always full; root cannot write there either.
    const reopened = new QueueJournal(dir, { retryMs: 60_000 });
    expect(reopened.load().items.map((i) => i.id)).toEqual(['before']);
    fs.rmSync(logOf(dir));
    fs.symlinkSync('/dev/full', path.join(dir, 'journal-0.log'));
    await expect(reopened.putItem(item('lost', 2))).rejects.toThrow(/cannot be written \(ENOSPC/);
    expect(reopened.health()).toMatchObject({ ok: false, error: expect.stringMatching(/ENOSPC/), since: expect.any(Number) });
    // Later records are refused at once, not written after a gap.
    await expect(reopened.finish(entry('before', 1))).rejects.toThrow(/ENOSPC/);
    expect(await reopened.ensureWritable()).toBeNull(); // a snapshot of a new generation, on a real file
    expect(reopened.health()).toMatchObject({ ok: true, error: null });
    await reopened.putItem(item('after', 3));
    await reopened.close();
    expect(fs.existsSync(path.join(dir, 'journal-0.log'))).toBe(false); // older than the snapshot
    // What was in memory is all there: the refused records included (the queue withdraws what it refused).
    const state = new QueueJournal(dir).load();
    expect(state.items.map((i) => i.id)).toEqual(['lost', 'after']);
    expect(state.history.map((h) => h.id)).toEqual(['before']);
  });

  it('stores a large prompt and workflow in a file of its own, checked by its CRC, and deletes it with its entry', async () => {
    const j = new QueueJournal(dir, { inlineBodyBytes: 1000 });
    j.load();
    const big = { '1': { class_type: 'TestText', inputs: { text: 'y'.repeat(5000) } } };
    expect(j.storeBody('small', { '1': { class_type: 'TestConst', inputs: { value: 1 } } }, null)).toBeUndefined();
    const ref = j.storeBody('big', big, { nodes: [] })!;
    expect(ref.bytes).toBeGreaterThan(5000);
    await j.putItem({ ...item('big', 1), prompt: {}, workflow: null, body: ref });
    const bodyFile = path.join(dir, 'bodies', 'big.json');
    expect(JSON.parse(fs.readFileSync(bodyFile, 'utf8'))).toEqual({ prompt: big, workflow: { nodes: [] } });
    // The journal line is small: it holds the reference only.
    expect(fs.statSync(logOf(dir)).size).toBeLessThan(1000);
    await j.close();

    const again = new QueueJournal(dir, { inlineBodyBytes: 1000 });
    const [loaded] = again.load().items;
    expect(loaded).toMatchObject({ id: 'big', prompt: big, workflow: { nodes: [] }, body: ref });
    await again.finish({ ...entry('big', 1), prompt: {}, workflow: null, body: ref });
    expect(JSON.parse((await again.readBody('big', ref)).toString())).toEqual({ prompt: big, workflow: { nodes: [] } });
    // A changed byte is caught.
    const bytes = fs.readFileSync(bodyFile);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 1;
    fs.writeFileSync(bodyFile, bytes);
    await expect(again.readBody('big', ref)).rejects.toThrow(/checksum mismatch/);
    await again.removeHistory('big');
    await again.flush();
    await vi.waitFor(() => expect(fs.existsSync(bodyFile)).toBe(false));
    await again.close();
  });

  it('moves the large prompts of history entries written before bodies were stored apart out of memory and out of the journal', async () => {
    const big = { '1': { class_type: 'TestText', inputs: { text: 'z'.repeat(5000) } } };
    const legacy = [{ t: 'finish', entry: { ...entry('old', 1), prompt: big, workflow: { nodes: [1] } } }, { t: 'finish', entry: entry('small', 2) }];
    fs.writeFileSync(path.join(dir, 'journal-0.log'), legacy.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const j = new QueueJournal(dir, { inlineBodyBytes: 1000 });
    const [old, small] = j.load().history;
    expect(old).toMatchObject({ id: 'old', prompt: {}, workflow: null, body: { bytes: expect.any(Number) } });
    expect(small!.body).toBeUndefined();
    expect(JSON.parse((await j.readBody('old', old!.body!)).toString())).toEqual({ prompt: big, workflow: { nodes: [1] } });
    // The next write compacts: the journal no longer holds the large prompt.
    await j.putItem(item('next', 3));
    await j.close();
    const journalText = files(dir)
      .filter((n) => /^(journal-\d+\.log|snapshot-\d+\.json)$/.test(n))
      .map((n) => fs.readFileSync(path.join(dir, n), 'utf8'))
      .join('');
    expect(journalText).not.toContain('zzzzz');
    expect(new QueueJournal(dir, { inlineBodyBytes: 1000 }).load().history.map((h) => [h.id, h.body !== undefined])).toEqual([
      ['old', true],
      ['small', false],
    ]);
  });

  it('writes and reads back a snapshot larger than the longest possible string, one line at a time', { timeout: 180_000 }, async () => {
    // 2,200 history entries of 250,000 characters each (under the inline bound): a 550 MB snapshot.
    // Read as one string (readFileSync(..., 'utf8')) it fails with "Cannot create a string longer than ...".
    const n = 2200;
    const text = 'x'.repeat(250_000);
    const j = new QueueJournal(dir, { fsync: false, compactBytes: n * text.length - (4 << 20) });
    j.load();
    for (let i = 0; i < n; i++) void j.finish({ ...entry(`h${i}`, i), prompt: { '1': { class_type: 'TestText', inputs: { text } } } });
    await j.close();
    const snap = files(dir).find((f) => /^snapshot-\d+\.json$/.test(f))!;
    expect(snap).toBeDefined();
    expect(fs.statSync(path.join(dir, snap)).size).toBeGreaterThan(bufferConstants.MAX_STRING_LENGTH);
    const state = new QueueJournal(dir, { fsync: false }).load();
    expect(state.damage).toEqual([]);
    expect(state.history).toHaveLength(n);
    expect(state.history.at(-1)!.id).toBe(`h${n - 1}`);
    expect((state.history[1234]!.prompt['1']!.inputs.text as string).length).toBe(250_000);
  });
});

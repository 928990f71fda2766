import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { decodeLine } from '../../server/engine/journal-files.ts';
import { received, testNodes } from '../support/test-nodes.ts';
import { faultNodes } from './fault-nodes.ts';
import { spawnChildServer, startTestServer, submitPrompt, type ChildServer, type TestServer } from './helpers.ts';

/** Solid image → slow pass-through → Save Image: a prompt with a real output file that can be caught mid-run. */
const slowSave = (value: number, steps: number, ms = 20): Record<string, unknown> => ({
  '1': { class_type: 'TestSolid', inputs: { size: 8, value } },
  '2': { class_type: 'TestSlowImage', inputs: { image: ['1', 0], steps, ms } },
  '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: `durable/p${value}` } },
});

const history = async (url: string, id: string): Promise<HistoryEntry> => {
  const res = await fetch(`${url}/api/history/${id}`);
  expect(res.status, `history of ${id}`).toBe(200);
  return (await res.json()) as HistoryEntry;
};

/** Polls the history until the prompt has finished (the restarted server has no websocket client of ours). */
const finished = (url: string, id: string, timeout = 20_000): Promise<HistoryEntry> =>
  vi.waitFor(
    async () => {
      const res = await fetch(`${url}/api/history/${id}`);
      if (res.status !== 200) throw new Error(`${id} has not finished`);
      return (await res.json()) as HistoryEntry;
    },
    { timeout, interval: 50 },
  );

/** The last `running` record of the journal: which prompt and node it says are running. */
function lastRunningRecord(dataRoot: string): { id: string; node: { id: string } | null } | null {
  const dir = path.join(dataRoot, 'state');
  let mark = null;
  for (const name of fs.readdirSync(dir).filter((n) => /^journal-\d+\.log$/.test(n)).sort()) {
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const decoded = decodeLine(Buffer.from(line));
      if (!decoded.ok) continue; // a line still being written
      const record = decoded.value as { t: string; mark?: { id: string; node: { id: string } | null } | null };
      if (record.t === 'running') mark = record.mark ?? null;
    }
  }
  return mark;
}

/** Waits until the journal on disk says prompt `id` is running node `node` (written asynchronously). */
const runningMark = (dataRoot: string, id: string, node: string): Promise<void> =>
  vi.waitFor(() => expect(lastRunningRecord(dataRoot)).toMatchObject({ id, node: { id: node } }), { timeout: 10_000, interval: 20 });

describe('restart with prompts queued', () => {
  let parent: string;
  let child: ChildServer | undefined;
  let server: TestServer | undefined;

  const fresh = (): string => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-durable-'));
    return path.join(parent, 'data');
  };
  afterEach(async () => {
    await child?.kill();
    await server?.close();
    child = undefined;
    server = undefined;
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('after a crash (SIGKILL) keeps the history and its outputs, fails the cut-off prompt with the reason, and runs the pending ones', async () => {
    const dataRoot = fresh();
    child = await spawnChildServer(dataRoot, ['fail']);
    const done = await submitPrompt(child.url, slowSave(1, 1, 1));
    const doneEntry = await finished(child.url, done.prompt_id);
    expect(doneEntry.status).toBe('success');
    const outputRef = doneEntry.outputs['3']![0]!;

    const cut = await submitPrompt(child.url, slowSave(2, 100_000));
    const pendingA = await submitPrompt(child.url, slowSave(3, 1, 1));
    const pendingB = await submitPrompt(child.url, slowSave(4, 1, 1));
    await runningMark(dataRoot, cut.prompt_id, '2');
    // No shutdown code runs: whatever the server had not written by now is lost.
    await child.kill('SIGKILL');
    child = undefined;

    server = await startTestServer({ dataRoot }, [...testNodes, ...faultNodes]);
    // The finished prompt is still there, with the reference to its image, and the image is served.
    expect(await history(server.url, done.prompt_id)).toEqual(doneEntry);
    const view = await server.api(`/api/view?folder=outputs&file=${encodeURIComponent(outputRef.filename)}`);
    expect(view.headers.get('content-type')).toBe('image/png');
    expect((await sharp(Buffer.from(await view.arrayBuffer())).metadata()).width).toBe(8);

    // The prompt that was running is recorded as failed, saying why and in which node.
    const failed = await history(server.url, cut.prompt_id);
    expect(failed.status).toBe('error');
    expect(failed.error).toMatchObject({ code: 'INTERRUPTED', node_id: '2', node_type: 'TestSlowImage' });
    expect(failed.error!.message).toMatch(/Test Slow Image \(#2\) was running: the server stopped while this prompt was running/);
    expect(failed.started_at).toBeGreaterThan(0);

    // The pending ones run, in their order, and numbering goes on after the old numbers.
    const [a, b] = [await finished(server.url, pendingA.prompt_id), await finished(server.url, pendingB.prompt_id)];
    expect([a.status, b.status]).toEqual(['success', 'success']);
    expect(a.finished_at).toBeLessThanOrEqual(b.started_at!);
    expect(a.outputs['3']![0]!.filename).toMatch(/^durable\/p3_/);
    const next = await submitPrompt(server.url, slowSave(5, 1, 1));
    expect(next.number).toBe(pendingB.number + 1);
    expect((await finished(server.url, next.prompt_id)).status).toBe('success');
  });

  it('with onRestart "requeue" runs the cut-off prompt again first, but only once', async () => {
    const dataRoot = fresh();
    child = await spawnChildServer(dataRoot, ['requeue']);
    const cut = await submitPrompt(child.url, slowSave(10, 100_000));
    const pending = await submitPrompt(child.url, slowSave(11, 1, 1));
    await runningMark(dataRoot, cut.prompt_id, '2');
    await child.kill('SIGKILL');

    // Second life: the cut-off prompt is put back at the front and starts again; kill it again.
    child = await spawnChildServer(dataRoot, ['requeue']);
    const queue = (await (await fetch(`${child.url}/api/queue`)).json()) as { running: { id: string } | null; pending: Array<{ id: string }> };
    expect(queue.running?.id).toBe(cut.prompt_id);
    expect(queue.pending.map((p) => p.id)).toEqual([pending.prompt_id]);
    await runningMark(dataRoot, cut.prompt_id, '2');
    await child.kill('SIGKILL');
    child = undefined;

    // Third life: it was cut off twice, so it is not run a third time (it may be what crashes us).
    server = await startTestServer({ dataRoot, onRestart: 'requeue' }, [...testNodes, ...faultNodes]);
    const failed = await history(server.url, cut.prompt_id);
    expect(failed.status).toBe('error');
    expect(failed.error!.message).toMatch(/again after it had been queued once more \(2 tries\); it is not run again/);
    expect((await finished(server.url, pending.prompt_id)).status).toBe('success');
  });

  it('a requeued prompt that can run again finishes, before the ones queued after it', async () => {
    const dataRoot = fresh();
    child = await spawnChildServer(dataRoot, ['requeue']);
    // 40 steps of 50 ms: long enough to be caught, short enough to run again in the test.
    const cut = await submitPrompt(child.url, slowSave(20, 40, 50));
    const pending = await submitPrompt(child.url, slowSave(21, 1, 1));
    await runningMark(dataRoot, cut.prompt_id, '2');
    await child.kill('SIGKILL');
    child = undefined;

    server = await startTestServer({ dataRoot, onRestart: 'requeue' }, [...testNodes, ...faultNodes]);
    const [again, after] = [await finished(server.url, cut.prompt_id), await finished(server.url, pending.prompt_id)];
    expect(again.status).toBe('success');
    expect(again.outputs['3']).toHaveLength(1);
    expect(after.status).toBe('success');
    expect(again.finished_at).toBeLessThanOrEqual(after.started_at!);
  });

  it('a clean shutdown keeps pending prompts queued for the next start', async () => {
    const dataRoot = fresh();
    const first = await startTestServer({ dataRoot }, [...testNodes, ...faultNodes]);
    const cut = await submitPrompt(first.url, slowSave(30, 100_000));
    const pending = await submitPrompt(first.url, slowSave(31, 1, 1));
    await runningMark(dataRoot, cut.prompt_id, '2');
    await first.close();
    // close() removed the helper's own temporary parent, not ours: the data folder is still here.
    expect(fs.readdirSync(path.join(dataRoot, 'state')).some((n) => n.startsWith('journal-'))).toBe(true);

    server = await startTestServer({ dataRoot }, [...testNodes, ...faultNodes]);
    expect((await history(server.url, cut.prompt_id)).error).toMatchObject({ code: 'INTERRUPTED', node_id: '2' });
    expect((await finished(server.url, pending.prompt_id)).status).toBe('success');
  });

  it('Save Image writes each output to a temporary name and renames it into place, so no half image is ever seen', async () => {
    const dataRoot = fresh();
    server = await startTestServer({ dataRoot }, [...testNodes, ...faultNodes]);
    const renames: Array<[string, string]> = [];
    const rename = fs.promises.rename.bind(fs.promises);
    const spy = vi.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      renames.push([String(from), String(to)]);
      return rename(from, to);
    });
    try {
      const p = await submitPrompt(server.url, slowSave(50, 1, 1));
      const entry = await finished(server.url, p.prompt_id);
      const target = path.join(server.dirs.folders.outputs, entry.outputs['3']![0]!.filename);
      const into = renames.filter(([, to]) => to === target);
      expect(into).toHaveLength(1);
      expect(into[0]![0]).toMatch(/\.tmp$/);
      expect(path.dirname(into[0]![0])).toBe(path.dirname(target));
      expect(fs.readdirSync(path.dirname(target)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  it('with persist: false keeps nothing on disk', async () => {
    const dataRoot = fresh();
    server = await startTestServer({ dataRoot, persist: false }, [...testNodes, ...faultNodes]);
    const p = await submitPrompt(server.url, slowSave(40, 1, 1));
    expect((await finished(server.url, p.prompt_id)).status).toBe('success');
    expect(fs.existsSync(path.join(dataRoot, 'state'))).toBe(false);
  });
});

/** Const → Output: a prompt that runs at once. */
const cheap = (value: number): Record<string, unknown> => ({
  '1': { class_type: 'TestConst', inputs: { value } },
  '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } },
});

/**
 * A prompt of about 31 MB that passes every limit (32 MiB body, 100,000 characters per string, 2,000
 * nodes): 310 Test Text nodes of 100,000 characters beside Const → Output.
 */
const bigPrompt = (seed: number): Record<string, unknown> => {
  const prompt: Record<string, unknown> = cheap(seed);
  for (let i = 0; i < 310; i++) prompt[`t${i}`] = { class_type: 'TestText', inputs: { text: `${seed}:${i}:`.padEnd(100_000, String.fromCharCode(97 + ((seed + i) % 26))) } };
  return prompt;
};

const journalFiles = (dataRoot: string): string[] => fs.readdirSync(path.join(dataRoot, 'state')).filter((n) => /^(journal-\d+\.log|snapshot-\d+\.json)$/.test(n));

interface SystemJournal {
  ok: boolean;
  error: string | null;
  damage: Array<{ file: string; line?: number; problem: string; kept_as?: string }>;
}
const systemJournal = async (url: string): Promise<SystemJournal> => ((await (await fetch(`${url}/api/system`)).json()) as { journal: SystemJournal }).journal;

describe('what the journal keeps, and when it cannot', () => {
  let parent: string;
  let server: TestServer | undefined;
  const fresh = (): string => {
    parent = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-durable-'));
    return path.join(parent, 'data');
  };
  const start = async (dataRoot: string): Promise<TestServer> => (server = await startTestServer({ dataRoot }, [...testNodes, ...faultNodes]));
  const restart = async (dataRoot: string): Promise<TestServer> => {
    await server?.close();
    return start(dataRoot);
  };
  afterEach(async () => {
    await server?.close();
    server = undefined;
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('answers 503, not 200, while the journal cannot be written, says why in /api/system, runs nothing it refused, and queues again once it can', async () => {
    const dataRoot = fresh();
    await start(dataRoot);
    // The state folder is replaced by a file: nothing can be created in it, root or not.
    const stateDir = path.join(dataRoot, 'state');
    fs.renameSync(stateDir, `${stateDir}.away`);
    fs.writeFileSync(stateDir, 'not a folder');

    for (const value of [901, 902]) {
      const res = await server!.postJson('/api/prompt', { prompt: cheap(value) });
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(body.error.code).toBe('UNAVAILABLE');
      expect(body.error.message).toMatch(/^the prompt was not queued: the queue journal in .* cannot be written \(.*ENOTDIR.*\), so it would not survive a restart/);
    }
    const system = await systemJournal(server!.url);
    expect(system.ok).toBe(false);
    expect(system.error).toMatch(/ENOTDIR/);
    // Nothing refused is queued, running or in the history.
    expect(await (await server!.api('/api/queue')).json()).toEqual({ running: null, pending: [] });
    expect(await (await server!.api('/api/history')).json()).toEqual([]);

    // The folder comes back: the next prompts are stored again (the journal retries by itself too).
    fs.rmSync(stateDir);
    fs.renameSync(`${stateDir}.away`, stateDir);
    const accepted = await vi.waitFor(
      async () => {
        const res = await server!.postJson('/api/prompt', { prompt: cheap(903) });
        expect(res.status).toBe(200);
        return (await res.json()) as { prompt_id: string };
      },
      { timeout: 15_000, interval: 250 },
    );
    expect((await finished(server!.url, accepted.prompt_id)).status).toBe('success');
    expect((await systemJournal(server!.url)).ok).toBe(true);

    // After a restart exactly what was answered with 200 is there.
    await restart(dataRoot);
    expect(await systemJournal(server!.url)).toEqual({ ok: true, error: null, since: null, damage: [] });
    const entries = (await (await server!.api('/api/history')).json()) as HistoryEntry[];
    expect(entries.map((e) => e.id)).toEqual([accepted.prompt_id]);
    expect(entries[0]!.prompt).toEqual(cheap(903));
    // The refused prompts never ran (Test Output records every value it receives in this process).
    expect(received).toContain(903);
    expect(received).not.toContain(901);
    expect(received).not.toContain(902);
  });

  it('a queued prompt whose journal line was damaged (10 bytes of its id) does not run twice after a restart, and the damage is reported', async () => {
    const dataRoot = fresh();
    await start(dataRoot);
    const first = await submitPrompt(server!.url, cheap(911));
    expect((await finished(server!.url, first.prompt_id)).status).toBe('success');
    await server!.close();
    server = undefined;

    const [log] = journalFiles(dataRoot);
    const file = path.join(dataRoot, 'state', log!);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const put = lines.findIndex((l) => l.includes('"t":"put"') && l.includes(first.prompt_id));
    expect(put).toBeGreaterThanOrEqual(0);
    const at = lines[put]!.indexOf(first.prompt_id) + 9;
    lines[put] = `${lines[put]!.slice(0, at)}0123456789${lines[put]!.slice(at + 10)}`;
    fs.writeFileSync(file, lines.join('\n'));

    await start(dataRoot);
    // Queued behind anything the restart brought back: once it has run, so has everything before it.
    const second = await submitPrompt(server!.url, cheap(912));
    expect((await finished(server!.url, second.prompt_id)).status).toBe('success');
    const entries = (await (await server!.api('/api/history')).json()) as HistoryEntry[];
    expect(entries.map((e) => e.id)).toEqual([first.prompt_id, second.prompt_id]);
    const system = await systemJournal(server!.url);
    expect(system.ok).toBe(true);
    expect(system.damage).toEqual([{ file: log, line: put + 1, problem: 'checksum mismatch', kept_as: expect.stringMatching(/\.damaged-/) }]);
    expect(fs.existsSync(path.join(dataRoot, 'state', system.damage[0]!.kept_as!))).toBe(true);
  });

  it('keeps prompts of 31 MB apart from the history: the list and the journal stay small, each entry gives its prompt back, also after a restart', { timeout: 180_000 }, async () => {
    const dataRoot = fresh();
    await start(dataRoot);
    const sent: Array<{ id: string; json: string }> = [];
    for (const seed of [1, 2, 3]) {
      const json = JSON.stringify({ prompt: bigPrompt(seed) });
      expect(json.length).toBeGreaterThan(31_000_000);
      const res = await server!.api('/api/prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
      expect(res.status).toBe(200);
      const { prompt_id } = (await res.json()) as { prompt_id: string };
      sent.push({ id: prompt_id, json });
      expect((await finished(server!.url, prompt_id)).status).toBe('success');
    }
    const check = async (): Promise<void> => {
      const res = await server!.api('/api/history');
      const text = await res.text();
      expect(res.status).toBe(200);
      // Three 31 MB prompts, and the list is a few kB: each entry says its body is stored apart.
      expect(text.length).toBeLessThan(100_000);
      const list = JSON.parse(text) as Array<HistoryEntry & { stored_apart?: { bytes: number } }>;
      expect(list.map((e) => e.id)).toEqual(sent.map((s) => s.id));
      for (const e of list) {
        expect(e.stored_apart!.bytes).toBeGreaterThan(31_000_000);
        expect(e.prompt).toEqual({});
        expect(e.workflow).toBeNull();
      }
      // The journal holds references, not the prompts.
      const journalBytes = journalFiles(dataRoot).reduce((sum, n) => sum + fs.statSync(path.join(dataRoot, 'state', n)).size, 0);
      expect(journalBytes).toBeLessThan(100_000);
      // Each entry gives its prompt back whole.
      for (const { id, json } of sent) {
        const one = await server!.api(`/api/history/${id}`);
        const entry = (await one.json()) as HistoryEntry & { stored_apart?: unknown };
        expect(entry.id).toBe(id);
        expect(entry.status).toBe('success');
        expect(entry.stored_apart).toBeUndefined();
        expect(JSON.stringify({ prompt: entry.prompt })).toBe(json);
        expect(entry.workflow).toBeNull();
      }
    };
    await check();
    await restart(dataRoot);
    await check();
    // Deleting an entry deletes its file.
    const bodyFile = path.join(dataRoot, 'state', 'bodies', `${sent[0]!.id}.json`);
    expect(fs.existsSync(bodyFile)).toBe(true);
    expect((await server!.api(`/api/history/${sent[0]!.id}`, { method: 'DELETE' })).status).toBe(200);
    await vi.waitFor(() => expect(fs.existsSync(bodyFile)).toBe(false));
  });
});

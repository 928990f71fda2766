import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { testNodes } from '../support/test-nodes.ts';
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
      const record = JSON.parse(line) as { t: string; mark?: { id: string; node: { id: string } | null } | null };
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

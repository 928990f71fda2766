import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ApiPrompt, HistoryEntry } from '../../server/engine/index.ts';
import { createRuntime } from '../../server/runtime/index.ts';
import { addOneModel, heavyConvModel } from '../runtime/models.ts';
import { testNodes } from '../support/test-nodes.ts';
import { faultNodes } from './fault-nodes.ts';
import { EventRecorder, startTestServer, submitPrompt, type TestServer } from './helpers.ts';

const slowSave = (value: number, steps: number, ms: number): ApiPrompt => ({
  '1': { class_type: 'TestSolid', inputs: { size: 8, value } },
  '2': { class_type: 'TestSlowImage', inputs: { image: ['1', 0], steps, ms } },
  '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: `faults/v${value}` } },
});

const modelRun = (crash: boolean, runs = 3, oom = false): ApiPrompt => ({
  '1': { class_type: 'TestModelRun', inputs: { model: 'add-one.onnx', runs, crash, oom } },
});
/** The model workers' heap limit here: small, so that running out of it takes a moment. */
const WORKER_HEAP_MB = 96;

describe('fault isolation', () => {
  let server: TestServer;
  let ws: EventRecorder;
  let uniq = 100;

  beforeAll(async () => {
    server = await startTestServer({ provider: 'cpu', workerHeapMb: WORKER_HEAP_MB, runtimeTestHooks: true }, [...testNodes, ...faultNodes]);
    addOneModel(server.dirs.folders.models);
    heavyConvModel(server.dirs.folders.models);
    ws = await EventRecorder.connect(server.url);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
  });

  const history = async (id: string): Promise<HistoryEntry> => (await (await server.api(`/api/history/${id}`)).json()) as HistoryEntry;

  it('a worker that dies during a node fails that prompt with a clear error; the server keeps serving', async () => {
    // Warm-up: the model opens and runs in its worker.
    const ok = await submitPrompt(server.url, modelRun(false));
    expect(await ws.done(ok.prompt_id)).toMatchObject({ status: 'success' });

    const crash = await submitPrompt(server.url, modelRun(true));
    const after = await submitPrompt(server.url, slowSave(uniq++, 1, 1));
    expect(await ws.done(crash.prompt_id)).toMatchObject({ status: 'error' });
    const failed = await history(crash.prompt_id);
    expect(failed.error).toMatchObject({ node_id: '1', node_type: 'TestModelRun' });
    expect(failed.error!.message).toMatch(/Test Model Run \(#1\) failed: .*session worker stopped unexpectedly \(it exited with code 70\)/);
    // The prompt queued behind it runs, the API answers, and the model opens again in a fresh worker.
    expect(await ws.done(after.prompt_id)).toMatchObject({ status: 'success' });
    expect((await server.api('/api/queue')).status).toBe(200);
    const again = await submitPrompt(server.url, modelRun(false, 5));
    expect(await ws.done(again.prompt_id)).toMatchObject({ status: 'success' });
  });

  it('a worker that runs out of JavaScript heap fails that prompt with a clear error; the next prompt runs', async () => {
    const warm = await submitPrompt(server.url, modelRun(false));
    expect(await ws.done(warm.prompt_id)).toMatchObject({ status: 'success' });

    // Many short runs: the worker is busy hoarding memory when one of them arrives.
    const oom = await submitPrompt(server.url, modelRun(false, 10_000, true));
    const after = await submitPrompt(server.url, slowSave(uniq++, 1, 1));
    expect(await ws.done(oom.prompt_id)).toMatchObject({ status: 'error' });
    const failed = await history(oom.prompt_id);
    expect(failed.error).toMatchObject({ node_id: '1', node_type: 'TestModelRun', code: 'TOO_LARGE' });
    expect(failed.error!.message).toMatch(
      new RegExp(`^Test Model Run \\(#1\\) failed: the model worker ran out of memory \\(model add-one\\.onnx \\(cpu\\): its JavaScript heap reached its ${WORKER_HEAP_MB} MB limit`),
    );
    // The server answers, the prompt queued behind runs, and the model opens in a fresh worker.
    expect((await server.api('/api/queue')).status).toBe(200);
    expect(await ws.done(after.prompt_id)).toMatchObject({ status: 'success' });
    const again = await submitPrompt(server.url, modelRun(false, 5));
    expect(await ws.done(again.prompt_id)).toMatchObject({ status: 'success' });
  }, 60_000);

  it('has the out-of-memory hook only in a runtime made with testHooks', async () => {
    // The server's own runtime (as the CLI makes it) refuses; the session keeps working.
    const runtime = createRuntime({ provider: 'cpu' });
    try {
      const session = await runtime.load(path.join(server.dirs.folders.models, 'add-one.onnx'));
      expect(() => runtime.exhaustWorkerHeapForTest(session.id)).toThrow(/without test hooks/);
      const out = await session.run({ x: { data: Float32Array.of(41), dims: [1] } });
      expect(out.y!.data[0]).toBe(42);
    } finally {
      await runtime.close();
    }
  });

  it('a client that disconnects mid-run loses nothing: the result and its file are in the history', async () => {
    const leaving = await EventRecorder.connect(server.url);
    const value = uniq++;
    const res = await fetch(`${server.url}/api/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: slowSave(value, 10, 30), client_id: 'leaving-tab' }),
    });
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    await leaving.waitFor((m) => m.type === 'progress' && m.prompt_id === prompt_id);
    leaving.close(); // the tab is closed mid-run, without a goodbye
    const entry = await vi.waitFor(
      async () => {
        const e = await history(prompt_id);
        expect(e.status).toBe('success');
        return e;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(entry.client_id).toBe('leaving-tab');
    const ref = entry.outputs['3']![0]!;
    expect(ref.filename).toMatch(new RegExp(`^faults/v${value}_`));
    expect(fs.existsSync(path.join(server.dirs.folders.outputs, ref.filename))).toBe(true);
    // The other client saw the whole run.
    expect(ws.of(prompt_id).at(-1)).toMatchObject({ type: 'prompt_done', status: 'success' });
  });

  it('interrupt returns within one step of the running node', async () => {
    const stepMs = 250;
    const { prompt_id } = await submitPrompt(server.url, slowSave(uniq++, 1000, stepMs));
    await ws.waitFor((m) => m.type === 'progress' && m.prompt_id === prompt_id);
    const t0 = performance.now();
    expect(await (await server.postJson('/api/interrupt', { prompt_id })).json()).toEqual({ interrupted: true });
    expect(await ws.done(prompt_id)).toMatchObject({ status: 'interrupted' });
    const elapsed = performance.now() - t0;
    // At most the rest of the step in progress, plus scheduling slack on a busy machine.
    expect(elapsed).toBeLessThan(stepMs + 150);
    expect((await history(prompt_id)).status).toBe('interrupted');
  });

  it('interrupt stops a model node between runs in its worker', async () => {
    const { prompt_id } = await submitPrompt(server.url, modelRun(false, 10_000));
    await ws.waitFor((m) => m.type === 'progress' && m.prompt_id === prompt_id);
    const t0 = performance.now();
    await server.postJson('/api/interrupt', { prompt_id });
    expect(await ws.done(prompt_id)).toMatchObject({ status: 'interrupted' });
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('responsiveness while a model runs', () => {
  it('answers the API promptly while a model keeps every core busy in its worker, whose threads run at a lower priority', async () => {
    const server = await startTestServer({ provider: 'cpu' }, [...testNodes, ...faultNodes]);
    try {
      heavyConvModel(server.dirs.folders.models);
      const ws = await EventRecorder.connect(server.url);
      // 512x512 through ten 3x3 convolutions: several hundred milliseconds per run on two cores,
      // so a run that held the event loop would show as a latency of that size.
      const { prompt_id } = await submitPrompt(server.url, { '1': { class_type: 'TestModelRun', inputs: { model: 'heavy.onnx', runs: 3, size: 512 } } });
      await ws.waitFor((m) => m.type === 'node_start' && m.prompt_id === prompt_id);
      const latencies: number[] = [];
      while (!ws.messages.some((m) => m.type === 'prompt_done' && m.prompt_id === prompt_id)) {
        const t0 = performance.now();
        expect((await server.api('/api/queue')).status).toBe(200);
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await ws.done(prompt_id)).toMatchObject({ status: 'success' });
      const entry = (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
      const perRun = entry.timings_ms['1']! / 3;
      latencies.sort((a, b) => a - b);
      expect(latencies.length).toBeGreaterThan(10);
      // Bounded well below one run, with room for a busy CI machine.
      expect(latencies[Math.floor(latencies.length * 0.9)]!).toBeLessThan(Math.max(100, perRun / 2));
      if (process.platform === 'linux') {
        // The session worker lowered its own priority (nice +10), and its onnxruntime pool inherited it.
        const nices = fs.readdirSync('/proc/self/task').map((tid) => {
          const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        });
        expect(nices.filter((n) => n >= 10).length).toBeGreaterThanOrEqual(1);
        expect(nices[0]).toBe(0); // the main thread (the event loop) keeps its priority
      }
      ws.close();
    } finally {
      await server.close();
    }
  });
});

describe('a full queue', () => {
  it('answers 429 QUEUE_FULL at its limit, loses none of the accepted prompts, and accepts again once drained', async () => {
    const server = await startTestServer({ maxPending: 5 }, [...testNodes, ...faultNodes]);
    try {
      const ws = await EventRecorder.connect(server.url);
      const blocker = await submitPrompt(server.url, slowSave(1, 30, 20));
      const accepted: string[] = [];
      for (let i = 0; i < 5; i++) accepted.push((await submitPrompt(server.url, slowSave(10 + i, 1, 1))).prompt_id);
      const full = await server.postJson('/api/prompt', { prompt: slowSave(99, 1, 1) });
      expect(full.status).toBe(429);
      const body = (await full.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('QUEUE_FULL');
      expect(body.error.message).toMatch(/already holds 5 prompts/);
      expect(server.queue.list().pending.map((p) => p.id)).toEqual(accepted);

      for (const id of [blocker.prompt_id, ...accepted]) expect(await ws.done(id)).toMatchObject({ status: 'success' });
      const entries = (await (await server.api('/api/history')).json()) as HistoryEntry[];
      expect(entries.map((e) => e.id)).toEqual([blocker.prompt_id, ...accepted]);
      expect(entries.every((e) => e.outputs['3']?.length === 1)).toBe(true);
      expect((await server.postJson('/api/prompt', { prompt: slowSave(99, 1, 1) })).status).toBe(200);
      ws.close();
    } finally {
      await server.close();
    }
  });
});

import { beforeEach, describe, expect, it } from 'vitest';
import { LruOutputCache, PromptQueue, type EngineEvent } from '../../server/engine/index.ts';
import { chain, Harness } from '../support/engine-harness.ts';
import { received, resetCounters } from '../support/test-nodes.ts';

beforeEach(resetCounters);

function makeQueue(opts: { historyLimit?: number; maxPending?: number } = {}): { queue: PromptQueue; events: EngineEvent[] } {
  const h = new Harness();
  const queue = new PromptQueue({ registry: h.registry, env: h.env, cache: new LruOutputCache(1 << 20), ...opts });
  const events: EngineEvent[] = [];
  queue.events.subscribe((e) => events.push(e));
  return { queue, events };
}

const slow = (steps: number, ms = 5) => ({
  '1': { class_type: 'TestSlow', inputs: { steps, ms } },
  '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] as [string, number] } },
});
const failing = {
  '1': { class_type: 'TestConst', inputs: { value: 3 } },
  '2': { class_type: 'TestFail', inputs: { value: ['1', 0] as [string, number], fail: true } },
  '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] as [string, number] } },
};

function submitted(result: ReturnType<PromptQueue['submit']>): string {
  if (!result.ok) throw new Error(JSON.stringify(result));
  return result.id;
}

describe('PromptQueue', () => {
  it('runs prompts first in, first out, and goes on after a failure', async () => {
    const { queue } = makeQueue();
    const a = submitted(queue.submit({ prompt: chain(1, 1) }));
    const b = submitted(queue.submit({ prompt: failing }));
    const c = submitted(queue.submit({ prompt: chain(1, 2) }));
    const [ea, eb, ec] = await Promise.all([queue.whenDone(a), queue.whenDone(b), queue.whenDone(c)]);
    expect([ea.status, eb.status, ec.status]).toEqual(['success', 'error', 'success']);
    expect(eb.error).toMatchObject({ node_id: '2', code: 'BAD_INPUT' });
    expect(received).toEqual([7, 8]);
    expect(ec.cached).toEqual(['1', '2']);
    expect(queue.history().map((h) => h.id)).toEqual([a, b, c]);
  });

  it('refuses an invalid prompt with its errors and leaves the queue running', async () => {
    const { queue } = makeQueue();
    const bad = queue.submit({ prompt: { '1': { class_type: 'Nope', inputs: {} }, '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } } } });
    expect(bad).toMatchObject({ ok: false, reason: 'invalid', errors: [expect.objectContaining({ node_id: '1', code: 'unknown_type' })] });
    const good = submitted(queue.submit({ prompt: chain() }));
    expect((await queue.whenDone(good)).status).toBe('success');
  });

  it('puts front prompts first and cancels pending ones', async () => {
    const { queue } = makeQueue();
    const running = submitted(queue.submit({ prompt: slow(5) }));
    await new Promise((r) => setTimeout(r, 0));
    const later = submitted(queue.submit({ prompt: chain(1, 100) }));
    const cancelled = submitted(queue.submit({ prompt: chain(1, 200) }));
    const first = submitted(queue.submit({ prompt: chain(1, 300), front: true }));
    await new Promise((r) => setTimeout(r, 0));
    expect(queue.list().pending.map((p) => p.id)).toEqual([first, later, cancelled]);
    expect(queue.cancel(cancelled)).toBe(true);
    expect(queue.cancel('unknown')).toBe(false);
    await queue.whenDone(later);
    expect((await queue.whenDone(running)).status).toBe('success');
    expect((await queue.whenDone(cancelled)).status).toBe('cancelled');
    expect(received).toEqual([5, 306, 106]);
  });

  it('interrupts the running prompt and then runs the next', async () => {
    const { queue, events } = makeQueue();
    const long = submitted(queue.submit({ prompt: slow(10_000, 5) }));
    const next = submitted(queue.submit({ prompt: chain() }));
    await new Promise((r) => setTimeout(r, 50));
    expect(queue.interrupt('someone-else')).toBe(false);
    expect(queue.interrupt(long)).toBe(true);
    expect((await queue.whenDone(long)).status).toBe('interrupted');
    expect((await queue.whenDone(next)).status).toBe('success');
    expect(events.some((e) => e.type === 'interrupted' && e.prompt_id === long)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'status', queue_remaining: 0, running: null });
  });

  it('bounds the pending queue and the history', async () => {
    const { queue } = makeQueue({ maxPending: 2, historyLimit: 3 });
    const ids = [submitted(queue.submit({ prompt: chain(1, 1) })), submitted(queue.submit({ prompt: chain(1, 2) }))];
    expect(queue.submit({ prompt: chain(1, 3) })).toMatchObject({ ok: false, reason: 'full' });
    await Promise.all(ids.map((id) => queue.whenDone(id)));
    for (let i = 0; i < 3; i++) await queue.whenDone(submitted(queue.submit({ prompt: chain(1, 10 + i) })));
    expect(queue.history()).toHaveLength(3);
    expect(queue.historyEntry(ids[0]!)).toBeUndefined();
  });
});

import { beforeEach, describe, expect, it } from 'vitest';
import { LruOutputCache } from '../../server/engine/index.ts';
import { chain, Harness } from '../support/engine-harness.ts';
import { executions, received, resetCounters } from '../support/test-nodes.ts';

beforeEach(resetCounters);

describe('executor', () => {
  it('runs a chain in order and passes values by declared output slot', async () => {
    const h = new Harness();
    const result = await h.run(chain(1, 10, 5));
    expect(result.status).toBe('success');
    expect(result.executed).toEqual(['1', '2', '3', '4']);
    expect(received).toEqual([16]);
    expect(h.events.map((e) => e.type)).toEqual([
      'prompt_start', 'cached',
      'node_start', 'node_done', 'node_start', 'node_done', 'node_start', 'node_done', 'node_start', 'node_done',
      'prompt_done',
    ]);
  });

  it('uses slot 1 for the second declared output even when execute builds it first', async () => {
    const h = new Harness();
    const prompt = chain();
    prompt['4']!.inputs.value = ['3', 1];
    await h.run(prompt);
    expect(received).toEqual([32]);
  });

  it('re-runs only the changed node and its descendants', async () => {
    const h = new Harness();
    await h.run(chain(1, 10));
    const second = await h.run(chain(1, 20));
    expect(second.cached).toEqual(['1', '2']);
    expect(second.executed).toEqual(['3', '4']);
    expect(received).toEqual([16, 26]);
    const cachedEvent = h.events.find((e) => e.type === 'cached');
    expect(cachedEvent).toMatchObject({ nodes: ['1', '2'] });
    const third = await h.run(chain(1, 20));
    expect(third.executed).toEqual([]);
    expect(third.cached).toEqual(['1', '2', '3', '4']);
  });

  it('keys by content, not by node id: a renumbered graph hits the cache', async () => {
    const h = new Harness();
    await h.run(chain());
    const renumbered = {
      a: { class_type: 'TestConst', inputs: { value: 5 } },
      b: { class_type: 'TestAdd', inputs: { a: ['a', 0] as [string, number], b: 1 } },
      c: { class_type: 'TestAdd', inputs: { a: ['b', 0] as [string, number], b: 10 } },
      d: { class_type: 'TestOutput', inputs: { value: ['c', 0] as [string, number] } },
    };
    const result = await h.run(renumbered);
    expect(result.executed).toEqual([]);
    expect(result.cached.sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('never caches nondeterministic nodes nor what depends on them', async () => {
    const h = new Harness();
    const prompt = {
      '1': { class_type: 'TestRandom', inputs: {} },
      '2': { class_type: 'TestAdd', inputs: { a: ['1', 0] as [string, number], b: 0 } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] as [string, number] } },
    };
    await h.run(prompt);
    const again = await h.run(prompt);
    expect(again.cached).toEqual([]);
    expect(executions.get('TestRandom')).toBe(2);
  });

  it('gives the same seeded draws on every run', async () => {
    const h1 = new Harness();
    const h2 = new Harness();
    const p = { '1': { class_type: 'TestSeeded', inputs: { seed: 42 } }, '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] as [string, number] } } };
    await h1.run(p);
    await h2.run(p);
    expect(received[0]).toBe(received[1]);
  });

  it('fails a prompt with the node, the input and the reason, and keeps what ran', async () => {
    const h = new Harness();
    const prompt = {
      '1': { class_type: 'TestConst', inputs: { value: 7 } },
      '2': { class_type: 'TestFail', inputs: { value: ['1', 0] as [string, number], fail: true } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] as [string, number] } },
    };
    const result = await h.run(prompt);
    expect(result.status).toBe('error');
    expect(result.executed).toEqual(['1']);
    expect(result.error).toMatchObject({ node_id: '2', node_type: 'TestFail', code: 'BAD_INPUT', inputs: { value: 7, fail: true } });
    expect(result.error!.message).toBe("Test Fail (#2) input 'value': 7 is not acceptable");
    expect(h.events.at(-2)).toMatchObject({ type: 'error', node_id: '2' });
    // The node that succeeded is cached: fixing the failing one re-runs only it and after.
    prompt['2'].inputs.fail = false;
    const fixed = await h.run(prompt);
    expect(fixed.cached).toEqual(['1']);
    expect(fixed.status).toBe('success');
  });

  it('checks values that arrive over links against the widget range', async () => {
    const h = new Harness();
    const prompt = {
      '1': { class_type: 'TestConst', inputs: { value: 20_000 } },
      '2': { class_type: 'TestSlow', inputs: { steps: ['1', 0] as [string, number], ms: 0 } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] as [string, number] } },
    };
    const result = await h.run(prompt);
    expect(result.error?.message).toMatch(/Test Slow \(#2\) input 'steps'.*20000 is out of range \[1, 10000\]/);
  });

  it('interrupts inside a long node and reports it', async () => {
    const h = new Harness();
    const abort = new AbortController();
    const prompt = {
      '1': { class_type: 'TestSlow', inputs: { steps: 1000, ms: 5 } },
      '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] as [string, number] } },
    };
    setTimeout(() => abort.abort(), 60);
    const t0 = performance.now();
    const result = await h.run(prompt, abort.signal);
    expect(result.status).toBe('interrupted');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(h.events.at(-2)).toMatchObject({ type: 'interrupted', node_id: '1' });
    expect(h.events.some((e) => e.type === 'progress')).toBe(true);
  });

  it('throttles progress events but always sends the last one', async () => {
    const h = new Harness();
    await h.run({
      '1': { class_type: 'TestSlow', inputs: { steps: 200, ms: 0 } },
      '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] as [string, number] } },
    });
    const progress = h.events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeLessThan(50);
    expect(progress.at(-1)).toMatchObject({ value: 200, max: 200 });
  });

  it('evicts least recently used outputs beyond the byte budget', async () => {
    const cache = new LruOutputCache(8 * 3); // room for three cached INT outputs (8 bytes each)
    const h = new Harness(cache);
    await h.run(chain(1, 10)); // const, add, add, output: the oldest (const) is evicted
    expect(cache.stats().bytes).toBeLessThanOrEqual(24);
    const again = await h.run(chain(1, 10));
    expect(again.executed).toContain('1');
  });

  it('runs nodes near outputs first', async () => {
    const h = new Harness();
    const result = await h.run({
      '1': { class_type: 'TestConst', inputs: { value: 1 } },
      '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 1 } },
      '3': { class_type: 'TestAdd', inputs: { a: ['2', 0], b: 1 } },
      '4': { class_type: 'TestOutput', inputs: { value: ['3', 0] } },
      '5': { class_type: 'TestConst', inputs: { value: 2 } },
      '6': { class_type: 'TestOutput', inputs: { value: ['5', 0] } },
    });
    expect(result.executed).toEqual(['5', '6', '1', '2', '3', '4']);
  });
});

describe('fingerprints', () => {
  it('fails the node whose fingerprint cannot be computed, naming it', async () => {
    const { defineNode } = await import('../../nodes/api/define.ts');
    const { string } = await import('../../nodes/api/widgets.ts');
    const { testNodes } = await import('../support/test-nodes.ts');
    const Fragile = defineNode({
      id: 'Fragile',
      displayName: 'Fragile',
      category: 'test',
      description: '',
      inputs: {},
      widgets: { name: string({ default: 'x' }) },
      outputs: { value: 'INT' },
      fingerprint: ({ name }) => {
        if (name === 'gone') throw new Error('file gone was deleted');
        return name;
      },
      execute: () => ({ value: 1 }),
    });
    const h = new Harness(undefined, [...testNodes, Fragile]);
    const prompt = {
      '1': { class_type: 'TestConst', inputs: { value: 1 } },
      '2': { class_type: 'Fragile', inputs: { name: 'gone' } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] as [string, number] } },
      '4': { class_type: 'TestOutput', inputs: { value: ['1', 0] as [string, number] } },
    };
    const result = await h.run(prompt);
    expect(result.error).toMatchObject({ node_id: '2', message: 'Fragile (#2) failed: file gone was deleted' });
    // A fingerprinted widget fed by a link cannot be fingerprinted ahead: never cached.
    const linked = {
      '1': { class_type: 'TestText', inputs: { text: 'a' } },
      '2': { class_type: 'Fragile', inputs: { name: ['1', 0] as [string, number] } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] as [string, number] } },
    };
    await h.run(linked);
    const again = await h.run(linked);
    expect(again.cached).toEqual(['1']);
    expect(again.executed).toEqual(['2', '3']);
  });
});

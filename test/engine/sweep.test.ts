import { beforeEach, describe, expect, it } from 'vitest';
import type { Branch } from '../../nodes/api/branch.ts';
import { defineNode } from '../../nodes/api/define.ts';
import { int } from '../../nodes/api/widgets.ts';
import Sweep from '../../nodes/compare/sweep.ts';
import { compilePrompt, type ApiPrompt } from '../../server/engine/index.ts';
import { parseSweepValues } from '../../server/engine/sweep.ts';
import { Harness } from '../support/engine-harness.ts';
import { executions, resetCounters, testNodes } from '../support/test-nodes.ts';

/** Counts runs per (b, c) pair, so that "each branch once" is checked branch by branch. */
const mixRuns = new Map<string, number>();
const Mix = defineNode({
  id: 'TestMix',
  displayName: 'Test Mix',
  category: 'test',
  description: 'a * b + c: two widgets to sweep.',
  inputs: { a: { type: 'INT' } },
  widgets: { b: int({ default: 1, min: 0, max: 100 }), c: int({ default: 0, min: 0, max: 1000 }) },
  outputs: { value: 'INT' },
  execute({ a, b, c }) {
    mixRuns.set(`${b},${c}`, (mixRuns.get(`${b},${c}`) ?? 0) + 1);
    return { value: a * b + c };
  },
});

/** What the gathering output node last received, and how often it ran. */
let collected: Array<Branch<number>> = [];
let collectRuns = 0;
const Collect = defineNode({
  id: 'TestCollect',
  displayName: 'Test Collect',
  category: 'test',
  description: 'Output node gathering every branch.',
  inputs: { values: { type: 'INT', gather: true } },
  widgets: {},
  outputs: {},
  output: true,
  execute({ values }) {
    collectRuns++;
    collected = values;
    return {};
  },
});

const nodes = [...testNodes, Mix, Collect, Sweep];

/** const → add → mix (swept) → add → collect, with a Sweep over mix's b (x) and c (y). */
function sweptGraph(xValues = '1,2,3', yValues = '10,20'): ApiPrompt {
  return {
    '1': { class_type: 'TestConst', inputs: { value: 5 } },
    '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 1 } },
    '3': { class_type: 'TestMix', inputs: { a: ['2', 0] }, _meta: { title: 'Mixer' } },
    '4': { class_type: 'TestAdd', inputs: { a: ['3', 0], b: 1000 } },
    '5': { class_type: 'TestCollect', inputs: { values: ['4', 0] } },
    '9': { class_type: 'Sweep', inputs: { target: '3', x_widget: 'b', x_values: xValues, y_widget: 'c', y_values: yValues } },
  };
}

beforeEach(() => {
  resetCounters();
  mixRuns.clear();
  collected = [];
  collectRuns = 0;
});

describe('sweep', () => {
  it('runs a 3x2 sweep with each upstream node once and each branch once', async () => {
    const h = new Harness(undefined, nodes);
    const result = await h.run(sweptGraph());
    expect(result.status).toBe('success');
    expect(executions.get('TestConst')).toBe(1);
    // Node 2 once (upstream), node 4 once per branch (downstream copies).
    expect(executions.get('TestAdd')).toBe(1 + 6);
    expect(Object.fromEntries(mixRuns)).toEqual({ '1,10': 1, '2,10': 1, '3,10': 1, '1,20': 1, '2,20': 1, '3,20': 1 });
    expect(collectRuns).toBe(1);
    // x varies fastest; a = 5 + 1 = 6, value = 6 * b + c + 1000.
    expect(collected.map((b) => b.value)).toEqual([1016, 1022, 1028, 1026, 1032, 1038]);
    expect(collected.map((b) => b.label)).toEqual(['b=1, c=10', 'b=2, c=10', 'b=3, c=10', 'b=1, c=20', 'b=2, c=20', 'b=3, c=20']);
    expect(collected[4]!.coords).toEqual([
      { axis: 0, node: '3', title: 'Mixer', widget: 'b', value: 2, index: 1 },
      { axis: 1, node: '3', title: 'Mixer', widget: 'c', value: 20, index: 1 },
    ]);
    expect(result.executed).toEqual(expect.arrayContaining(['1', '2', '3:0', '3:5', '4:0', '4:5', '5']));
    expect(result.executed).not.toContain('3');
  });

  it('re-runs nothing when nothing changed, and only the new branches when a value is added', async () => {
    const h = new Harness(undefined, nodes);
    await h.run(sweptGraph());
    const again = await h.run(sweptGraph());
    expect(again.executed).toEqual([]);

    resetCounters();
    mixRuns.clear();
    const grown = await h.run(sweptGraph('1,2,3', '10,20,30'));
    // One new y value: one new row of three branches; upstream and the old branches come from the cache.
    expect(Object.fromEntries(mixRuns)).toEqual({ '1,30': 1, '2,30': 1, '3,30': 1 });
    expect(executions.get('TestConst')).toBeUndefined();
    expect(executions.get('TestAdd')).toBe(3);
    expect(grown.executed.sort()).toEqual(['3:6', '3:7', '3:8', '4:6', '4:7', '4:8', '5']);
    expect(collected).toHaveLength(9);

    mixRuns.clear();
    const one = await h.run(sweptGraph('1,2,3,4', '10'));
    // A 4x1 sweep whose first three branches ran before: only b=4 runs.
    expect(Object.fromEntries(mixRuns)).toEqual({ '4,10': 1 });
    expect(one.executed.sort()).toEqual(['3:3', '4:3', '5']);
  });

  it('runs a node shared by branches once when only a later node is swept on y', async () => {
    const h = new Harness(undefined, nodes);
    const prompt = sweptGraph();
    // y now sweeps node 4's b: node 3 sees only x, so its copies per y are identical and run once.
    prompt['9']!.inputs = { target: '3', x_widget: 'b', x_values: '1,2,3', y_target: '4', y_widget: 'b', y_values: '0,100' };
    const result = await h.run(prompt);
    expect(result.status).toBe('success');
    expect(Object.values(Object.fromEntries(mixRuns))).toEqual([1, 1, 1]);
    expect(executions.get('TestAdd')).toBe(1 + 6);
    expect(collected.map((b) => b.value)).toEqual([6, 12, 18, 106, 112, 118]);
    expect(result.cached.filter((id) => id.startsWith('3:'))).toHaveLength(3);
  });

  it('copies an output node that is downstream of the swept node, once per branch', async () => {
    const h = new Harness(undefined, nodes);
    const prompt: ApiPrompt = {
      '1': { class_type: 'TestConst', inputs: { value: 2 } },
      '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 0 } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] } },
      '4': { class_type: 'Sweep', inputs: { target: '2', x_widget: 'b', x_values: '0:4:2' } },
    };
    const compiled = compilePrompt(prompt, h.registry, h.env);
    expect(compiled.ok && compiled.graph.outputs).toEqual(['3:0', '3:1', '3:2']);
    expect(compiled.ok && compiled.graph.nodes.get('2:1')!.title).toBe('Test Add [b=2]');
    const result = await h.run(prompt);
    expect(result.status).toBe('success');
    expect(executions.get('TestOutput')).toBe(3);
  });

  it('gives a plain link to a gathering input as one unlabelled branch', async () => {
    const h = new Harness(undefined, nodes);
    await h.run({
      '1': { class_type: 'TestConst', inputs: { value: 7 } },
      '2': { class_type: 'TestCollect', inputs: { values: ['1', 0] } },
    });
    expect(collected).toEqual([{ value: 7, coords: [], label: '' }]);
  });

  it('tells which branch each copy is in its events and its result, with the values as the label', async () => {
    const h = new Harness(undefined, nodes);
    const prompt = sweptGraph('1,2', '10,20');
    // A slow node downstream of the swept one: its copies report progress too.
    prompt['6'] = { class_type: 'TestSlow', inputs: { steps: 2, ms: 1 } };
    prompt['4']!.inputs.b = ['6', 0];
    const result = await h.run(prompt);
    expect(result.status).toBe('success');
    type WithBranch = { type: string; node_id?: string; branch?: { of: string; index: number; label: string } };
    const events = h.events as WithBranch[];
    const labels = ['b=1, c=10', 'b=2, c=10', 'b=1, c=20', 'b=2, c=20'];
    for (const type of ['node_start', 'node_done']) {
      const copies = events.filter((e) => e.type === type && e.node_id?.startsWith('3:'));
      expect(copies.map((e) => [e.node_id, e.branch]), type).toEqual(labels.map((label, k) => [`3:${k}`, { of: '3', index: k, label }]));
      // Node 4 (downstream) is copied too; its label names the same values as the branch's node 3.
      expect(events.find((e) => e.type === type && e.node_id === '4:3')?.branch, type).toEqual({ of: '4', index: 3, label: 'b=2, c=20' });
      // Plain nodes carry no branch: upstream (1, 2, 6) and the gathering output (5).
      for (const id of ['1', '2', '5', '6']) expect(events.find((e) => e.type === type && e.node_id === id)?.branch, `${type} ${id}`).toBeUndefined();
    }
    // Node 6 is upstream, so its progress is plain; a branch's progress would carry its branch.
    expect(events.filter((e) => e.type === 'progress').every((e) => e.node_id === '6' && e.branch === undefined)).toBe(true);
    expect(result.branches).toEqual(
      Object.fromEntries(['3', '4'].flatMap((of) => labels.map((label, index) => [`${of}:${index}`, { of, index, label }]))),
    );
  });

  it('names the branch of a failing copy and of a copy that reports progress', async () => {
    const h = new Harness(undefined, nodes);
    // The failing node is swept on x (fail=false, fail=true) and the slow node above it on y (one value).
    const run = await h.run({
      '1': { class_type: 'TestSlow', inputs: { steps: 3, ms: 1 } },
      '2': { class_type: 'TestFail', inputs: { value: ['1', 0], fail: false } },
      '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] } },
      '4': { class_type: 'Sweep', inputs: { target: '2', x_widget: 'fail', x_values: 'false, true', y_target: '1', y_widget: 'steps', y_values: '2' } },
    });
    expect(run.status).toBe('error');
    const branch = { of: '2', index: 1, label: 'fail=true, steps=2' };
    expect(run.error).toMatchObject({ node_id: '2:1', branch });
    const events = h.events as Array<{ type: string; node_id?: string; branch?: unknown }>;
    expect(events.find((e) => e.type === 'error')).toMatchObject({ node_id: '2:1', branch });
    // The slow node's copies for both x values are identical, so one runs; its progress names its branch.
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const e of progress) expect(e).toMatchObject({ node_id: '1:0', branch: { of: '1', index: 0, label: 'fail=false, steps=2' } });
    // The history's branch map has the copies the run reached, the failed one included.
    expect(run.branches).toMatchObject({ '1:0': { of: '1', index: 0 }, '2:0': { of: '2', index: 0 }, '2:1': branch });
  });

  it('reports sweeps that cannot be expanded, on the Sweep node and its widget', () => {
    const h = new Harness(undefined, nodes);
    const issues = (inputs: Record<string, string>): Array<{ input?: string; code: string; message: string }> => {
      const prompt = sweptGraph();
      prompt['9']!.inputs = { target: '3', x_widget: 'b', x_values: '1', ...inputs };
      const compiled = compilePrompt(prompt, h.registry, h.env);
      return compiled.ok ? [] : compiled.errors.map(({ input, code, message }) => ({ input, code, message }));
    };
    expect(issues({ target: '42' })).toEqual([expect.objectContaining({ input: 'target', message: expect.stringContaining("no node with id or title '42'") })]);
    expect(issues({ target: 'Mixer' })).toEqual([]);
    expect(issues({ x_widget: 'd' })).toEqual([expect.objectContaining({ input: 'x_widget', message: expect.stringContaining('widgets: b, c') })]);
    expect(issues({ x_values: '1, 200' })).toEqual([expect.objectContaining({ input: 'x_values', code: 'out_of_range' })]);
    expect(issues({ x_values: '1.5' })).toEqual([expect.objectContaining({ input: 'x_values', message: expect.stringContaining('expected an integer') })]);
    expect(issues({ x_values: '' })).toEqual([expect.objectContaining({ input: 'x_values', message: expect.stringContaining('empty') })]);
    expect(issues({ x_values: '0:20', y_widget: 'c', y_values: '0:9' })).toEqual([expect.objectContaining({ message: expect.stringContaining('210 branches') })]);
    expect(issues({ y_widget: 'b', y_values: '2' })).toEqual([expect.objectContaining({ input: 'y_widget', message: expect.stringContaining('both set') })]);
    // A widget fed by a link has no constant to replace.
    const linked = sweptGraph();
    linked['3']!.inputs.c = ['1', 0];
    linked['9']!.inputs = { target: '3', x_widget: 'c', x_values: '1,2' };
    const compiled = compilePrompt(linked, h.registry, h.env);
    expect(compiled.ok ? [] : compiled.errors.map((e) => e.message)).toEqual([expect.stringContaining('fed by a link')]);
  });

  it('parses lists and ranges per widget kind', () => {
    const env = new Harness().env;
    expect(parseSweepValues('0.1:0.5:0.1', { kind: 'FLOAT', default: 0, min: 0, max: 1 }, env)).toEqual({ values: [0.1, 0.2, 0.3, 0.4, 0.5] });
    expect(parseSweepValues('1, 4:6, 10', { kind: 'INT', default: 0, min: 0, max: 10 }, env)).toEqual({ values: [1, 4, 5, 6, 10] });
    expect(parseSweepValues('a, b', { kind: 'COMBO', options: ['a', 'b'], default: 'a' }, env)).toEqual({ values: ['a', 'b'] });
    expect(parseSweepValues('x, y\nz', { kind: 'STRING', default: '' }, env)).toEqual({ values: ['x, y', 'z'] });
    expect(parseSweepValues('true,false', { kind: 'BOOLEAN', default: false }, env)).toEqual({ values: [true, false] });
    expect(parseSweepValues('c', { kind: 'COMBO', options: ['a', 'b'], default: 'a' }, env)).toMatchObject({ error: expect.stringContaining('not in the list') });
    expect(parseSweepValues('5:1', { kind: 'INT', default: 0, min: 0, max: 10 }, env)).toMatchObject({ error: expect.stringContaining('ends before') });
  });
});

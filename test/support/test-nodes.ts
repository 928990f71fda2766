/**
 * A node pack that exists only to exercise the executor: counts executions, fails on demand,
 * runs slowly with progress, draws random numbers. Never part of the shipped catalogue.
 */
import { defineNode, type AnyNodeDefinition } from '../../nodes/api/define.ts';
import { InputError } from '../../nodes/api/errors.ts';
import { boolean, int, seed, string } from '../../nodes/api/widgets.ts';

/** How many times each test node type ran, for assertions. */
export const executions = new Map<string, number>();
const count = (id: string): void => void executions.set(id, (executions.get(id) ?? 0) + 1);

export const TestConst = defineNode({
  id: 'TestConst',
  displayName: 'Test Const',
  category: 'test',
  description: 'Outputs its widget value.',
  inputs: {},
  widgets: { value: int({ default: 1, min: -1e9, max: 1e9 }) },
  outputs: { value: 'INT' },
  execute({ value }) {
    count('TestConst');
    return { value };
  },
});

export const TestAdd = defineNode({
  id: 'TestAdd',
  displayName: 'Test Add',
  category: 'test',
  description: 'a + b.',
  inputs: { a: { type: 'INT' } },
  widgets: { b: int({ default: 1, min: -1e9, max: 1e9 }) },
  outputs: { sum: 'INT', doubled: 'INT' },
  execute({ a, b }) {
    count('TestAdd');
    // Built in the reverse of the declared order, so that slot lookup by declaration is tested.
    return { doubled: 2 * (a + b), sum: a + b };
  },
});

export const TestSlow = defineNode({
  id: 'TestSlow',
  displayName: 'Test Slow',
  category: 'test',
  description: 'Sleeps `ms` per step for `steps` steps, reporting progress.',
  inputs: {},
  widgets: { steps: int({ default: 10, min: 1, max: 10_000 }), ms: int({ default: 10, min: 0, max: 10_000 }) },
  outputs: { value: 'INT' },
  async execute({ steps, ms }, ctx) {
    count('TestSlow');
    for (let i = 0; i < steps; i++) {
      await new Promise((r) => setTimeout(r, ms));
      ctx.progress(i + 1, steps);
    }
    return { value: steps };
  },
});

export const TestFail = defineNode({
  id: 'TestFail',
  displayName: 'Test Fail',
  category: 'test',
  description: 'Fails when `fail` is true.',
  inputs: { value: { type: 'INT' } },
  widgets: { fail: boolean({ default: true }) },
  outputs: { value: 'INT' },
  execute({ value, fail }) {
    count('TestFail');
    if (fail) throw new InputError('value', `${value} is not acceptable`);
    return { value };
  },
});

export const TestRandom = defineNode({
  id: 'TestRandom',
  displayName: 'Test Random',
  category: 'test',
  description: 'Draws from the context RNG; nondeterministic.',
  inputs: {},
  widgets: {},
  outputs: { value: 'INT' },
  nondeterministic: true,
  execute(_args, ctx) {
    count('TestRandom');
    return { value: ctx.rng(Date.now()).int(0, 1e9) };
  },
});

export const TestSeeded = defineNode({
  id: 'TestSeeded',
  displayName: 'Test Seeded',
  category: 'test',
  description: 'Draws from the context RNG with a seed widget.',
  inputs: {},
  widgets: { seed: seed() },
  outputs: { value: 'INT' },
  execute({ seed: s }, ctx) {
    count('TestSeeded');
    return { value: ctx.rng(s).int(0, 1e9) };
  },
});

export const TestText = defineNode({
  id: 'TestText',
  displayName: 'Test Text',
  category: 'test',
  description: 'Outputs its text.',
  inputs: {},
  widgets: { text: string({ default: '' }) },
  outputs: { text: 'STRING' },
  execute({ text }) {
    return { text };
  },
});

/** Output node: records the values it received. */
export const received: number[] = [];
export const TestOutput = defineNode({
  id: 'TestOutput',
  displayName: 'Test Output',
  category: 'test',
  description: 'Output node that records its input.',
  inputs: { value: { type: 'INT' } },
  widgets: {},
  outputs: {},
  output: true,
  execute({ value }) {
    count('TestOutput');
    received.push(value);
    return {};
  },
});

export const testNodes: AnyNodeDefinition[] = [TestConst, TestAdd, TestSlow, TestFail, TestRandom, TestSeeded, TestText, TestOutput];

export function resetCounters(): void {
  executions.clear();
  received.length = 0;
}

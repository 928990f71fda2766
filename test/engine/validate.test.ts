import { describe, expect, it } from 'vitest';
import { compilePrompt, type ApiPrompt } from '../../server/engine/index.ts';
import { chain, Harness } from '../support/engine-harness.ts';

const compile = (prompt: ApiPrompt) => {
  const h = new Harness();
  return compilePrompt(prompt, h.registry, h.env);
};
const errorsOf = (prompt: ApiPrompt) => {
  const result = compile(prompt);
  if (result.ok) throw new Error('expected errors');
  return result.errors;
};

describe('validation', () => {
  it('accepts a valid chain and plans only ancestors of outputs', () => {
    const prompt: ApiPrompt = { ...chain(), stray: { class_type: 'NoSuchNode', inputs: {} } };
    const result = compile(prompt);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.graph.order).toEqual(['1', '2', '3', '4']);
  });

  it('returns every error at once, each with its node and input', () => {
    const errors = errorsOf({
      '1': { class_type: 'TestConst', inputs: { value: 1.5 } },
      '2': { class_type: 'NoSuchNode', inputs: {} },
      '3': { class_type: 'TestAdd', inputs: { b: 2 } },
      '4': { class_type: 'TestAdd', inputs: { a: ['99', 0], b: 'x' } },
      '5': { class_type: 'TestAdd', inputs: { a: ['1', 3], b: 2_000_000_000 } },
      '6': { class_type: 'TestSlow', inputs: { steps: 5, ms: 1, speed: 3 } },
      '7': { class_type: 'TestAdd', inputs: { a: 4, b: 1 } },
      o1: { class_type: 'TestOutput', inputs: { value: ['2', 0] } },
      o2: { class_type: 'TestOutput', inputs: { value: ['3', 0] } },
      o3: { class_type: 'TestOutput', inputs: { value: ['4', 0] } },
      o4: { class_type: 'TestOutput', inputs: { value: ['5', 0] } },
      o5: { class_type: 'TestOutput', inputs: { value: ['6', 0] } },
      o6: { class_type: 'TestOutput', inputs: { value: ['7', 0] } },
      o7: { class_type: 'TestOutput', inputs: { value: ['1', 0] } },
    });
    const summary = errors.map((e) => `${e.node_id}:${e.input ?? ''}:${e.code}`).sort();
    expect(summary).toEqual([
      '1:value:bad_value',
      '2::unknown_type',
      '3:a:missing_input',
      '4:a:dangling_link',
      '4:b:bad_value',
      '5:a:dangling_link',
      '5:b:out_of_range',
      '6:speed:unknown_input',
      '7:a:bad_value',
    ]);
    expect(errors.find((e) => e.node_id === '5' && e.input === 'b')!.message).toMatch(/2000000000 is out of range/);
  });

  it('reports type mismatches with both types', () => {
    const errors = errorsOf({
      '1': { class_type: 'TestText', inputs: { text: 'hi' } },
      '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } },
    });
    expect(errors).toEqual([
      expect.objectContaining({ node_id: '2', input: 'value', code: 'type_mismatch', message: expect.stringMatching(/expects INT but is linked to STRING output 'text' of node 1/) }),
    ]);
  });

  it('finds cycles and names the nodes on them', () => {
    const errors = errorsOf({
      '1': { class_type: 'TestAdd', inputs: { a: ['3', 0], b: 1 } },
      '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 1 } },
      '3': { class_type: 'TestAdd', inputs: { a: ['2', 0], b: 1 } },
      '4': { class_type: 'TestOutput', inputs: { value: ['3', 0] } },
    });
    expect(errors.map((e) => [e.node_id, e.code]).sort()).toEqual([['1', 'cycle'], ['2', 'cycle'], ['3', 'cycle']]);
  });

  it('needs an output node', () => {
    const errors = errorsOf({ '1': { class_type: 'TestConst', inputs: { value: 1 } } });
    expect(errors).toEqual([expect.objectContaining({ node_id: null, code: 'no_outputs' })]);
  });
});

import { describe, expect, it } from 'vitest';
import { compilePrompt, parseWorkflow, workflowToPrompt, WORKFLOW_FORMAT } from '../../server/engine/index.ts';
import { Harness } from '../support/engine-harness.ts';
import { received, resetCounters } from '../support/test-nodes.ts';

/** const(1) → add(2) → add(3) → output(4); node 3 may be bypassed or muted. */
function workflow(mode3 = 0): unknown {
  return {
    format: WORKFLOW_FORMAT,
    version: 1,
    last_node_id: 4,
    last_link_id: 3,
    nodes: [
      { id: 1, type: 'TestConst', pos: [0, 0], outputs: [{ name: 'value', type: 'INT', links: [1] }], widgets_values: { value: 5 } },
      { id: 2, type: 'TestAdd', pos: [200, 0], inputs: [{ name: 'a', type: 'INT', link: 1 }], outputs: [{ name: 'sum', type: 'INT', links: [2] }], widgets_values: { b: 1 } },
      { id: 3, type: 'TestAdd', title: 'Second add', mode: mode3, pos: [400, 0], inputs: [{ name: 'a', type: 'INT', link: 2 }], outputs: [{ name: 'sum', type: 'INT', links: [3] }], widgets_values: { b: 10 } },
      { id: 4, type: 'TestOutput', pos: [600, 0], inputs: [{ name: 'value', type: 'INT', link: 3 }] },
    ],
    links: [
      [1, 1, 0, 2, 0, 'INT'],
      [2, 2, 0, 3, 0, 'INT'],
      [3, 3, 0, 4, 0, 'INT'],
    ],
    groups: [{ title: 'Maths', bounding: [0, 0, 500, 200] }],
    extra: { ds: { scale: 1, offset: [0, 0] } },
  };
}

describe('workflow files', () => {
  it('converts to the executable prompt and runs', async () => {
    resetCounters();
    const h = new Harness();
    const prompt = workflowToPrompt(parseWorkflow(workflow()), h.registry);
    expect(prompt['3']).toEqual({ class_type: 'TestAdd', inputs: { b: 10, a: ['2', 0] }, _meta: { title: 'Second add' } });
    await h.run(prompt);
    expect(received).toEqual([16]);
  });

  it('passes bypassed nodes through and leaves muted ones out', async () => {
    resetCounters();
    const h = new Harness();
    await h.run(workflowToPrompt(parseWorkflow(workflow(4)), h.registry));
    expect(received).toEqual([6]);
    const muted = workflowToPrompt(parseWorkflow(workflow(2)), h.registry);
    expect(muted['3']).toBeUndefined();
    const compiled = compilePrompt(muted, h.registry, h.env);
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) expect(compiled.errors).toEqual([expect.objectContaining({ node_id: '4', code: 'missing_input' })]);
  });

  it('names the node and field of a schema error', () => {
    const bad = workflow() as { nodes: Array<Record<string, unknown>> };
    bad.nodes[2]!.pos = 'left';
    expect(() => parseWorkflow(bad)).toThrow(/node 3 \(TestAdd\) field pos/);
  });

  it('refuses files from the future and files of other formats', () => {
    expect(() => parseWorkflow({ ...(workflow() as object), version: 99 })).toThrow(/newer SUPIR Studio/);
    expect(() => parseWorkflow({ last_node_id: 1, nodes: [] })).toThrow(/not a SUPIR Studio workflow/);
  });

  it('turns a link to a missing link id into a dangling-link error', () => {
    const h = new Harness();
    const wf = workflow() as { links: unknown[] };
    wf.links = wf.links.slice(0, 2);
    const compiled = compilePrompt(workflowToPrompt(parseWorkflow(wf), h.registry), h.registry, h.env);
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) expect(compiled.errors[0]).toMatchObject({ node_id: '4', input: 'value', code: 'dangling_link' });
  });
});

import { describe, expect, it } from 'vitest';
import { catalogue } from '../../nodes/index.ts';
import { compilePrompt, NodeRegistry, parseWorkflow, workflowToPrompt, WORKFLOW_FORMAT, WORKFLOW_VERSION } from '../../server/engine/index.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { Harness } from '../support/engine-harness.ts';
import { tempEnv } from '../support/fake-context.ts';
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

/**
 * A version-1 file: Load SUPIR Model → SUPIR Decode, Load Upscale Model → Upscale Image, and a
 * model from a node type that never made one (OldModelLoader) → SUPIR Sample, all typed MODEL.
 */
function v1Models(): Record<string, unknown> {
  return {
    format: WORKFLOW_FORMAT,
    version: 1,
    nodes: [
      { id: 1, type: 'LoadSupirModel', pos: [0, 0], outputs: [{ name: 'model', type: 'MODEL', links: [1] }], widgets_values: { pack: 'SUPIR-v0Q', provider: 'cpu' } },
      { id: 2, type: 'SupirDecode', pos: [0, 0], inputs: [{ name: 'model', type: 'MODEL', link: 1 }, { name: 'latent', type: 'LATENT', link: null }], outputs: [{ name: 'image', type: 'IMAGE', links: [] }] },
      { id: 3, type: 'LoadUpscaleModel', pos: [0, 0], outputs: [{ name: 'model', type: 'MODEL', links: [2] }], widgets_values: { model_name: 'esrgan-medium x4', provider: 'cpu' } },
      { id: 4, type: 'UpscaleImage', pos: [0, 0], inputs: [{ name: 'model', type: 'MODEL', link: 2 }, { name: 'image', type: 'IMAGE', link: null }], outputs: [{ name: 'image', type: 'IMAGE', links: [3] }] },
      { id: 5, type: 'SaveImage', pos: [0, 0], inputs: [{ name: 'image', type: 'IMAGE', link: 3 }] },
      { id: 6, type: 'OldModelLoader', pos: [0, 0], outputs: [{ name: 'model', type: 'MODEL', links: [4] }] },
      { id: 7, type: 'SupirSample', pos: [0, 0], inputs: [{ name: 'model', type: 'MODEL', link: 4 }], outputs: [{ name: 'latent', type: 'LATENT', links: [5] }] },
      { id: 8, type: 'SupirDecode', pos: [0, 0], inputs: [{ name: 'model', type: 'MODEL', link: 6 }, { name: 'latent', type: 'LATENT', link: 5 }], outputs: [{ name: 'image', type: 'IMAGE', links: [7] }] },
      { id: 9, type: 'SaveImage', pos: [0, 0], inputs: [{ name: 'image', type: 'IMAGE', link: 7 }] },
    ],
    links: [
      [1, 1, 0, 2, 0, 'MODEL'],
      [2, 3, 0, 4, 0, 'MODEL'],
      [3, 4, 0, 5, 0, 'IMAGE'],
      [4, 6, 0, 7, 0, 'MODEL'],
      [5, 7, 0, 8, 1, 'LATENT'],
      [6, 1, 0, 8, 0, 'MODEL'],
      [7, 8, 0, 9, 0, 'IMAGE'],
    ],
  };
}

describe('workflow format version 2: SUPIR_MODEL and UPSCALE_MODEL', () => {
  it('is the current version', () => {
    expect(WORKFLOW_VERSION).toBe(2);
  });

  it('lifts a version-1 file: MODEL links take their producer\'s type, slots their node\'s, unknown producers keep MODEL', () => {
    const wf = parseWorkflow(v1Models());
    expect(wf.version).toBe(2);
    expect(wf.links.map((l) => `${l[0]}:${l[5]}`)).toEqual(['1:SUPIR_MODEL', '2:UPSCALE_MODEL', '3:IMAGE', '4:MODEL', '5:LATENT', '6:SUPIR_MODEL', '7:IMAGE']);
    const slots = (id: number) => {
      const n = wf.nodes.find((x) => x.id === id)!;
      return [...n.inputs.map((i) => `<${i.name}:${i.type}`), ...n.outputs.map((o) => `>${o.name}:${o.type}`)];
    };
    expect(slots(1)).toEqual(['>model:SUPIR_MODEL']);
    expect(slots(2)).toEqual(['<model:SUPIR_MODEL', '<latent:LATENT', '>image:IMAGE']);
    expect(slots(3)).toEqual(['>model:UPSCALE_MODEL']);
    expect(slots(4)).toEqual(['<model:UPSCALE_MODEL', '<image:IMAGE', '>image:IMAGE']);
    expect(slots(6)).toEqual(['>model:MODEL']);
    expect(slots(7)).toEqual(['<model:SUPIR_MODEL', '>latent:LATENT']);
    // Everything else is untouched.
    expect(wf.nodes.find((n) => n.id === 3)!.widgets_values).toEqual({ model_name: 'esrgan-medium x4', provider: 'cpu' });
  });

  it('the lifted file gives the same prompt, and validation names the unknown producer', () => {
    const { env, cleanup } = tempEnv();
    try {
      env.models = createModelLibrary(env.dirs);
      const registry = new NodeRegistry(catalogue);
      const prompt = workflowToPrompt(parseWorkflow(v1Models()), registry);
      expect(prompt['7']!.inputs.model).toEqual(['6', 0]);
      expect(prompt['8']!.inputs).toMatchObject({ model: ['1', 0], latent: ['7', 0] });
      expect(prompt['4']!.inputs.model).toEqual(['3', 0]);
      const result = compilePrompt(prompt, registry, env);
      const errors = result.ok ? [] : result.errors;
      expect(errors).toContainEqual(expect.objectContaining({ node_id: '6', code: 'unknown_type' }));
      // The known links are well typed after the migration: no type mismatch anywhere.
      expect(errors.filter((e) => e.code === 'type_mismatch')).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('leaves a malformed version-1 file for the schema to report', () => {
    expect(() => parseWorkflow({ format: WORKFLOW_FORMAT, version: 1, nodes: [{ id: 1, type: 'LoadSupirModel', pos: [0, 0], outputs: 'MODEL' }], links: [[1, 1, 0, 2, 0, 'MODEL'], 'x'] })).toThrow(
      /invalid workflow: .*node 1 \(LoadSupirModel\) field outputs/,
    );
    expect(() => parseWorkflow({ format: WORKFLOW_FORMAT, version: 1, nodes: 'none' })).toThrow(/invalid workflow: nodes/);
  });
});

/**
 * Names every JavaScript object inherits (`constructor`, `toString`, `hasOwnProperty`) and the
 * prototype setter `__proto__`, sent where the engine indexes by what the request says: node ids,
 * link sources, input and widget names, a Sweep's target and widget, in both body formats. Each
 * answer must be a 400 naming the offending name, or, for an ordinary id, a prompt that runs:
 * never a 500, and never a name that passes because `name in {}` is true.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry, ValidationIssue } from '../../server/engine/index.ts';
import { testNodes } from '../support/test-nodes.ts';
import { buildWorkflow, EventRecorder, startTestServer, type TestServer } from '../server/helpers.ts';

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty'] as const;

interface Answer {
  status: number;
  body: { prompt_id?: string; error?: { code: string; message: string }; node_errors?: ValidationIssue[] };
}

describe('prototype property names in prompts and workflows', () => {
  let server: TestServer;
  let ws: EventRecorder;

  beforeAll(async () => {
    server = await startTestServer({}, testNodes);
    ws = await EventRecorder.connect(server.url);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
  });

  /** POSTs JSON text as written: `{"__proto__": ...}` in a JS literal would set a prototype, not a key. */
  const post = async (json: string): Promise<Answer> => {
    const res = await server.api('/api/prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  };
  const history = async (id: string): Promise<HistoryEntry> => (await (await server.api(`/api/history/${id}`)).json()) as HistoryEntry;

  it('takes constructor, toString and hasOwnProperty as ordinary node ids, and refuses __proto__ naming it', async () => {
    for (const [i, name] of NAMES.entries()) {
      // A value per name, so that no run finds the previous one's results in the cache.
      const res = await post(`{"prompt": {"${name}": {"class_type": "TestConst", "inputs": {"value": ${100 + i}}}, "out": {"class_type": "TestOutput", "inputs": {"value": ["${name}", 0]}}}}`);
      if (name === '__proto__') {
        expect(res.status, name).toBe(400);
        expect(res.body.error?.code).toBe('VALIDATION');
        expect(res.body.error?.message).toContain('__proto__');
        expect(res.body.node_errors).toEqual([expect.objectContaining({ node_id: '__proto__' })]);
        continue;
      }
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(await ws.done(res.body.prompt_id!), name).toMatchObject({ status: 'success' });
      expect((await history(res.body.prompt_id!)).executed, name).toEqual([name, 'out']);
    }
  });

  it('answers a link to a missing node of such a name with 400 dangling_link naming it', async () => {
    for (const name of NAMES) {
      const res = await post(`{"prompt": {"1": {"class_type": "TestConst", "inputs": {}}, "2": {"class_type": "TestOutput", "inputs": {"value": ["${name}", 0]}}}}`);
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.node_errors, name).toEqual([expect.objectContaining({ node_id: '2', input: 'value', code: 'dangling_link' })]);
      expect(res.body.node_errors![0]!.message).toContain(`node ${name},`);
    }
  });

  it('reports such input and widget names as unknown, naming them (API format)', async () => {
    for (const name of NAMES) {
      // As an input of a node with inputs (a link) and of a node with only widgets (a constant).
      for (const [node, inputs] of [
        ['2', `{"value": ["1", 0], "${name}": ["1", 0]}`],
        ['1', `{"value": 1, "${name}": 5}`],
      ] as const) {
        const json = `{"prompt": {"1": {"class_type": "TestConst", "inputs": ${node === '1' ? inputs : '{}'}}, "2": {"class_type": "TestOutput", "inputs": ${node === '2' ? inputs : '{"value": ["1", 0]}'}}}}`;
        const res = await post(json);
        expect(res.status, `${name} on ${node}: ${JSON.stringify(res.body)}`).toBe(400);
        expect(res.body.error?.code).toBe('VALIDATION');
        const issue = res.body.node_errors?.find((e) => e.node_id === node);
        expect(issue, `${name} on ${node}`).toBeDefined();
        expect(issue!.message).toContain(name);
        if (name !== '__proto__') expect(issue).toMatchObject({ code: 'unknown_input', input: name });
      }
    }
  });

  it('reports such input slots of a workflow as unknown inputs, and drops such widget values like any unknown one', async () => {
    const base = (): Record<string, unknown> =>
      buildWorkflow([
        { id: 1, type: 'TestConst', widgets: { value: 3 } },
        { id: 2, type: 'TestOutput', inputs: { value: [1, 0, 'INT'] } },
      ]);
    for (const name of NAMES) {
      // An input slot of that name, plain and as a widget's slot, linked to a real output.
      for (const slot of [{ name, type: 'INT', link: 1 }, { name: 'x', type: 'INT', link: 1, widget: { name } }]) {
        const wf = base() as { nodes: Array<{ inputs: unknown[] }> };
        wf.nodes[1]!.inputs.push(slot);
        const res = await post(JSON.stringify({ workflow: wf }));
        expect(res.status, `${name} ${JSON.stringify(slot)}: ${JSON.stringify(res.body)}`).toBe(400);
        expect(res.body.node_errors, name).toEqual([expect.objectContaining({ node_id: '2', input: name, code: 'unknown_input' })]);
        expect(res.body.node_errors![0]!.message).toContain(`'${name}'`);
      }
      // A widget value of that name on a node without such a widget: left out of the prompt that runs.
      const json = JSON.stringify({ workflow: base() }).replace('"widgets_values":{"value":3}', `"widgets_values":{"value":3,"${name}":5}`);
      expect(json).toContain(`"${name}":5`);
      const res = await post(json);
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(await ws.done(res.body.prompt_id!)).toMatchObject({ status: 'success' });
      const entry = await history(res.body.prompt_id!);
      const inputs = (entry.prompt as Record<string, { inputs: Record<string, unknown> }>)['1']!.inputs;
      expect(Object.keys(inputs), name).toEqual(['value']);
      expect(Object.getPrototypeOf(inputs)).toBe(Object.prototype);
    }
    // Workflow node ids are numbers: a name there is a schema error, not a fault.
    const wf = base() as { nodes: Array<{ id: unknown }> };
    wf.nodes[0]!.id = 'constructor';
    const res = await post(JSON.stringify({ workflow: wf }));
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('VALIDATION');
  });

  it('a Sweep names such a widget as missing, and sweeps a node whose id is one', async () => {
    for (const name of NAMES) {
      const res = await post(
        JSON.stringify({
          prompt: {
            '1': { class_type: 'TestConst', inputs: { value: 1 } },
            '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 1 } },
            '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] } },
            '4': { class_type: 'Sweep', inputs: { target: '2', x_widget: name, x_values: '1, 2' } },
          },
        }),
      );
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.node_errors, name).toEqual([expect.objectContaining({ node_id: '4', input: 'x_widget', code: 'bad_value' })]);
      expect(res.body.node_errors![0]!.message).toContain(`has no widget '${name}'`);
    }
    const res = await post(
      JSON.stringify({
        prompt: {
          '1': { class_type: 'TestConst', inputs: { value: 1 } },
          constructor: { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 1 } },
          toString: { class_type: 'TestOutput', inputs: { value: ['constructor', 0] } },
          '4': { class_type: 'Sweep', inputs: { target: 'constructor', x_widget: 'b', x_values: '1, 2' } },
        },
      }),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await ws.done(res.body.prompt_id!)).toMatchObject({ status: 'success' });
    expect((await history(res.body.prompt_id!)).executed).toEqual(expect.arrayContaining(['constructor:0', 'constructor:1', 'toString:0', 'toString:1']));
  });
});

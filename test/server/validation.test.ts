import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ValidationIssue } from '../../server/engine/index.ts';
import { buildWorkflow, EventRecorder, pngBytes, startTestServer, type TestServer } from './helpers.ts';

interface Invalid {
  error: { code: string; message: string };
  node_errors: ValidationIssue[];
}

describe('POST /api/prompt validation', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    expect((await server.upload('photo.png', await pngBytes(16, 16))).status).toBe(200);
  });
  afterAll(() => server.close());

  it('reports every problem of a broken workflow at once, each naming its node', async () => {
    const workflow = buildWorkflow([
      // unknown node type feeding an output
      { id: 10, type: 'NoSuchNode' },
      { id: 11, type: 'SaveImage', inputs: { image: [10, 0, 'IMAGE'] } },
      // required input left unconnected
      { id: 12, type: 'SaveImage' },
      // INT output into an IMAGE input
      { id: 20, type: 'PrimitiveInt', widgets: { value: 3 } },
      { id: 13, type: 'SaveImage', inputs: { image: [20, 0, 'INT'] } },
      // widget value out of range (scale max is 16)
      { id: 1, type: 'LoadImage', widgets: { image: 'photo.png' } },
      { id: 14, type: 'ImageResize', widgets: { scale: 100 }, inputs: { image: [1, 0, 'IMAGE'] } },
      { id: 15, type: 'SaveImage', inputs: { image: [14, 0, 'IMAGE'] } },
      // a cycle: 17 ← 18 ← 17
      { id: 17, type: 'ImageResize', inputs: { image: [18, 0, 'IMAGE'] } },
      { id: 18, type: 'ImageResize', inputs: { image: [17, 0, 'IMAGE'] } },
      { id: 19, type: 'SaveImage', inputs: { image: [17, 0, 'IMAGE'] } },
    ]);
    const res = await server.postJson('/api/prompt', { workflow });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Invalid;
    expect(body.error.code).toBe('VALIDATION');
    const found = body.node_errors.map((e) => `${e.code}@${e.node_id}`);
    expect(found).toEqual(
      expect.arrayContaining(['unknown_type@10', 'missing_input@12', 'type_mismatch@13', 'out_of_range@14', 'cycle@17', 'cycle@18']),
    );
    for (const issue of body.node_errors) {
      expect(issue.node_id).not.toBeNull();
      expect(issue.message.length).toBeGreaterThan(0);
    }
    expect(body.node_errors.find((e) => e.code === 'out_of_range')).toMatchObject({ input: 'scale' });
  });

  it('queues a valid prompt right after a refused one', async () => {
    const ws = await EventRecorder.connect(server.url);
    try {
      const res = await server.postJson('/api/prompt', {
        prompt: {
          '1': { class_type: 'LoadImage', inputs: { image: 'photo.png' } },
          '2': { class_type: 'SaveImage', inputs: { image: ['1', 0], filename_prefix: 'ok' } },
        },
      });
      expect(res.status).toBe(200);
      const { prompt_id } = (await res.json()) as { prompt_id: string };
      expect(await ws.done(prompt_id)).toMatchObject({ status: 'success' });
    } finally {
      ws.close();
    }
  });

  it('refuses malformed bodies with 400', async () => {
    const cases: unknown[] = [
      {},
      { prompt: 'nope' },
      { prompt: {} },
      { prompt: { '1': { inputs: {} } } },
      { workflow: { format: 'something-else' } },
      { workflow: { format: 'supir-studio/workflow', version: 99, nodes: [] } },
      { workflow: buildWorkflow([]), front: 'yes' },
    ];
    for (const body of cases) {
      const res = await server.postJson('/api/prompt', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const json = (await res.json()) as Invalid;
      expect(json.error.code).toBe('VALIDATION');
      expect(Array.isArray(json.node_errors)).toBe(true);
    }
    const schemaIssue = (await (await server.postJson('/api/prompt', { prompt: { '7': { inputs: {} } } })).json()) as Invalid;
    expect(schemaIssue.node_errors[0]).toMatchObject({ node_id: '7' });

    const notJson = await server.api('/api/prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { code: 'BAD_INPUT' } });
  });

  it('answers 413 for a JSON body over the limit', async () => {
    const small = await startTestServer({ limits: { maxJsonBytes: 1024 } });
    try {
      const res = await small.postJson('/api/prompt', { prompt: { '1': { class_type: 'x'.repeat(2000), inputs: {} } } });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ error: { code: 'TOO_LARGE' } });
    } finally {
      await small.close();
    }
  });
});

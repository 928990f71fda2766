/**
 * Input limits: each is answered with a clear 4xx naming the limit, and nothing is queued or
 * written. Small limits are configured so the tests stay fast; the defaults are in config.ts.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJsonLimits, MAX_JSON_DEPTH } from '../../server/http/limits.ts';
import { testNodes } from '../support/test-nodes.ts';
import { buildWorkflow, pngBytes, startTestServer, type TestServer } from '../server/helpers.ts';

const chain = (n: number): Record<string, unknown> => {
  const prompt: Record<string, unknown> = { '0': { class_type: 'TestConst', inputs: { value: 1 } } };
  for (let i = 1; i < n - 1; i++) prompt[String(i)] = { class_type: 'TestAdd', inputs: { a: [String(i - 1), 0], b: 1 } };
  prompt[String(n - 1)] = { class_type: 'TestOutput', inputs: { value: [String(n - 2), 0] } };
  return prompt;
};

describe('input limits', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(
      { maxPending: 3, limits: { maxJsonBytes: 64 * 1024, maxNodes: 50, maxStringLength: 1000, maxPixels: 10_000, maxUploadBytes: 32 * 1024 } },
      testNodes,
    );
  });
  afterAll(() => server.close());

  const expectError = async (res: Response, status: number, code: string, message: RegExp): Promise<void> => {
    expect(res.status).toBe(status);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message).toMatch(message);
  };

  it('JSON body size: 413 TOO_LARGE, for prompts and workflows', async () => {
    const padding = 'x'.repeat(900);
    const big = { prompt: chain(3), client_id: 'c', extra: Array.from({ length: 100 }, () => padding) };
    await expectError(await server.postJson('/api/prompt', big), 413, 'TOO_LARGE', /request body is larger/);
    const wf = { ...buildWorkflow([{ id: 1, type: 'TestConst' }]), extra: { pad: Array.from({ length: 100 }, () => padding) } };
    await expectError(
      await server.api('/api/workflows/big', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(wf) }),
      413,
      'TOO_LARGE',
      /request body is larger/,
    );
    expect(fs.readdirSync(server.dirs.folders.workflows)).toEqual([]);
  });

  it('node count: 413 naming the count and the limit, for API prompts and workflows', async () => {
    expect((await server.postJson('/api/prompt', { prompt: chain(50) })).status).toBe(200);
    await expectError(await server.postJson('/api/prompt', { prompt: chain(51) }), 413, 'TOO_LARGE', /51 nodes; this server runs at most 50/);
    const wf = buildWorkflow(Array.from({ length: 60 }, (_, i) => ({ id: i + 1, type: 'TestConst' })));
    await expectError(await server.postJson('/api/prompt', { workflow: wf }), 413, 'TOO_LARGE', /60 nodes/);
    await expectError(
      await server.api('/api/workflows/many', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(wf) }),
      413,
      'TOO_LARGE',
      /60 nodes/,
    );
  });

  it('string length: 413 naming where the long text is', async () => {
    const prompt = { '1': { class_type: 'TestText', inputs: { text: 'y'.repeat(1001) } }, '2': { class_type: 'TestOutput', inputs: { value: 1 } } };
    await expectError(await server.postJson('/api/prompt', { prompt }), 413, 'TOO_LARGE', /prompt\.1\.inputs\.text is a text of 1001 characters; this server accepts at most 1000/);
    await expectError(await server.postJson('/api/prompt', { prompt: chain(3), client_id: 'z'.repeat(2000) }), 413, 'TOO_LARGE', /client_id/);
    const longKey = { prompt: { ['k'.repeat(1001)]: { class_type: 'TestConst', inputs: {} } } };
    await expectError(await server.postJson('/api/prompt', longKey), 413, 'TOO_LARGE', /key in prompt is longer/);
  });

  it('nesting depth: 413 instead of a stack overflow later', async () => {
    // 20,000 levels in 40 KB: JSON.parse takes it, but JSON.stringify (journal, history) would throw.
    const depth = 20_000;
    const deepText = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const body = `{"prompt":${JSON.stringify(chain(3))},"workflow":${deepText}}`;
    const res = await server.api('/api/prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await expectError(res, 413, 'TOO_LARGE', new RegExp(`workflow(\\[0\\])+ is nested more than ${MAX_JSON_DEPTH} levels deep`));
    expect(() => checkJsonLimits({ a: JSON.parse(deepText) }, { maxNodes: 10, maxStringLength: 10 })).toThrow(/nested more than/);
    expect(server.queue.list().pending).toHaveLength(0);
  });

  it('image pixels: 413 on upload, before the pixels are decoded', async () => {
    const res = await server.upload('wide.png', await pngBytes(200, 60));
    await expectError(res, 413, 'TOO_LARGE', /200x60 \(12000 pixels\), over the limit of 10000 pixels/);
  });

  it('upload bytes: 413', async () => {
    await expectError(await server.upload('huge.png', Buffer.alloc(40 * 1024, 3)), 413, 'TOO_LARGE', /larger than this server accepts/);
  });

  it('queue length: 429 QUEUE_FULL once maxPending prompts wait', async () => {
    await server.api('/api/queue', { method: 'DELETE' });
    const slow = (n: number) => ({ '1': { class_type: 'TestSlow', inputs: { steps: 200, ms: 10 + n } }, '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await server.postJson('/api/prompt', { prompt: slow(i) })).status);
    // One running (or the chain(50) prompt still running) plus three pending; the rest refused.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.slice(-2)).toEqual([429, 429]);
    await expectError(await server.postJson('/api/prompt', { prompt: slow(9) }), 429, 'QUEUE_FULL', /already holds 3 prompts/);
    await server.api('/api/queue', { method: 'DELETE' });
    await server.postJson('/api/interrupt', {});
  });
});

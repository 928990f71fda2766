import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { importComfy } from '../../server/comfy/import.ts';
import { exportComfy } from '../../server/comfy/export.ts';
import { catalogue } from '../../nodes/index.ts';
import { NodeRegistry } from '../../server/engine/index.ts';
import { gradient, startTestServer, type TestServer } from '../server/helpers.ts';
import { runComfyClient } from './comfy-client.ts';

const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
const registry = new NodeRegistry(catalogue);

/** A ComfyUI API prompt with core nodes only: load, upscale with a model, scale, save. */
function upscalePrompt(): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    '3': { class_type: 'LoadImage', inputs: { image: 'placeholder.png' } },
    '4': { class_type: 'UpscaleModelLoader', inputs: { model_name: '2x_ESRGAN.pth' } },
    '5': { class_type: 'ImageUpscaleWithModel', inputs: { upscale_model: ['4', 0], image: ['3', 0] } },
    '6': { class_type: 'ImageScaleBy', inputs: { upscale_method: 'area', scale_by: 0.5, image: ['5', 0] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['6', 0] } },
  };
}

describe('ComfyUI-compatible API', () => {
  let server: TestServer;
  let photo: Buffer;
  beforeAll(async () => {
    server = await startTestServer();
    photo = await gradient(64, 48).png().toBuffer();
  });
  afterAll(async () => server?.close());

  it('a ComfyUI client script queues a prompt, follows the websocket and downloads the result', async () => {
    const run = await runComfyClient(server.url, upscalePrompt(), { name: 'client.png', bytes: photo });
    const types = run.messages.map((m) => m.type);
    expect(types[0]).toBe('status');
    expect(types).toEqual(expect.arrayContaining(['execution_start', 'executing', 'executed', 'execution_success']));
    expect(types.indexOf('execution_success')).toBeLessThan(types.lastIndexOf('executing'));
    const executing = run.messages.filter((m) => m.type === 'executing').map((m) => m.data.node);
    expect(executing).toEqual(expect.arrayContaining(['3', '5', '9', null]));
    const executed = run.messages.find((m) => m.type === 'executed')!;
    expect(executed.data).toMatchObject({ node: '9', output: { images: [{ filename: expect.stringMatching(/^ComfyUI_\d+_\.png$/), subfolder: '', type: 'output' }] } });
    expect(Object.keys(run.images)).toEqual(['9']);
    expect(await sharp(run.images['9']![0]!).metadata()).toMatchObject({ width: 64, height: 48 });
    const entry = run.history[run.promptId] as { status: { status_str: string; completed: boolean }; prompt: unknown[] };
    expect(entry.status).toMatchObject({ status_str: 'success', completed: true });
    expect(entry.prompt[1]).toBe(run.promptId);
  }, 120_000);

  it('answers node_errors keyed by the ComfyUI node id, in ComfyUI\'s shape', async () => {
    const prompt = upscalePrompt();
    prompt['3']!.inputs.image = 'missing-file.png';
    const res = await server.postJson('/prompt', { prompt, client_id: 'x' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { type: string }; node_errors: Record<string, { errors: Array<{ message: string }>; class_type: string }> };
    expect(body.error.type).toBe('prompt_outputs_failed_validation');
    expect(body.node_errors['3']?.class_type).toBe('LoadImage');
    expect(body.node_errors['3']?.errors[0]?.message).toMatch(/missing-file\.png/);
  });

  it('refuses a non-JSON body that a browser sent (Origin header), and an empty prompt', async () => {
    const res = await server.api('/prompt', { method: 'POST', headers: { 'content-type': 'text/plain', origin: server.url }, body: JSON.stringify({ prompt: upscalePrompt() }) });
    expect(res.status).toBe(415);
    const none = await server.postJson('/prompt', { prompt: {} });
    expect(none.status).toBe(400);
    expect(((await none.json()) as { error: { type: string } }).error.type).toBe('no_prompt');
    // A cross-site page is refused by the same guard as our API.
    const cross = await server.api('/prompt', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: JSON.stringify({ prompt: upscalePrompt() }) });
    expect(cross.status).toBe(403);
  });

  it('GET /view refuses paths outside the data folders; /upload/image refuses what is not an image', async () => {
    expect((await server.api('/view?filename=../../etc/passwd&type=output')).status).toBeGreaterThanOrEqual(400);
    expect((await server.api('/view?filename=x.png&type=elsewhere')).status).toBe(400);
    const form = new FormData();
    form.append('image', new Blob([Buffer.from('<svg></svg>')]), 'evil.png');
    expect((await server.api('/upload/image', { method: 'POST', body: form })).status).toBeGreaterThanOrEqual(400);
  });

  it('GET /object_info lists our nodes and the ComfyUI nodes /prompt maps', async () => {
    const info = (await (await server.api('/object_info')).json()) as Record<string, { input: { required: Record<string, unknown> }; output_name: string[]; category: string }>;
    expect(info.SupirSample?.input.required.steps).toEqual(['INT', expect.objectContaining({ default: 50, min: 1, max: 500 })]);
    expect(info.SupirSample?.output_name).toEqual(['latent']);
    expect(info.SUPIR_sample?.category).toBe('ComfyUI (mapped)');
    const one = (await (await server.api('/object_info/KSampler')).json()) as Record<string, unknown>;
    expect(Object.keys(one)).toEqual(['KSampler']);
  });

  it('the ComfyUI websocket needs the same token as ours', async () => {
    const guarded = await startTestServer({ auth: 'token', token: 'secret-token-123456' });
    try {
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${guarded.url.replace('http', 'ws')}/ws?clientId=abc`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
      });
      expect(refused).toBe(401);
      const run = await runComfyClient(guarded.url, upscalePrompt(), { name: 'client.png', bytes: photo }, { authorization: 'Bearer secret-token-123456' });
      expect(Object.keys(run.images)).toEqual(['9']);
    } finally {
      await guarded.close();
    }
  }, 120_000);

  it('POST /api/comfy/import answers the workflow and the report; export makes an API prompt that imports back', async () => {
    const wf = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'kijai-v2-lightning.json'), 'utf8')) as unknown;
    const res = await server.postJson('/api/comfy/import', { workflow: wf, name: 'lightning' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { workflow: { format: string; name: string }; report: { counts: { mapped: number } } };
    expect(body.workflow).toMatchObject({ format: 'supir-studio/workflow', name: 'lightning' });
    expect(body.report.counts.mapped).toBeGreaterThan(10);

    const imported = importComfy(wf, { registry });
    const exported = (await (await server.postJson('/api/comfy/export', { workflow: imported.workflow })).json()) as ReturnType<typeof exportComfy>;
    const types = Object.values(exported.prompt).map((n) => n.class_type);
    expect(types).toEqual(expect.arrayContaining(['LoadImage', 'CheckpointLoaderSimple', 'SUPIR_model_loader_v2', 'SUPIR_first_stage', 'SUPIR_encode', 'SUPIR_conditioner', 'SUPIR_sample', 'SUPIR_decode', 'ColorTransfer', 'SaveImage']));
    const sample = Object.values(exported.prompt).find((n) => n.class_type === 'SUPIR_sample')!;
    expect(sample.inputs).toMatchObject({ steps: 10, cfg_scale_start: 2, cfg_scale_end: 1.5, control_scale_start: 1, control_scale_end: 0.9, sampler: 'RestoreDPMPP2MSampler', seed: 42 });
    // Round trip: the exported prompt imports to the same sampler settings.
    const again = importComfy(exported.prompt, { registry }).workflow;
    const back = again.nodes.find((n) => n.type === 'SupirSample')!;
    const first = imported.workflow.nodes.find((n) => n.type === 'SupirSample')!;
    expect(back.widgets_values).toEqual(first.widgets_values);
  });
});

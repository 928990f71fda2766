import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkflow, startTestServer, type TestServer } from './helpers.ts';

describe('saved workflows and system info', () => {
  let server: TestServer;
  const put = (name: string, body: unknown): Promise<Response> =>
    server.api(`/api/workflows/${encodeURIComponent(name)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('saves, lists, reads and deletes workflows by name', async () => {
    const wf = { ...buildWorkflow([{ id: 1, type: 'PrimitiveInt', widgets: { value: 5 } }]), extra: { note: 'kept' } };
    expect((await put('My flow (v2)', wf)).status).toBe(200);
    expect((await put('second_one', wf)).status).toBe(200);
    expect(await (await server.api('/api/workflows')).json()).toEqual(['My flow (v2)', 'second_one']);

    const got = await server.api(`/api/workflows/${encodeURIComponent('My flow (v2)')}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(wf);

    expect((await server.api('/api/workflows/second_one', { method: 'DELETE' })).status).toBe(200);
    expect((await server.api('/api/workflows/second_one')).status).toBe(404);
    expect((await server.api('/api/workflows/second_one', { method: 'DELETE' })).status).toBe(404);
    expect(await (await server.api('/api/workflows')).json()).toEqual(['My flow (v2)']);
  });

  it('offers the shipped workflows as templates, one of them the default', async () => {
    const list = (await (await server.api('/api/templates')).json()) as Array<{ name: string; title: string; default: boolean }>;
    expect(list).toContainEqual({ name: 'restore-photo', title: 'Restore: denoise + deblur (MAXIM), ESRGAN x4', default: true });
    expect(list).toContainEqual({ name: 'restore-esrgan', title: 'Restore with ESRGAN x4', default: false });
    expect(list).toContainEqual({ name: 'resize-basic', title: 'Resize basic', default: false });
    expect(list.filter((t) => t.default)).toHaveLength(1);
    const wf = await (await server.api('/api/templates/resize-basic')).json();
    expect(wf).toMatchObject({ format: 'supir-studio/workflow', version: 2 });
    expect((await server.api('/api/templates/..%2Fpackage')).status).toBe(404);
    expect((await server.api('/api/templates/nope')).status).toBe(404);
  });

  it('opens a template with the SUPIR pack that exists here, else with its own and the node says how to make it', async () => {
    const pack = async (): Promise<unknown> => {
      const wf = (await (await server.api('/api/templates/supir-restore')).json()) as { nodes: Array<{ type: string; widgets_values: Record<string, unknown> }> };
      return wf.nodes.find((n) => n.type === 'LoadSupirModel')!.widgets_values.pack;
    };
    expect(await pack()).toBe('SUPIR-v0Q');
    fs.mkdirSync(path.join(server.dirs.folders.models, 'supir-v0F'), { recursive: true });
    fs.writeFileSync(path.join(server.dirs.folders.models, 'supir-v0F', 'manifest.json'), '{}');
    expect(await pack()).toBe('supir-v0F');
    // An ESRGAN template keeps its model: it is listed here.
    const esrgan = (await (await server.api('/api/templates/restore-esrgan')).json()) as { nodes: Array<{ type: string; widgets_values: Record<string, unknown> }> };
    expect(esrgan.nodes.find((n) => n.type === 'LoadUpscaleModel')!.widgets_values.model_name).toBe('esrgan-medium x4');
  });

  it('refuses to save what is not a workflow', async () => {
    for (const body of [{ format: 'other' }, { format: 'supir-studio/workflow', version: 1, nodes: [{ id: 'x' }] }, [1, 2]]) {
      const res = await put('broken', body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'VALIDATION' } });
    }
    expect((await server.api('/api/workflows/broken')).status).toBe(404);
  });

  it('describes the system', async () => {
    const res = await server.api('/api/system');
    expect(res.status).toBe(200);
    const info = (await res.json()) as {
      app: { name: string; version: string };
      node: string;
      onnxruntime: { version: string; backends: Array<{ name: string }>; available: string[] };
      memory: { total: number; free: number; rss: number };
      cache: { entries: number; bytes: number; budget: number };
    };
    expect(info.app.name).toBe('supir-studio');
    expect(info.node).toBe(process.version);
    expect(info.onnxruntime.backends.map((b) => b.name)).toContain('cpu');
    expect(info.onnxruntime.available).toContain('cpu');
    expect(info.memory.total).toBeGreaterThan(0);
    expect(info.cache.budget).toBe(2 * 1024 ** 3);
  });

  it('sends files that are not images as attachments', async () => {
    const fs = await import('node:fs');
    fs.writeFileSync(`${server.dirs.folders.outputs}/page.html`, '<script>alert(1)</script>');
    const res = await server.api('/api/view?file=page.html');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await server.api('/api/view?file=missing.png')).status).toBe(404);
    fs.mkdirSync(`${server.dirs.folders.outputs}/dir.png`);
    expect((await server.api('/api/view?file=dir.png')).status).toBe(404);
  });

  it('answers thumbnails as small JPEGs', async () => {
    const fs = await import('node:fs');
    const { default: sharp } = await import('sharp');
    const png = await sharp({ create: { width: 400, height: 200, channels: 3, background: '#336699' } }).png().toBuffer();
    fs.writeFileSync(`${server.dirs.folders.outputs}/wide.png`, png);
    const res = await server.api('/api/view?file=wide.png&thumb=100');
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(await sharp(Buffer.from(await res.arrayBuffer())).metadata()).toMatchObject({ width: 100, height: 50, format: 'jpeg' });
    expect((await server.api('/api/view?file=wide.png&thumb=5000')).status).toBe(400);
  });
});

describe('startServer', () => {
  it('rejects when the port is taken and leaves nothing running', async () => {
    const first = await startTestServer();
    try {
      await expect(startTestServer({ port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

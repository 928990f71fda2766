import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EventRecorder, startTestServer, type TestServer } from './helpers.ts';

/** A request with exactly the headers given (fetch will not let us set Host). */
function rawRequest(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, setHost: !('Host' in headers) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('origin and host checks', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('refuses requests from other origins, including Origin: null', async () => {
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${server.port + 1}`, `https://127.0.0.1:${server.port}`]) {
      const post = await server.api('/api/prompt', {
        method: 'POST',
        headers: { origin, 'content-type': 'text/plain' },
        body: JSON.stringify({ prompt: {} }),
      });
      expect(post.status, origin).toBe(403);
      expect(await post.json()).toMatchObject({ error: { code: 'FORBIDDEN' } });
      expect((await server.api('/api/history', { headers: { origin } })).status).toBe(403);
      expect((await server.api('/api/interrupt', { method: 'POST', headers: { origin } })).status).toBe(403);
    }
    expect(await (await server.api('/api/queue')).json()).toEqual({ running: null, pending: [] });
  });

  it('accepts its own origins', async () => {
    for (const origin of [server.url, `http://localhost:${server.port}`]) {
      const res = await server.api('/api/interrupt', { method: 'POST', headers: { origin } });
      expect(res.status, origin).toBe(200);
      expect(await res.json()).toEqual({ interrupted: false });
    }
  });

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const evil = await rawRequest(`${server.url}/api/nodes`, 'GET', { Host: `evil.example:${server.port}` });
    expect(evil.status).toBe(403);
    const wrongPort = await rawRequest(`${server.url}/api/nodes`, 'GET', { Host: `127.0.0.1:1` });
    expect(wrongPort.status).toBe(403);
    const page = await rawRequest(`${server.url}/`, 'GET', { Host: `rebind.example` });
    expect(page.status).toBe(403);
    expect(page.body).not.toContain('SUPIR Studio</h1>');
    const ok = await rawRequest(`${server.url}/api/nodes`, 'GET', { Host: `localhost:${server.port}` });
    expect(ok.status).toBe(200);
  });

  it('refuses websocket upgrades from other origins or hosts', async () => {
    await expect(EventRecorder.connect(server.url, { origin: 'http://evil.example' })).rejects.toThrow(/403/);
    await expect(EventRecorder.connect(server.url, { headers: { Host: 'evil.example' } })).rejects.toThrow(/403/);
    // Previews are only encoded while someone is connected to receive them.
    expect(server.queue.events.wantsPreviews()).toBe(false);
    const ok = await EventRecorder.connect(server.url, { origin: server.url });
    try {
      expect((await ok.waitFor((m) => m.type === 'status')).type).toBe('status');
      expect(server.queue.events.wantsPreviews()).toBe(true);
    } finally {
      ok.close();
    }
    await vi.waitFor(() => expect(server.queue.events.wantsPreviews()).toBe(false));
  });

  it('serves the editor page at / with security headers', async () => {
    const res = await server.api('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toContain('SUPIR Studio');
    expect((await server.api('/api/unknown')).status).toBe(404);
  });
});

/**
 * The network rules: loopback by default, Origin and Host checks on HTTP and the websocket, no
 * CORS grants, and an access token whenever the server is reachable from other machines.
 * Everything here listens on 127.0.0.1 only, the "other interface" case forced with auth: 'token',
 * except one CLI server bound to 0.0.0.0 with --auth none, which must still check the Host header.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig, tokenRequired } from '../../server/config.ts';
import { loadOrCreateToken } from '../../server/http/auth.ts';
import { refusalReason } from '../../server/http/guard.ts';
import { testNodes } from '../support/test-nodes.ts';
import { EventRecorder, startTestServer, type TestServer } from '../server/helpers.ts';

/** A request with exactly these headers (fetch sets Origin and Host itself). */
function raw(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, setHost: !('Host' in headers) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const PROMPT = { prompt: { '1': { class_type: 'TestConst', inputs: { value: 1 } }, '2': { class_type: 'TestOutput', inputs: { value: ['1', 0] } } } };

describe('network defaults and cross-site requests', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({}, testNodes);
  });
  afterAll(() => server.close());

  it('binds to 127.0.0.1 unless told otherwise, and needs no token there', async () => {
    expect(resolveConfig({}, {}).host).toBe('127.0.0.1');
    const probe = await startTestServer({ host: undefined });
    try {
      expect(new URL(probe.url).hostname).toBe('127.0.0.1');
      expect(probe.token).toBeUndefined();
    } finally {
      await probe.close();
    }
  });

  it('refuses a cross-origin POST (foreign site, Origin: null, other port, https) and queues nothing', async () => {
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${server.port + 1}`, `https://localhost:${server.port}`, `http://127.0.0.1.evil.example:${server.port}`]) {
      for (const type of ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) {
        const res = await raw(`${server.url}/api/prompt`, 'POST', { Origin: origin, 'Content-Type': type }, JSON.stringify(PROMPT));
        expect(res.status, `${origin} ${type}`).toBe(403);
        expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
      }
    }
    expect(server.queue.list()).toEqual({ running: null, pending: [] });
    expect(server.queue.history()).toEqual([]);
  });

  it('grants no CORS: no Access-Control-Allow-* on preflights or answers, for anyone', async () => {
    const preflight = await raw(`${server.url}/api/prompt`, 'OPTIONS', {
      Origin: 'http://evil.example',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type',
    });
    expect(preflight.status).toBe(403);
    const own = await raw(`${server.url}/api/queue`, 'GET', { Origin: server.url });
    expect(own.status).toBe(200);
    for (const res of [preflight, own]) {
      expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
  });

  it('takes JSON bodies only as application/json, so a form or text/plain post cannot reach a handler even without Origin', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(`${server.url}/api/prompt`, 'POST', { 'Content-Type': type }, JSON.stringify(PROMPT));
      expect(res.status, type).toBe(415);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'BAD_INPUT' } });
    }
    expect(server.queue.history()).toEqual([]);
  });

  it('refuses a DNS-rebinding Host on every route and on the websocket', async () => {
    for (const host of [`evil.example:${server.port}`, 'evil.example', `127.0.0.1.nip.io:${server.port}`, `localhost.:${server.port}`, `127.0.0.1:${server.port + 1}`, '']) {
      for (const [method, route] of [['GET', '/'], ['GET', '/api/history'], ['POST', '/api/interrupt'], ['GET', '/api/view?file=x.png']] as const) {
        const res = await raw(`${server.url}${route}`, method, { Host: host });
        expect(res.status, `${method} ${route} Host ${host}`).toBe(403);
      }
      // ws fills in an empty Host itself, so only real names are tried on the upgrade.
      if (host) await expect(EventRecorder.connect(server.url, { headers: { Host: host } }), host).rejects.toThrow(/403/);
    }
  });

  it('refuses websocket upgrades from foreign origins and Origin: null, accepts its own', async () => {
    for (const origin of ['http://evil.example', 'null', `http://localhost:${server.port + 1}`]) {
      await expect(EventRecorder.connect(server.url, { origin }), origin).rejects.toThrow(/403/);
    }
    const ok = await EventRecorder.connect(server.url, { origin: `http://localhost:${server.port}` });
    expect((await ok.waitFor((m) => m.type === 'status')).type).toBe('status');
    ok.close();
  });

  it('when bound to another interface, requires the token (and cannot check Host names)', () => {
    expect(tokenRequired(resolveConfig({ host: '0.0.0.0' }, {}))).toBe(true);
    expect(tokenRequired(resolveConfig({ host: '192.168.1.20' }, {}))).toBe(true);
    expect(tokenRequired(resolveConfig({ host: '::' }, {}))).toBe(true);
    expect(tokenRequired(resolveConfig({ host: '127.0.0.1' }, {}))).toBe(false);
    expect(tokenRequired(resolveConfig({ host: 'localhost' }, {}))).toBe(false);
    expect(tokenRequired(resolveConfig({ host: '0.0.0.0', auth: 'none' }, {}))).toBe(false);
    expect(tokenRequired(resolveConfig({ host: '127.0.0.1' }, { SUPIR_AUTH: 'token' }))).toBe(true);
    // On a LAN address any Host name may be right, so the token is what stops a rebound name;
    // a foreign Origin is still refused.
    const lan = { host: '192.168.1.20', port: () => 8188 };
    expect(refusalReason({ host: 'studio.lan:8188' }, lan)).toBeNull();
    expect(refusalReason({ host: 'studio.lan:8188', origin: 'http://evil.example' }, lan)).toMatch(/Origin/);
    expect(() => resolveConfig({ token: 'short' }, {})).toThrow(/16-256/);
  });
});

describe('bound to another interface with --auth none', () => {
  const machine = (): string[] => ['192.168.1.20', 'fe80::1', '10.0.0.7'];

  it('accepts only Host headers naming this machine with the port: its addresses, its name, loopback, the bound address, the allowed names', () => {
    const any = { host: '0.0.0.0', auth: 'none' as const, port: () => 8188, machineAddresses: machine, allowedHosts: ['studio.lan'] };
    for (const host of ['127.0.0.1:8188', 'localhost:8188', '[::1]:8188', '192.168.1.20:8188', '10.0.0.7:8188', '[fe80::1]:8188', `${os.hostname()}:8188`, 'studio.lan:8188', 'STUDIO.lan:8188']) {
      expect(refusalReason({ host }, any), host).toBeNull();
    }
    for (const host of ['evil.example:8188', 'evil.example', '192.168.1.20:9999', '192.168.1.20', '192.168.1.21:8188', '0.0.0.0:8188', 'studio.lan.evil.example:8188', '']) {
      expect(refusalReason({ host }, any), host).toMatch(/^Host .* is not this server/);
    }
    // The rebinding page's Origin is refused as well, and its Host alone is enough to refuse it.
    expect(refusalReason({ host: 'evil.example:8188', origin: 'http://evil.example:8188' }, any)).toMatch(/Host/);
    expect(refusalReason({ host: '192.168.1.20:8188', origin: 'http://192.168.1.20:8188' }, any)).toBeNull();
    // Bound to one LAN address: that address is accepted, foreign names are not.
    const lan = { host: '192.168.1.20', auth: 'none' as const, port: () => 8188, machineAddresses: (): string[] => [] };
    expect(refusalReason({ host: '192.168.1.20:8188' }, lan)).toBeNull();
    expect(refusalReason({ host: 'evil.example:8188' }, lan)).toMatch(/Host/);
    // With the token required (auth auto or token) the Host is not checked off loopback, as before.
    for (const auth of ['auto', 'token'] as const) expect(refusalReason({ host: 'studio.lan:8188' }, { ...any, auth, allowedHosts: [] })).toBeNull();
    expect(resolveConfig({}, { SUPIR_ALLOWED_HOSTS: ' Studio.lan, ,box ' }).allowedHosts).toEqual(['studio.lan', 'box']);
  });

  it('serve --host 0.0.0.0 --auth none: warns at start-up, names the address bound, and refuses a DNS-rebinding request', async () => {
    const dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-any-'));
    const cli = path.resolve(import.meta.dirname, '../../server/cli/main.ts');
    const proc = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--host', '0.0.0.0', '--port', '0', '--auth', 'none', '--data', dataRoot], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SUPIR_LOG: 'warn' },
    });
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    let stdout = '';
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve did not start in 30 s: ${stderr}`)), 30_000);
        proc.stdout!.on('data', (c: Buffer) => {
          stdout += c.toString();
          if (stdout.includes('\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        proc.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      const port = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
      expect(port).toBeGreaterThan(0);
      // The address actually bound, with its port, and a warning that says what --auth none means.
      expect(stdout).toContain(`(listening on 0.0.0.0:${port})`);
      expect(stderr).toMatch(/WARN .*listening on 0\.0\.0\.0:\d+ with --auth none: anyone who can reach this machine/);
      expect(stderr).toContain(`port ${port}`);

      // Sent to 127.0.0.1 as a rebound name would be: Host and Origin both foreign.
      const url = `http://127.0.0.1:${port}`;
      const evil = { Host: `rebind.evil.example:${port}`, Origin: `http://rebind.evil.example:${port}` };
      for (const [method, route] of [['GET', '/'], ['GET', '/api/queue'], ['GET', '/api/history'], ['POST', '/api/interrupt']] as const) {
        const res = await raw(`${url}${route}`, method, evil);
        expect(res.status, `${method} ${route}`).toBe(403);
        expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
        expect((await raw(`${url}${route}`, method, { Host: evil.Host })).status, `${method} ${route} without Origin`).toBe(403);
      }
      await expect(EventRecorder.connect(url, { headers: { Host: evil.Host }, origin: evil.Origin })).rejects.toThrow(/403/);
      const posted = await raw(`${url}/api/prompt`, 'POST', { ...evil, 'Content-Type': 'application/json' }, JSON.stringify({ prompt: { '1': { class_type: 'PrimitiveInt', inputs: {} } } }));
      expect(posted.status).toBe(403);

      // This machine's own names still work, without a token.
      const own = [`127.0.0.1:${port}`, `localhost:${port}`, `${os.hostname()}:${port}`];
      const lanAddress = Object.values(os.networkInterfaces()).flatMap((e) => e ?? []).find((e) => e.family === 'IPv4' && !e.internal)?.address;
      if (lanAddress) own.push(`${lanAddress}:${port}`);
      for (const host of own) {
        const res = await raw(`${url}/api/queue`, 'GET', { Host: host, Origin: `http://${host}` });
        expect(res.status, host).toBe(200);
      }
      const ws = await EventRecorder.connect(url, { origin: url });
      expect((await ws.waitFor((m) => m.type === 'status')).type).toBe('status');
      ws.close();
    } finally {
      proc.kill('SIGTERM');
      await exited;
      fs.rmSync(dataRoot, { recursive: true, force: true });
    }
  });
});

describe('the access token', () => {
  let server: TestServer;
  let tokenPath: string;
  beforeAll(async () => {
    server = await startTestServer({ auth: 'token' }, testNodes);
    tokenPath = path.join(server.dirs.root, 'state', 'access-token');
  });
  afterAll(() => server.close());

  it('is generated at first start into the data folder, readable by its owner only, and shown as the address to open', () => {
    expect(server.token).toMatch(/^[\w-]{32}$/);
    expect(fs.readFileSync(tokenPath, 'utf8').trim()).toBe(server.token);
    expect(fs.statSync(tokenPath).mode & 0o077).toBe(0);
    expect(server.openUrl).toBe(`${server.url}/?token=${server.token}`);
  });

  it('refuses every route without it, or with a wrong one (401 UNAUTHORIZED)', async () => {
    for (const headers of [{}, { Authorization: 'Bearer wrong-token-wrong-token' }, { Authorization: `Basic ${server.token}` }, { Cookie: `supir_token_${server.port}=nope` }, { Cookie: `supir_token_1=${server.token}` }]) {
      for (const [method, route] of [['GET', '/'], ['GET', '/api/queue'], ['POST', '/api/interrupt'], ['GET', '/api/view?file=a.png']] as const) {
        const res = await raw(`${server.url}${route}`, method, headers as Record<string, string>);
        expect(res.status, `${method} ${route} ${JSON.stringify(headers)}`).toBe(401);
        expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
      }
    }
    const wrongLink = await raw(`${server.url}/?token=not-the-token-at-all`, 'GET', {});
    expect(wrongLink.status).toBe(401);
    expect(wrongLink.headers['set-cookie']).toBeUndefined();
  });

  it('is accepted as a Bearer header', async () => {
    const res = await raw(`${server.url}/api/queue`, 'GET', { Authorization: `Bearer ${server.token}` });
    expect(res.status).toBe(200);
  });

  it('opening ?token= sets an HttpOnly SameSite cookie and redirects to the address without it; the cookie then works for HTTP and ws', async () => {
    const visit = await raw(`${server.url}/api/queue?token=${server.token}&x=1`, 'GET', {});
    expect(visit.status).toBe(303);
    expect(visit.headers.location).toBe('/api/queue?x=1');
    const cookie = visit.headers['set-cookie']![0]!;
    expect(cookie).toMatch(new RegExp(`^supir_token_${server.port}=${server.token};`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const jar = cookie.split(';')[0]!;
    expect((await raw(`${server.url}/api/queue`, 'GET', { Cookie: `other=1; ${jar}` })).status).toBe(200);
    const ws = await EventRecorder.connect(server.url, { headers: { Cookie: jar } });
    expect((await ws.waitFor((m) => m.type === 'status')).type).toBe('status');
    ws.close();
  });

  it('guards the websocket: refused without it, accepted with the header or ?token=', async () => {
    await expect(EventRecorder.connect(server.url)).rejects.toThrow(/401/);
    await expect(EventRecorder.connect(server.url, { headers: { Authorization: 'Bearer wrong-token-wrong-token' } })).rejects.toThrow(/401/);
    const socket = await connectWs(`${server.url.replace('http', 'ws')}/ws?token=${server.token}`);
    socket.terminate();
    const withHeader = await EventRecorder.connect(server.url, { headers: { Authorization: `Bearer ${server.token}` } });
    withHeader.close();
    // The Origin/Host checks still come first, token or not.
    await expect(EventRecorder.connect(server.url, { origin: 'http://evil.example', headers: { Authorization: `Bearer ${server.token}` } })).rejects.toThrow(/403/);
  });

  it('stays the same across restarts of the same data folder, and a damaged token file is replaced', () => {
    expect(loadOrCreateToken(server.dirs.root)).toBe(server.token);
    fs.writeFileSync(tokenPath, 'x\n');
    const replaced = loadOrCreateToken(server.dirs.root);
    expect(replaced).toMatch(/^[\w-]{32}$/);
    expect(replaced).not.toBe(server.token);
    fs.writeFileSync(tokenPath, `${server.token}\n`, { mode: 0o600 });
  });
});

async function connectWs(url: string): Promise<import('ws').WebSocket> {
  const { WebSocket } = await import('ws');
  const socket = new WebSocket(url);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

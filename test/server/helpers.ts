/** Shared by the server tests: a server on a free port in a fresh folder, and small clients. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { WebSocket } from 'ws';
import { catalogue } from '../../nodes/index.ts';
import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import { NodeRegistry } from '../../server/engine/index.ts';
import { startServer, type StudioServer } from '../../server/app.ts';
import type { ServerOptions } from '../../server/config.ts';
import { decodeServerMessage, type ServerMessage } from '../../server/ws/protocol.ts';

export interface TestServer extends StudioServer {
  /** The folder holding the data root, where tests put files that must stay out of reach. */
  parent: string;
  api(pathAndQuery: string, init?: RequestInit): Promise<Response>;
  postJson(pathAndQuery: string, body: unknown): Promise<Response>;
  upload(name: string, bytes: Uint8Array, query?: string): Promise<Response>;
}

export async function startTestServer(options: ServerOptions = {}, extraNodes: AnyNodeDefinition[] = []): Promise<TestServer> {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-server-'));
  const registry = new NodeRegistry([...catalogue, ...extraNodes]);
  const server = await startServer({ port: 0, dataRoot: path.join(parent, 'data'), ...options }, registry).catch((err: unknown) => {
    fs.rmSync(parent, { recursive: true, force: true });
    throw err;
  });
  const api = (p: string, init?: RequestInit): Promise<Response> => fetch(server.url + p, init);
  return {
    ...server,
    parent,
    api,
    postJson: (p, body) => api(p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    upload: (name, bytes, query = '') =>
      api(`/api/upload?filename=${encodeURIComponent(name)}${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      }),
    close: async () => {
      await server.close();
      fs.rmSync(parent, { recursive: true, force: true });
    },
  };
}

/** A smooth RGB gradient (red across, green down, `blue` constant) as sharp's raw input, so resizing has something to do. */
export function gradient(width: number, height: number, blue = 128): Sharp {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / Math.max(1, width - 1);
      raw[i + 1] = (y * 255) / Math.max(1, height - 1);
      raw[i + 2] = blue;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

/** A PNG of a smooth gradient. */
export function pngBytes(width: number, height: number): Promise<Buffer> {
  return gradient(width, height).png().toBuffer();
}

/** A websocket client that keeps every message and lets tests wait for one. */
export class EventRecorder {
  readonly messages: ServerMessage[] = [];
  private waiters: Array<{ test: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }> = [];

  private waitersFailed: Array<(err: Error) => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      const message = decodeServerMessage(toBytes(data), isBinary);
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => (w.test(message) ? (w.resolve(message), false) : true));
    });
    socket.on('close', () => {
      for (const fail of this.waitersFailed.splice(0)) fail(new Error('the websocket closed before the awaited message came'));
    });
  }

  static connect(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<EventRecorder> {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, options);
    const recorder = new EventRecorder(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(recorder));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    });
  }

  /**
   * The first message that passes `test`. It waits as long as the socket is open: how long a run
   * takes depends on the machine's load, so only the test's own timeout bounds the wait (pass
   * `timeoutMs` where a test means to prove that something does NOT come).
   */
  waitFor(test: (m: ServerMessage) => boolean, timeoutMs = Infinity): Promise<ServerMessage> {
    const found = this.messages.find(test);
    if (found) return Promise.resolve(found);
    if (this.socket.readyState !== WebSocket.OPEN) return Promise.reject(new Error('the websocket is closed'));
    return new Promise((resolve, reject) => {
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => reject(new Error(`no such websocket message within ${timeoutMs} ms`)), timeoutMs) : undefined;
      this.waitersFailed.push(reject);
      this.waiters.push({ test, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  /** Resolves with the prompt's `prompt_done`. */
  done(promptId: string): Promise<ServerMessage> {
    return this.waitFor((m) => m.type === 'prompt_done' && m.prompt_id === promptId);
  }

  /** Messages about one prompt, in arrival order. */
  of(promptId: string): ServerMessage[] {
    return this.messages.filter((m) => 'prompt_id' in m && m.prompt_id === promptId);
  }

  close(): void {
    this.socket.terminate();
  }
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** A node of a workflow as tests describe it: widgets by name, inputs as links from other nodes. */
export interface NodeSpec {
  id: number;
  type: string;
  widgets?: Record<string, string | number | boolean>;
  /** input name → [source node id, source output slot, socket type] */
  inputs?: Record<string, [number, number, string]>;
  mode?: 0 | 2 | 4;
}

/** Builds a `supir-studio/workflow` v1 document with its links table. */
export function buildWorkflow(specs: NodeSpec[]): Record<string, unknown> {
  const links: Array<[number, number, number, number, number, string]> = [];
  const outputs = new Map<number, Array<{ name: string; type: string; links: number[] }>>();
  const nodes = specs.map((spec, index) => {
    const inputs = Object.entries(spec.inputs ?? {}).map(([name, [from, fromSlot, type]], toSlot) => {
      const id = links.length + 1;
      links.push([id, from, fromSlot, spec.id, toSlot, type]);
      const outs = outputs.get(from) ?? [];
      while (outs.length <= fromSlot) outs.push({ name: `out${outs.length}`, type, links: [] });
      outs[fromSlot]!.links.push(id);
      outputs.set(from, outs);
      return { name, type, link: id };
    });
    return { id: spec.id, type: spec.type, pos: [index * 250, 100], mode: spec.mode ?? 0, inputs, widgets_values: spec.widgets ?? {} };
  });
  return {
    format: 'supir-studio/workflow',
    version: 1,
    last_node_id: Math.max(0, ...specs.map((s) => s.id)),
    last_link_id: links.length,
    nodes: nodes.map((n) => ({ ...n, outputs: outputs.get(n.id) ?? [] })),
    links,
  };
}

const SAMPLE_INPUTS = new Set(fs.readdirSync(path.resolve(import.meta.dirname, '../../assets/inputs')));

/** Files in the inputs folder other than the sample photos seeded at start. */
export function userInputs(server: { dirs: { folders: { inputs: string } } }): string[] {
  return fs.readdirSync(server.dirs.folders.inputs).filter((name) => !SAMPLE_INPUTS.has(name));
}

/** A server in a child process (test/server/child-server.ts), which tests may SIGKILL. */
export interface ChildServer {
  url: string;
  proc: ChildProcess;
  /** Lines the child printed on stdout after its first (the address). */
  lines: string[];
  /** Sends the signal and resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnChildServer(dataRoot: string, args: string[] = []): Promise<ChildServer> {
  const script = path.resolve(import.meta.dirname, 'child-server.ts');
  const proc = spawn(process.execPath, ['--import', 'tsx', script, dataRoot, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SUPIR_LOG: 'error' },
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the child server did not start in 30 s: ${stderr}`));
    }, 30_000);
    let out = '';
    const later: string[] = [];
    let started = false;
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (started) {
          later.push(line);
          continue;
        }
        started = true;
        clearTimeout(timer);
        const { url } = JSON.parse(line) as { url: string };
        resolve({
          url,
          proc,
          lines: later,
          kill: async (signal = 'SIGKILL') => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            await exited;
          },
        });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the child server exited with ${code} before listening: ${stderr}`));
    });
  });
}

/** POSTs a prompt and returns its id, failing the test on anything but 200. */
export async function submitPrompt(url: string, prompt: unknown, extra: Record<string, unknown> = {}): Promise<{ prompt_id: string; number: number }> {
  const res = await fetch(`${url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, ...extra }) });
  const body = (await res.json()) as { prompt_id: string; number: number };
  if (res.status !== 200) throw new Error(`POST /api/prompt answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

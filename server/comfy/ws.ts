/**
 * The websocket that ComfyUI client scripts open: `/ws?clientId=ID` on the same port, with the
 * same Origin/Host check and token as our own `/ws`. Our engine events are sent in ComfyUI's
 * message shapes: status, execution_start, execution_cached, executing (node null when a prompt
 * is done), progress, executed (with the output images), execution_success, execution_error,
 * execution_interrupted, and previews as ComfyUI's binary frame (type 1, format 1 JPEG / 2 PNG).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EngineEvent, PromptQueueApi } from '../engine/index.ts';
import { hasToken, type AuthOptions } from '../http/auth.ts';
import { refusalReason, type GuardOptions } from '../http/guard.ts';
import { createLogger } from '../log.ts';
import { refuse } from '../ws/refuse.ts';
import { comfyImage, type ComfyBridge } from './bridge.ts';

const log = createLogger('comfy-ws');
/** A client this far behind gets no previews; twice as far and it is dropped. */
const PREVIEW_BACKLOG_BYTES = 4 * 1024 * 1024;
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

/** ComfyUI clients identify themselves with `clientId`; our editor does not. */
export function isComfySocket(url: URL): boolean {
  return url.pathname === '/ws' && url.searchParams.has('clientId');
}

export interface ComfyMessage {
  type: string;
  data: Record<string, unknown>;
}

/** One engine event as the ComfyUI messages it stands for (none for events ComfyUI has no word for). */
export function comfyMessages(e: EngineEvent, bridge: ComfyBridge): ComfyMessage[] {
  const timestamp = Date.now();
  const id = (promptId: string, node: string): string => bridge.comfyId(promptId, node);
  switch (e.type) {
    case 'status':
      return [{ type: 'status', data: { status: { exec_info: { queue_remaining: e.queue_remaining } } } }];
    case 'prompt_start':
      return [{ type: 'execution_start', data: { prompt_id: e.prompt_id, timestamp } }];
    case 'cached':
      return [{ type: 'execution_cached', data: { nodes: [...new Set(e.nodes.map((n) => id(e.prompt_id, n)))], prompt_id: e.prompt_id, timestamp } }];
    case 'node_start':
      return [{ type: 'executing', data: { node: id(e.prompt_id, e.node_id), display_node: id(e.prompt_id, e.node_id), prompt_id: e.prompt_id } }];
    case 'progress':
      return [{ type: 'progress', data: { value: e.value, max: e.max, prompt_id: e.prompt_id, node: id(e.prompt_id, e.node_id) } }];
    case 'node_done': {
      const images = e.files.map(comfyImage).filter((x) => x !== undefined);
      if (images.length === 0) return [];
      const node = id(e.prompt_id, e.node_id);
      return [{ type: 'executed', data: { node, display_node: node, output: { images }, prompt_id: e.prompt_id } }];
    }
    case 'error':
      return [
        {
          type: 'execution_error',
          data: {
            prompt_id: e.prompt_id,
            node_id: id(e.prompt_id, e.node_id),
            node_type: e.node_type,
            executed: [],
            exception_message: e.message,
            exception_type: e.code,
            traceback: [],
            current_inputs: e.inputs,
            current_outputs: {},
            timestamp,
          },
        },
      ];
    case 'interrupted':
      return [{ type: 'execution_interrupted', data: { prompt_id: e.prompt_id, node_id: e.node_id === null ? null : id(e.prompt_id, e.node_id), executed: [], timestamp } }];
    case 'prompt_done': {
      // ComfyUI ends every prompt, whatever its outcome, with `executing` for node null.
      const done: ComfyMessage = { type: 'executing', data: { node: null, prompt_id: e.prompt_id } };
      return e.status === 'success' ? [{ type: 'execution_success', data: { prompt_id: e.prompt_id, timestamp } }, done] : [done];
    }
    default:
      return [];
  }
}

/** ComfyUI's preview frame: 4-byte event type 1 (PREVIEW_IMAGE), 4-byte format (1 JPEG, 2 PNG), the image. */
function previewFrame(e: Extract<EngineEvent, { type: 'preview' }>): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(1, 0);
  head.writeUInt32BE(e.format === 'png' ? 2 : 1, 4);
  return Buffer.concat([head, e.bytes]);
}

export interface ComfyWsOptions {
  queue: PromptQueueApi;
  guard: GuardOptions;
  auth?: AuthOptions;
  bridge: ComfyBridge;
}

export interface ComfyWsHandle {
  close(): Promise<void>;
}

export function attachComfyWebSocket(server: Server, opts: ComfyWsOptions): ComfyWsHandle {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096, clientTracking: true });
  const clientIds = new WeakMap<WebSocket, string>();
  let unsubscribe: (() => void) | null = null;

  const send = (ws: WebSocket, data: string | Buffer, binary: boolean): void => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_BACKLOG_BYTES) return void ws.terminate();
    if (binary && ws.bufferedAmount > PREVIEW_BACKLOG_BYTES) return;
    ws.send(data, { binary });
  };

  const onEvent = (e: EngineEvent): void => {
    // A prompt queued by one client is reported to that client; other prompts to every client.
    const owner = 'prompt_id' in e ? opts.bridge.clientOf(e.prompt_id) : null;
    const targets = [...wss.clients].filter((c) => owner === null || clientIds.get(c) === owner);
    if (e.type === 'preview') {
      const frame = previewFrame(e);
      for (const c of targets) send(c, frame, true);
      return;
    }
    for (const m of comfyMessages(e, opts.bridge)) {
      const text = JSON.stringify(m);
      for (const c of targets) send(c, text, false);
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!isComfySocket(url)) return;
    const reason = refusalReason(req.headers, opts.guard);
    if (reason !== null) {
      log.warn(`refused websocket: ${reason}`);
      return refuse(socket, 403, 'Forbidden');
    }
    if (opts.auth && !hasToken(req, opts.auth, true)) return refuse(socket, 401, 'Unauthorized');
    const clientId = (url.searchParams.get('clientId') ?? '').slice(0, 200);
    wss.handleUpgrade(req, socket, head, (ws) => {
      clientIds.set(ws, clientId);
      unsubscribe ??= opts.queue.events.subscribe(onEvent, { previews: true });
      const { running, pending } = opts.queue.list();
      ws.send(JSON.stringify({ type: 'status', data: { status: { exec_info: { queue_remaining: pending.length + (running ? 1 : 0) } }, sid: clientId } }));
      ws.on('message', () => undefined);
      ws.on('error', (err) => log.debug('client error', err));
      ws.on('close', () => {
        if (wss.clients.size === 0 && unsubscribe) {
          unsubscribe();
          unsubscribe = null;
        }
      });
    });
  };
  server.on('upgrade', onUpgrade);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.off('upgrade', onUpgrade);
        for (const c of wss.clients) c.terminate();
        unsubscribe?.();
        unsubscribe = null;
        wss.close(() => resolve());
      }),
  };
}

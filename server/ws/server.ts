import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EngineEvent, PromptQueueApi } from '../engine/index.ts';
import { hasToken, type AuthOptions } from '../http/auth.ts';
import { refusalReason, type GuardOptions } from '../http/guard.ts';
import { createLogger } from '../log.ts';
import { refuse } from './refuse.ts';
import { encodeServerMessage } from './protocol.ts';

const log = createLogger('ws');

export interface WsOptions {
  queue: PromptQueueApi;
  guard: GuardOptions;
  /** The access token, when one is required: as a header, the cookie or `?token=`. */
  auth?: AuthOptions;
  path?: string;
  /** Clients have nothing to say; anything bigger than this closes the connection (1009). */
  maxPayload?: number;
  pingIntervalMs?: number;
  /** Upgrades left to another handler on the same server (ComfyUI clients: `/ws?clientId=`, server/comfy/ws.ts). */
  leave?: (url: URL) => boolean;
}

export interface WsHandle {
  clientCount(): number;
  close(): Promise<void>;
}

/** A client this far behind gets no more previews until it catches up: they are the bulk. */
const PREVIEW_BACKLOG_BYTES = 4 * 1024 * 1024;
/** A client this far behind is not reading at all; it is dropped before it fills the memory. */
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;
/** Incoming messages allowed per client per second before it is closed (they are ignored anyway). */
const MAX_MESSAGES_PER_SECOND = 20;

/**
 * The event stream at /ws. Upgrades are taken by hand (noServer) so the same Origin/Host check as
 * the HTTP API runs before a socket is accepted. The engine's hub is subscribed (with previews)
 * only while someone is connected, so with no editor open the executor skips encoding previews.
 */
export function attachWebSocketServer(server: Server, opts: WsOptions): WsHandle {
  const path = opts.path ?? '/ws';
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 4096, clientTracking: true });
  const alive = new WeakMap<WebSocket, boolean>();
  let unsubscribe: (() => void) | null = null;

  /** Each client's TCP socket, kept from the upgrade, so a batch of frames can go out in one write. */
  const sockets = new WeakMap<WebSocket, Duplex>();
  let outbox: Array<{ data: Buffer; binary: boolean; status?: boolean }> = [];
  let flushScheduled = false;

  // Events are encoded once and sent in batches, one per turn of the event loop: with many
  // clients and fast prompts, a write per event per client would cost more than the prompts.
  const flush = (): void => {
    flushScheduled = false;
    // Only the newest queue status of a batch matters: a burst of 100 submissions sends one.
    const lastStatus = outbox.findLastIndex((m) => m.status);
    const batch = outbox.filter((m, i) => !m.status || i === lastStatus);
    outbox = [];
    for (const client of wss.clients) {
      if (client.readyState !== client.OPEN) continue;
      if (client.bufferedAmount > MAX_BACKLOG_BYTES) {
        log.warn('dropping a client that stopped reading');
        client.terminate();
        continue;
      }
      const socket = sockets.get(client);
      socket?.cork();
      for (const { data, binary } of batch) {
        if (binary && client.bufferedAmount > PREVIEW_BACKLOG_BYTES) continue;
        client.send(data, { binary });
      }
      socket?.uncork();
    }
  };

  const broadcast = (event: EngineEvent): void => {
    const { data, binary } = encodeServerMessage(event);
    outbox.push({ data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data, binary, status: event.type === 'status' });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (opts.leave?.(url)) return;
    const pathname = url.pathname;
    if (pathname !== path) return refuse(socket, 404, 'Not Found');
    const reason = refusalReason(req.headers, opts.guard);
    if (reason !== null) {
      log.warn(`refused websocket: ${reason}`);
      return refuse(socket, 403, 'Forbidden');
    }
    if (opts.auth && !hasToken(req, opts.auth, true)) {
      log.warn('refused websocket: no valid token');
      return refuse(socket, 401, 'Unauthorized');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(ws, socket);
      wss.emit('connection', ws, req);
    });
  };

  wss.on('connection', (ws: WebSocket) => {
    alive.set(ws, true);
    unsubscribe ??= opts.queue.events.subscribe(broadcast, { previews: true });
    const { running, pending } = opts.queue.list();
    const status: EngineEvent = { type: 'status', queue_remaining: pending.length + (running ? 1 : 0), running: running?.id ?? null };
    ws.send(JSON.stringify(status));
    let windowStart = Date.now();
    let count = 0;
    ws.on('message', () => {
      // The protocol is one-way; a client flooding us is closed rather than read.
      const now = Date.now();
      if (now - windowStart > 1000) {
        windowStart = now;
        count = 0;
      }
      if (++count > MAX_MESSAGES_PER_SECOND) ws.close(1008, 'too many messages');
    });
    ws.on('pong', () => alive.set(ws, true));
    ws.on('error', (err) => log.debug('client error', err));
    ws.on('close', () => {
      if (wss.clients.size === 0 && unsubscribe) {
        unsubscribe();
        unsubscribe = null;
      }
    });
  });

  // A peer that vanished without closing (laptop lid, dropped Wi-Fi) is found by a missed pong.
  const ping = setInterval(() => {
    for (const client of wss.clients) {
      if (alive.get(client) === false) {
        client.terminate();
        continue;
      }
      alive.set(client, false);
      client.ping();
    }
  }, opts.pingIntervalMs ?? 30_000);
  ping.unref();

  server.on('upgrade', onUpgrade);

  return {
    clientCount: () => wss.clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(ping);
        server.off('upgrade', onUpgrade);
        for (const client of wss.clients) client.terminate();
        unsubscribe?.();
        unsubscribe = null;
        wss.close(() => resolve());
      }),
  };
}

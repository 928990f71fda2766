import { decodeServerMessage, type EngineEvent, type PreviewEvent } from '../../../server/protocol/index.ts';

/** A decoded preview frame, with an object URL of its bytes (revoked when superseded). */
export type PreviewUrlEvent = PreviewEvent & { url: string };
/** What subscribers receive: text events as sent, previews with a URL to show. */
export type StreamEvent = Exclude<EngineEvent, { type: 'preview' }> | PreviewUrlEvent;
export type StreamEventType = StreamEvent['type'];
type Of<T extends StreamEventType> = Extract<StreamEvent, { type: T }>;

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;

/**
 * The websocket client for `/ws` on this origin: decodes text and binary frames, reconnects with
 * exponential backoff, and hands typed events to subscribers.
 */
export class EventStream {
  #url: string;
  #socket: WebSocket | null = null;
  #listeners = new Map<StreamEventType | '*', Set<(event: StreamEvent) => void>>();
  #connectionListeners = new Set<(connected: boolean) => void>();
  #backoff = MIN_BACKOFF_MS;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  /** Object URLs of the latest preview per prompt and node. */
  #previews = new Map<string, Map<string, string>>();

  constructor(url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`) {
    this.#url = url;
  }

  connect(): void {
    this.#closed = false;
    if (this.#socket) return;
    const ws = new WebSocket(this.#url);
    ws.binaryType = 'arraybuffer';
    this.#socket = ws;
    ws.onopen = () => {
      this.#backoff = MIN_BACKOFF_MS;
      for (const fn of this.#connectionListeners) fn(true);
    };
    ws.onmessage = (msg: MessageEvent<string | ArrayBuffer>) => this.#receive(msg.data);
    ws.onclose = () => {
      this.#socket = null;
      for (const fn of this.#connectionListeners) fn(false);
      if (!this.#closed) this.#scheduleReconnect();
    };
    ws.onerror = () => ws.close();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#socket?.close();
    this.#socket = null;
    for (const prompt of this.#previews.keys()) this.#revokePreviews(prompt);
  }

  /** Listens to one event type (or '*' for all); returns the unsubscribe function. */
  subscribe<T extends StreamEventType>(type: T, fn: (event: Of<T>) => void): () => void;
  subscribe(type: '*', fn: (event: StreamEvent) => void): () => void;
  subscribe(type: StreamEventType | '*', fn: (event: never) => void): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    const listener = fn as (event: StreamEvent) => void;
    set.add(listener);
    this.#listeners.set(type, set);
    return () => set.delete(listener);
  }

  /** Called with true on every (re)connection and false on every drop. */
  onConnection(fn: (connected: boolean) => void): () => void {
    this.#connectionListeners.add(fn);
    return () => this.#connectionListeners.delete(fn);
  }

  #scheduleReconnect(): void {
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#closed) this.connect();
    }, delay);
  }

  #receive(data: string | ArrayBuffer): void {
    let event: EngineEvent;
    try {
      event = typeof data === 'string' ? decodeServerMessage(data, false) : decodeServerMessage(new Uint8Array(data), true);
    } catch {
      return; // a binary kind this client does not know, or a damaged frame
    }
    if (event.type === 'preview') {
      const url = URL.createObjectURL(new Blob([event.bytes as Uint8Array<ArrayBuffer>], { type: `image/${event.format}` }));
      const nodes = this.#previews.get(event.prompt_id) ?? new Map<string, string>();
      const old = nodes.get(event.node_id);
      nodes.set(event.node_id, url);
      this.#previews.set(event.prompt_id, nodes);
      this.#emit({ ...event, url });
      if (old) URL.revokeObjectURL(old);
      return;
    }
    this.#emit(event);
    if (event.type === 'prompt_done') this.#revokePreviews(event.prompt_id);
  }

  #emit(event: StreamEvent): void {
    for (const key of [event.type, '*'] as const) {
      for (const fn of this.#listeners.get(key) ?? []) {
        try {
          fn(event);
        } catch (err) {
          console.error(`event listener for ${event.type} failed`, err);
        }
      }
    }
  }

  #revokePreviews(promptId: string): void {
    for (const url of this.#previews.get(promptId)?.values() ?? []) URL.revokeObjectURL(url);
    this.#previews.delete(promptId);
  }
}

/**
 * A vision-language server for the tests, on 127.0.0.1 with a free port: it speaks Ollama's
 * /api/generate and /api/chat (JSON or NDJSON stream) and the OpenAI /v1/chat/completions (JSON or
 * server-sent events) in the shapes those servers send, decodes the base64 image of every request
 * with sharp (refusing anything that is not a PNG or JPEG, as the real servers fail on it) and
 * records what it received. Behaviour per test through `handle`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

export type Api = 'generate' | 'chat' | 'openai';

export interface ReceivedImage {
  format: string;
  width: number;
  height: number;
  channels: number;
  /** Mean of each channel, 0..255. */
  mean: number[];
}

export interface Received {
  api: Api;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  image: ReceivedImage;
  /** Position in arrival order. */
  n: number;
}

/** What a test may make the server do for one request. */
export interface Reply {
  /** The model's raw answer (split into word pieces when streaming). */
  text?: string;
  delayMs?: number;
  /** Send this status and raw body instead of an answer. */
  status?: number;
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Stream: send the first piece then stall (never finish) / end without the final marker. */
  stall?: boolean;
  truncate?: boolean;
}

export interface FakeServer {
  url: string;
  port: number;
  requests: Received[];
  /** Requests in the order their answers finished. */
  finished: number[];
  /** Most requests being answered at once. */
  maxInFlight: number;
  handle: (req: Received) => Reply | Promise<Reply>;
  close(): Promise<void>;
}

const CREATED = '2024-05-01T12:00:00.000000Z';

export async function startFakeServer(handle: FakeServer['handle'] = () => ({ text: 'a photo' })): Promise<FakeServer> {
  let inFlight = 0;
  const state: FakeServer = {
    url: '',
    port: 0,
    requests: [],
    finished: [],
    maxInFlight: 0,
    handle,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    void serve(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `fake server: ${(err as Error).message}` }));
    });
  });

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const api: Api | undefined =
      req.url === '/api/generate' ? 'generate' : req.url === '/api/chat' ? 'chat' : req.url === '/v1/chat/completions' ? 'openai' : undefined;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== 'POST' || !api) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found');
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    if (typeof body['model'] !== 'string' || body['model'] === '') {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'model is required' }));
      return;
    }
    const received: Received = { api, path: req.url!, headers: req.headers, body, image: await decode(api, body), n: state.requests.length };
    state.requests.push(received);
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    try {
      const reply = await state.handle(received);
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      await answer(res, api, body, reply);
    } finally {
      inFlight--;
      state.finished.push(received.n);
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

/** The request's one image, decoded: base64 in `images` (Ollama) or a data: URL (OpenAI). */
async function decode(api: Api, body: Record<string, unknown>): Promise<ReceivedImage> {
  let b64: unknown;
  if (api === 'generate') b64 = (body['images'] as unknown[] | undefined)?.[0];
  else if (api === 'chat') b64 = ((body['messages'] as Array<Record<string, unknown>>)[0]!['images'] as unknown[] | undefined)?.[0];
  else {
    const parts = (body['messages'] as Array<{ content: Array<Record<string, unknown>> }>)[0]!.content;
    const url = (parts.find((p) => p['type'] === 'image_url')?.['image_url'] as { url: string } | undefined)?.url ?? '';
    const m = /^data:(image\/(?:png|jpeg));base64,(.*)$/s.exec(url);
    if (!m) throw new Error(`image_url is not a base64 PNG/JPEG data URL: ${url.slice(0, 40)}`);
    b64 = m[2];
  }
  if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]+=*$/.test(b64)) throw new Error('no base64 image in the request');
  const bytes = Buffer.from(b64, 'base64');
  const meta = await sharp(bytes).metadata();
  if (meta.format !== 'png' && meta.format !== 'jpeg') throw new Error(`image is ${meta.format}, not PNG/JPEG`);
  const stats = await sharp(bytes).stats();
  return { format: meta.format, width: meta.width!, height: meta.height!, channels: meta.channels!, mean: stats.channels.map((c) => c.mean) };
}

/** Word pieces, as a model streams tokens ("A", " cat", ...). */
function pieces(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [''];
}

async function answer(res: http.ServerResponse, api: Api, body: Record<string, unknown>, reply: Reply): Promise<void> {
  if (reply.status !== undefined || reply.raw !== undefined) {
    res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json', ...reply.headers });
    res.end(reply.raw ?? '');
    return;
  }
  const text = reply.text ?? '';
  const model = body['model'] as string;
  const stream = api === 'openai' ? body['stream'] === true : body['stream'] !== false; // Ollama streams unless told not to
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    if (api === 'generate') res.end(JSON.stringify({ model, created_at: CREATED, response: text, done: true, done_reason: 'stop', context: [1, 2, 3], total_duration: 1000, eval_count: pieces(text).length }));
    else if (api === 'chat') res.end(JSON.stringify({ model, created_at: CREATED, message: { role: 'assistant', content: text }, done_reason: 'stop', done: true, total_duration: 1000 }));
    else res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1714564800, model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 600, completion_tokens: 9, total_tokens: 609 } }));
    return;
  }
  const sse = api === 'openai';
  res.writeHead(200, sse ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } : { 'content-type': 'application/x-ndjson' });
  const send = (obj: unknown): void => {
    res.write(sse ? `data: ${JSON.stringify(obj)}\n\n` : `${JSON.stringify(obj)}\n`);
  };
  const chunk = (content: string, done: boolean): unknown =>
    api === 'generate'
      ? { model, created_at: CREATED, response: content, done, ...(done ? { done_reason: 'stop', context: [1, 2, 3] } : {}) }
      : api === 'chat'
        ? { model, created_at: CREATED, message: { role: 'assistant', content }, done, ...(done ? { done_reason: 'stop' } : {}) }
        : { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1714564800, model, choices: [{ index: 0, delta: done ? {} : { content }, finish_reason: done ? 'stop' : null }] };
  if (sse) send({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1714564800, model, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  for (const [i, p] of pieces(text).entries()) {
    send(chunk(p, false));
    if (reply.stall && i === 0) return; // keeps the response open without another byte
    await new Promise((r) => setImmediate(r));
  }
  if (reply.truncate) {
    res.end();
    return;
  }
  send(chunk('', true));
  if (sse) res.write('data: [DONE]\n\n');
  res.end();
}

/**
 * A client for local vision-language servers: Ollama (/api/generate, /api/chat) and the
 * OpenAI-compatible chat API with images (llama.cpp's llama-server, vLLM, LM Studio, Ollama's
 * /v1). One request per image; streaming (Ollama NDJSON, OpenAI server-sent events) and whole
 * JSON answers.
 *
 * Security: only http(s) URLs without credentials; redirects are never followed (the request goes
 * to the configured address or nowhere); the answer is read with a byte limit and used as text.
 */
import { InputError, InterruptedError, StudioError } from '../api/errors.ts';
import type { EncodedImage } from './image.ts';

export const API_KINDS = ['ollama /api/generate', 'ollama /api/chat', 'openai /v1/chat/completions'] as const;
export type ApiKind = (typeof API_KINDS)[number];

/** The most bytes read from one answer (a 512-token caption streamed as NDJSON is ~100 KiB). */
export const MAX_RESPONSE_BYTES = 1 << 20;
/** How much of an unexpected body an error message quotes. */
const EXCERPT = 300;
/** How much of an error page is read to find the server's message. */
const ERROR_BODY_BYTES = 64 * 1024;

export interface CaptionRequest {
  api: ApiKind;
  baseUrl: string;
  model: string;
  instruction: string;
  image: EncodedImage;
  temperature: number;
  topP: number;
  maxTokens: number;
  seed: number;
  stream: boolean;
  timeoutS: number;
  /** The prompt's interrupt. */
  signal: AbortSignal;
  /** Called with the number of pieces of text received so far while an answer streams in. */
  onPiece?: (pieces: number) => void;
}

/** The reasons a base URL is refused, or undefined when it is usable (used by validation too). */
export function baseUrlProblem(baseUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(baseUrl.trim());
  } catch {
    return `${JSON.stringify(baseUrl)} is not a URL; expected an address such as http://127.0.0.1:11434`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `only http:// and https:// addresses are allowed, not ${url.protocol}`;
  if (url.username || url.password) return 'must not contain a user name or password';
  if (url.search || url.hash) return 'must not have a query (?…) or a fragment (#…)';
  return undefined;
}

/**
 * The endpoint for `api` under `baseUrl`. The base may carry a path (a reverse proxy), may end in
 * /v1 (how OpenAI clients write it) or already be the endpoint itself.
 */
export function endpointUrl(api: ApiKind, baseUrl: string): URL {
  const problem = baseUrlProblem(baseUrl);
  if (problem) throw new InputError('base_url', problem);
  const url = new URL(baseUrl.trim());
  const base = url.pathname.replace(/\/+$/, '');
  const path = api === 'ollama /api/generate' ? '/api/generate' : api === 'ollama /api/chat' ? '/api/chat' : '/v1/chat/completions';
  if (base.endsWith(path)) url.pathname = base;
  else if (api.startsWith('openai') && base.endsWith('/v1')) url.pathname = `${base}/chat/completions`;
  else url.pathname = base + path;
  return url;
}

/** The JSON body each API expects. */
export function requestBody(req: Omit<CaptionRequest, 'signal' | 'baseUrl' | 'timeoutS' | 'onPiece'>): Record<string, unknown> {
  const options = { temperature: req.temperature, top_p: req.topP, num_predict: req.maxTokens, seed: req.seed };
  switch (req.api) {
    case 'ollama /api/generate':
      return { model: req.model, prompt: req.instruction, images: [req.image.base64], stream: req.stream, options };
    case 'ollama /api/chat':
      return { model: req.model, messages: [{ role: 'user', content: req.instruction, images: [req.image.base64] }], stream: req.stream, options };
    case 'openai /v1/chat/completions':
      return {
        model: req.model,
        // Image first, then the question: LLaVA's training prompt is "<image>\n{question}".
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `data:${req.image.mime};base64,${req.image.base64}` } },
              { type: 'text', text: req.instruction },
            ],
          },
        ],
        temperature: req.temperature,
        top_p: req.topP,
        max_tokens: req.maxTokens,
        seed: req.seed,
        stream: req.stream,
      };
  }
}

/** Sends one image and returns the server's raw answer text (not yet post-processed). */
export async function requestCaption(req: CaptionRequest): Promise<string> {
  const url = endpointUrl(req.api, req.baseUrl);
  const where = url.href;
  const fail = (what: string, fix = howToFix(req)): StudioError =>
    new StudioError('NODE_FAILED', `caption server at ${where}: ${what}. ${fix}`);
  const timeout = AbortSignal.timeout(req.timeoutS * 1000);
  const signal = AbortSignal.any([req.signal, timeout]);
  // Turns a thrown fetch / read error into the message people read.
  const explain = (err: unknown): Error => {
    if (err instanceof StudioError) return err;
    if (req.signal.aborted) return new InterruptedError();
    if (timeout.aborted) return fail(`no complete answer within the timeout of ${req.timeoutS} s (the first request also loads the model, which can take minutes: raise timeout)`, disconnectHint());
    // fetch refuses ports that browsers block (25, 6000, ...) before connecting.
    if (err instanceof Error && err.cause instanceof Error && err.cause.message === 'bad port') return fail(`port ${url.port} is one fetch refuses to connect to (a reserved port)`, 'Run the server on another port and set base_url to it.');
    return fail(networkReason(err));
  };

  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, application/x-ndjson, text/event-stream' },
      body: JSON.stringify(requestBody(req)),
      redirect: 'manual',
      signal,
    });
  } catch (err) {
    throw explain(err);
  }

  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel().catch(() => undefined);
    const to = res.headers.get('location');
    throw fail(
      `answered with a redirect (HTTP ${res.status}${to ? ` to ${excerpt(to, 120)}` : ''}), which is not followed: requests go only to the configured address`,
      'Set base_url to the address the server really listens on.',
    );
  }

  const pieces: string[] = [];
  try {
    if (!res.ok) {
      // An error page is only quoted: read its start, however long it is.
      const text = await readAll(res, signal, fail, ERROR_BODY_BYTES);
      throw fail(`answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${serverError(text)}`, httpFix(req, res.status, text));
    }
    const type = res.headers.get('content-type') ?? '';
    const mode = type.includes('event-stream') ? 'sse' : type.includes('ndjson') ? 'ndjson' : type.includes('json') || !req.stream ? 'json' : req.api.startsWith('openai') ? 'sse' : 'ndjson';
    if (mode === 'json') {
      const text = await readAll(res, signal, fail);
      return answerOf(req.api, parseJson(text, fail), fail, false).text;
    }
    let complete = false;
    for await (const line of lines(res, signal, fail)) {
      if (mode === 'sse') {
        // Server-sent events: only `data:` lines carry content; comments, event names and ids don't.
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          complete = true;
          break;
        }
        const piece = answerOf(req.api, parseJson(data, fail), fail, true);
        pieces.push(piece.text);
        complete ||= piece.done;
      } else {
        if (line.trim() === '') continue;
        const piece = answerOf(req.api, parseJson(line, fail), fail, true);
        pieces.push(piece.text);
        if (piece.done) {
          complete = true;
          break;
        }
      }
      req.onPiece?.(pieces.length);
    }
    if (!complete) throw fail(`the streamed answer ended before it was complete (${mode === 'sse' ? 'no [DONE] or finish_reason' : 'no "done": true line'})`, disconnectHint());
    return pieces.join('');
  } catch (err) {
    throw explain(err);
  } finally {
    // Stops reading (and frees the connection) when we leave early: [DONE] seen, an error, a limit.
    await res.body?.cancel().catch(() => undefined);
  }
}

type Fail = (what: string, fix?: string) => StudioError;

/** The text (and whether it is the last piece) of a whole answer or of one streamed chunk. */
function answerOf(api: ApiKind, value: unknown, fail: Fail, chunk: boolean): { text: string; done: boolean } {
  const obj = isObject(value) ? value : undefined;
  const shown = excerpt(JSON.stringify(value) ?? String(value), EXCERPT);
  if (obj && 'error' in obj && obj['error'] != null) {
    const e = obj['error'];
    throw fail(`reported an error: ${excerpt(isObject(e) && typeof e['message'] === 'string' ? e['message'] : typeof e === 'string' ? e : JSON.stringify(e), EXCERPT)}`, disconnectHint());
  }
  if (api === 'ollama /api/generate') {
    if (!obj || typeof obj['response'] !== 'string') throw fail(`malformed answer: expected a JSON object with a "response" text (Ollama /api/generate), got ${shown}`, disconnectHint());
    return { text: obj['response'], done: obj['done'] === true };
  }
  if (api === 'ollama /api/chat') {
    const message = obj?.['message'];
    if (!isObject(message) || typeof message['content'] !== 'string') {
      // The last line of a chat stream may carry no message, only the statistics.
      if (chunk && obj?.['done'] === true) return { text: '', done: true };
      throw fail(`malformed answer: expected a JSON object with "message": {"content": …} (Ollama /api/chat), got ${shown}`, disconnectHint());
    }
    return { text: message['content'], done: obj!['done'] === true };
  }
  const choices = obj?.['choices'];
  if (!Array.isArray(choices)) throw fail(`malformed answer: expected a JSON object with "choices" (OpenAI chat completions), got ${shown}`, disconnectHint());
  // Usage-only chunks (stream_options.include_usage) have an empty choices list.
  if (choices.length === 0 && chunk) return { text: '', done: false };
  const choice: unknown = choices[0];
  const part = isObject(choice) ? choice[chunk ? 'delta' : 'message'] : undefined;
  const finish = isObject(choice) && typeof choice['finish_reason'] === 'string';
  const content = isObject(part) ? part['content'] : undefined;
  if (content === undefined || content === null) {
    if (chunk && isObject(part)) return { text: '', done: finish };
    throw fail(`malformed answer: expected choices[0].${chunk ? 'delta' : 'message'}.content, got ${shown}`, disconnectHint());
  }
  if (typeof content === 'string') return { text: content, done: finish };
  // A content list of parts ([{type: 'text', text}]), as some servers send it.
  if (Array.isArray(content) && content.every((p) => isObject(p) && (p['type'] !== 'text' || typeof p['text'] === 'string'))) {
    return { text: content.map((p) => (p['type'] === 'text' ? (p['text'] as string) : '')).join(''), done: finish };
  }
  throw fail(`malformed answer: choices[0] content is not text, got ${shown}`, disconnectHint());
}

function parseJson(text: string, fail: Fail): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw fail(`malformed JSON in the answer (${(err as Error).message}): ${excerpt(text, EXCERPT)}`, disconnectHint());
  }
}

/** The body as text: an error past MAX_RESPONSE_BYTES, or with `keep` only its first `keep` bytes. */
async function readAll(res: Response, signal: AbortSignal, fail: Fail, keep?: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  let kept = 0;
  for await (const chunk of bytes(res, signal, fail)) {
    const part = keep === undefined ? chunk : chunk.subarray(0, keep - kept);
    text += decoder.decode(part, { stream: true });
    kept += part.byteLength;
    if (keep !== undefined && kept >= keep) break;
  }
  return text + decoder.decode();
}

/** The body line by line (\n, \r\n or, for SSE, \r), counting bytes against the limit. */
async function* lines(res: Response, signal: AbortSignal, fail: Fail): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of bytes(res, signal, fail)) {
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split(/\r\n|\n|\r/);
    rest = parts.pop()!;
    yield* parts;
  }
  rest += decoder.decode();
  if (rest !== '') yield rest;
}

async function* bytes(res: Response, signal: AbortSignal, fail: Fail): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const reader = res.body.getReader();
  let total = 0;
  try {
    for (;;) {
      signal.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) return;
      total += value.byteLength;
      if (total > MAX_RESPONSE_BYTES) {
        throw fail(`the answer is larger than ${MAX_RESPONSE_BYTES / (1 << 20)} MiB, the most a caption may take; reading stopped`, disconnectHint());
      }
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** The message inside a server's error body, or an excerpt of the body. */
function serverError(text: string): string {
  try {
    const v: unknown = JSON.parse(text);
    if (isObject(v)) {
      const e = v['error'];
      if (typeof e === 'string') return excerpt(e, EXCERPT);
      if (isObject(e) && typeof e['message'] === 'string') return excerpt(e['message'], EXCERPT);
      if (typeof v['message'] === 'string') return excerpt(v['message'], EXCERPT);
    }
  } catch {
    // Not JSON: quote the text.
  }
  return text.trim() === '' ? '(empty body)' : excerpt(text, EXCERPT);
}

function httpFix(req: CaptionRequest, status: number, text: string): string {
  if (status === 404 && req.api.startsWith('ollama') && /model|not found/i.test(text)) {
    return `Download the model with \`ollama pull ${req.model}\` (or set model to one that \`ollama list\` shows), or disconnect the Caption node and use a Text node.`;
  }
  if (status === 404) return `Check that the server speaks ${req.api} and that model "${req.model}" is loaded, or disconnect the Caption node and use a Text node.`;
  if (status === 401 || status === 403) return 'The server wants an API key, which SUPIR Studio does not send: start it without one on this machine, or disconnect the Caption node and use a Text node.';
  return `See the server's log; ${disconnectHint().toLowerCase()}`;
}

/** The fix for a server that cannot be reached. */
function howToFix(req: CaptionRequest): string {
  if (req.api.startsWith('ollama')) {
    return `Start Ollama with LLaVA (\`ollama serve\`, then \`ollama pull ${req.model}\`) and check base_url, or disconnect the Caption node and type the caption into SUPIR Text Encode or a Text node.`;
  }
  return 'Start your OpenAI-compatible server (llama.cpp `llama-server`, vLLM, LM Studio) with a vision model at this address and check base_url, or disconnect the Caption node and type the caption into SUPIR Text Encode or a Text node.';
}

function disconnectHint(): string {
  return 'Or disconnect the Caption node and type the caption into SUPIR Text Encode or a Text node.';
}

/** Why fetch could not talk to the server, from undici's error cause codes. */
function networkReason(err: unknown): string {
  const cause = isObject(err) ? (err as { cause?: unknown }).cause : undefined;
  const inner = isObject(cause) ? cause : isObject(err) ? err : undefined;
  const errors = inner && Array.isArray(inner['errors']) ? (inner['errors'] as unknown[]) : [];
  const code = [inner?.['code'], ...errors.map((e) => (isObject(e) ? e['code'] : undefined))].find((c): c is string => typeof c === 'string');
  const message = inner && typeof inner['message'] === 'string' ? inner['message'] : err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'cannot connect: connection refused (ECONNREFUSED), nothing is listening at that address';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect: host name not found (${code})`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `the server closed the connection (${code})`;
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `cannot connect: the connection timed out (${code})`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect: the host is unreachable (${code})`;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return `the server went silent for Node's 300 s socket limit (${code}); turn on stream so that it sends as it writes`;
    default:
      return `the request failed: ${excerpt(message, EXCERPT)}${code ? ` (${code})` : ''}`;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function excerpt(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

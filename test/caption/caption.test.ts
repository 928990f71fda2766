/**
 * Caption (vision LLM) against a fake Ollama / OpenAI-compatible server on 127.0.0.1: the request
 * bodies (model, prompt, image, options), both answer formats of each API, per-tile captions in
 * tile order under bounded concurrency, every documented failure, and the executor's cache.
 */
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import CaptionVLM, { CAPTION_CONCURRENCY, mapInOrder, tileRects } from '../../nodes/caption/caption.ts';
import { postProcessCaption, REALISTIC_PHOTO, SUPIR_INSTRUCTION } from '../../nodes/caption/captions.ts';
import { endpointUrl, MAX_RESPONSE_BYTES } from '../../nodes/caption/client.ts';
import type { ImageTensor, LatentTensor } from '../../nodes/api/tensor.ts';
import { latentWindows } from '../../nodes/supir/lib/sampler-tiles.ts';
import { fakeContext, runNode, tempEnv, type FakeContext } from '../support/fake-context.ts';
import { imageFrom } from '../support/images.ts';
import { startFakeServer, type FakeServer } from './fake-vlm-server.ts';

const { env, cleanup } = tempEnv();
let server: FakeServer;

beforeAll(async () => {
  server = await startFakeServer();
});
afterEach(() => {
  server.requests.length = 0;
  server.finished.length = 0;
  server.maxInFlight = 0;
  server.handle = () => ({ text: 'a photo' });
});
afterAll(async () => {
  await server.close();
  cleanup();
});

/** The node's defaults, as a new node in the editor has them, pointed at the fake server. */
function widgets(over: Record<string, unknown> = {}): Record<string, unknown> {
  const defaults = Object.fromEntries(Object.entries(CaptionVLM.widgets).map(([k, spec]) => [k, spec.default]));
  return { ...defaults, base_url: server.url, ...over };
}

async function caption(image: ImageTensor, over: Record<string, unknown> = {}, ctx: FakeContext = fakeContext(env), latent?: LatentTensor): Promise<{ caption: string; captions: string }> {
  return (await runNode(CaptionVLM, { image, latent, ...widgets(over) }, ctx)) as { caption: string; captions: string };
}

async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );
  if (!err) throw new Error('expected a failure');
  return err;
}

/** 96x72 RGB with a horizontal red ramp: the server sees it at short side 512. */
const photo = imageFrom(1, 3, 72, 96, (_n, c, _y, x) => (c === 0 ? x / 95 : 0.5));

/** A port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const ANSWER = '  A tabby cat sits on a wooden table.\nThe light is warm.</s>  ';
const CLEAN = 'A tabby cat sits on a wooden table. The light is warm.';

describe('official post-processing', () => {
  it('strips, drops the trailing </s> and turns newlines into spaces', () => {
    expect(postProcessCaption(ANSWER)).toBe(CLEAN);
    // Only a trailing stop string is removed, as in the official code.
    expect(postProcessCaption('a </s> b')).toBe('a </s> b');
    expect(postProcessCaption('one\r\ntwo\rthree\u0007')).toBe('one two three');
  });
});

describe('Ollama /api/generate', () => {
  for (const stream of [false, true]) {
    it(`sends model, SUPIR's question, the image at short side 512 and the options (stream ${stream})`, async () => {
      server.handle = () => ({ text: ANSWER });
      const ctx = fakeContext(env);
      const out = await caption(photo, { stream, seed: 42 }, ctx);
      expect(out).toEqual({ caption: CLEAN, captions: JSON.stringify([CLEAN]) });
      expect(server.requests).toHaveLength(1);
      const [req] = server.requests;
      expect(req!.path).toBe('/api/generate');
      expect(req!.headers['content-type']).toBe('application/json');
      const { images, ...rest } = req!.body;
      expect(rest).toEqual({ model: 'llava:13b', prompt: SUPIR_INSTRUCTION, stream, options: { temperature: 0.2, top_p: 0.7, num_predict: 512, seed: 42 } });
      expect(images).toHaveLength(1);
      // 96x72 → short side 512: 683x512 (96·512/72 = 682.7), an RGB PNG.
      expect(req!.image).toMatchObject({ format: 'png', width: 683, height: 512, channels: 3 });
      expect(req!.image.mean[1]).toBeCloseTo(128, 0);
      // Streaming reports progress as pieces arrive, then the whole budget at the end.
      if (stream) expect(ctx.progressCalls.length).toBeGreaterThan(3);
      expect(ctx.progressCalls.at(-1)).toEqual([512, 512]);
    });
  }

  it('appends the realistic-photo sentence and uses the instruction as typed', async () => {
    await caption(photo, { instruction: 'What is this?', realistic_photo: true, temperature: 0.5, top_p: 0.9, max_tokens: 77 });
    expect(server.requests[0]!.body).toMatchObject({ prompt: `What is this? ${REALISTIC_PHOTO}`, options: { temperature: 0.5, top_p: 0.9, num_predict: 77, seed: 0 } });
  });
});

describe('Ollama /api/chat', () => {
  for (const stream of [false, true]) {
    it(`sends one user message with the image and parses the reply (stream ${stream})`, async () => {
      server.handle = () => ({ text: ANSWER });
      const out = await caption(photo, { api: 'ollama /api/chat', stream, realistic_photo: true, model: 'llava:7b' });
      expect(out.caption).toBe(CLEAN);
      const [req] = server.requests;
      expect(req!.path).toBe('/api/chat');
      const messages = req!.body['messages'] as Array<Record<string, unknown>>;
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ role: 'user', content: `${SUPIR_INSTRUCTION} ${REALISTIC_PHOTO}` });
      expect(messages[0]!['images']).toHaveLength(1);
      expect(req!.body).toMatchObject({ model: 'llava:7b', stream, options: { temperature: 0.2, top_p: 0.7, num_predict: 512, seed: 0 } });
      expect(req!.image).toMatchObject({ format: 'png', width: 683, height: 512 });
    });
  }
});

describe('OpenAI-compatible /v1/chat/completions', () => {
  for (const stream of [false, true]) {
    it(`sends the image as a data URL and the sampling settings (stream ${stream})`, async () => {
      server.handle = () => ({ text: ANSWER });
      const out = await caption(photo, { api: 'openai /v1/chat/completions', stream, seed: 9, max_tokens: 300 });
      expect(out.caption).toBe(CLEAN);
      const [req] = server.requests;
      expect(req!.path).toBe('/v1/chat/completions');
      const { messages, ...rest } = req!.body;
      expect(rest).toEqual({ model: 'llava:13b', temperature: 0.2, top_p: 0.7, max_tokens: 300, seed: 9, stream });
      const content = (messages as Array<{ role: string; content: Array<Record<string, unknown>> }>)[0]!;
      expect(content.role).toBe('user');
      expect(content.content.map((p) => p['type'])).toEqual(['image_url', 'text']);
      expect(content.content[1]).toEqual({ type: 'text', text: SUPIR_INSTRUCTION });
      expect((content.content[0]!['image_url'] as { url: string }).url).toMatch(/^data:image\/png;base64,iVBORw0KGgo/);
      expect(req!.image).toMatchObject({ format: 'png', width: 683, height: 512 });
    });
  }

  it('accepts a base URL written with /v1, with a path prefix, or as the endpoint itself', () => {
    const api = 'openai /v1/chat/completions' as const;
    expect(endpointUrl(api, 'http://127.0.0.1:8080').href).toBe('http://127.0.0.1:8080/v1/chat/completions');
    expect(endpointUrl(api, 'http://127.0.0.1:1234/v1/').href).toBe('http://127.0.0.1:1234/v1/chat/completions');
    expect(endpointUrl(api, 'https://gpu.lan/vllm/v1/chat/completions').href).toBe('https://gpu.lan/vllm/v1/chat/completions');
    expect(endpointUrl('ollama /api/chat', 'http://host:11434/ollama').href).toBe('http://host:11434/ollama/api/chat');
  });
});

describe('batches and tiles', () => {
  it('gives one caption per image of a batch, in batch order', async () => {
    const batch = imageFrom(3, 3, 32, 32, (n) => n / 2);
    // The answer names the grey level the server saw; later images answer sooner.
    server.handle = (r) => ({ text: `grey ${Math.round(r.image.mean[0]!)}`, delayMs: 150 - r.n * 60 });
    const out = await caption(batch);
    expect(JSON.parse(out.captions)).toEqual(['grey 0', 'grey 128', 'grey 255']);
    expect(out.caption).toBe('grey 0');
  });

  it('sends grey and RGBA images as RGB PNGs with the short side at 512, shrinking large ones', async () => {
    const grey = imageFrom(1, 1, 40, 30, () => 0.25);
    const rgba = imageFrom(1, 4, 1024, 2048, (_n, c) => (c === 3 ? 0.5 : 0.75));
    await caption(grey);
    await caption(rgba);
    expect(server.requests.map((r) => r.image)).toEqual([
      { format: 'png', width: 512, height: 683, channels: 3, mean: [64, 64, 64] },
      { format: 'png', width: 1024, height: 512, channels: 3, mean: [191, 191, 191] },
    ]);
  });

  it("captions SUPIR Sample's tiles in tile order with at most CAPTION_CONCURRENCY requests at once", async () => {
    // 256x192 px = 32x24 latent cells of 8 px; tile 16, stride 8 → origins x 0, 8, 16 and y 0, 8.
    const ramp = imageFrom(1, 3, 192, 256, (_n, c, y, x) => (c === 0 ? x / 255 : c === 1 ? y / 255 : 0));
    const windows = latentWindows(24, 32, 16, 8);
    expect(windows).toHaveLength(6);
    const rects = tileRects(ramp, undefined, 16, 8);
    expect(rects).toEqual(windows.map((w) => ({ x: w.x * 8, y: w.y * 8, w: 128, h: 128 })));
    // Each tile's mean red/green names its origin; the server answers later tiles first.
    const origin = (mean: number[]): string => `tile at ${Math.round((mean[0]! - 63.5) / 64) * 64},${Math.round((mean[1]! - 63.5) / 64) * 64}`;
    server.handle = (r) => ({ text: origin(r.image.mean), delayMs: 40 + 200 / (r.n + 1) });
    const ctx = fakeContext(env);
    const out = await caption(ramp, { tile_size: 16, tile_stride: 8 }, ctx);
    expect(JSON.parse(out.captions)).toEqual(rects.map((r) => `tile at ${r.x},${r.y}`));
    expect(server.requests).toHaveLength(6);
    // Each tile of 128x128 px is sent at 512x512.
    for (const r of server.requests) expect(r.image).toMatchObject({ width: 512, height: 512 });
    expect(server.maxInFlight).toBe(CAPTION_CONCURRENCY);
    // Answers finished out of order (the second request before the first), the output is in tile order.
    expect(server.finished.indexOf(1)).toBeLessThan(server.finished.indexOf(0));
    expect(ctx.progressCalls.at(-1)).toEqual([6 * 512, 6 * 512]);
  });

  it("follows the linked latent's cell size and refuses a latent of another image", async () => {
    const image = imageFrom(1, 3, 48, 64, () => 0.5);
    const latent: LatentTensor = { data: new Float32Array(4 * 24 * 32), n: 1, c: 4, h: 24, w: 32, scaled: true, downscale: 2 };
    // The tiny pack's 2 px cells: tile 16 cells = 32 px.
    expect(tileRects(image, latent, 16, 8)).toEqual(latentWindows(24, 32, 16, 8).map((w) => ({ x: w.x * 2, y: w.y * 2, w: 32, h: 32 })));
    const other = { ...latent, h: 20 };
    const err = await failure(caption(image, { tile_size: 16, tile_stride: 8 }, undefined, other));
    expect(err.message).toMatch(/input 'latent': is 32x20 cells of 2 px \(64x40 px\) but the image is 64x48/);
    expect(server.requests).toHaveLength(0);
  });

  it('refuses tile settings SUPIR Sample would refuse, and batches in tile mode', async () => {
    expect(CaptionVLM.validate!(widgets({ tile_size: 10, tile_stride: 8 }) as never, env)).toEqual([['tile_size', expect.stringMatching(/multiple of 4/)]]);
    expect(CaptionVLM.validate!(widgets({ tile_size: 16, tile_stride: 24 }) as never, env)).toEqual([['tile_stride', expect.stringMatching(/larger than the tile/)]]);
    await expect(caption(photo, { tile_size: 10, tile_stride: 8 })).rejects.toThrow(/input 'tile_size': must be a multiple of 4/);
    await expect(caption(imageFrom(2, 3, 64, 64, () => 0), { tile_size: 4, tile_stride: 4 })).rejects.toThrow(/input 'image': per-tile captions are made for one image, got a batch of 2/);
    await expect(caption(imageFrom(1, 3, 60, 64, () => 0), { tile_size: 4, tile_stride: 4 })).rejects.toThrow(/input 'image': is 64x60; .*multiples of 8/);
  });

  it('stops the other requests at the first failure and reports it', async () => {
    let started = 0;
    const seen: Array<AbortSignal> = [];
    const err = await failure(
      mapInOrder([0, 1, 2, 3, 4], 2, new AbortController().signal, async (i, _j, signal) => {
        started++;
        seen.push(signal);
        if (i === 0) throw new Error('first fails');
        await new Promise((r) => setTimeout(r, 50));
        return i;
      }),
    );
    expect(err.message).toBe('first fails');
    // Item 1 was already running (and saw the abort); nothing new started after the failure.
    expect(started).toBe(2);
    expect(seen[1]!.aborted).toBe(true);
  });
});

describe('failures', () => {
  const OLLAMA_FIX = /Start Ollama with LLaVA \(`ollama serve`, then `ollama pull llava:13b`\).*disconnect the Caption node .*Text node/;

  it('an unreachable server: names the URL, ECONNREFUSED and how to start Ollama', async () => {
    const port = await closedPort();
    const err = await failure(caption(photo, { base_url: `http://127.0.0.1:${port}` }));
    expect(err.code).toBe('NODE_FAILED');
    expect(err.message).toContain(`caption server at http://127.0.0.1:${port}/api/generate: cannot connect: connection refused (ECONNREFUSED)`);
    expect(err.message).toMatch(OLLAMA_FIX);
    const openai = await failure(caption(photo, { base_url: `http://127.0.0.1:${port}`, api: 'openai /v1/chat/completions' }));
    expect(openai.message).toMatch(/\/v1\/chat\/completions: cannot connect.*ECONNREFUSED.*llama-server.*vLLM.*LM Studio/);
    // A port fetch itself refuses (browsers' blocked list) is named as such, not as a dead server.
    const blocked = await failure(caption(photo, { base_url: 'http://127.0.0.1:6000' }));
    expect(blocked.message).toMatch(/port 6000 is one fetch refuses to connect to/);
  });

  it('a timeout, before the answer starts and in the middle of a stream', async () => {
    server.handle = () => ({ text: 'late', delayMs: 3000 });
    let t0 = performance.now();
    const err = await failure(caption(photo, { timeout: 1, stream: false }));
    expect(performance.now() - t0).toBeLessThan(2500);
    expect(err.message).toMatch(/caption server at http:\/\/127\.0\.0\.1:\d+\/api\/generate: no complete answer within the timeout of 1 s/);
    server.handle = () => ({ text: 'the first word then nothing', stall: true });
    t0 = performance.now();
    const stalled = await failure(caption(photo, { timeout: 1, stream: true }));
    expect(performance.now() - t0).toBeLessThan(2500);
    expect(stalled.message).toMatch(/no complete answer within the timeout of 1 s/);
  });

  it('HTTP 500 with the body excerpt; 404 for a missing model says to pull it', async () => {
    server.handle = () => ({ status: 500, raw: JSON.stringify({ error: 'llama runner process has terminated: signal: killed' }) });
    const err = await failure(caption(photo));
    expect(err.message).toMatch(/answered HTTP 500 Internal Server Error: llama runner process has terminated: signal: killed\. See the server's log/);
    // An error page of any size is quoted, not refused as an oversized answer.
    server.handle = () => ({ status: 500, raw: '<html>' + 'x'.repeat(3 * MAX_RESPONSE_BYTES) + '</html>', contentType: 'text/html' });
    const html = await failure(caption(photo));
    expect(html.message).toMatch(/HTTP 500 Internal Server Error: <html>x+…/);
    expect(html.message.length).toBeLessThan(1000);
    server.handle = () => ({ status: 404, raw: JSON.stringify({ error: 'model "llava:13b" not found, try pulling it first' }) });
    const missing = await failure(caption(photo));
    expect(missing.message).toMatch(/HTTP 404 Not Found: model "llava:13b" not found, try pulling it first\. Download the model with `ollama pull llava:13b`/);
    server.handle = () => ({ status: 500, raw: JSON.stringify({ error: { message: 'CUDA out of memory', type: 'server_error' } }) });
    const openai = await failure(caption(photo, { api: 'openai /v1/chat/completions' }));
    expect(openai.message).toMatch(/HTTP 500 Internal Server Error: CUDA out of memory/);
  });

  it('malformed JSON, a wrong shape, an error line in a stream and a cut stream', async () => {
    server.handle = () => ({ raw: '{"response": "a cat", ', contentType: 'application/json' });
    expect((await failure(caption(photo, { stream: false }))).message).toMatch(/malformed JSON in the answer \(.*\): \{"response": "a cat",/);
    server.handle = () => ({ raw: '{"model":"llava:13b","response":"a"}\n{oops\n', contentType: 'application/x-ndjson' });
    expect((await failure(caption(photo, { stream: true }))).message).toMatch(/malformed JSON in the answer .*\{oops/);
    server.handle = () => ({ raw: JSON.stringify({ text: 'a cat' }), contentType: 'application/json' });
    expect((await failure(caption(photo, { stream: false }))).message).toMatch(/malformed answer: expected a JSON object with a "response" text \(Ollama \/api\/generate\), got \{"text":"a cat"\}/);
    server.handle = () => ({ raw: 'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"error":{"message":"context length exceeded"}}\n\n', contentType: 'text/event-stream' });
    expect((await failure(caption(photo, { api: 'openai /v1/chat/completions' }))).message).toMatch(/reported an error: context length exceeded/);
    server.handle = () => ({ text: 'a cat sitting', truncate: true });
    expect((await failure(caption(photo, { stream: true }))).message).toMatch(/streamed answer ended before it was complete \(no "done": true line\)/);
    server.handle = () => ({ text: 'a cat sitting', truncate: true });
    expect((await failure(caption(photo, { stream: true, api: 'openai /v1/chat/completions' }))).message).toMatch(/no \[DONE\] or finish_reason/);
  });

  it(`an answer over ${MAX_RESPONSE_BYTES} bytes is cut off with an error, streamed or whole`, async () => {
    const line = JSON.stringify({ model: 'llava:13b', response: 'word '.repeat(200), done: false }) + '\n';
    server.handle = () => ({ raw: line.repeat(Math.ceil((2 * MAX_RESPONSE_BYTES) / line.length)), contentType: 'application/x-ndjson' });
    expect((await failure(caption(photo, { stream: true }))).message).toMatch(/the answer is larger than 1 MiB/);
    server.handle = () => ({ raw: JSON.stringify({ response: 'x'.repeat(MAX_RESPONSE_BYTES), done: true }), contentType: 'application/json' });
    expect((await failure(caption(photo, { stream: false }))).message).toMatch(/the answer is larger than 1 MiB/);
  });

  it('only http(s) URLs, without credentials; checked before any request', async () => {
    for (const [url, why] of [
      ['file:///etc/passwd', /only http:\/\/ and https:\/\/ addresses are allowed, not file:/],
      ['data:text/plain,hello', /not data:/],
      ['ftp://127.0.0.1/', /not ftp:/],
      ['javascript:alert(1)', /not javascript:/],
      ['http://user:secret@127.0.0.1:11434', /must not contain a user name or password/],
      ['localhost:11434', /not localhost:/],
      ['not a url', /is not a URL/],
    ] as const) {
      expect(CaptionVLM.validate!(widgets({ base_url: url }) as never, env), url).toEqual([['base_url', expect.stringMatching(why)]]);
      await expect(caption(photo, { base_url: url }), url).rejects.toThrow(/input 'base_url'/);
    }
    expect(server.requests).toHaveLength(0);
    expect(CaptionVLM.validate!(widgets() as never, env)).toEqual([]);
    // A base_url fed by a link is not among the literals validation sees; it is checked at run time.
    const { base_url: _linked, ...literals } = widgets();
    expect(CaptionVLM.validate!(literals as never, env)).toEqual([]);
  });

  it('never follows a redirect, even to a server that would answer', async () => {
    const other = await startFakeServer(() => ({ text: 'stolen' }));
    try {
      server.handle = () => ({ status: 307, raw: '', headers: { location: `${other.url}/api/generate` } });
      const err = await failure(caption(photo));
      expect(err.message).toMatch(/answered with a redirect \(HTTP 307 to http:\/\/127\.0\.0\.1:\d+\/api\/generate\), which is not followed/);
      expect(other.requests).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('an interrupt stops a request in flight', async () => {
    server.handle = () => ({ text: 'slow', delayMs: 5000 });
    const ctx = fakeContext(env);
    setTimeout(() => ctx.abort(), 100);
    const t0 = performance.now();
    const err = await failure(caption(photo, {}, ctx));
    expect(err.code).toBe('INTERRUPTED');
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

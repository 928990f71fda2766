/**
 * `npm run load`: the server under load, on 127.0.0.1 only.
 *
 *   - a server in its own process (test/server/child-server.ts, with the test node packs), so the
 *     figures are the server's and not this script's;
 *   - 50 websocket clients in another process, each counting the `prompt_done` of every prompt;
 *   - a long node first (a convolution network run in the runtime's worker thread, several seconds),
 *     then 500 prompts of cheap nodes queued behind it while it runs, arriving at 100 a second;
 *   - API latency sampled during the long node: GET /api/queue, GET /api/history?max_items=5 and
 *     the POST /api/prompt calls themselves.
 *
 * Prints p50/p99/max per endpoint and exits non-zero if p99 >= 50 ms during the long node or if any
 * client misses any of the 500 results. Options: --clients N --prompts N --rate N (prompts sent per
 * second, default 100) --runs N (runs of the long node; by default enough to outlast the submissions).
 * Also printed: the same GET against the idle server first (the machine's own noise) and the
 * server's event-loop delay during the window. LOAD_DEBUG=1 lists calls over 200 ms.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { heavyConvModel } from '../test/runtime/models.ts';
import { spawnChildServer } from '../test/server/helpers.ts';
import { readAllHistory } from './read-history.ts';

const SELF = fileURLToPath(import.meta.url);
const P99_LIMIT_MS = 50;
/** With LOAD_DEBUG set: [start, ms] of calls over 200 ms, to see when stalls happen. */
const slow: Array<[number, number]> = [];

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    prompts: { type: 'string', default: '500' },
    runs: { type: 'string' },
    rate: { type: 'string', default: '100' },
    // Internal: this file run as the websocket client process.
    'ws-clients': { type: 'string' },
  },
});

if (values['ws-clients']) await clientProcess(values['ws-clients'], Number(values.clients));
else process.exitCode = await main();

async function main(): Promise<number> {
  const clients = Number(values.clients);
  const prompts = Number(values.prompts);
  const rate = Number(values.rate);
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-load-'));
  const dataRoot = path.join(parent, 'data');
  fs.mkdirSync(path.join(dataRoot, 'models'), { recursive: true });
  heavyConvModel(path.join(dataRoot, 'models'));
  const server = await spawnChildServer(dataRoot, ['fail', String(prompts + 10)]);
  const url = server.url;
  if (!/^http:\/\/127\.0\.0\.1:/.test(url)) throw new Error(`refusing to load anything but 127.0.0.1, got ${url}`);
  console.log(`server ${url} (pid ${server.proc.pid}), ${os.cpus().length} CPUs, ${clients} websocket clients, ${prompts} prompts`);

  const wsProc = spawn(process.execPath, ['--import', 'tsx', SELF, '--ws-clients', url, '--clients', String(clients)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const wsOut = lines(wsProc.stdout!);
  await wsOut.next(); // "ready": every client is connected
  try {
    // Warm the model once so the measured window is the run itself, not the session start, and
    // time a run: the long node is made to outlast the submissions by about two seconds.
    await waitDone(url, (await post(url, longPrompt(1))).id);
    const tWarm = performance.now();
    await waitDone(url, (await post(url, longPrompt(5))).id);
    const perRun = (performance.now() - tWarm) / 5;
    const runs = values.runs ? Number(values.runs) : Math.ceil(((prompts / rate) * 1000 + 2000) / perRun);

    // The machine's own noise: the same GETs against the idle server, before any load.
    const idle: number[] = [];
    const idleUntil = performance.now() + 2000;
    await poll(() => timed(idle, () => fetch(`${url}/api/queue`)), () => performance.now() < idleUntil);

    const long = await post(url, longPrompt(runs));
    await waitRunning(url, long.id);
    server.proc.kill('SIGUSR1'); // the server starts measuring its event loop's delay
    const samples: Record<string, number[]> = { 'GET /api/queue': [], 'GET /api/history?max_items=5': [], 'POST /api/prompt': [] };
    let longRunning = true;
    const pollers = [
      poll(() => timed(samples['GET /api/queue']!, () => fetch(`${url}/api/queue`)), () => longRunning),
      poll(() => timed(samples['GET /api/history?max_items=5']!, () => fetch(`${url}/api/history?max_items=5`)), () => longRunning),
    ];
    const ids: string[] = [];
    const t0 = performance.now();
    // Open loop: prompts arrive at a fixed rate whether or not earlier answers are back, as
    // independent clients would send them; a slow answer then shows as latency, not as fewer requests.
    await Promise.all(
      Array.from({ length: prompts }, async (_, i) => {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        ids[i] = (await timed(samples['POST /api/prompt']!, () => post(url, cheapPrompt(i)))).id;
      }),
    );
    const submitMs = performance.now() - t0;
    const stillRunning = (await (await fetch(`${url}/api/queue`)).json()) as { running: { id: string } | null };
    const submittedDuringLong = stillRunning.running?.id === long.id;
    await waitDone(url, long.id);
    const longDoneAt = Date.now();
    longRunning = false;
    server.proc.kill('SIGUSR2');
    await Promise.all(pollers);
    const loop = await waitFor(() => server.lines.find((l) => l.includes('eventLoopDelay')));
    const loopDelay = (JSON.parse(loop) as { eventLoopDelay: { p50: number; p99: number; max: number } }).eventLoopDelay;

    wsProc.stdin!.write(`${JSON.stringify(ids)}\n`);
    const report = JSON.parse((await wsOut.next()).value!) as { perClient: number[]; lastAt: number };
    // Every page of it: GET /api/history alone sends the newest 200 entries only.
    const history = await readAllHistory(url);
    const ok = new Set(history.filter((h) => h.status === 'success').map((h) => h.id));
    const missingInHistory = ids.filter((id) => !ok.has(id)).length;

    const base = stats(idle);
    console.log(`\nbaseline, idle server: GET /api/queue n=${idle.length}  p50 ${base.p50.toFixed(1)} ms  p99 ${base.p99.toFixed(1)} ms  max ${base.max.toFixed(1)} ms (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} CPUs)`);
    console.log(`\nAPI latency while the long node ran (${runs} runs of a 10-layer conv net on 256x256 in the worker thread, ${perRun.toFixed(0)} ms each; prompts sent at ${rate}/s):`);
    let worstP99 = 0;
    for (const [name, xs] of Object.entries(samples)) {
      const s = stats(xs);
      worstP99 = Math.max(worstP99, s.p99);
      console.log(`  ${name.padEnd(30)} n=${String(xs.length).padStart(5)}  p50 ${s.p50.toFixed(1).padStart(5)} ms  p99 ${s.p99.toFixed(1).padStart(5)} ms  max ${s.max.toFixed(1).padStart(6)} ms`);
    }
    console.log(`  server event-loop delay                       p50 ${loopDelay.p50.toFixed(1).padStart(5)} ms  p99 ${loopDelay.p99.toFixed(1).padStart(5)} ms  max ${loopDelay.max.toFixed(1).padStart(6)} ms`);
    console.log(`  ${prompts} prompts submitted in ${(submitMs / 1000).toFixed(2)} s${submittedDuringLong ? ', all while the long node was still running' : ' (the long node ended during submission)'}`);
    const complete = report.perClient.filter((n) => n === prompts).length;
    console.log(`\nresults: ${complete}/${clients} clients received all ${prompts} prompt_done events (min ${Math.min(...report.perClient)}), ` + `the last ${((report.lastAt - longDoneAt) / 1000).toFixed(2)} s after the long node ended; history: ${prompts - missingInHistory}/${prompts} successful`);
    if (process.env.LOAD_DEBUG) console.log('slow', JSON.stringify(slow.slice(0, 20)), 'window start', Math.round(t0));
    const pass = worstP99 < P99_LIMIT_MS && complete === clients && missingInHistory === 0;
    console.log(pass ? `PASS (p99 ${worstP99.toFixed(1)} ms < ${P99_LIMIT_MS} ms, nothing lost)` : `FAIL (worst p99 ${worstP99.toFixed(1)} ms, ${clients - complete} clients incomplete, ${missingInHistory} missing from history)`);
    return pass ? 0 : 1;
  } finally {
    wsProc.kill();
    await server.kill('SIGTERM');
    fs.rmSync(parent, { recursive: true, force: true });
  }
}

/** The websocket side: N clients counting prompt_done per prompt; reports when told which ids to expect. */
async function clientProcess(url: string, count: number): Promise<void> {
  const done: Array<Set<string>> = [];
  let last = 0;
  const sockets = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const seen = new Set<string>();
      done[i] = seen;
      const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
      ws.on('message', (data, binary) => {
        if (binary) return;
        const m = JSON.parse(String(data)) as { type: string; prompt_id?: string };
        if (m.type === 'prompt_done' && m.prompt_id) {
          seen.add(m.prompt_id);
          last = Date.now(); // wall clock: compared with the other process's
        }
      });
      return new Promise<WebSocket>((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    }),
  );
  process.stdout.write('ready\n');
  const input = lines(process.stdin);
  const ids = JSON.parse((await input.next()).value!) as string[];
  // Results may still be on their way: wait until every client has every id, or 60 s.
  const deadline = Date.now() + 60_000;
  const counts = (): number[] => done.map((seen) => ids.filter((id) => seen.has(id)).length);
  while (counts().some((n) => n < ids.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(`${JSON.stringify({ perClient: counts(), lastAt: last })}\n`);
  for (const ws of sockets) ws.terminate();
  process.exit(0);
}

function longPrompt(runs: number): unknown {
  return { '1': { class_type: 'TestModelRun', inputs: { model: 'heavy.onnx', runs, size: 256, crash: false } } };
}

function cheapPrompt(i: number): unknown {
  return {
    '1': { class_type: 'TestConst', inputs: { value: i } },
    '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 1 } },
    '3': { class_type: 'TestOutput', inputs: { value: ['2', 0] } },
  };
}

async function post(url: string, prompt: unknown): Promise<{ id: string }> {
  const res = await fetch(`${url}/api/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, client_id: 'load' }) });
  const body = (await res.json()) as { prompt_id?: string };
  if (res.status !== 200 || !body.prompt_id) throw new Error(`POST /api/prompt: ${res.status} ${JSON.stringify(body)}`);
  return { id: body.prompt_id };
}

async function timed<T>(into: number[], call: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await call();
  if (out instanceof Response) await out.arrayBuffer();
  into.push(performance.now() - t0);
  if (process.env.LOAD_DEBUG && performance.now() - t0 > 200) slow.push([Math.round(t0), Math.round(performance.now() - t0)]);
  return out;
}

async function poll(call: () => Promise<unknown>, while_: () => boolean): Promise<void> {
  while (while_()) {
    await call();
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitRunning(url: string, id: string): Promise<void> {
  for (;;) {
    const q = (await (await fetch(`${url}/api/queue`)).json()) as { running: { id: string } | null };
    if (q.running?.id === id) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitDone(url: string, id: string): Promise<void> {
  for (;;) {
    const res = await fetch(`${url}/api/history/${id}`);
    if (res.status === 200) {
      const entry = (await res.json()) as { status: string; error: unknown };
      if (entry.status !== 'success') throw new Error(`prompt ${id} ended ${entry.status}: ${JSON.stringify(entry.error)}`);
      return;
    }
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitFor<T>(get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const value = get();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the server did not report');
}

function stats(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? NaN };
}

/** Lines of a stream, one at a time. */
async function* lines(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  let buffer = '';
  for await (const chunk of stream) {
    buffer += String(chunk);
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      yield buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
    }
  }
}

/**
 * 2,000 mutated workflow and prompt bodies against a live server: every answer must be a 4xx or an
 * accepted prompt that then runs to a proper end (success, or a node error naming the node), never
 * a 5xx, an internal error or a crash of the process. Mutations are seeded, so a failure replays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogue } from '../../nodes/index.ts';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { testNodes } from '../support/test-nodes.ts';
import { buildWorkflow, startTestServer, type TestServer } from '../server/helpers.ts';

const SEED = 0x5eed_2026;
const BODIES = 2000;

/** mulberry32: small, fast, good enough to pick mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = [...catalogue.map((n) => n.id), ...testNodes.map((n) => n.id), 'NoSuchNode', '', '__proto__', 'constructor'];

/** Values that have broken parsers and validators before: types, edges, paths, prototype keys. */
const NASTY: unknown[] = [
  null, true, false, 0, -1, 1, 0.5, -0.0, 1e308, -1e308, 2 ** 53 + 1, 4294967297, '', ' ', '0', 'NaN', 'Infinity', '-1',
  '../../../etc/passwd', '/etc/passwd', 'C:\\Windows\\win.ini', '..\\..\\x.png', 'a\u0000b', '\ud800', '\u202e', '%2e%2e%2f',
  '__proto__', 'constructor', 'x'.repeat(5000), {}, [], [[]], [null], ['1', 0], ['999', 0], ['1', -1], ['1', 99], ['1', 0.5], [1, 0],
  ['1', '0'], { __proto__: { polluted: true } }, { constructor: { prototype: { polluted: true } } }, [['1', 0], ['2', 0]],
  { class_type: 'TestConst', inputs: {} }, Array.from({ length: 50 }, (_, i) => i),
];

type Json = unknown;

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Every container (object or array) in the tree, with the keys it holds. */
function containers(root: Json): Array<Record<string, unknown> | unknown[]> {
  const out: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (v: Json, depth: number): void => {
    if (typeof v !== 'object' || v === null || depth > 12) return;
    out.push(v as Record<string, unknown>);
    for (const child of Object.values(v)) walk(child, depth + 1);
  };
  walk(root, 0);
  return out;
}

function mutate(body: Json, rand: () => number): Json {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const doc = clone(body);
  const rounds = 1 + Math.floor(rand() * 4);
  for (let r = 0; r < rounds; r++) {
    const target = pick(containers(doc));
    const keys = Object.keys(target);
    const key = keys.length > 0 ? pick(keys) : '0';
    const t = target as Record<string, unknown>;
    switch (Math.floor(rand() * 9)) {
      case 0:
        if (Array.isArray(target)) target.splice(Number(key), 1);
        else delete t[key];
        break;
      case 1:
      case 2:
        t[key] = clone(pick(NASTY));
        break;
      case 3:
        // Another node type in the same place (class_type or a workflow node's type).
        for (const c of containers(doc)) {
          const o = c as Record<string, unknown>;
          if (typeof o.class_type === 'string' && rand() < 0.5) o.class_type = pick(TYPES);
          if (typeof o.type === 'string' && 'pos' in o && rand() < 0.5) o.type = pick(TYPES);
        }
        break;
      case 4:
        // A key renamed to something dangerous.
        if (!Array.isArray(target)) {
          const value = t[key];
          delete t[key];
          Object.defineProperty(t, pick(['__proto__', 'constructor', 'prototype', 'toString', `${key}\u0000`, key.toUpperCase(), '']), { value, enumerable: true, writable: true, configurable: true });
        }
        break;
      case 5:
        // Numbers nudged past their ranges, or turned into strings.
        if (typeof t[key] === 'number') t[key] = pick([(t[key] as number) * 1000, -(t[key] as number), String(t[key]), (t[key] as number) + 0.5]);
        else t[key] = pick([0, 16, 17, 100000]);
        break;
      case 6:
        // A subtree copied somewhere else (duplicate ids, self links, cycles by id).
        t[key] = clone(pick(containers(doc)));
        break;
      case 7:
        t[key] = [t[key]];
        break;
      default:
        // Links re-pointed to other nodes and slots, cycles included.
        for (const c of containers(doc)) {
          if (Array.isArray(c) && c.length === 2 && typeof c[0] === 'string' && typeof c[1] === 'number' && rand() < 0.3) {
            c[0] = pick(['1', '2', '3', '4', '0', '-1', 'x']);
            c[1] = pick([0, 1, 2, -1]);
          }
        }
    }
  }
  return doc;
}

/** Raw text damage: truncation, a flipped byte, injected bytes. Mostly not JSON any more. */
function damage(text: string, rand: () => number): string {
  const at = Math.floor(rand() * text.length);
  switch (Math.floor(rand() * 3)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + text.slice(at + 1);
    default:
      return text.slice(0, at) + pick(['{', ']', '"', '\\', '\u0000', ',,', 'null', '1e999999', '"\\ud800"'], rand) + text.slice(at);
  }
}

function pick<T>(xs: readonly T[], rand: () => number): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

const PROMPT = {
  '1': { class_type: 'LoadImage', inputs: { image: 'chelsea.png' } },
  '2': { class_type: 'ImageResize', inputs: { image: ['1', 0], mode: 'scale', scale: 0.25, width: 64, height: 64, method: 'lanczos' } },
  '3': { class_type: 'SaveImage', inputs: { image: ['2', 0], filename_prefix: 'fuzz/out' } },
};
const TEST_PROMPT = {
  '1': { class_type: 'TestConst', inputs: { value: 3 } },
  '2': { class_type: 'TestAdd', inputs: { a: ['1', 0], b: 4 } },
  '3': { class_type: 'TestText', inputs: { text: 'hello' } },
  '4': { class_type: 'TestOutput', inputs: { value: ['2', 1] } },
};
const WORKFLOW = buildWorkflow([
  { id: 1, type: 'LoadImage', widgets: { image: 'chelsea.png' } },
  { id: 2, type: 'ImageResize', widgets: { mode: 'scale', scale: 0.25, method: 'lanczos' }, inputs: { image: [1, 0, 'IMAGE'] } },
  { id: 3, type: 'SaveImage', widgets: { filename_prefix: 'fuzz/wf' }, inputs: { image: [2, 0, 'IMAGE'] } },
]);

describe('fuzzing POST /api/prompt and PUT /api/workflows', () => {
  let server: TestServer;
  beforeAll(async () => {
    // A small pixel limit keeps accepted runs cheap; the queue is large enough to take them all.
    server = await startTestServer({ maxPending: 5000, limits: { maxPixels: 2_000_000 } }, testNodes);
  });
  afterAll(() => server.close());

  it(`answers ${BODIES} mutated bodies with 4xx or a valid run, never a 5xx`, { timeout: 120_000 }, async () => {
    const rand = rng(SEED);
    const statuses = new Map<number, number>();
    const accepted: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < BODIES; i++) {
      const base = pick([{ prompt: PROMPT }, { prompt: TEST_PROMPT }, { workflow: WORKFLOW }, { workflow: WORKFLOW, prompt: PROMPT }, WORKFLOW], rand);
      let text = JSON.stringify(mutate(base, rand));
      if (rand() < 0.1) text = damage(text, rand);
      const toWorkflows = base === WORKFLOW || rand() < 0.05;
      const res = await server.api(toWorkflows ? `/api/workflows/fuzz-${i % 7}` : '/api/prompt', {
        method: toWorkflows ? 'PUT' : 'POST',
        headers: { 'content-type': 'application/json' },
        body: text,
      });
      const answer = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      // The failing body is printed, so a regression can be replayed by hand.
      expect(res.status < 500, `body ${i} got ${res.status} ${answer}: ${text.slice(0, 2000)}`).toBe(true);
      expect([200, 400, 404, 413, 415, 429], `body ${i}: ${answer}`).toContain(res.status);
      const json = JSON.parse(answer) as { prompt_id?: string; error?: { code: string; message: string } };
      if (res.status === 200 && !toWorkflows) accepted.push(json.prompt_id!);
      if (res.status !== 200) expect(json.error?.message, `body ${i}`).toBeTruthy();
    }
    const requestMs = performance.now() - t0;

    // Every accepted prompt runs to a proper end: nothing is lost and nothing fails inside the engine.
    const deadline = Date.now() + 45_000;
    while (server.queue.list().running || server.queue.list().pending.length > 0) {
      if (Date.now() > deadline) throw new Error(`the fuzzed prompts did not finish: ${server.queue.list().pending.length} pending`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const id of accepted) {
      const entry = server.queue.historyEntry(id) as HistoryEntry;
      expect(entry, id).toBeDefined();
      expect(['success', 'error']).toContain(entry.status);
      if (entry.error) {
        expect(entry.error.code, JSON.stringify(entry.error)).not.toBe('INTERNAL');
        expect(entry.error.message, JSON.stringify(entry.prompt)).not.toMatch(/internal error/i);
        expect(entry.prompt[entry.error.node_id], entry.error.message).toBeDefined();
      }
    }
    // The mix is meaningful: plenty refused, and some accepted and run.
    expect(accepted.length).toBeGreaterThan(20);
    expect((statuses.get(400) ?? 0) + (statuses.get(413) ?? 0)).toBeGreaterThan(BODIES / 2);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await server.api('/api/queue')).status).toBe(200);
    console.log(`fuzz: ${BODIES} bodies in ${(requestMs / 1000).toFixed(1)} s, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${accepted.length} runs`);
  });
});

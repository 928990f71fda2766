/**
 * SUPIR over the real server on the tiny pack: live latent previews arrive as binary websocket
 * frames tagged with the step, and changing only the sampler's CFG re-runs sample → decode →
 * colour fix → resize → save while everything upstream is reused from the cache.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../server/engine/index.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { GOLDEN_DIR } from '../support/golden.ts';
import { EventRecorder, startTestServer, type TestServer } from './helpers.ts';

/** The shipped SUPIR restore as CI runs it: the tiny pack, a photo shrunk to 128x96, 8 steps. */
const WORKFLOW = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../workflows/fixtures/supir-restore-tiny.json'), 'utf8'));

/** A whole SUPIR run on the tiny pack takes seconds; a loaded 2-core machine can make it minutes. */
const MODEL_RUN_TIMEOUT = 300_000;

describe('SUPIR restoration through the server', () => {
  let server: TestServer;
  let ws: EventRecorder;

  beforeAll(async () => {
    server = await startTestServer();
    const tmp = fs.mkdtempSync(path.join(server.parent, 'pack-src-'));
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, tmp, { fitText: true })), out: path.join(server.dirs.folders.models, 'supir-tiny'), ...TINY_COMPILE_OPTIONS });
    ws = await EventRecorder.connect(server.url);
  }, 120_000);
  afterAll(async () => {
    ws?.close();
    await server?.close();
  });

  async function run(workflow: unknown): Promise<HistoryEntry> {
    const res = await server.postJson('/api/prompt', { workflow });
    expect(res.status, JSON.stringify(await res.clone().json())).toBe(200);
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    await ws.done(prompt_id);
    return (await (await server.api(`/api/history/${prompt_id}`)).json()) as HistoryEntry;
  }

  it('streams step-tagged latent previews of the sampler, at most one per step', async () => {
    const first = await run(WORKFLOW);
    expect(first.status).toBe('success');
    const steps = WORKFLOW.nodes.find((n: { id: number }) => n.id === 8).widgets_values.steps as number;
    const previews = ws.of(first.id).filter((m) => m.type === 'preview' && m.node_id === '8');
    expect(previews.length).toBeGreaterThanOrEqual(1);
    expect(previews.length).toBeLessThanOrEqual(steps);
    const stepsSeen = previews.map((p) => (p.type === 'preview' ? p.step : undefined));
    expect(stepsSeen.every((s) => typeof s === 'number' && s >= 0 && s < steps)).toBe(true);
    expect(stepsSeen.at(-1)).toBe(steps - 1);
    const progress = ws.of(first.id).filter((m) => m.type === 'progress' && m.node_id === '8');
    expect(progress.at(-1)).toMatchObject({ value: steps, max: steps });
  }, MODEL_RUN_TIMEOUT);

  it('re-runs only the sampler and what follows it when only the CFG changes', async () => {
    const changed = structuredClone(WORKFLOW);
    changed.nodes.find((n: { id: number }) => n.id === 8).widgets_values.cfg_scale = 6.0;
    const second = await run(changed);
    expect(second.status).toBe('success');
    expect([...second.executed].sort()).toEqual(['10', '11', '12', '8', '9']);
    expect([...second.cached].sort()).toEqual(['1', '2', '3', '4', '5', '6', '7']);
  }, MODEL_RUN_TIMEOUT);
});

/**
 * Caption (vision LLM) inside graphs run by the executor: the cache keeps a second run from
 * sending a request, and per-tile captions reach SUPIR Sample's per-tile conditioning through
 * SUPIR Text Encode on the tiny pack (text encoders narrowed to fit the tiny UNet, as in the
 * shipped-workflow tests), with a clear error when the tile settings disagree.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineNode } from '../../nodes/api/define.ts';
import type { Conditioning } from '../../nodes/api/sockets.ts';
import type { LatentTensor } from '../../nodes/api/tensor.ts';
import { int } from '../../nodes/api/widgets.ts';
import CaptionVLM from '../../nodes/caption/caption.ts';
import { catalogue } from '../../nodes/index.ts';
import { SUPIR_A_PROMPT } from '../../nodes/supir/lib/text-conditioning.ts';
import { latentWindows } from '../../nodes/supir/lib/sampler-tiles.ts';
import TextEncodeSDXL from '../../nodes/supir/text-encode.ts';
import type { ApiPrompt } from '../../server/engine/index.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { Harness } from '../support/engine-harness.ts';
import { fakeContext, runNode } from '../support/fake-context.ts';
import { GOLDEN_DIR } from '../support/golden.ts';
import { imageFrom } from '../support/images.ts';
import { startFakeServer, type FakeServer } from './fake-vlm-server.ts';

/** A deterministic image source: a ramp whose level comes from a widget. */
const Ramp = defineNode({
  id: 'TestRamp',
  displayName: 'Test Ramp',
  category: 'test',
  description: 'A 64x64 RGB ramp.',
  inputs: {},
  widgets: { level: int({ default: 1, min: 0, max: 4 }) },
  outputs: { image: 'IMAGE' },
  execute: ({ level }) => ({ image: imageFrom(1, 3, 64, 64, (_n, c, y, x) => (c === 0 ? x / 63 : c === 1 ? y / 63 : level / 4)) }),
});

/** Output nodes that record what reached them. */
const texts: string[] = [];
const TextSink = defineNode({
  id: 'TestTextSink',
  displayName: 'Test Text Sink',
  category: 'test',
  description: 'Records a text.',
  inputs: { text: { type: 'STRING' } },
  widgets: {},
  outputs: {},
  output: true,
  execute: ({ text }) => (texts.push(text), {}),
});
const latents: LatentTensor[] = [];
const LatentSink = defineNode({
  id: 'TestLatentSink',
  displayName: 'Test Latent Sink',
  category: 'test',
  description: 'Records a latent.',
  inputs: { latent: { type: 'LATENT' } },
  widgets: {},
  outputs: {},
  output: true,
  execute: ({ latent }) => (latents.push(latent), {}),
});

let server: FakeServer;
beforeAll(async () => {
  // The answer names the tile by its mean red/green, so that order and identity can be checked.
  server = await startFakeServer((r) => ({ text: `a tile of red ${Math.round(r.image.mean[0]!)} green ${Math.round(r.image.mean[1]!)}\n</s>` }));
});
afterAll(() => server.close());

const captionWidgets = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  ...Object.fromEntries(Object.entries(CaptionVLM.widgets).map(([k, spec]) => [k, spec.default])),
  base_url: server.url,
  ...over,
});

describe('Caption in the executor', () => {
  it('is cached: the same image and settings send no second request; a changed setting does', async () => {
    const h = new Harness(undefined, [...catalogue, Ramp, TextSink]);
    const prompt = (temperature: number): ApiPrompt => ({
      '1': { class_type: 'TestRamp', inputs: { level: 2 } },
      '2': { class_type: 'CaptionVLM', inputs: { image: ['1', 0], ...captionWidgets({ temperature }) } },
      // The caption drives a Text node's widget through a link, as it drives SUPIR Text Encode's.
      '3': { class_type: 'PrimitiveText', inputs: { value: ['2', 0] } },
      '4': { class_type: 'TestTextSink', inputs: { text: ['3', 0] } },
    });
    texts.length = 0;
    server.requests.length = 0;
    const first = await h.run(prompt(0.2));
    expect(first.status).toBe('success');
    expect(server.requests).toHaveLength(1);
    expect(texts).toEqual([expect.stringMatching(/^a tile of red \d+ green \d+$/)]);
    const again = await h.run(prompt(0.2));
    expect(again.status).toBe('success');
    expect(again.cached).toEqual(expect.arrayContaining(['1', '2', '3', '4']));
    expect(server.requests).toHaveLength(1);
    const changed = await h.run(prompt(0.3));
    expect(changed.executed).toContain('2');
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.body['options']).toMatchObject({ temperature: 0.3 });
  });

  it('a failed request is not cached: the next run asks again', async () => {
    const h = new Harness(undefined, [...catalogue, Ramp, TextSink]);
    const prompt: ApiPrompt = {
      '1': { class_type: 'TestRamp', inputs: { level: 3 } },
      '2': { class_type: 'CaptionVLM', inputs: { image: ['1', 0], ...captionWidgets() } },
      '3': { class_type: 'TestTextSink', inputs: { text: ['2', 0] } },
    };
    const handle = server.handle;
    server.requests.length = 0;
    server.handle = () => ({ status: 500, raw: '{"error":"busy"}' });
    const failed = await h.run(prompt);
    expect(failed.status).toBe('error');
    expect(failed.error).toMatchObject({ node_id: '2', code: 'NODE_FAILED' });
    expect(failed.error!.message).toMatch(/^Caption \(vision LLM\) \(#2\) failed: caption server at http:\/\/127\.0\.0\.1:\d+\/api\/generate: answered HTTP 500 .*busy/);
    server.handle = handle;
    const ok = await h.run(prompt);
    expect(ok.status).toBe('success');
    expect(server.requests).toHaveLength(2);
  });
});

describe('per-tile captions → SUPIR Text Encode → SUPIR Sample (tiny pack)', () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-caption-pack-'));
  let h: Harness;
  let runtime: StudioRuntime;

  beforeAll(async () => {
    h = new Harness(undefined, [...catalogue, Ramp, TextSink, LatentSink]);
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, scratch, { fitText: true })), out: path.join(h.env.dirs.folders.models, 'tiny'), ...TINY_COMPILE_OPTIONS });
    runtime = createRuntime({ provider: 'cpu', threads: 1 });
    h.env.runtime = runtime;
  }, 120_000);

  afterAll(async () => {
    await runtime?.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  /** Ramp → Stage-1 → Caption (tiles, latent linked) → Text Encode (tile_captions) → Sample (tiles). */
  const graph = (sampleTile: number, sampleStride: number): ApiPrompt => ({
    '1': { class_type: 'TestRamp', inputs: { level: 1 } },
    '2': { class_type: 'LoadSupirModel', inputs: { pack: 'tiny', provider: 'cpu' } },
    '3': { class_type: 'SupirStage1', inputs: { model: ['2', 0], image: ['1', 0], tile_size: 0 } },
    '4': { class_type: 'CaptionVLM', inputs: { image: ['3', 0], latent: ['3', 1], ...captionWidgets({ tile_size: 16, tile_stride: 8 }) } },
    '5': { class_type: 'TextEncodeSDXL', inputs: { model: ['2', 0], caption: ['4', 0], tile_captions: ['4', 1] } },
    '6': {
      class_type: 'SupirSample',
      inputs: { model: ['2', 0], positive: ['5', 0], negative: ['5', 1], control: ['3', 1], steps: 1, seed: 1, tile_size: sampleTile, tile_stride: sampleStride },
    },
    '7': { class_type: 'TestLatentSink', inputs: { latent: ['6', 0] } },
  });

  it('captions every sampler tile, encodes one prompt per tile and samples with them', async () => {
    server.requests.length = 0;
    latents.length = 0;
    const result = await h.run(graph(16, 8));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('success');
    const control = latents[0]!;
    // The tiny pack has 2 px latent cells: 64x64 px → 32x32 cells → 3x3 windows of 16 at stride 8.
    const windows = latentWindows(control.h, control.w, 16, 8);
    expect(windows).toHaveLength(9);
    expect(server.requests).toHaveLength(9);
    for (const r of server.requests) expect(r.image).toMatchObject({ width: 512, height: 512 });
  }, 120_000);

  it('Text Encode gives each tile the conditioning of its own caption + a_prompt', async () => {
    const model = (await runNode(catalogue.find((n) => n.id === 'LoadSupirModel')!, { pack: 'tiny', provider: 'cpu' }, fakeContext(h.env))).model;
    const base = { model, a_prompt: SUPIR_A_PROMPT, n_prompt: 'blurry', separator: 'none', long_prompts: false };
    const tileTexts = ['a red door', 'a green tree in the wind'];
    const out = await runNode(TextEncodeSDXL, { ...base, caption: 'a house', tile_captions: JSON.stringify(tileTexts) }, fakeContext(h.env));
    const pos = out.positive as Conditioning;
    expect(pos.perTile).toHaveLength(2);
    for (const [j, text] of tileTexts.entries()) {
      const alone = (await runNode(TextEncodeSDXL, { ...base, caption: text }, fakeContext(h.env))).positive as Conditioning;
      expect(pos.perTile![j]!.crossattn.shape).toEqual(alone.crossattn.shape);
      let worst = 0;
      alone.crossattn.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - pos.perTile![j]!.crossattn.data[i]!))));
      alone.vector.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - pos.perTile![j]!.vector.data[i]!))));
      expect(worst, `tile ${j}`).toBeLessThan(1e-5);
    }
    // The two tiles differ from each other: they are not the main prompt copied.
    expect(pos.perTile![0]!.crossattn.data).not.toEqual(pos.perTile![1]!.crossattn.data);
    // Without tile captions (or with an empty text) there is no per-tile conditioning.
    expect(((await runNode(TextEncodeSDXL, { ...base, caption: 'a house', tile_captions: '' }, fakeContext(h.env))).positive as Conditioning).perTile).toBeUndefined();
    await expect(runNode(TextEncodeSDXL, { ...base, caption: '', tile_captions: 'a red door' }, fakeContext(h.env))).rejects.toThrow(
      /input 'tile_captions': expects a JSON array of captions/,
    );
  }, 60_000);

  it('a sampler with other tile settings fails naming both counts; the captions stay cached', async () => {
    server.requests.length = 0;
    const result = await h.run(graph(16, 16));
    expect(result.status).toBe('error');
    expect(result.error).toMatchObject({ node_id: '6' });
    expect(result.error!.message).toMatch(/input 'positive': has 9 per-tile prompts; tile_size 16 \/ stride 16 gives 4 tiles \(per-tile captions must be made with this tile_size and tile_stride\)/);
    expect(result.cached).toEqual(expect.arrayContaining(['4', '5']));
    expect(server.requests).toHaveLength(0);
  }, 120_000);
});

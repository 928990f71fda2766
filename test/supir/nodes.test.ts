/**
 * The SUPIR nodes on a tiny pack converted from the golden weights, against the golden cases
 * (pipeline, vae, text_encoders, colorfix): Load SUPIR Model, SUPIR Text Encode, Stage-1, Encode,
 * Decode and Colour Fix. GOLDEN_REPORT=1 prints the measured max |error| per tensor.
 *
 * The pipeline case's c.crossattn and the pooled part of c.vector come from a stub text embedder
 * (random, seeded by crc32 of the prompt), which no CLIP weights reproduce: text is checked on
 * the text_encoders case (same tiny CLIP weights as the pack), and the size-embedding part of the
 * vector on the pipeline case.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { Conditioning, ModelHandle } from '../../nodes/api/sockets.ts';
import type { ImageTensor, LatentTensor } from '../../nodes/api/tensor.ts';
import ColourFix from '../../nodes/supir/colour-fix.ts';
import SupirDecode from '../../nodes/supir/decode.ts';
import SupirEncode from '../../nodes/supir/encode.ts';
import { waveletReconstruction, adaptiveInstanceNormalization } from '../../nodes/supir/lib/colorfix.ts';
import { packVae } from '../../nodes/supir/lib/pack-session.ts';
import { SUPIR_A_PROMPT, SUPIR_N_PROMPT } from '../../nodes/supir/lib/text-conditioning.ts';
import LoadSupirModel, { listPacks } from '../../nodes/supir/load-model.ts';
import SupirStage1 from '../../nodes/supir/stage1.ts';
import TextEncodeSDXL from '../../nodes/supir/text-encode.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { closeness } from '../support/close.ts';
import { GOLDEN_DIR, loadGolden, type GoldenCase } from '../support/golden.ts';

const CONVERT = 'npx supir-studio convert --supir SUPIR-v0Q.ckpt --sdxl sd_xl_base_1.0_0.9vae.safetensors --out';
const measured: Record<string, number> = {};
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-nodes-ckpt-'));
let env: NodeEnv;
let cleanup: () => void;
let runtime: StudioRuntime;
let model: ModelHandle;
let pipeline: GoldenCase;
let vae: GoldenCase;

const ctx = () => fakeContext(env);

/** A golden [-1, 1] NCHW tensor as an IMAGE (0..1). */
function toImage(g: GoldenCase, name: string): ImageTensor {
  const t = g.tensor(name);
  const [n, c, h, w] = t.dims as [number, number, number, number];
  return { n, c, h, w, data: t.data.map((v) => (v + 1) / 2) };
}

function signed(image: ImageTensor): Float32Array {
  return image.data.map((v) => v * 2 - 1);
}

function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = atol): void {
  const c = closeness(got, want, atol, rtol);
  measured[label] = c.maxAbs;
  expect(c.ok, `${label}: max |err| ${c.maxAbs}`).toBe(true);
}

beforeAll(async () => {
  ({ env, cleanup } = tempEnv());
  const files = await writeTinyCheckpoints(GOLDEN_DIR, scratch);
  await convertToPack({ ...files, out: path.join(env.dirs.folders.models, 'tiny'), ...TINY_COMPILE_OPTIONS });
  runtime = createRuntime({ provider: 'cpu', threads: 2 });
  env.runtime = runtime;
  [pipeline, vae] = await Promise.all([loadGolden('pipeline'), loadGolden('vae')]);
  model = (await runNode(LoadSupirModel, { pack: 'tiny', provider: 'cpu' }, ctx())).model as ModelHandle;
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  cleanup?.();
  fs.rmSync(scratch, { recursive: true, force: true });
  if (process.env.GOLDEN_REPORT) process.stderr.write(`SUPIR nodes max |err|: ${JSON.stringify(measured, null, 1)}\n`);
});

describe('Load SUPIR Model', () => {
  it('lists the pack folders that exist (the default name only when there is none) and returns a handle keyed by the manifest hash', async () => {
    expect(listPacks(env)).toEqual(['tiny']);
    const empty = tempEnv();
    expect(listPacks(empty.env)).toEqual(['SUPIR-v0Q']);
    empty.cleanup();
    const dir = fs.realpathSync(path.join(env.dirs.folders.models, 'tiny'));
    const hash = createHash('sha256').update(fs.readFileSync(path.join(dir, 'manifest.json'))).digest('hex');
    expect(model).toEqual({ kind: 'supir', id: dir, hash, name: 'tiny', provider: 'cpu' });
    expect(await LoadSupirModel.fingerprint!({ pack: 'tiny', provider: 'cpu' }, env)).toBe(hash);
  });

  it('tells how to make a missing or incomplete pack', async () => {
    const models = env.dirs.folders.models;
    await expect(runNode(LoadSupirModel, { pack: 'SUPIR-v0Q', provider: 'auto' }, ctx())).rejects.toThrow(`${CONVERT} ${path.join(models, 'SUPIR-v0Q')}`);
    fs.mkdirSync(path.join(models, 'half'));
    fs.copyFileSync(path.join(models, 'tiny', 'manifest.json'), path.join(models, 'half', 'manifest.json'));
    expect(listPacks(env)).toContain('half');
    const err = await runNode(LoadSupirModel, { pack: 'half', provider: 'auto' }, ctx()).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/input 'pack': .*missing its file .*\.onnx/);
    expect((err as Error).message).toContain(`${CONVERT} ${path.join(models, 'half')}`);
  });

  it('SUPIR nodes refuse a model that is not a SUPIR pack', async () => {
    const upscaler = { kind: 'upscale', id: '/nowhere.onnx', hash: 'x' };
    await expect(runNode(SupirDecode, { model: upscaler, latent: {}, clamp: false, tile_size: 0 }, ctx())).rejects.toThrow(/input 'model': expects a SUPIR model pack/);
  });
});

describe('SUPIR Text Encode', () => {
  let text: GoldenCase;
  const row = (name: string, i: number, width: number): Float32Array => text.tensor(name).data.subarray(i * width, (i + 1) * width);
  const index = (name: string): number => (text.json['prompts'] as Array<{ name: string }>).findIndex((p) => p.name === name);
  beforeAll(async () => {
    text = await loadGolden('text_encoders');
  });

  it('reproduces the official conditioner: caption + a_prompt (no separator) and n_prompt', async () => {
    const out = await runNode(TextEncodeSDXL, { model, caption: 'a photo of a cat', a_prompt: SUPIR_A_PROMPT, n_prompt: SUPIR_N_PROMPT, separator: 'none', long_prompts: false }, ctx());
    const [pos, neg] = [out.positive, out.negative] as [Conditioning, Conditioning];
    expect(pos.crossattn.shape).toEqual([1, 77, 128]);
    expect(pos.vector.shape).toEqual([1, 32 + 6 * 16]);
    for (const [label, cond, name] of [['positive', pos, 'caption_plus_a_prompt'], ['negative', neg, 'n_prompt']] as const) {
      expectClose(`text ${label} crossattn`, cond.crossattn.data, row('crossattn', index(name), 77 * 128), 1e-4);
      expectClose(`text ${label} pooled`, cond.vector.data.subarray(0, 32), row('bigg_pooled', index(name), 32), 1e-4);
    }
    // The size embeddings (outdim 16 for this pack's 128-wide vector) as the pipeline case has them.
    expectClose('pipeline c.vector sizes', pos.vector.data.subarray(32), pipeline.tensor('c.vector').data.subarray(32), 5e-4, 0);
    expectClose('pipeline uc.vector sizes', neg.vector.data.subarray(32), pipeline.tensor('uc.vector').data.subarray(32), 5e-4, 0);
  });

  it('cuts long prompts at 75 tokens as the official tokenizers do, and warns', async () => {
    const prompts = text.json['prompts'] as Array<{ name: string; text: string }>;
    const long = prompts[index('long_120')]!.text;
    const c = ctx();
    const out = await runNode(TextEncodeSDXL, { model, caption: '', a_prompt: long, n_prompt: prompts[index('boundary_76')]!.text, separator: 'none', long_prompts: false }, c);
    expectClose('text long_120 crossattn', (out.positive as Conditioning).crossattn.data, row('crossattn', index('long_120'), 77 * 128), 1e-4);
    expectClose('text boundary_76 crossattn', (out.negative as Conditioning).crossattn.data, row('crossattn', index('boundary_76'), 77 * 128), 1e-4);
    expect(c.warnings).toHaveLength(2);
    expect(c.warnings[0]).toMatch(/positive prompt .* longer than 75 tokens and was cut; turn on long_prompts/);
  });

  it('with long_prompts encodes every token in 75-token chunks, padding the shorter text', async () => {
    const prompts = text.json['prompts'] as Array<{ name: string; text: string }>;
    const long = prompts[index('long_120')]!.text;
    const c = ctx();
    const out = await runNode(TextEncodeSDXL, { model, caption: '', a_prompt: long, n_prompt: 'blurry', separator: 'none', long_prompts: true }, c);
    const [pos, neg] = [out.positive, out.negative] as [Conditioning, Conditioning];
    expect(c.warnings).toEqual([]);
    expect(pos.crossattn.shape).toEqual([1, 154, 128]);
    expect(neg.crossattn.shape).toEqual([1, 154, 128]);
    // The first chunk is exactly the cut prompt: start, its first 75 tokens, end.
    expectClose('long first chunk', pos.crossattn.data.subarray(0, 77 * 128), row('crossattn', index('long_120'), 77 * 128), 1e-4);
    expectClose('long pooled (first chunk)', pos.vector.data.subarray(0, 32), row('bigg_pooled', index('long_120'), 32), 1e-4);
  });
});

describe('SUPIR Stage-1, Encode, Decode', () => {
  it('Stage-1 gives the pipeline case\'s _z and x_stage1 (and the vae case\'s)', async () => {
    for (const [g, image, zName, xName] of [[pipeline, 'image', '_z', 'x_stage1'], [vae, 'image', 'z_denoise_mode_scaled', 'batchify_denoise']] as const) {
      const out = await runNode(SupirStage1, { model, image: toImage(g, image), tile_size: 0 }, ctx());
      const control = out.control as LatentTensor;
      expect([control.n, control.c, control.h, control.w, control.scaled, control.downscale]).toEqual([1, 4, 32, 32, true, 2]);
      expectClose(`${g.name} ${zName}`, control.data, g.tensor(zName).data, 1e-4);
      expectClose(`${g.name} ${xName}`, signed(out.image as ImageTensor), g.tensor(xName).data, 1e-4);
    }
  });

  it('Encode samples the posterior from its seed; with the recorded draw it gives z_stage1', async () => {
    const image = toImage(pipeline, 'x_stage1');
    const run = async (seed: number) => (await runNode(SupirEncode, { model, image, seed, tile_size: 0 }, ctx())).latent as LatentTensor;
    const [a, b, c] = [await run(7), await run(7), await run(8)];
    expect([a.n, a.c, a.h, a.w, a.scaled, a.downscale]).toEqual([1, 4, 32, 32, true, 2]);
    expect(a.data).toEqual(b.data);
    expect(a.data).not.toEqual(c.data);
    const x = { data: pipeline.tensor('x_stage1').data, dims: [1, 3, 64, 64] };
    const supirVae = packVae(env, model);
    // The node's noise is ctx.rng(seed)'s normal draw: with that draw the library gives its latent...
    const mine = await supirVae.encode(x, ctx().rng(7).fillNormal(new Float32Array(a.data.length)));
    expectClose('encode node vs library', a.data, mine.data, 1e-5);
    // ...and with torch's recorded draw, the official z_stage1 (x_center).
    const official = await supirVae.encode(x, pipeline.tensor('noise_draws.0').data);
    expectClose('pipeline z_stage1', official.data, pipeline.tensor('z_stage1').data, 1e-4);
  });

  it('Decode gives decode_first_stage (unclamped by default, clamped on request)', async () => {
    const z = vae.tensor('z_in');
    const latent: LatentTensor = { data: z.data, n: 1, c: 4, h: 32, w: 32, scaled: true, downscale: 2 };
    const raw = (await runNode(SupirDecode, { model, latent, clamp: false, tile_size: 0 }, ctx())).image as ImageTensor;
    expect([raw.n, raw.c, raw.h, raw.w]).toEqual([1, 3, 64, 64]);
    expectClose('vae decoded_from_z_in', signed(raw), vae.tensor('decoded_from_z_in').data, 1e-4);
    const clamped = (await runNode(SupirDecode, { model, latent, clamp: true, tile_size: 0 }, ctx())).image as ImageTensor;
    expect(Math.min(...clamped.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...clamped.data)).toBeLessThanOrEqual(1);
  });

  it('Decode + Colour Fix turn the last sampler step into the pipeline output', async () => {
    const t = pipeline.tensor('trajectory.9');
    const latent: LatentTensor = { data: t.data, n: 1, c: 4, h: 32, w: 32, scaled: true, downscale: 2 };
    const samples = (await runNode(SupirDecode, { model, latent, clamp: false, tile_size: 0 }, ctx())).image as ImageTensor;
    expectClose('pipeline samples_before_colorfix', signed(samples), pipeline.tensor('samples_before_colorfix').data, 2e-3);
    const fixed = (await runNode(ColourFix, { image: samples, reference: toImage(pipeline, 'x_stage1'), method: 'Wavelet' }, ctx())).image as ImageTensor;
    expectClose('pipeline out', signed(fixed), pipeline.tensor('out').data, 2e-3);
  });
});

describe('SUPIR Colour Fix', () => {
  it('applies the library functions in [-1, 1]; None passes the image through', async () => {
    const g = await loadGolden('colorfix');
    const image = toImage(g, 'content');
    const reference = toImage(g, 'style');
    const planes = (name: string) => ({ data: g.tensor(name).data, n: 1, c: 3, h: 64, w: 64 });
    for (const [method, fn, want] of [['Wavelet', waveletReconstruction, 'wavelet'], ['AdaIN', adaptiveInstanceNormalization, 'adain']] as const) {
      const got = signed((await runNode(ColourFix, { image, reference, method }, ctx())).image as ImageTensor);
      expectClose(`colour fix node ${method} vs library`, got, fn(planes('content'), planes('style')).data, 1e-6);
      expectClose(`colour fix node ${method} vs golden`, got, g.tensor(want).data, 1e-5);
    }
    expect((await runNode(ColourFix, { image, reference, method: 'None' }, ctx())).image).toBe(image);
  });

  it('uses one reference for a whole batch and refuses a reference of another size', async () => {
    const g = await loadGolden('colorfix');
    const one = toImage(g, 'content');
    const batch: ImageTensor = { ...one, n: 2, data: new Float32Array([...one.data, ...one.data]) };
    const reference = toImage(g, 'style');
    const out = (await runNode(ColourFix, { image: batch, reference, method: 'Wavelet' }, ctx())).image as ImageTensor;
    expect(out.n).toBe(2);
    expect(out.data.subarray(0, one.data.length)).toEqual(out.data.subarray(one.data.length));
    const small: ImageTensor = { n: 1, c: 3, h: 32, w: 32, data: new Float32Array(3 * 32 * 32) };
    await expect(runNode(ColourFix, { image: one, reference: small, method: 'Wavelet' }, ctx())).rejects.toThrow(/input 'reference': is 32x32/);
  });
});

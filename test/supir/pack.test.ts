import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { readPack, type PackManifest } from '../../nodes/supir/lib/pack-manifest.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { closeness } from '../support/close.ts';
import { GOLDEN_DIR, loadGolden, type GoldenCase } from '../support/golden.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-pack-'));
const packDir = path.join(tmp, 'pack');
let files: { supir: string; sdxl: string };
let manifest: PackManifest;
let unet: GoldenCase;

async function runUnet(dir: string, cs: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path.join(dir, 'denoiser_step.onnx'));
  const t = (name: string) => new ort.Tensor('float32', unet.tensor(name).data, unet.tensor(name).dims);
  const out = await session.run({
    x: t('x'),
    timesteps: new ort.Tensor('int64', BigInt64Array.from(unet.ints('timesteps'), BigInt), [2]),
    context: t('context'),
    y: t('y'),
    control: t('control_in'),
    control_scale: new ort.Tensor('float32', Float32Array.of(cs), []),
  });
  await session.release();
  return out.out!.data as Float32Array;
}

describe('supir-studio convert (tiny model from the golden weights)', () => {
  beforeAll(async () => {
    files = await writeTinyCheckpoints(GOLDEN_DIR, tmp);
    manifest = await convertToPack({ ...files, out: packDir, ...TINY_COMPILE_OPTIONS });
    unet = await loadGolden('unet_control');
  }, 120_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes a complete, verifiable pack with a manifest', () => {
    const read = readPack(packDir, { require: ['denoiser_step', 'vae_encoder', 'vae_denoise_encoder', 'vae_decoder', 'clip_l', 'clip_bigg'], verify: true });
    expect(read.sources.map((s) => s.role)).toEqual(['supir', 'sdxl']);
    expect(read.scale_factor).toBe(0.13025);
    expect(read.tokenizer?.vocab).toBe('bpe_simple_vocab_16e6.txt.gz');
    expect(fs.existsSync(path.join(packDir, 'manifest.partial.json'))).toBe(false);
    expect(manifest.architecture).toHaveProperty('unet');
  });

  it('its denoiser_step reproduces the official network at control scales 1 and 0', async () => {
    for (const [cs, name] of [[1, 'out_cs1'], [0, 'out_cs0']] as const) {
      const c = closeness(await runUnet(packDir, cs), unet.tensor(name).data, 1e-4, 1e-4);
      expect(c.ok, `${name}: max abs ${c.maxAbs}`).toBe(true);
    }
  });

  it('its VAE and text encoders reproduce the golden outputs', async () => {
    const vae = await loadGolden('vae');
    const enc = await ort.InferenceSession.create(path.join(packDir, 'vae_denoise_encoder.onnx'));
    const img = vae.tensor('image');
    const mean = (await enc.run({ image: new ort.Tensor('float32', img.data, img.dims) })).mean!.data as Float32Array;
    expect(closeness(mean, vae.tensor('posterior_mean_denoise').data, 1e-4, 1e-4).ok).toBe(true);
    const text = await loadGolden('text_encoders');
    const clip = await ort.InferenceSession.create(path.join(packDir, 'clip_l.onnx'));
    const ids = text.ints('tokens_clip_l');
    const hidden = (await clip.run({ ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [ids.length / 77, 77]) })).hidden!.data as Float32Array;
    expect(closeness(hidden, text.tensor('clip_l_penultimate').data, 1e-4, 1e-4).ok).toBe(true);
  });

  it('resumes: a second run keeps every component already made from the same files', async () => {
    const partial = JSON.parse(fs.readFileSync(path.join(packDir, 'manifest.json'), 'utf8')) as PackManifest;
    fs.writeFileSync(path.join(packDir, 'manifest.partial.json'), JSON.stringify({ sources: partial.sources, dtype: 'float32', architecture: partial.architecture, components: partial.components }));
    const lines: string[] = [];
    await convertToPack({ ...files, out: packDir, ...TINY_COMPILE_OPTIONS, log: (l) => lines.push(l) });
    expect(lines.filter((l) => l.endsWith('already converted, kept'))).toHaveLength(6);
  });

  it('--fp16 halves the weights and stays within 2e-3 of float32', async () => {
    const fp16Dir = path.join(tmp, 'pack16');
    const m16 = await convertToPack({ ...files, out: fp16Dir, fp16: true, ...TINY_COMPILE_OPTIONS });
    expect(m16.components.denoiser_step!.dtype).toBe('float16');
    expect(m16.components.vae_decoder!.dtype).toBe('float32');
    expect(m16.components.denoiser_step!.bytes).toBeLessThan(manifest.components.denoiser_step!.bytes * 0.6);
    const c = closeness(await runUnet(fp16Dir, 1), unet.tensor('out_cs1').data, 2e-3, 0);
    expect(c.ok, `fp16 max abs ${c.maxAbs}`).toBe(true);
  });

  it('names the file and the problem for a truncated or swapped checkpoint, and a pack missing a file', async () => {
    const truncated = path.join(tmp, 'truncated.safetensors');
    fs.writeFileSync(truncated, fs.readFileSync(files.supir).subarray(0, 4096));
    await expect(convertToPack({ supir: truncated, sdxl: files.sdxl, out: path.join(tmp, 'bad') })).rejects.toThrow(/truncated\.safetensors/);
    await expect(convertToPack({ supir: files.sdxl, sdxl: files.supir, out: path.join(tmp, 'bad2') })).rejects.toThrow(/swapped|SUPIR/i);
    fs.rmSync(path.join(packDir, 'clip_l.onnx'));
    expect(() => readPack(packDir)).toThrow(/component 'clip_l' is missing its file clip_l\.onnx/);
  });
});

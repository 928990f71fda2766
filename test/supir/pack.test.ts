import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { readPack, type PackManifest } from '../../nodes/supir/lib/pack-manifest.ts';
import { SUPIR_COMPONENTS, SUPIR_PACK, type TensorSpec } from '../../nodes/supir/lib/pack-contract.ts';
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

  it('every attention is one fused MultiHeadAttention op: no [T, T] scores in any graph', () => {
    const ops = (component: string): string[] =>
      onnxProto.onnx.ModelProto.decode(fs.readFileSync(path.join(packDir, `${component}.onnx`))).graph!.node!.map((n) => `${n.domain ? `${n.domain}.` : ''}${n.opType}`);
    // Tiny model (transformer depths 1 and 2 at the two attention levels): the UNet has 6 basic
    // transformer blocks in its encoder, 2 in the middle and 9 in its decoder, GLVControl the
    // same 6 + 2, two attentions each, plus the two ZeroCrossAttn; the VAE's mid-blocks; and the
    // text towers' layers up to the penultimate (CLIP-L) or all of them (bigG, for pooled).
    const attentions: Record<string, number> = { denoiser_step: 2 * (6 + 2 + 9) + 2 * (6 + 2) + 2, vae_encoder: 1, vae_denoise_encoder: 1, vae_decoder: 1, clip_l: 3, clip_bigg: 4 };
    for (const [component, count] of Object.entries(attentions)) {
      const list = ops(component);
      expect(list.filter((o) => o === 'com.microsoft.MultiHeadAttention'), component).toHaveLength(count);
      expect(list, component).not.toContain('Softmax');
    }
  });

  it('writes a complete, verifiable pack with a manifest', () => {
    const read = readPack(packDir, { require: ['denoiser_step', 'vae_encoder', 'vae_denoise_encoder', 'vae_decoder', 'clip_l', 'clip_bigg'], verify: true });
    expect(read.sources.map((s) => s.role)).toEqual(['supir', 'sdxl']);
    expect(read.scale_factor).toBe(0.13025);
    expect(read.precision).toBe('fp32');
    expect(Object.values(read.components).map((c) => c.dtype)).toEqual(SUPIR_COMPONENTS.map(() => 'float32'));
    expect(read.tokenizer?.vocab).toBe('bpe_simple_vocab_16e6.txt.gz');
    expect(fs.existsSync(path.join(packDir, 'manifest.partial.json'))).toBe(false);
    expect(manifest.architecture).toHaveProperty('unet');
  });

  it('each compiled graph offers exactly the interface of the pack contract (names, dtypes, dims)', () => {
    const ELEM: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 10: 'float16' };
    type ValueInfo = { name?: string | null; type?: { tensorType?: { elemType?: number | null; shape?: { dim?: Array<{ dimValue?: unknown; dimParam?: string | null }> | null } | null } | null } | null };
    // The contract's numbers are fixed sizes (4 latent channels, 77 tokens); its names are sizes
    // that vary with the image or the architecture, which a graph may leave symbolic or fix.
    const spec = (v: ValueInfo, contract: readonly TensorSpec[]) => {
      const dims = v.type!.tensorType!.shape?.dim ?? [];
      const c = contract.find((s) => s.name === v.name);
      return { name: v.name, dtype: ELEM[v.type!.tensorType!.elemType!], dims: dims.map((d, i) => (typeof c?.dims[i] === 'number' ? Number(d.dimValue) : 'any')) };
    };
    const want = (s: TensorSpec) => ({ name: s.name, dtype: s.dtype, dims: s.dims.map((d) => (typeof d === 'number' ? d : 'any')) });
    for (const name of SUPIR_COMPONENTS) {
      const graph = onnxProto.onnx.ModelProto.decode(fs.readFileSync(path.join(packDir, SUPIR_PACK[name].file))).graph!;
      const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
      const { inputs: ins, outputs: outs } = SUPIR_PACK[name];
      const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name!)).map((v) => spec(v, ins));
      expect(inputs, `${name} inputs`).toEqual(ins.map(want));
      expect((graph.output ?? []).map((v) => spec(v, outs)), `${name} outputs`).toEqual(outs.map(want));
      expect(manifest.components[name]!.inputs.map((s) => s.name)).toEqual(SUPIR_PACK[name].inputs.map((s) => s.name));
    }
  });

  it('bytes counts the external weights: recorded beside the .onnx and checked by the reader', async () => {
    // A 64 KiB threshold sends the tiny model's larger tensors to <component>.onnx.data.
    const extDir = path.join(tmp, 'pack-external');
    const ext = await convertToPack({ ...files, out: extDir, ...TINY_COMPILE_OPTIONS, externalThreshold: 64 * 1024 });
    const size = (f: string) => fs.statSync(path.join(extDir, f)).size;
    expect(ext.components.denoiser_step!.external).toEqual(['denoiser_step.onnx.data']);
    for (const [name, c] of Object.entries(ext.components)) {
      const external = c.external.reduce((a, f) => a + size(f), 0);
      expect(c.external_bytes, name).toBe(external);
      expect(c.bytes, name).toBe(size(c.file) + external);
    }
    const denoiser = ext.components.denoiser_step!;
    expect(denoiser.external_bytes).toBeGreaterThan(size(denoiser.file));
    // The same weights as the pack that keeps them inside: same total, give or take alignment.
    expect(denoiser.bytes).toBeGreaterThanOrEqual(manifest.components.denoiser_step!.bytes * 0.95);
    expect(readPack(extDir, { verify: true }).components.denoiser_step!.bytes).toBe(denoiser.bytes);
    const c = closeness(await runUnet(extDir, 1), unet.tensor('out_cs1').data, 1e-4, 1e-4);
    expect(c.ok, `external pack max abs ${c.maxAbs}`).toBe(true);
    // A truncated data file is refused, naming the component; the .onnx alone still matches.
    const data = path.join(extDir, 'denoiser_step.onnx.data');
    fs.truncateSync(data, size('denoiser_step.onnx.data') - 4096);
    expect(() => readPack(extDir)).toThrow(/component 'denoiser_step' has \d+ bytes of external weights \(denoiser_step\.onnx\.data\), the manifest says \d+: incomplete or replaced/);
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
    fs.writeFileSync(path.join(packDir, 'manifest.partial.json'), JSON.stringify({ sources: partial.sources, precision: 'fp32', architecture: partial.architecture, components: partial.components }));
    const lines: string[] = [];
    await convertToPack({ ...files, out: packDir, ...TINY_COMPILE_OPTIONS, log: (l) => lines.push(l) });
    expect(lines.filter((l) => l.endsWith('already converted, kept'))).toHaveLength(6);
  });

  it('--fp16 halves the weights and stays within 2e-3 of float32', async () => {
    const fp16Dir = path.join(tmp, 'pack16');
    const m16 = await convertToPack({ ...files, out: fp16Dir, fp16: true, ...TINY_COMPILE_OPTIONS });
    expect(m16.precision).toBe('fp16');
    expect(readPack(fp16Dir).precision).toBe('fp16');
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

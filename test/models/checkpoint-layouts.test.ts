/**
 * The checkpoints people hold, in their real key layouts, made tiny from the golden weights:
 * - the pruned fp16 SUPIR files ComfyUI users download (SUPIR-v0Q_fp16.safetensors: SUPIR's keys
 *   only, F16, with the unused model.control_model.mask_LQ), and ComfyUI's model-patch layout of them;
 * - a single-file SDXL fine-tune as the base (as Juggernaut XL Lightning: SGM layout, F16/BF16,
 *   with model_ema.* extras), also without its VAE, with the VAE from a separate file in the SGM
 *   layout (bare or prefixed) or the diffusers layout;
 * - the layouts that are refused, each with a message that says what the file is.
 * Every merged view is checked tensor by tensor against the bytes written (names, dtype, shape), and
 * one pack is converted end to end and run against the golden outputs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint, type DType } from '../../server/models/checkpoint/checkpoint.ts';
import { diffusersVaeKey } from '../../server/models/checkpoint/layout.ts';
import { isSupirKey, mergeCheckpoints, openMerged } from '../../server/models/checkpoint/merge.ts';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { writeSafetensors, type TensorToWrite } from '../../server/models/checkpoint/safetensors-writer.ts';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS } from '../../server/models/pack/tiny.ts';
import { compileVae } from '../../server/models/supir/vae.ts';
import { readVaeWeights } from '../../server/models/supir/vae-weights.ts';
import { toFloat16 } from '../../server/runtime/fp16.ts';
import { SupirVae, type VaeRunner } from '../../nodes/supir/lib/vae-pipeline.ts';
import { closeness, maxAbsDiff } from '../support/close.ts';
import { GOLDEN_DIR, loadGolden } from '../support/golden.ts';
import { convertCommand } from '../../server/cli/convert.ts';
import { readPack } from '../../nodes/supir/lib/pack-manifest.ts';

const GOLDEN_FILES = ['supir_tiny_model.safetensors', 'supir_tiny_vae.safetensors', 'text_tiny_clip_l.safetensors', 'text_tiny_bigg.safetensors'];

interface Tensor {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

/** The golden tensors by key, as stored (F32, and I64/F64 buffers). */
const golden = new Map<string, Tensor>();
/** Every key the tiny SUPIR model reads (the golden configs' key lists). */
let required: string[] = [];
let dir = '';

function requiredKeys(): string[] {
  const model = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'supir_tiny_config.json'), 'utf8')) as { weights_files: Record<string, string[]> };
  const text = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'text_tiny_config.json'), 'utf8')) as { weights: Record<string, Record<string, unknown>> };
  return [...Object.values(model.weights_files).flat(), ...Object.values(text.weights).flatMap((w) => Object.keys(w))];
}

/** float32 values in F32, F16 or BF16 (round to nearest even, as torch's .to(bfloat16)). */
function encode(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.slice().buffer);
  if (dtype === 'F16') return new Uint8Array(toFloat16(values).buffer);
  const bits = new Uint32Array(values.slice().buffer);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = (bits[i]! + 0x7fff + ((bits[i]! >>> 16) & 1)) >>> 16;
  return new Uint8Array(out.buffer);
}

function f32Of(t: Tensor): Float32Array {
  return new Float32Array(t.bytes.slice().buffer);
}

/** One entry of a file to write: `name` in the file, golden `key`, stored as `dtype` (integer buffers stay as they are). */
type Entry = { name: string; key: string; dtype?: 'F32' | 'F16' | 'BF16'; shape?: number[] };

/**
 * Writes `entries` (plus `extra` tensors that are no golden key) and returns what each golden key
 * now is in that file, under its SGM name: the reference a merged view must reproduce exactly.
 */
async function writeFile(name: string, entries: readonly Entry[], extra: readonly TensorToWrite[] = []): Promise<{ file: string; tensors: Map<string, Tensor> }> {
  const tensors = new Map<string, Tensor>();
  const out: TensorToWrite[] = [];
  for (const e of entries) {
    const g = golden.get(e.key)!;
    const t: Tensor = g.dtype === 'F32' && e.dtype ? { dtype: e.dtype, shape: e.shape ?? g.shape, bytes: encode(f32Of(g), e.dtype) } : { ...g, shape: e.shape ?? g.shape };
    tensors.set(e.key, t);
    out.push({ name: e.name, dtype: t.dtype, shape: t.shape, data: t.bytes });
  }
  const file = path.join(dir, name);
  await writeSafetensors(file, [...out, ...extra], { format: 'pt' });
  return { file, tensors };
}

const keysWhere = (test: (k: string) => boolean): string[] => [...golden.keys()].filter(test);
const same = (keys: readonly string[], dtype?: 'F32' | 'F16' | 'BF16'): Entry[] => keys.map((key) => ({ name: key, key, ...(dtype ? { dtype } : {}) }));
const zeros = (name: string, dtype: 'F32' | 'F16' | 'I64', shape: number[]): TensorToWrite => ({
  name,
  dtype,
  shape,
  data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * (dtype === 'F16' ? 2 : dtype === 'I64' ? 8 : 4)),
});

const SUPIR = (k: string): boolean => isSupirKey(k);
const UNET = (k: string): boolean => k.startsWith('model.diffusion_model.') && !isSupirKey(k);
const VAE = (k: string): boolean => k.startsWith('first_stage_model.') && !isSupirKey(k);
const CLIP_L = (k: string): boolean => k.startsWith('conditioner.embedders.0.');
const BIG_G = (k: string): boolean => k.startsWith('conditioner.embedders.1.');

/** The diffusers name of an SGM VAE key relative to first_stage_model. (two levels in the tiny VAE). */
function toDiffusers(key: string, levels = 2): string {
  const resnet = (s: string): string => s.replace('nin_shortcut', 'conv_shortcut');
  let m: RegExpExecArray | null;
  if ((m = /^encoder\.down\.(\d+)\.block\.(\d+)\.(.*)$/.exec(key))) return `encoder.down_blocks.${m[1]}.resnets.${m[2]}.${resnet(m[3]!)}`;
  if ((m = /^encoder\.down\.(\d+)\.downsample\.(.*)$/.exec(key))) return `encoder.down_blocks.${m[1]}.downsamplers.0.${m[2]}`;
  if ((m = /^decoder\.up\.(\d+)\.block\.(\d+)\.(.*)$/.exec(key))) return `decoder.up_blocks.${levels - 1 - Number(m[1])}.resnets.${m[2]}.${resnet(m[3]!)}`;
  if ((m = /^decoder\.up\.(\d+)\.upsample\.(.*)$/.exec(key))) return `decoder.up_blocks.${levels - 1 - Number(m[1])}.upsamplers.0.${m[2]}`;
  if ((m = /^(encoder|decoder)\.mid\.block_(\d)\.(.*)$/.exec(key))) return `${m[1]}.mid_block.resnets.${Number(m[2]) - 1}.${resnet(m[3]!)}`;
  const attn: Record<string, string> = { norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' };
  if ((m = /^(encoder|decoder)\.mid\.attn_1\.(norm|q|k|v|proj_out)\.(.*)$/.exec(key))) return `${m[1]}.mid_block.attentions.0.${attn[m[2]!]}.${m[3]}`;
  return key.replace('norm_out', 'conv_norm_out');
}

/** The merged view holds exactly `want` (by SGM key): same dtype, shape and bytes, nothing else. */
async function expectExactly(merged: Checkpoint, want: ReadonlyMap<string, Tensor>): Promise<void> {
  expect(merged.keys().sort()).toEqual([...want.keys()].sort());
  for (const [key, t] of want) {
    expect(merged.dtype(key), key).toBe(t.dtype);
    expect(merged.shape(key), key).toEqual(t.shape);
    expect(Buffer.from(await merged.bytes(key)).equals(Buffer.from(t.bytes)), key).toBe(true);
  }
}

const union = (...maps: ReadonlyMap<string, Tensor>[]): Map<string, Tensor> => new Map(maps.flatMap((m) => [...m]));

let pruned: { file: string; tensors: Map<string, Tensor> };
let comfyPatch: { file: string; tensors: Map<string, Tensor> };
let finetune: { file: string; tensors: Map<string, Tensor> };
let noVae: { file: string; tensors: Map<string, Tensor> };
let vaeBare: { file: string; tensors: Map<string, Tensor> };
let vaePrefixed: { file: string; tensors: Map<string, Tensor> };
let vaeDiffusers: { file: string; tensors: Map<string, Tensor> };
const open: Checkpoint[] = [];

async function ck(file: string): Promise<Checkpoint> {
  const c = await openCheckpoint(file);
  open.push(c);
  return c;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-layouts-'));
  for (const name of GOLDEN_FILES) {
    const st = await SafetensorsFile.open(path.join(GOLDEN_DIR, name));
    for (const key of st.keys()) golden.set(key, { dtype: st.entry(key).dtype, shape: [...st.entry(key).shape], bytes: await st.bytes(key) });
    await st.close();
  }
  required = requiredKeys();
  const maskLq = zeros('model.control_model.mask_LQ', 'F16', [1, 4, 64, 64]);
  // SUPIR-v0Q_fp16.safetensors: SUPIR's keys only, all F16, and the training leftover mask_LQ.
  pruned = await writeFile('SUPIR-v0Q_fp16.safetensors', same(keysWhere(SUPIR), 'F16'), [maskLq]);
  // The same weights as ComfyUI's ModelPatchLoader names them.
  comfyPatch = await writeFile(
    'SUPIR-v0F_comfy_patch.safetensors',
    keysWhere(SUPIR).map((key) => ({ key, dtype: 'F16' as const, name: key.replace(/^model\.control_model\./, 'control_model.').replace(/^model\.diffusion_model\.project_modules\./, 'project_modules.') })),
    [{ ...maskLq, name: 'control_model.mask_LQ' }],
  );
  // A Juggernaut-XL-Lightning-like fine-tune: UNet and CLIP-L in F16, bigG in BF16, the VAE baked in
  // at F32, the schedule buffer, and EMA leftovers the model never reads.
  const ema = [zeros('model_ema.decay', 'F32', []), zeros('model_ema.num_updates', 'I64', []), zeros('model_ema.diffusion_modelout2bias', 'F32', [4])];
  const base = [...same(keysWhere(UNET), 'F16'), ...same(keysWhere(CLIP_L), 'F16'), ...same(keysWhere(BIG_G), 'BF16')];
  finetune = await writeFile('juggernautXL_v9Rdphoto2Lightning.safetensors', [...base, ...same(keysWhere(VAE), 'F32'), ...same(['denoiser.sigmas'])], ema);
  noVae = await writeFile('juggernautXL_noVAE.safetensors', base, ema);
  vaeBare = await writeFile('sdxl_vae.safetensors', keysWhere(VAE).map((key) => ({ key, name: key.slice('first_stage_model.'.length), dtype: 'F16' as const })));
  vaePrefixed = await writeFile('sdxl_vae_prefixed.safetensors', same(keysWhere(VAE), 'F32'));
  // diffusers' AutoencoderKL: renamed, up_blocks numbered the other way, attention projections as Linear [C, C].
  vaeDiffusers = await writeFile(
    'diffusion_pytorch_model.safetensors',
    keysWhere(VAE).map((key) => {
      const shape = golden.get(key)!.shape;
      const linear = /\.attn_1\.(q|k|v|proj_out)\.weight$/.test(key);
      return { key, name: toDiffusers(key.slice('first_stage_model.'.length)), dtype: 'F32' as const, ...(linear ? { shape: shape.slice(0, 2) } : {}) };
    }),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => undefined)));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the pruned fp16 SUPIR file over a single-file SDXL fine-tune', () => {
  it('merges to exactly the keys SUPIR reads: SUPIR weights from the pruned file, the rest from the fine-tune, extras ignored', async () => {
    const [s, b] = [await ck(pruned.file), await ck(finetune.file)];
    const merged = mergeCheckpoints(s, b, { required });
    await expectExactly(merged, union(finetune.tensors, pruned.tensors));
    expect(merged.has('model.control_model.mask_LQ')).toBe(false);
    expect(merged.keys().some((k) => k.startsWith('model_ema.'))).toBe(false);
    expect(merged.dtype('model.control_model.input_hint_block.0.weight')).toBe('F16');
    expect(merged.dtype('conditioner.embedders.1.model.ln_final.weight')).toBe('BF16');
    expect(merged.source('model.diffusion_model.out.2.weight')).toBe(finetune.file);
    expect(merged.source('model.diffusion_model.project_modules.0.zero_mul.weight')).toBe(pruned.file);
    // Without the compiler's key list the part groups are checked, and pass.
    expect(mergeCheckpoints(s, b).keys().sort()).toEqual(merged.keys().sort());
  });

  it('reads ComfyUI\'s model-patch layout (control_model.*, project_modules.*) as the same SUPIR weights', async () => {
    const merged = mergeCheckpoints(await ck(comfyPatch.file), await ck(finetune.file), { required });
    await expectExactly(merged, union(finetune.tensors, comfyPatch.tensors));
    expect(merged.source('model.control_model.input_hint_block.0.weight')).toBe(comfyPatch.file);
  });

  it('says which SUPIR part a pruned file lacks, e.g. GLVControl or the ZeroSFT connectors', async () => {
    const noControl = await writeFile('SUPIR-no-control.safetensors', same(keysWhere((k) => SUPIR(k) && !k.startsWith('model.control_model.')), 'F16'));
    await expect(openMerged(noControl.file, finetune.file)).rejects.toThrow(
      `expected in ${noControl.file} (SUPIR): 'model.control_model.*'. ${noControl.file} has no GLVControl (model.control_model.*): a SUPIR checkpoint`,
    );
    const noProject = await writeFile('SUPIR-no-project.safetensors', same(keysWhere((k) => SUPIR(k) && !k.includes('.project_modules.')), 'F16'));
    await expect(openMerged(noProject.file, finetune.file)).rejects.toThrow(
      `expected in ${noProject.file} (SUPIR): 'model.diffusion_model.project_modules.*'. ${noProject.file} has no ZeroSFT connectors (model.diffusion_model.project_modules.*)`,
    );
    // With the compiler's key list, the keys themselves are named, and the part too.
    await expect(openMerged(noControl.file, finetune.file, { required })).rejects.toThrow(/lack \d+ keys the model needs; expected in .*SUPIR-no-control\.safetensors \(SUPIR\): 'model\.control_model\.[^']+'.* has no GLVControl/);
  });

  it('keeps the swapped-files error for the new layouts', async () => {
    for (const supirFile of [pruned.file, comfyPatch.file]) {
      await expect(openMerged(finetune.file, supirFile)).rejects.toThrow(
        `the checkpoints look swapped: ${finetune.file} (given as the SUPIR checkpoint) holds no SUPIR weights (model.control_model.*, model.diffusion_model.project_modules.*, first_stage_model.denoise_encoder.*), ` +
          `while ${supirFile} (given as the SDXL base) does.`,
      );
    }
    await expect(openMerged(pruned.file, comfyPatch.file)).rejects.toThrow(/looks like a SUPIR checkpoint, not the SDXL base/);
  });

  it('converts to a pack whose denoiser_step reproduces the official network within fp16 rounding', async () => {
    const out = path.join(dir, 'pack');
    const manifest = await convertToPack({ supir: pruned.file, sdxl: finetune.file, out, ...TINY_COMPILE_OPTIONS });
    expect(manifest.sources.map((s) => [s.role, s.file])).toEqual([
      ['supir', 'SUPIR-v0Q_fp16.safetensors'],
      ['sdxl', 'juggernautXL_v9Rdphoto2Lightning.safetensors'],
    ]);
    const unet = await loadGolden('unet_control');
    const session = await ort.InferenceSession.create(path.join(out, 'denoiser_step.onnx'), { intraOpNumThreads: 2 });
    const t = (name: string) => new ort.Tensor('float32', unet.tensor(name).data, unet.tensor(name).dims);
    const run = async (cs: number) =>
      (
        await session.run({
          x: t('x'),
          timesteps: new ort.Tensor('int64', BigInt64Array.from(unet.ints('timesteps'), BigInt), [2]),
          context: t('context'),
          y: t('y'),
          control: t('control_in'),
          control_scale: new ort.Tensor('float32', Float32Array.of(cs), []),
        })
      ).out!.data as Float32Array;
    const want = unet.tensor('out_cs1').data;
    const got = await run(1);
    await session.release();
    // F16 weights (UNet, GLVControl, connectors) computed in fp32: 3e-3 of the golden output.
    const c = closeness(got, want, 3e-3, 0);
    expect(c.ok, `max abs ${c.maxAbs}`).toBe(true);
    // ... which is far below what a wrong weight (the control switched off) changes.
    expect(maxAbsDiff(unet.tensor('out_cs0').data, want)).toBeGreaterThan(30 * 3e-3);
  }, 120_000);
});

describe('an SDXL base without its VAE', () => {
  it('is refused naming the missing VAE and how to give it', async () => {
    await expect(openMerged(pruned.file, noVae.file)).rejects.toThrow(
      `${noVae.file} has no VAE (first_stage_model.*): it is a checkpoint without the VAE baked in: give the SDXL VAE (sdxl_vae.safetensors) as the separate VAE file (convert --vae).`,
    );
  });

  it('takes the VAE from a separate file in the SGM layout (bare or prefixed) or the diffusers layout', async () => {
    for (const vae of [vaeBare, vaePrefixed, vaeDiffusers]) {
      const merged = await openMerged(pruned.file, noVae.file, { required, vae: vae.file });
      open.push(merged);
      await expectExactly(merged, union(noVae.tensors, vae.tensors, pruned.tensors));
      expect(merged.source('first_stage_model.decoder.conv_in.weight')).toBe(vae.file);
      expect(merged.source('first_stage_model.denoise_encoder.conv_in.weight')).toBe(pruned.file);
    }
    // The separate VAE replaces a baked-in one as a whole.
    const over = mergeCheckpoints(await ck(pruned.file), await ck(finetune.file), { required, vae: await ck(vaeBare.file) });
    expect(over.source('first_stage_model.quant_conv.weight')).toBe(vaeBare.file);
    expect(over.dtype('first_stage_model.quant_conv.weight')).toBe('F16');
  });

  it('convert --vae takes it, records it as a source, and the pack holds its VAE', async () => {
    const out = path.join(dir, 'pack-vae');
    const stdout = process.stdout.write;
    process.stdout.write = () => true;
    try {
      expect(await convertCommand(['--supir', pruned.file, '--sdxl', noVae.file, '--vae', vaeDiffusers.file, '--out', out, '--num-head-channels', '16'])).toBe(0);
    } finally {
      process.stdout.write = stdout;
    }
    const manifest = readPack(out, { verify: true });
    expect(manifest.sources.map((s) => s.role)).toEqual(['supir', 'sdxl', 'vae']);
    expect(manifest.sources[2]!.file).toBe(path.basename(vaeDiffusers.file));
    expect(Object.keys(manifest.components)).toEqual(expect.arrayContaining(['vae_encoder', 'vae_decoder', 'vae_denoise_encoder']));
  }, 120_000);

  it('the diffusers VAE compiles to the official VAE: golden encode and decode', async () => {
    const merged = await openMerged(pruned.file, noVae.file, { vae: vaeDiffusers.file });
    open.push(merged);
    const compiled = compileVae(await readVaeWeights([merged]));
    const sessions: ort.InferenceSession[] = [];
    const runner = async (bytes: Uint8Array): Promise<VaeRunner> => {
      const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
      sessions.push(s);
      return {
        async run(feeds) {
          const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])));
          return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data as Float32Array, dims: [...v.dims] }]));
        },
      };
    };
    const vae = new SupirVae({ encoder: await runner(compiled.encoder), denoiseEncoder: await runner(compiled.denoiseEncoder), decoder: await runner(compiled.decoder) });
    const g = await loadGolden('vae');
    const decoded = await vae.decode(g.tensor('z_in'));
    expect(closeness(decoded.data, g.tensor('decoded_from_z_in').data, 1e-4, 1e-4).ok).toBe(true);
    const { mean } = await vae.posterior(g.tensor('image'));
    expect(closeness(mean.data, g.tensor('posterior_mean_encoder').data, 1e-4, 1e-4).ok).toBe(true);
    await Promise.all(sessions.map((s) => s.release()));
  });

  it('renames diffusers VAE keys as diffusers\' own conversion table does (real 4-level SDXL VAE names)', () => {
    const cases: Record<string, string> = {
      'decoder.up_blocks.0.resnets.2.norm1.weight': 'decoder.up.3.block.2.norm1.weight',
      'decoder.up_blocks.2.upsamplers.0.conv.bias': 'decoder.up.1.upsample.conv.bias',
      'decoder.up_blocks.3.resnets.0.conv_shortcut.weight': 'decoder.up.0.block.0.nin_shortcut.weight',
      'encoder.down_blocks.1.resnets.0.conv_shortcut.weight': 'encoder.down.1.block.0.nin_shortcut.weight',
      'encoder.down_blocks.2.downsamplers.0.conv.weight': 'encoder.down.2.downsample.conv.weight',
      'encoder.mid_block.resnets.1.conv2.weight': 'encoder.mid.block_2.conv2.weight',
      'encoder.mid_block.attentions.0.group_norm.bias': 'encoder.mid.attn_1.norm.bias',
      'decoder.mid_block.attentions.0.to_out.0.weight': 'decoder.mid.attn_1.proj_out.weight',
      // The older diffusers attention names.
      'decoder.mid_block.attentions.0.query.weight': 'decoder.mid.attn_1.q.weight',
      'encoder.mid_block.attentions.0.proj_attn.bias': 'encoder.mid.attn_1.proj_out.bias',
      'encoder.conv_norm_out.weight': 'encoder.norm_out.weight',
      'post_quant_conv.weight': 'post_quant_conv.weight',
    };
    for (const [from, to] of Object.entries(cases)) expect(diffusersVaeKey(from, 4), from).toBe(to);
    expect(diffusersVaeKey('decoder.up_blocks.4.resnets.0.norm1.weight', 4)).toBeUndefined();
    // The tiny file the tests write uses those names.
    const written = JSON.parse(fs.readFileSync(vaeDiffusers.file).subarray(8, 8 + Number(fs.readFileSync(vaeDiffusers.file).readBigUInt64LE(0))).toString()) as Record<string, { shape: number[] }>;
    expect(written['decoder.up_blocks.0.upsamplers.0.conv.weight']?.shape).toEqual([64, 64, 3, 3]);
    expect(written['encoder.mid_block.attentions.0.to_q.weight']?.shape).toEqual([64, 64]);
  });

  it('refuses a VAE file that is not an SDXL VAE', async () => {
    await expect(openMerged(pruned.file, noVae.file, { vae: pruned.file })).rejects.toThrow(
      `${pruned.file} (given as the VAE) holds no SDXL VAE: no encoder.*/decoder.* tensors, with or without the first_stage_model. prefix (it holds SUPIR weights: it is a SUPIR checkpoint)`,
    );
    const flux = await writeFile('flux_ae.safetensors', [], [zeros('decoder.conv_in.weight', 'F32', [512, 16, 3, 3]), zeros('encoder.conv_in.weight', 'F32', [128, 3, 3, 3])]);
    await expect(openMerged(pruned.file, noVae.file, { vae: flux.file })).rejects.toThrow(
      `${flux.file} (given as the VAE) is a 16-channel latent VAE (SD3/Flux-style); SDXL's VAE, which SUPIR uses, has 4 latent channels`,
    );
  });
});

describe('base layouts that are refused, saying what the file is', () => {
  const cases: Array<[string, TensorToWrite[], string | RegExp]> = [
    ['diffusers-unet.safetensors', [zeros('conv_in.weight', 'F32', [4]), zeros('down_blocks.0.resnets.0.norm1.weight', 'F32', [4])], 'is in the diffusers layout (down_blocks.*, mid_block.*'],
    ['unet-only.safetensors', [zeros('input_blocks.0.0.weight', 'F32', [4]), zeros('out.2.weight', 'F32', [4])], 'is a bare UNet (input_blocks.* without model.diffusion_model.'],
    ['v1-5-pruned-emaonly.safetensors', [zeros('model.diffusion_model.out.2.weight', 'F32', [4]), zeros('cond_stage_model.transformer.text_model.final_layer_norm.weight', 'F32', [4])], 'is a Stable Diffusion 1.x/2.x checkpoint'],
    ['sd_xl_refiner_1.0.safetensors', [zeros('model.diffusion_model.out.2.weight', 'F32', [4]), zeros('conditioner.embedders.0.model.ln_final.weight', 'F32', [4])], 'is the SDXL refiner'],
    ['sdxl-vpred.safetensors', [zeros('model.diffusion_model.out.2.weight', 'F32', [4]), zeros('v_pred', 'F32', [])], "is a v-prediction model (it holds 'v_pred')"],
    ['playground-v2.5.safetensors', [zeros('model.diffusion_model.out.2.weight', 'F32', [4]), zeros('edm_mean', 'F32', [1, 4, 1, 1]), zeros('edm_std', 'F32', [1, 4, 1, 1])], 'is an EDM-schedule model such as Playground v2.5'],
    [
      'sdxl-te-transformers.safetensors',
      [zeros('model.diffusion_model.out.2.weight', 'F32', [4]), zeros('text_encoders.clip_l.transformer.text_model.final_layer_norm.weight', 'F32', [4]), zeros('text_encoders.clip_g.transformer.text_model.final_layer_norm.weight', 'F32', [4])],
      'text encoders are in the transformers layout (text_encoders.clip_l.*, text_encoders.clip_g.*)',
    ],
  ];
  for (const [name, tensors, message] of cases) {
    it(name, async () => {
      const file = path.join(dir, name);
      await writeSafetensors(file, tensors);
      await expect(openMerged(pruned.file, file)).rejects.toThrow(message);
      await expect(openMerged(pruned.file, file)).rejects.toThrow(`${file} (given as the SDXL base) is `);
      await expect(openMerged(pruned.file, file)).rejects.toMatchObject({ code: 'BAD_INPUT' });
    });
  }
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, sniffCheckpoint, type Checkpoint } from '../../server/models/checkpoint/checkpoint.ts';
import { isSupirKey, mergeCheckpoints, openMerged } from '../../server/models/checkpoint/merge.ts';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { writeSafetensors, type TensorToWrite } from '../../server/models/checkpoint/safetensors-writer.ts';
import { fromFloat16, toFloat16 } from '../../server/runtime/fp16.ts';

const GOLDEN = path.resolve(import.meta.dirname, '../../../shared/golden');
const GOLDEN_FILES = ['supir_tiny_model.safetensors', 'supir_tiny_vae.safetensors', 'text_tiny_clip_l.safetensors', 'text_tiny_bigg.safetensors'];

/** Every key the tiny SUPIR model has, from the golden configs' key lists: what a compiler would pass. */
function requiredKeys(): string[] {
  const model = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'supir_tiny_config.json'), 'utf8')) as { weights_files: Record<string, string[]> };
  const text = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'text_tiny_config.json'), 'utf8')) as { weights: Record<string, Record<string, unknown>> };
  return [...Object.values(model.weights_files).flat(), ...Object.values(text.weights).flatMap((w) => Object.keys(w))];
}

/** Bit-exact equality; toEqual walks a 3M-element embedding one value at a time. */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A view of a checkpoint with some keys hidden, to make the incomplete files of each test. */
function without(c: Checkpoint, hidden: (key: string) => boolean, label = c.path): Checkpoint {
  return { ...c, path: label, keys: () => c.keys().filter((k) => !hidden(k)), has: (k) => c.has(k) && !hidden(k) };
}

let dir = '';
let golden: SafetensorsFile[] = [];
let supir: Checkpoint;
let sdxl: Checkpoint;
let required: string[];

/**
 * The golden weights split the way the real files are: the SUPIR-trained keys (control model, project
 * modules, denoise encoder) into a "SUPIR delta" written in F16, like SUPIR-v0Q's fp16 release, and
 * everything else (UNet, VAE, both text encoders) into an F32 "SDXL base".
 */
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-merge-'));
  golden = await Promise.all(GOLDEN_FILES.map((f) => SafetensorsFile.open(path.join(GOLDEN, f))));
  const delta: TensorToWrite[] = [];
  const base: TensorToWrite[] = [];
  for (const st of golden) {
    for (const name of st.keys()) {
      const { dtype, shape } = st.entry(name);
      if (isSupirKey(name)) {
        delta.push({ name, dtype: 'F16', shape, data: async () => new Uint8Array(toFloat16(await st.float32(name)).buffer) });
      } else {
        base.push({ name, dtype, shape, data: () => st.bytes(name) });
      }
    }
  }
  await writeSafetensors(path.join(dir, 'SUPIR-v0Q.safetensors'), delta, { format: 'pt' });
  await writeSafetensors(path.join(dir, 'sd_xl_base_1.0_0.9vae.safetensors'), base);
  supir = await openCheckpoint(path.join(dir, 'SUPIR-v0Q.safetensors'));
  sdxl = await openCheckpoint(path.join(dir, 'sd_xl_base_1.0_0.9vae.safetensors'));
  required = requiredKeys();
});

afterAll(async () => {
  await Promise.all([...golden.map((g) => g.close()), supir?.close(), sdxl?.close()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('openCheckpoint', () => {
  it('tells the format from the content, not the extension', async () => {
    const renamed = path.join(dir, 'model.ckpt');
    fs.copyFileSync(path.join(GOLDEN, 'supir_tiny_vae.safetensors'), renamed);
    expect(await sniffCheckpoint(renamed)).toBe('safetensors');
    const c = await openCheckpoint(renamed);
    expect(c.format).toBe('safetensors');
    expect(c.shape('first_stage_model.quant_conv.weight')).toEqual([8, 8, 1, 1]);
    expect(c.dtype('first_stage_model.quant_conv.weight')).toBe('F32');
    await c.close();
  });

  it('refuses what it cannot read with a message naming the file', async () => {
    const junk = path.join(dir, 'junk.safetensors');
    fs.writeFileSync(junk, 'this is not a model');
    expect(await sniffCheckpoint(junk)).toBe('unknown');
    await expect(openCheckpoint(junk)).rejects.toThrow(`${junk} is neither a safetensors file nor a PyTorch .ckpt (zip) checkpoint`);
    const empty = path.join(dir, 'empty.ckpt');
    fs.writeFileSync(empty, '');
    await expect(openCheckpoint(empty)).rejects.toMatchObject({ code: 'BAD_INPUT' });
    const pickle = path.join(dir, 'old.ckpt');
    fs.writeFileSync(pickle, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46]));
    await expect(openCheckpoint(pickle)).rejects.toThrow(/old.ckpt is a PyTorch checkpoint in the legacy \(pre-1.6, non-zip\) format/);
    await expect(openCheckpoint(path.join(dir, 'nope.ckpt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('writes safetensors that read back exactly, and checks tensor sizes', async () => {
    const file = path.join(dir, 'small.safetensors');
    await writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(Float32Array.of(1, 2, 3).buffer) }]);
    const c = await openCheckpoint(file);
    expect(Array.from(await c.float32('a'))).toEqual([1, 2, 3]);
    await c.close();
    await expect(writeSafetensors(file, [{ name: 'a', dtype: 'F16', shape: [3], data: new Uint8Array(4) }])).rejects.toThrow(/tensor 'a' has 4 bytes, its F16 shape \[3\] needs 6/);
  });
});

describe('mergeCheckpoints: a SUPIR delta over an SDXL base (golden weights)', () => {
  it('has every key the model needs, SUPIR keys from the SUPIR file in F16, the rest from the base', async () => {
    const merged = mergeCheckpoints(supir, sdxl, { required });
    expect(merged.keys().sort()).toEqual([...required].sort());
    for (const st of golden) {
      for (const name of st.keys()) {
        const fromSupir = isSupirKey(name);
        expect(merged.source(name), name).toBe(fromSupir ? supir.path : sdxl.path);
        expect(merged.shape(name), name).toEqual(st.entry(name).shape);
        if (st.entry(name).dtype === 'I64') continue;
        const want = await st.float32(name);
        const got = await merged.float32(name);
        expect(merged.dtype(name), name).toBe(fromSupir ? 'F16' : 'F32');
        expect(sameBits(got, fromSupir ? fromFloat16(toFloat16(want)) : want), name).toBe(true);
      }
    }
    // Without a key list, the groups are checked instead.
    expect(mergeCheckpoints(supir, sdxl).keys()).toHaveLength(required.length);
  });

  it('lets buffers the model recomputes be absent', () => {
    const lean = without(sdxl, (k) => k === 'denoiser.sigmas' || k.endsWith('embeddings.position_ids'));
    expect(() => mergeCheckpoints(supir, lean, { required })).not.toThrow();
  });

  it('names missing keys and the file expected to hold each', () => {
    const s = without(supir, (k) => k === 'model.control_model.input_hint_block.0.weight');
    const b = without(sdxl, (k) => k === 'conditioner.embedders.1.model.ln_final.weight');
    expect(() => mergeCheckpoints(s, b, { required })).toThrow(
      `the merged SUPIR + SDXL weights lack 2 keys the model needs; expected in ${supir.path} (SUPIR): 'model.control_model.input_hint_block.0.weight'; ` +
        `expected in ${sdxl.path} (SDXL base): 'conditioner.embedders.1.model.ln_final.weight'.`,
    );
    const noDenoise = without(supir, (k) => k.startsWith('first_stage_model.denoise_encoder.'));
    expect(() => mergeCheckpoints(noDenoise, sdxl)).toThrow(`lack 1 key the model needs; expected in ${supir.path} (SUPIR): 'first_stage_model.denoise_encoder.*'.`);
    // position_ids is recomputable, so 122 of the 123 text encoder keys count.
    const noText = without(sdxl, (k) => k.startsWith('conditioner.'));
    expect(() => mergeCheckpoints(supir, noText, { required })).toThrow(
      /lack 122 keys the model needs; expected in .*sd_xl_base_1.0_0.9vae.safetensors \(SDXL base\): 'conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight', '[^']+', '[^']+' and 119 more\. .*sd_xl_base_1.0_0.9vae.safetensors has no CLIP ViT-L text encoder \(conditioner.embedders.0.transformer.\*\) and no OpenCLIP ViT-bigG text encoder \(conditioner.embedders.1.model.\*\): use the full single-file SDXL checkpoint, which holds the UNet, the VAE and both text encoders\.$/,
    );
  });

  it('refuses a SUPIR tensor whose shape differs from the base tensor it overrides', async () => {
    const file = path.join(dir, 'SUPIR-wrong.safetensors');
    await writeSafetensors(file, [
      { name: 'model.control_model.input_hint_block.0.weight', dtype: 'F16', shape: [1], data: new Uint8Array(2) },
      { name: 'model.diffusion_model.out.2.weight', dtype: 'F16', shape: [4, 64, 3, 3], data: new Uint8Array(4 * 64 * 9 * 2) },
    ]);
    const wrong = await openCheckpoint(file);
    expect(() => mergeCheckpoints(wrong, sdxl)).toThrow(
      `the SUPIR checkpoint does not fit the SDXL base: shape mismatch for 'model.diffusion_model.out.2.weight': ${file} has [4, 64, 3, 3], ${sdxl.path} has [4, 32, 3, 3]. ` +
        `Is ${sdxl.path} an SDXL 1.0 base checkpoint?`,
    );
    await wrong.close();
  });

  it('says so when the two files are swapped, the same, or both SUPIR', async () => {
    expect(() => mergeCheckpoints(sdxl, supir, { required })).toThrow(
      `the checkpoints look swapped: ${sdxl.path} (given as the SUPIR checkpoint) holds no SUPIR weights (model.control_model.*, model.diffusion_model.project_modules.*, first_stage_model.denoise_encoder.*), ` +
        `while ${supir.path} (given as the SDXL base) does.`,
    );
    await expect(openMerged(sdxl.path, supir.path)).rejects.toThrow(/the checkpoints look swapped/);
    expect(() => mergeCheckpoints(supir, supir)).toThrow(`${supir.path} was given both as the SUPIR checkpoint and as the SDXL base`);
    expect(() => mergeCheckpoints(sdxl, without(sdxl, () => false, 'other.safetensors'))).toThrow(`${sdxl.path} is not a SUPIR checkpoint`);
    expect(() => mergeCheckpoints(supir, without(supir, () => false, 'SUPIR-v0F.ckpt'), { required })).toThrow(
      /SUPIR-v0F.ckpt looks like a SUPIR checkpoint, not the SDXL base \(sd_xl_base_1.0\)\.$/,
    );
  });

  it('openMerged opens both files by path', async () => {
    const merged = await openMerged(supir.path, sdxl.path, { required });
    expect(merged.format).toBe('merged');
    expect(merged.keys()).toHaveLength(required.length);
    expect(Array.from(await merged.float32('denoiser.sigmas')).length).toBe(1000);
    await expect(merged.float32('model.nope')).rejects.toThrow(`neither ${supir.path} nor ${sdxl.path} has tensor 'model.nope'`);
    await merged.close();
  });
});

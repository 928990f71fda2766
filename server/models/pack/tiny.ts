/**
 * Tiny SUPIR checkpoints for tests and demos, made from the golden weights (../shared/golden):
 * split into a SUPIR file (the SUPIR-only keys) and an SDXL file (everything else: UNet, VAE,
 * both text encoders), exactly as users hold the real pair, so `convert` runs its real path.
 */
import path from 'node:path';
import { isSupirKey } from '../checkpoint/merge.ts';
import { SafetensorsFile } from '../checkpoint/safetensors.ts';
import { writeSafetensors, type TensorToWrite } from '../checkpoint/safetensors-writer.ts';
import { Rng, seedFromString } from '../../../nodes/api/rng.ts';
import type { CompileOptions } from './components.ts';

export const GOLDEN_WEIGHT_FILES = ['supir_tiny_model.safetensors', 'supir_tiny_vae.safetensors', 'text_tiny_clip_l.safetensors', 'text_tiny_bigg.safetensors'];

/** The head sizes of the tiny configuration (the yaml's, which the weights do not carry). */
export const TINY_COMPILE_OPTIONS: CompileOptions = { numHeadChannels: 16, clipLHeads: 2, bigGHeads: 2 };

/** Keys the SDXL file never holds: SUPIR's own, and the denoiser's schedule buffer. */
const SKIP = new Set(['denoiser.sigmas']);

export interface TinyOptions {
  /**
   * The golden text encoders are 64 wide, so their crossattn (64 + 64) does not fit the tiny UNet's
   * context of 64: the golden pipeline used a stub text embedder. With `fitText`, both text
   * encoders are replaced by seeded random ones of width 32 in the same layout, so that a whole
   * workflow (text encode → sample) runs on the tiny pack.
   */
  fitText?: boolean;
}

export async function writeTinyCheckpoints(goldenDir: string, outDir: string, opts: TinyOptions = {}): Promise<{ supir: string; sdxl: string }> {
  const supir: TensorToWrite[] = [];
  const sdxl: TensorToWrite[] = [];
  const files: SafetensorsFile[] = [];
  try {
    for (const name of GOLDEN_WEIGHT_FILES) {
      const st = await SafetensorsFile.open(path.join(goldenDir, name));
      files.push(st);
      for (const key of st.keys()) {
        if (SKIP.has(key)) continue;
        const e = st.entry(key);
        if (opts.fitText && key.startsWith('conditioner.') && e.dtype === 'F32') {
          sdxl.push(narrowTextTensor(key, e.shape));
          continue;
        }
        (isSupirKey(key) ? supir : sdxl).push({ name: key, dtype: e.dtype, shape: e.shape, data: () => st.bytes(key) });
      }
    }
    const out = { supir: path.join(outDir, 'SUPIR-tiny.safetensors'), sdxl: path.join(outDir, 'sdxl-tiny.safetensors') };
    await writeSafetensors(out.supir, supir, { format: 'pt' });
    await writeSafetensors(out.sdxl, sdxl, { format: 'pt' });
    return out;
  } finally {
    await Promise.all(files.map((f) => f.close()));
  }
}

/** Text width 64 → 32 (MLP 256 → 128, fused qkv 192 → 96); the pooled projection keeps 32 outputs. */
const NARROW: Record<number, number> = { 64: 32, 256: 128, 192: 96 };

function narrowTextTensor(key: string, shape: readonly number[]): TensorToWrite {
  const dims = key.endsWith('text_projection') ? [NARROW[shape[0]!] ?? shape[0]!, shape[1]!] : shape.map((d) => NARROW[d] ?? d);
  const rng = new Rng(seedFromString(key));
  const data = rng.fillNormal(new Float32Array(dims.reduce((a, b) => a * b, 1)));
  const norm = /(layer_norm|ln_)\w*\.weight$/.test(key);
  const std = key.includes('token_embedding') ? 0.5 : key.includes('position') ? 0.2 : dims.length >= 2 ? 1 / Math.sqrt(key.endsWith('text_projection') ? dims[0]! : dims[1]!) : 0.05;
  for (let i = 0; i < data.length; i++) data[i] = norm ? 1 + 0.1 * data[i]! : key.endsWith('logit_scale') ? Math.log(1 / 0.07) : data[i]! * std;
  return { name: key, dtype: 'F32', shape: dims, data: new Uint8Array(data.buffer) };
}

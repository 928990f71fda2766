/**
 * Tiny SUPIR checkpoints for tests and demos, made from the golden weights (../shared/golden):
 * split into a SUPIR file (the SUPIR-only keys) and an SDXL file (everything else: UNet, VAE,
 * both text encoders), exactly as users hold the real pair, so `convert` runs its real path.
 */
import path from 'node:path';
import { isSupirKey } from '../checkpoint/merge.ts';
import { SafetensorsFile } from '../checkpoint/safetensors.ts';
import { writeSafetensors, type TensorToWrite } from '../checkpoint/safetensors-writer.ts';
import type { CompileOptions } from './components.ts';

export const GOLDEN_WEIGHT_FILES = ['supir_tiny_model.safetensors', 'supir_tiny_vae.safetensors', 'text_tiny_clip_l.safetensors', 'text_tiny_bigg.safetensors'];

/** The head sizes of the tiny configuration (the yaml's, which the weights do not carry). */
export const TINY_COMPILE_OPTIONS: CompileOptions = { numHeadChannels: 16, clipLHeads: 2, bigGHeads: 2 };

/** Keys the SDXL file never holds: SUPIR's own, and the denoiser's schedule buffer. */
const SKIP = new Set(['denoiser.sigmas']);

export async function writeTinyCheckpoints(goldenDir: string, outDir: string): Promise<{ supir: string; sdxl: string }> {
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

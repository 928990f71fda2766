/**
 * The memory estimate (nodes/supir/lib/memory-estimate.ts) for the real SUPIR at 512, 1024 and 2048
 * px, fp32 and fp16 packs, with the weights' bytes counted from the official key layout; and what
 * fits on 12, 16 and 24 GB cards. Estimates, checked on this CPU against measured peak RSS by
 * test/supir/memory-estimate.test.ts (tiny model) — no GPU here.
 */
import { estimateMemory, SDXL_UNET, SDXL_VAE, tiledVaeAbove, VAE_UNTILED_BUDGET, type EstimateInput } from '../nodes/supir/lib/memory-estimate.ts';
import { BIGG, CLIP_L, officialBigGKeys, officialClipLKeys, officialKeys, officialVaeKeys, SDXL, SDXL_VAE as VAE_LAYOUT } from '../server/models/supir/official-layout.ts';

const params = (keys: Map<string, number[]>): number => [...keys.values()].reduce((a, dims) => a + dims.reduce((x, y) => x * y, 1), 0);
/** The ZeroSFT/ZeroCrossAttn connectors are not in the SDXL UNet's keys (bench/convert.ts counts them). */
const PROJECT_PARAMS = 54_797_440;
/** Room CUDA's context and the runtime take before any weight (a rough, stated allowance). */
const CUDA_OVERHEAD = 0.8e9;

function input(precision: 'fp32' | 'fp16'): EstimateInput {
  const half = precision === 'fp16' ? 2 : 4;
  const denoiser = params(officialKeys(SDXL, 'unet')) + params(officialKeys(SDXL, 'control')) + PROJECT_PARAMS;
  return {
    weights: {
      denoiser_step: denoiser * half,
      clip_l: params(officialClipLKeys(CLIP_L)) * half,
      clip_bigg: params(officialBigGKeys(BIGG)) * half,
      // The VAE stays float32 in every pack.
      vae_encoder: params(officialVaeKeys(VAE_LAYOUT, ['encoder'])) * 4,
      vae_denoise_encoder: params(officialVaeKeys(VAE_LAYOUT, ['denoise_encoder'])) * 4,
      vae_decoder: params(officialVaeKeys(VAE_LAYOUT, ['decoder'])) * 4,
    },
    activationBytes: half,
    unet: SDXL_UNET,
    vae: SDXL_VAE,
  };
}

export function measureMemory(log: (line: string) => void): void {
  const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;
  for (const precision of ['fp16', 'fp32'] as const) {
    const inp = input(precision);
    const weights = Object.values(inp.weights).reduce((a, b) => a + b, 0);
    // Tiled VAE by default where an untiled pass would need more than the sampling stage's activations at 1024 px.
    const threshold = tiledVaeAbove(inp, VAE_UNTILED_BUDGET);
    log(`  ${precision} pack: weights ${gb(weights)} (denoiser_step ${gb(inp.weights.denoiser_step!)}); tiled VAE by default above ${threshold} px (untiled pass over 2 GB)`);
    for (const px of [512, 1024, 2048]) {
      const e = estimateMemory(inp, px, px, px > threshold);
      const stages = e.stages.map((s) => `${s.stage} ${gb(s.peak)}`).join(', ');
      log(`    ${px}x${px}: peak ${gb(e.peak)} (${stages}); tiled VAE ${e.tiledVae ? 'on' : 'off'}`);
    }
  }
  for (const card of [12e9, 16e9, 24e9]) {
    const fits = (precision: 'fp16' | 'fp32', px: number): boolean => estimateMemory(input(precision), px, px, true).peak + CUDA_OVERHEAD <= card;
    const largest = (precision: 'fp16' | 'fp32'): string => {
      let px = 0;
      while (px < 8192 && fits(precision, px + 64)) px += 64;
      return px ? `${px}x${px}` : 'nothing';
    };
    log(`  a ${card / 1e9} GB card (less ${gb(CUDA_OVERHEAD)} for CUDA), tiled VAE, untiled sampling: fp16 up to ${largest('fp16')}, fp32 up to ${largest('fp32')}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) measureMemory((l) => process.stdout.write(`${l}\n`));

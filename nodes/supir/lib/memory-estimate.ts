/**
 * How much memory a SUPIR run needs, read before it runs: from a pack's manifest (its weights'
 * bytes and precision, the architecture it was compiled from) and the image size, per stage — the
 * stage-1 VAE passes, sampling (denoiser_step with CFG) and the final decode — the resident
 * weights plus the largest live activations. With fused attention (one op, no [T, T] scores)
 * every activation is O(pixels).
 *
 * It is an estimate for deciding (which card, tiled VAE or not, which tile), not an allocator's
 * count: test/supir/memory-estimate.test.ts checks it against measured peak RSS on this CPU.
 */
import type { PackManifest } from './pack-manifest.ts';

export interface TrunkShape {
  modelChannels: number;
  channelMult: number[];
  numResBlocks: number;
  transformerDepth: number[];
  contextDim: number;
}

export interface VaeShape {
  /** Channels per level, highest resolution first (SDXL: 128, 256, 512, 512). */
  levelChannels: number[];
  /** Pixels per latent cell (8 for SDXL). */
  factor: number;
}

export interface EstimateInput {
  /** Bytes of each component's weights (ONNX file and external data). */
  weights: Record<string, number>;
  /** Bytes per activation of the denoiser and text encoders: 2 in an fp16 pack, else 4. The VAE stays float32. */
  activationBytes: number;
  unet: TrunkShape;
  vae: VaeShape;
}

export interface StagePeak {
  stage: 'stage 1 (VAE)' | 'text encode' | 'sampling' | 'decode';
  weights: number;
  activations: number;
  peak: number;
}

export interface MemoryEstimate {
  width: number;
  height: number;
  tiledVae: boolean;
  stages: StagePeak[];
  peak: number;
}

/** Allocator slack over the live tensors (arena rounding, per-op scratch), fitted on this CPU. */
const ARENA_FACTOR = 1.5;
/** The sampler's batch: [uncond; cond] per image. */
const CFG_BATCH = 2;
/** Above this many bytes of activations an untiled VAE pass is not worth the risk: tiles by default. */
export const VAE_UNTILED_BUDGET = 2e9;
/** Default tile of the tiled VAE, in pixels (the official tilevae's decoder tile is 64 latent cells = 512 px). */
export const VAE_TILE_PX = 512;

/** Values per image of everything a denoiser_step run holds at its peak, for a latent of h x w cells. */
export function denoiserValues(u: TrunkShape, h: number, w: number): number {
  const at = (level: number): number => Math.ceil(h / 2 ** level) * Math.ceil(w / 2 ** level);
  const ch = (level: number): number => u.modelChannels * u.channelMult[level]!;
  const last = u.channelMult.length - 1;
  // The encoder's outputs: the UNet keeps them as skips and GLVControl returns them as the 10 control features.
  let features = ch(0) * at(0);
  for (let l = 0; l <= last; l++) {
    features += u.numResBlocks * ch(l) * at(l);
    if (l < last) features += ch(l) * at(l + 1);
  }
  const middle = ch(last) * at(last);
  // Working set at the widest point: a decoder ResBlock at level 0 (its concatenated input, the
  // normalised copy, the conv out) and a transformer block (q, k, v, the attention out and the
  // GEGLU's 8C-wide hidden): O(tokens) now that attention is fused.
  let working = 4 * 2 * ch(0) * at(0);
  for (let l = 0; l <= last; l++) if (u.transformerDepth[l]! > 0) working = Math.max(working, 12 * ch(l) * at(l) + u.contextDim * 77 * 2);
  return 2 * features + middle + working;
}

/** Values of a VAE pass's peak for an image of h x w pixels: three full tensors at its widest level. */
export function vaeValues(v: VaeShape, h: number, w: number): number {
  let peak = 0;
  v.levelChannels.forEach((c, level) => {
    const cells = Math.ceil(h / 2 ** level) * Math.ceil(w / 2 ** level);
    // A ResBlock entering the level reads the wider channels of the level below it.
    const wide = Math.max(c, v.levelChannels[level + 1] ?? c);
    peak = Math.max(peak, 3 * wide * cells);
  });
  return peak;
}

/** Bytes of activations one sampler call needs on the device for a latent of h x w cells (a tile, when tiled). */
export function samplingActivations(input: EstimateInput, h: number, w: number): number {
  return ARENA_FACTOR * input.activationBytes * CFG_BATCH * denoiserValues(input.unet, h, w);
}

/** Estimates each stage's peak; the VAE passes tile (at VAE_TILE_PX) when `tiledVae`. */
export function estimateMemory(input: EstimateInput, width: number, height: number, tiledVae: boolean): MemoryEstimate {
  const sum = (...names: string[]): number => names.reduce((a, n) => a + (input.weights[n] ?? 0), 0);
  const vaeSide = (side: number): number => (tiledVae ? Math.min(side, VAE_TILE_PX + 2 * 64) : side);
  const vaePass = ARENA_FACTOR * 4 * vaeValues(input.vae, vaeSide(height), vaeSide(width));
  const latentH = Math.ceil(height / input.vae.factor);
  const latentW = Math.ceil(width / input.vae.factor);
  const sampling = samplingActivations(input, latentH, latentW);
  const stage = (name: StagePeak['stage'], weights: number, activations: number): StagePeak => ({ stage: name, weights, activations, peak: weights + activations });
  // Each stage needs its own components resident; the runtime closes the others under its budget.
  const textActivations = ARENA_FACTOR * input.activationBytes * CFG_BATCH * 77 * 8 * 1280;
  const stages = [
    // Stage 1 runs the denoise encoder, then the decoder; the sampler's encode runs the plain encoder.
    stage('stage 1 (VAE)', sum('vae_denoise_encoder', 'vae_decoder', 'vae_encoder'), vaePass),
    stage('text encode', sum('clip_l', 'clip_bigg'), textActivations),
    stage('sampling', sum('denoiser_step'), sampling),
    stage('decode', sum('vae_decoder'), vaePass),
  ];
  return { width, height, tiledVae, stages, peak: Math.max(...stages.map((s) => s.peak)) };
}

/** SDXL's shapes, for packs written before the manifest recorded them. */
export const SDXL_UNET: TrunkShape = { modelChannels: 320, channelMult: [1, 2, 4], numResBlocks: 2, transformerDepth: [0, 2, 10], contextDim: 2048 };
export const SDXL_VAE: VaeShape = { levelChannels: [128, 256, 512, 512], factor: 8 };

/** What the estimate needs, from a pack's manifest. */
export function estimateInput(manifest: PackManifest): EstimateInput {
  const arch = manifest.architecture as { unet?: TrunkShape; vae?: VaeShape };
  const weights = Object.fromEntries(Object.entries(manifest.components).map(([name, c]) => [name, c.bytes]));
  return { weights, activationBytes: manifest.precision === 'fp16' ? 2 : 4, unet: arch.unet ?? SDXL_UNET, vae: arch.vae ?? SDXL_VAE };
}

/**
 * Tiled VAE by default above the size where an untiled pass would need more than `budget` bytes
 * beyond the VAE weights: the largest square side (in multiples of 64 px) that still fits.
 */
export function tiledVaeAbove(input: EstimateInput, budget: number): number {
  let side = 64;
  while (side < 16384 && ARENA_FACTOR * 4 * vaeValues(input.vae, side + 64, side + 64) <= budget) side += 64;
  return side;
}

/**
 * The VAE tile a node uses: its widget's pixels, or for -1 (auto) VAE_TILE_PX where the image is
 * larger than the square whose untiled pass the estimate puts over VAE_UNTILED_BUDGET, else 0.
 */
export function autoVaeTile(widget: number, manifest: PackManifest, width: number, height: number): number {
  if (widget >= 0) return widget;
  const side = tiledVaeAbove(estimateInput(manifest), VAE_UNTILED_BUDGET);
  return width * height > side * side ? VAE_TILE_PX : 0;
}

/** "about 9.1 GB at 1024x1024 (fp16); tiled VAE on" */
export function describeEstimate(e: MemoryEstimate, precision: string): string {
  const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;
  const sampling = e.stages.find((s) => s.stage === 'sampling')!;
  return `about ${gb(e.peak)} at ${e.width}x${e.height} (${precision}; sampling ${gb(sampling.peak)}); tiled VAE ${e.tiledVae ? 'on' : 'off'}`;
}

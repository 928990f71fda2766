/**
 * The AutoencoderKL architecture (sgm `Encoder`/`Decoder` ddconfig), read back from the weights
 * rather than from a yaml: a checkpoint is the only thing a user hands us, and the tiny golden
 * model (ch 32, ch_mult [1,2], 1 res block) and the SDXL VAE (ch 128, [1,2,4,4], 2) differ in
 * every one of these numbers. Only `has()` and shapes are used, so any Weights source works.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import type { Weights } from '../onnx/layers.ts';

export interface VaeTowerConfig {
  /** Checkpoint prefix, e.g. `first_stage_model.encoder`. */
  prefix: string;
  /** Output channels of each level (ch · ch_mult[i]), level 0 first (highest resolution). */
  levelChannels: number[];
  /** ResnetBlocks per level: num_res_blocks in the encoder, num_res_blocks + 1 in the decoder. */
  blocksPerLevel: number;
  /** Per level, how many AttnBlocks follow the ResnetBlocks (attn_resolutions; 0 for SDXL). */
  attnPerLevel: number[];
  /** sgm builds mid.attn_1 unless attn_type is 'none'; absent weights mean an identity. */
  midAttention: boolean;
  /** conv_in input channels (3 for the encoder, z_channels for the decoder). */
  inChannels: number;
  /** conv_out output channels (2·z_channels with double_z for the encoder, 3 for the decoder). */
  outChannels: number;
}

export interface VaeConfig {
  encoder: VaeTowerConfig;
  decoder: VaeTowerConfig;
  /** The latent channels (embed_dim: post_quant_conv's input). */
  latentChannels: number;
  /** Spatial downsampling factor, 2^(levels − 1): 8 for SDXL, 2 for the tiny model. */
  factor: number;
}

export const VAE_PREFIX = 'first_stage_model';

function dims(w: Weights, key: string): number[] {
  return w.get(key).dims;
}

function countWhile(test: (i: number) => boolean): number {
  let n = 0;
  while (test(n)) n++;
  return n;
}

/** Reads one tower; `kind` picks sgm's naming (`down.i` vs `up.i`, and which level resamples). */
export function towerConfig(w: Weights, prefix: string, kind: 'encoder' | 'decoder'): VaeTowerConfig {
  const level = kind === 'encoder' ? 'down' : 'up';
  if (!w.has(`${prefix}.conv_in.weight`)) throw new StudioError('NOT_FOUND', `no VAE ${kind} weights under '${prefix}'`);
  const levels = countWhile((i) => w.has(`${prefix}.${level}.${i}.block.0.conv1.weight`));
  const blocksPerLevel = countWhile((j) => w.has(`${prefix}.${level}.0.block.${j}.conv1.weight`));
  if (levels === 0 || blocksPerLevel === 0) throw new StudioError('BAD_INPUT', `VAE ${kind} '${prefix}' has no ResnetBlocks`);
  const levelChannels: number[] = [];
  const attnPerLevel: number[] = [];
  for (let i = 0; i < levels; i++) {
    const last = `${prefix}.${level}.${i}.block.${blocksPerLevel - 1}.conv2.weight`;
    if (!w.has(last)) throw new StudioError('BAD_INPUT', `VAE ${kind} level ${i} has fewer than ${blocksPerLevel} ResnetBlocks`);
    levelChannels.push(dims(w, last)[0]!);
    attnPerLevel.push(countWhile((j) => w.has(`${prefix}.${level}.${i}.attn.${j}.q.weight`)));
    // Encoder: every level but the last downsamples. Decoder: every level but 0 upsamples.
    const resample = kind === 'encoder' ? `${prefix}.down.${i}.downsample.conv.weight` : `${prefix}.up.${i}.upsample.conv.weight`;
    const expected = kind === 'encoder' ? i < levels - 1 : i > 0;
    if (w.has(resample) !== expected) {
      throw new StudioError('BAD_INPUT', `VAE ${kind} level ${i}: ${expected ? 'missing' : 'unexpected'} ${kind === 'encoder' ? 'downsample' : 'upsample'}`);
    }
  }
  return {
    prefix,
    levelChannels,
    blocksPerLevel,
    attnPerLevel,
    midAttention: w.has(`${prefix}.mid.attn_1.q.weight`),
    inChannels: dims(w, `${prefix}.conv_in.weight`)[1]!,
    outChannels: dims(w, `${prefix}.conv_out.weight`)[0]!,
  };
}

/** The whole autoencoder, checked for internal consistency (moments = 2 × latent channels). */
export function vaeConfig(w: Weights, root = VAE_PREFIX): VaeConfig {
  const encoder = towerConfig(w, `${root}.encoder`, 'encoder');
  const decoder = towerConfig(w, `${root}.decoder`, 'decoder');
  const [quantOut, quantIn] = dims(w, `${root}.quant_conv.weight`) as [number, number];
  const [postOut, latentChannels] = dims(w, `${root}.post_quant_conv.weight`) as [number, number];
  if (quantIn !== encoder.outChannels || quantOut !== 2 * latentChannels) {
    throw new StudioError('BAD_INPUT', `VAE quant_conv [${quantOut}, ${quantIn}] does not map the encoder's ${encoder.outChannels} channels to 2×${latentChannels} moments`);
  }
  if (postOut !== decoder.inChannels) {
    throw new StudioError('BAD_INPUT', `VAE post_quant_conv gives ${postOut} channels, the decoder takes ${decoder.inChannels}`);
  }
  if (encoder.levelChannels.length !== decoder.levelChannels.length) {
    throw new StudioError('BAD_INPUT', `VAE encoder has ${encoder.levelChannels.length} levels, the decoder ${decoder.levelChannels.length}`);
  }
  return { encoder, decoder, latentChannels, factor: 2 ** (encoder.levelChannels.length - 1) };
}

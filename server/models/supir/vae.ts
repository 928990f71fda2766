/**
 * Compiles the three AutoencoderKL graphs SUPIR runs from `first_stage_model.*` weights:
 *
 * - `encoder`:         image [B,3,H,W] in [-1,1] → `mean`, `logvar` [B,z,H/f,W/f] (quant_conv(encoder(x))
 *                      split in two, logvar clamped to [-30, 20] as DiagonalGaussianDistribution does).
 * - `denoise_encoder`: the same architecture with SUPIR's degradation-robust weights and the shared
 *                      quant_conv, same outputs (SUPIR only uses its mode, `mean`; the logvar half
 *                      costs one Clip and keeps the two graphs interchangeable).
 * - `decoder`:         `latent` [B,z,h,w] → `image` [B,3,f·h,f·w] = decoder(post_quant_conv(latent)).
 *
 * The graphs work in the VAE's own, UNscaled latent space, exactly like sgm's AutoencoderKL.
 * The SDXL scale factor 0.13025 is applied in one place only, vae-pipeline.ts, so that the
 * intermediates here match the official `moments`/`posterior` tensors one for one.
 * All three run in fp32: the SDXL VAE overflows in fp16 (SUPIR itself uses bf16 or fp32).
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import { GraphBuilder, type Value } from '../onnx/builder.ts';
import { conv2d, silu, type Weights } from '../onnx/layers.ts';
import { attnBlock, downsample, midBlock, resnetBlock, upsample, vaeNorm } from './vae-blocks.ts';
import { towerConfig, VAE_PREFIX, vaeConfig, type VaeConfig, type VaeTowerConfig } from './vae-config.ts';

/** The encoder trunk up to conv_out (2·z_channels moments before quant_conv). */
export function encoderTower(g: GraphBuilder, w: Weights, c: VaeTowerConfig, x: Value): Value {
  const p = c.prefix;
  let h = conv2d(g, w, `${p}.conv_in`, x);
  const levels = c.levelChannels.length;
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < c.blocksPerLevel; j++) {
      h = resnetBlock(g, w, `${p}.down.${i}.block.${j}`, h);
      if (j < c.attnPerLevel[i]!) h = attnBlock(g, w, `${p}.down.${i}.attn.${j}`, h);
    }
    if (i < levels - 1) h = downsample(g, w, `${p}.down.${i}.downsample`, h);
  }
  h = midBlock(g, w, `${p}.mid`, h, c.midAttention);
  return conv2d(g, w, `${p}.conv_out`, silu(g, vaeNorm(g, w, `${p}.norm_out`, h)));
}

/** The decoder trunk: conv_in, mid, up levels from the deepest to level 0, norm_out, conv_out. */
export function decoderTower(g: GraphBuilder, w: Weights, c: VaeTowerConfig, z: Value): Value {
  const p = c.prefix;
  let h = midBlock(g, w, `${p}.mid`, conv2d(g, w, `${p}.conv_in`, z), c.midAttention);
  for (let i = c.levelChannels.length - 1; i >= 0; i--) {
    for (let j = 0; j < c.blocksPerLevel; j++) {
      h = resnetBlock(g, w, `${p}.up.${i}.block.${j}`, h);
      if (j < c.attnPerLevel[i]!) h = attnBlock(g, w, `${p}.up.${i}.attn.${j}`, h);
    }
    if (i > 0) h = upsample(g, w, `${p}.up.${i}.upsample`, h);
  }
  return conv2d(g, w, `${p}.conv_out`, silu(g, vaeNorm(g, w, `${p}.norm_out`, h)));
}

export type EncoderKind = 'encoder' | 'denoise_encoder';

/** encoder or denoise_encoder + quant_conv → the posterior's mean and clamped logvar. */
export function buildEncoderGraph(w: Weights, kind: EncoderKind, root = VAE_PREFIX): Uint8Array {
  return encoderGraph(w, kind, root).toBytes();
}

export function encoderGraph(w: Weights, kind: EncoderKind, root = VAE_PREFIX): GraphBuilder {
  const cfg = vaeConfig(w, root);
  const tower = kind === 'encoder' ? cfg.encoder : towerConfig(w, `${root}.${kind}`, 'encoder');
  if (tower.outChannels !== cfg.encoder.outChannels) {
    throw new StudioError('BAD_INPUT', `VAE ${kind} gives ${tower.outChannels} moment channels, quant_conv takes ${cfg.encoder.outChannels}`);
  }
  const g = new GraphBuilder({ name: `supir_vae_${kind}` });
  const x = g.input('image', 'float32', ['batch', tower.inChannels, 'height', 'width']);
  const moments = conv2d(g, w, `${root}.quant_conv`, encoderTower(g, w, tower, x));
  const [mean, logvar] = g.opMulti('Split', [moments], 2, { axis: 1 }) as [Value, Value];
  const latentDims = ['batch', cfg.latentChannels, 'latent_height', 'latent_width'];
  g.output(mean, 'mean', 'float32', latentDims);
  g.output(g.op('Clip', [logvar, g.scalar(-30), g.scalar(20)]), 'logvar', 'float32', latentDims);
  return g;
}

/** post_quant_conv + decoder on an unscaled latent. */
export function buildDecoderGraph(w: Weights, root = VAE_PREFIX): Uint8Array {
  return decoderGraph(w, root).toBytes();
}

export function decoderGraph(w: Weights, root = VAE_PREFIX): GraphBuilder {
  const cfg = vaeConfig(w, root);
  const g = new GraphBuilder({ name: 'supir_vae_decoder' });
  const z = g.input('latent', 'float32', ['batch', cfg.latentChannels, 'latent_height', 'latent_width']);
  const h = conv2d(g, w, `${root}.post_quant_conv`, z);
  g.output(decoderTower(g, w, cfg.decoder, h), 'image', 'float32', ['batch', cfg.decoder.outChannels, 'height', 'width']);
  return g;
}

export interface CompiledVae {
  config: VaeConfig;
  encoder: Uint8Array;
  denoiseEncoder: Uint8Array;
  decoder: Uint8Array;
}

/** All three graphs from one Weights source that holds encoder, denoise_encoder and decoder keys. */
export function compileVae(w: Weights, root = VAE_PREFIX): CompiledVae {
  return {
    config: vaeConfig(w, root),
    encoder: buildEncoderGraph(w, 'encoder', root),
    denoiseEncoder: buildEncoderGraph(w, 'denoise_encoder', root),
    decoder: buildDecoderGraph(w, root),
  };
}

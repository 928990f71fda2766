/**
 * The blocks of sgm's `diffusionmodules/model.py` that the KL autoencoder is made of, each
 * adding initializers named by their checkpoint keys. Every GroupNorm here is sgm's `Normalize`:
 * 32 groups, eps 1e-6 (not the UNet's 1e-5). Dropout is 0 at inference and temb is None in the
 * VAE, so neither appears.
 */
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { attention, conv2d, fromTokens, groupNorm, silu, toTokens, type Weights } from '../onnx/layers.ts';

const VAE_GN_EPS = 1e-6;

export function vaeNorm(g: GraphBuilder, w: Weights, prefix: string, x: Value): Value {
  return groupNorm(g, w, prefix, x, { groups: 32, eps: VAE_GN_EPS });
}

/** ResnetBlock: x + conv2(silu(norm2(conv1(silu(norm1(x)))))), x through nin_shortcut when channels change. */
export function resnetBlock(g: GraphBuilder, w: Weights, p: string, x: Value): Value {
  let h = conv2d(g, w, `${p}.conv1`, silu(g, vaeNorm(g, w, `${p}.norm1`, x)));
  h = conv2d(g, w, `${p}.conv2`, silu(g, vaeNorm(g, w, `${p}.norm2`, h)));
  // sgm names the 1×1 projection nin_shortcut; conv_shortcut (3×3) exists only with
  // use_conv_shortcut, which no AutoencoderKL config sets, but costs nothing to honour.
  let skip = x;
  if (w.has(`${p}.nin_shortcut.weight`)) skip = conv2d(g, w, `${p}.nin_shortcut`, x);
  else if (w.has(`${p}.conv_shortcut.weight`)) skip = conv2d(g, w, `${p}.conv_shortcut`, x);
  return g.op('Add', [skip, h]);
}

/**
 * Vanilla AttnBlock: one head over all H·W positions with dim = C, softmax(q kᵀ / √C) v, then a
 * 1×1 proj_out and the residual. (`vanilla-xformers` in the real yaml has the same weights and math.)
 * The scores are (H·W)² floats at the deepest level: 1 GiB for a 1024² image (128² latent), 16 GiB
 * at 2048², which is why the official code tiles large images (docs/supir-reference.md §5).
 */
export function attnBlock(g: GraphBuilder, w: Weights, p: string, x: Value): Value {
  const channels = w.get(`${p}.q.weight`).dims[0]!;
  const h = vaeNorm(g, w, `${p}.norm`, x);
  const tokens = (name: string): Value => toTokens(g, conv2d(g, w, `${p}.${name}`, h));
  const out = attention(g, tokens('q'), tokens('k'), tokens('v'), 1, channels);
  return g.op('Add', [x, conv2d(g, w, `${p}.proj_out`, fromTokens(g, out, x))]);
}

/**
 * Downsample (with_conv): torch pads (0,1,0,1), i.e. one zero row at the bottom and one zero
 * column at the right only, then a 3×3 stride-2 conv without padding. The padding is an explicit
 * Pad rather than Conv's asymmetric `pads` attribute: cuDNN has no asymmetric padding (the CUDA EP
 * emulates it by padding both sides and slicing) and onnxruntime's WebGPU Conv rejects it.
 */
export function downsample(g: GraphBuilder, w: Weights, p: string, x: Value): Value {
  const padded = g.op('Pad', [x, g.int64s([0, 0, 0, 0, 0, 0, 1, 1])], { mode: 'constant' });
  return conv2d(g, w, `${p}.conv`, padded, { stride: 2, pads: [0, 0, 0, 0] });
}

/** Upsample (with_conv): nearest ×2 (torch 'nearest' = asymmetric coordinates, floor), then a 3×3 conv. */
export function upsample(g: GraphBuilder, w: Weights, p: string, x: Value): Value {
  const up = g.op('Resize', [x, null, g.constant(Float32Array.of(1, 1, 2, 2), [4])], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
  return conv2d(g, w, `${p}.conv`, up);
}

/** The shared middle: block_1, attn_1 (when the checkpoint has one), block_2. */
export function midBlock(g: GraphBuilder, w: Weights, p: string, x: Value, withAttention: boolean): Value {
  let h = resnetBlock(g, w, `${p}.block_1`, x);
  if (withAttention) h = attnBlock(g, w, `${p}.attn_1`, h);
  return resnetBlock(g, w, `${p}.block_2`, h);
}

/**
 * SUPIR's two connectors from GLVControl features into the UNet decoder ("project modules"):
 * ZeroSFT (spatial feature transform replacing the skip concatenation) and ZeroCrossAttn
 * (decoder tokens attending over control tokens). Sizes come from the weights: ZeroSFT's hidden
 * width is hard-coded 128 in the official code, but the tiny golden model uses 24, so it is read
 * from `mlp_shared.0.weight`. `controlScale` enters the network only here.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { conv2d, fromTokens, groupNorm, silu, toTokens, type Weights } from '../onnx/layers.ts';
import { crossAttention } from './unet-blocks.ts';

export interface ZeroSftArch {
  kind: 'sft';
  prefix: string;
  /** Control feature channels (label_nc). */
  labelNc: number;
  /** Skip-feature channels that zero_conv adds to (norm_nc). */
  normNc: number;
  /** Decoder channels concatenated in front (0 for the middle-block module). */
  concatChannels: number;
  nhidden: number;
}

export interface ZeroCrossAttnArch {
  kind: 'xattn';
  prefix: string;
  queryDim: number;
  contextDim: number;
  heads: number;
  dimHead: number;
}

export type ProjectArch = ZeroSftArch | ZeroCrossAttnArch;

/** Reads `prefix` (e.g. `model.diffusion_model.project_modules.3`) as either module type. */
export function projectArch(w: Weights, prefix: string): ProjectArch {
  if (w.has(`${prefix}.attn.to_q.weight`)) {
    const [inner, queryDim] = w.get(`${prefix}.attn.to_q.weight`).dims as [number, number];
    // ZeroCrossAttn hard-codes heads = query_dim // 64, dim_head = 64.
    const dimHead = 64;
    if (inner % dimHead !== 0) throw new StudioError('BAD_INPUT', `'${prefix}.attn' inner size ${inner} is not a multiple of 64`);
    return { kind: 'xattn', prefix, queryDim, contextDim: w.get(`${prefix}.attn.to_k.weight`).dims[1]!, heads: inner / dimHead, dimHead };
  }
  const [nhidden, labelNc] = w.get(`${prefix}.mlp_shared.0.weight`).dims as [number, number];
  const normNc = w.get(`${prefix}.zero_conv.weight`).dims[0]!;
  const total = w.get(`${prefix}.param_free_norm.weight`).dims[0]!;
  return { kind: 'sft', prefix, labelNc, normNc, concatChannels: total - normNc, nhidden };
}

/** out·cs + raw·(1 − cs), in the official order of operations. */
function blend(g: GraphBuilder, out: Value, raw: Value, cs: Value): Value {
  return g.op('Add', [g.op('Mul', [out, cs]), g.op('Mul', [raw, g.op('Sub', [g.scalar(1), cs])])]);
}

/**
 * ZeroSFT.forward(c, h, h_ori, cs): `h` is the encoder skip (or the middle-block output), `hOri`
 * the current decoder feature, concatenated in front (`cat([h_ori, h])`, as the plain UNet's
 * `cat([h, skip])`). param_free_norm is an affine GroupNorm32 despite its name.
 */
export function zeroSft(g: GraphBuilder, w: Weights, a: ZeroSftArch, c: Value, h: Value, hOri: Value | null, cs: Value): Value {
  const concat = hOri !== null && a.concatChannels > 0;
  // The official code would concatenate after the norm here and then fail to blend; never used.
  if (hOri !== null && !concat) throw new StudioError('BAD_INPUT', `'${a.prefix}' has no concat channels but was given a decoder feature`);
  const raw = concat ? g.op('Concat', [hOri, h], { axis: 1 }) : h;
  let x = g.op('Add', [h, conv2d(g, w, `${a.prefix}.zero_conv`, c)]);
  if (concat) x = g.op('Concat', [hOri, x], { axis: 1 });
  const actv = silu(g, conv2d(g, w, `${a.prefix}.mlp_shared.0`, c));
  const gamma = conv2d(g, w, `${a.prefix}.zero_mul`, actv);
  const beta = conv2d(g, w, `${a.prefix}.zero_add`, actv);
  const normed = groupNorm(g, w, `${a.prefix}.param_free_norm`, x, { eps: 1e-5 });
  const out = g.op('Add', [g.op('Mul', [normed, g.op('Add', [gamma, g.scalar(1)])]), beta]);
  return blend(g, out, raw, cs);
}

/** ZeroCrossAttn.forward(context, x, cs) = x + Attn(GN(x) tokens, GN(context) tokens)·cs. */
export function zeroCrossAttn(g: GraphBuilder, w: Weights, a: ZeroCrossAttnArch, c: Value, x: Value, cs: Value): Value {
  const q = toTokens(g, groupNorm(g, w, `${a.prefix}.norm1`, x, { eps: 1e-5 }));
  const kv = toTokens(g, groupNorm(g, w, `${a.prefix}.norm2`, c, { eps: 1e-5 }));
  const attn = fromTokens(g, crossAttention(g, w, `${a.prefix}.attn`, q, kv, a.heads, a.dimHead), x);
  return g.op('Add', [x, g.op('Mul', [attn, cs])]);
}

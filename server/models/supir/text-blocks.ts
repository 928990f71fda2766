/**
 * The transformer pieces of SDXL's two CLIP text towers. Both are pre-LN GPT-style stacks with a
 * causal mask; they differ only in key names, in how q/k/v are stored and in the activation:
 *
 * - HF CLIPTextModel (CLIP-L): layer_norm1/2, separate q/k/v_proj, mlp.fc1/fc2, quick_gelu.
 * - OpenCLIP ResidualAttentionBlock (bigG): ln_1/2, nn.MultiheadAttention's fused
 *   in_proj_weight [3W, W] (q, k, v rows in that order), mlp.c_fc/c_proj, exact erf GELU.
 *
 * Weights are added under their checkpoint keys; the fused in_proj is split by a graph op rather
 * than in TypeScript, so every initializer is exactly a checkpoint tensor.
 */
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { attention, gelu, layerNorm, linear, param, quickGelu, type Weights } from '../onnx/layers.ts';

/**
 * x + out_proj(causal attention(q, k, v)), heads split contiguously, q scaled by head_dim^-½. The
 * causal mask is the only one either tower uses (HF's finfo.min above the diagonal, open_clip's
 * -inf: the same softmax); there is no padding mask, so positions after the eot attend to the
 * padding and their states are part of crossattn.
 */
function attentionResidual(g: GraphBuilder, w: Weights, outProj: string, x: Value, qkv: [Value, Value, Value], width: number, heads: number): Value {
  const [q, k, v] = qkv;
  return g.op('Add', [x, linear(g, w, outProj, attention(g, q, k, v, heads, width / heads, { causal: true }))]);
}

/** One HF CLIPEncoderLayer (`p` = `...encoder.layers.i`). */
export function hfClipLayer(g: GraphBuilder, w: Weights, p: string, x: Value, width: number, heads: number): Value {
  const h = layerNorm(g, w, `${p}.layer_norm1`, x);
  const qkv: [Value, Value, Value] = [linear(g, w, `${p}.self_attn.q_proj`, h), linear(g, w, `${p}.self_attn.k_proj`, h), linear(g, w, `${p}.self_attn.v_proj`, h)];
  const a = attentionResidual(g, w, `${p}.self_attn.out_proj`, x, qkv, width, heads);
  const m = linear(g, w, `${p}.mlp.fc2`, quickGelu(g, linear(g, w, `${p}.mlp.fc1`, layerNorm(g, w, `${p}.layer_norm2`, a))));
  return g.op('Add', [a, m]);
}

/** One OpenCLIP ResidualAttentionBlock (`p` = `...transformer.resblocks.i`). */
export function openClipResblock(g: GraphBuilder, w: Weights, p: string, x: Value, width: number, heads: number): Value {
  const h = layerNorm(g, w, `${p}.ln_1`, x);
  const inW = param(g, w, `${p}.attn.in_proj_weight`, [3 * width, width]);
  const inB = param(g, w, `${p}.attn.in_proj_bias`, [3 * width]);
  const fused = g.op('Add', [g.op('MatMul', [h, g.op('Transpose', [inW], { perm: [1, 0] })]), inB]);
  const [q, k, v] = g.opMulti('Split', [fused, g.int64s([width, width, width])], 3, { axis: -1 }) as [Value, Value, Value];
  const a = attentionResidual(g, w, `${p}.attn.out_proj`, x, [q, k, v], width, heads);
  const m = linear(g, w, `${p}.mlp.c_proj`, gelu(g, linear(g, w, `${p}.mlp.c_fc`, layerNorm(g, w, `${p}.ln_2`, a))));
  return g.op('Add', [a, m]);
}

/** token_embedding(ids) + position embedding ([T, W], added to every row). */
export function embed(g: GraphBuilder, tokenEmbedding: Value, positions: Value, ids: Value): Value {
  return g.op('Add', [g.op('Gather', [tokenEmbedding, ids], { axis: 0 }), positions]);
}

/**
 * hidden[b, argmax(ids[b])] for each row, [B, T, W] → [B, W]: torch's argmax returns the FIRST
 * maximum, which is the first eot (49407 is the largest id). Built as a one-hot row times the
 * states rather than ArgMax + GatherND: the product is exact (one 1, the rest 0) and needs no
 * op outside the builder's checked set. Ties are broken by weighting each maximum by T − t.
 */
export function eotRows(g: GraphBuilder, ids: Value, hidden: Value, context: number): Value {
  // Token ids up to 49407 are exact in float32, not in float16: the search stays float32 in fp16 packs.
  return g.keepFloat32(() => {
    const f = g.op('Cast', [ids], { to: 1 }); // ids < 2^24, exact in float32
    const isMax = g.op('Cast', [g.op('Equal', [f, g.op('ReduceMax', [f], { axes: [1], keepdims: 1 })])], { to: 1 });
    const firstWins = g.constant(Float32Array.from({ length: context }, (_, t) => context - t), [context]);
    const weighted = g.op('Mul', [isMax, firstWins]);
    const oneHot = g.op('Cast', [g.op('Equal', [weighted, g.op('ReduceMax', [weighted], { axes: [1], keepdims: 1 })])], { to: 1 });
    const picked = g.op('MatMul', [g.op('Unsqueeze', [oneHot, g.int64s([1])]), hidden]);
    return g.op('Squeeze', [picked, g.int64s([1])]);
  });
}

/**
 * The sgm `openaimodel` / `attention` blocks of the SDXL UNet as ONNX subgraphs, named by
 * checkpoint keys: ResBlock, SpatialTransformer (linear proj_in/out) with BasicTransformerBlock
 * (self-attn, cross-attn, GEGLU), Downsample, Upsample, and the timestep embedding.
 * Normalisation eps follow the official modules: GroupNorm32 1e-5 (ResBlock, `out`),
 * SpatialTransformer's Normalize 1e-6, LayerNorm 1e-5.
 */
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { attention, conv2d, fromTokens, gelu, groupNorm, layerNorm, linear, silu, toTokens, type Weights } from '../onnx/layers.ts';
import type { ResBlockArch, TransformerArch } from './block-arch.ts';

/**
 * sgm `timestep_embedding(t, dim)` for every integer t in [0, count): [cos(t·f_k) | sin(t·f_k)]
 * with f_k = exp(−ln(10000)·k/half), each step rounded to float32 as torch computes it. The
 * denoiser only ever passes integer sigma indices, so the graph gathers rows of this table:
 * exact (cos/sin correctly rounded from the fp32 argument) and free at run time.
 */
export function timestepTable(dim: number, count = 1000): Float32Array {
  if (dim % 2 !== 0) throw new Error(`timestep embedding size ${dim} is odd`);
  const half = dim / 2;
  const f = Math.fround;
  const scale = f(-Math.log(10000));
  const freqs = Array.from({ length: half }, (_, k) => f(Math.exp(f(f(scale * k) / half))));
  const table = new Float32Array(count * dim);
  for (let t = 0; t < count; t++) {
    for (let k = 0; k < half; k++) {
      const arg = f(t * freqs[k]!);
      table[t * dim + k] = Math.cos(arg);
      table[t * dim + half + k] = Math.sin(arg);
    }
  }
  return table;
}

/** time_embed(timestep_embedding(t)) + label_emb(y): the [B, 4·model_channels] block input. */
export function embedding(g: GraphBuilder, w: Weights, prefix: string, t: Value, y: Value | null, modelChannels: number, count = 1000): Value {
  const table = g.constant(timestepTable(modelChannels, count), [count, modelChannels]);
  // The sinusoidal table stays float32 (as the official timestep_embedding); the MLP may not.
  const temb = g.keepFloat32(() => g.op('Gather', [table, t], { axis: 0 }));
  const mlp = (p: string, x: Value): Value => linear(g, w, `${p}.2`, silu(g, linear(g, w, `${p}.0`, x)));
  const emb = mlp(`${prefix}.time_embed`, temb);
  return y === null ? emb : g.op('Add', [emb, mlp(`${prefix}.label_emb.0`, y)]);
}

/** ResBlock (no scale-shift norm): skip(x) + out_layers(in_layers(x) + emb_layers(emb)). */
export function resBlock(g: GraphBuilder, w: Weights, a: ResBlockArch, x: Value, emb: Value): Value {
  const p = a.prefix;
  let h = conv2d(g, w, `${p}.in_layers.2`, silu(g, groupNorm(g, w, `${p}.in_layers.0`, x, { eps: 1e-5 })));
  const e = linear(g, w, `${p}.emb_layers.1`, silu(g, emb));
  h = g.op('Add', [h, g.op('Unsqueeze', [e, g.int64s([2, 3])])]);
  h = conv2d(g, w, `${p}.out_layers.3`, silu(g, groupNorm(g, w, `${p}.out_layers.0`, h, { eps: 1e-5 })));
  const skip = a.skipConv ? conv2d(g, w, `${p}.skip_connection`, x) : x;
  return g.op('Add', [skip, h]);
}

/** sgm CrossAttention on tokens: to_q(x), to_k/to_v(context), softmax(q·kᵀ/√d)·v, to_out.0. */
export function crossAttention(g: GraphBuilder, w: Weights, prefix: string, x: Value, context: Value, heads: number, dimHead: number): Value {
  const q = linear(g, w, `${prefix}.to_q`, x);
  const k = linear(g, w, `${prefix}.to_k`, context);
  const v = linear(g, w, `${prefix}.to_v`, context);
  return linear(g, w, `${prefix}.to_out.0`, attention(g, q, k, v, heads, dimHead));
}

/** FeedForward with GEGLU: proj → (a, gate) halves → a·gelu(gate) → net.2. */
function feedForward(g: GraphBuilder, w: Weights, prefix: string, x: Value): Value {
  const proj = linear(g, w, `${prefix}.net.0.proj`, x);
  const inner = w.get(`${prefix}.net.2.weight`).dims[1]!;
  const [a, gate] = g.opMulti('Split', [proj, g.int64s([inner, inner])], 2, { axis: -1 }) as [Value, Value];
  return linear(g, w, `${prefix}.net.2`, g.op('Mul', [a, gelu(g, gate)]));
}

function transformerBlock(g: GraphBuilder, w: Weights, prefix: string, a: TransformerArch, x: Value, context: Value): Value {
  const n1 = layerNorm(g, w, `${prefix}.norm1`, x);
  x = g.op('Add', [crossAttention(g, w, `${prefix}.attn1`, n1, n1, a.heads, a.dimHead), x]);
  const n2 = layerNorm(g, w, `${prefix}.norm2`, x);
  x = g.op('Add', [crossAttention(g, w, `${prefix}.attn2`, n2, context, a.heads, a.dimHead), x]);
  return g.op('Add', [feedForward(g, w, `${prefix}.ff`, layerNorm(g, w, `${prefix}.norm3`, x)), x]);
}

/** SpatialTransformer with use_linear: x + fromTokens(proj_out(blocks(proj_in(tokens(GN(x)))))). */
export function spatialTransformer(g: GraphBuilder, w: Weights, a: TransformerArch, x: Value, context: Value): Value {
  let t = linear(g, w, `${a.prefix}.proj_in`, toTokens(g, groupNorm(g, w, `${a.prefix}.norm`, x, { eps: 1e-6 })));
  for (let j = 0; j < a.depth; j++) t = transformerBlock(g, w, `${a.prefix}.transformer_blocks.${j}`, a, t, context);
  t = linear(g, w, `${a.prefix}.proj_out`, t);
  return g.op('Add', [fromTokens(g, t, x), x]);
}

/** Downsample: 3×3 conv, stride 2, padding 1 (`op`). */
export function downsample(g: GraphBuilder, w: Weights, prefix: string, x: Value): Value {
  return conv2d(g, w, prefix, x, { stride: 2 });
}

/** Upsample: nearest ×2 (exact pixel repetition) then a 3×3 conv. */
export function upsample(g: GraphBuilder, w: Weights, prefix: string, x: Value): Value {
  const scales = g.constant(Float32Array.of(1, 1, 2, 2), [4]);
  const up = g.op('Resize', [x, null, scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  return conv2d(g, w, `${prefix}.conv`, up);
}

/** The UNet head `out`: GroupNorm32, SiLU, 3×3 conv. */
export function outHead(g: GraphBuilder, w: Weights, prefix: string, h: Value): Value {
  return conv2d(g, w, `${prefix}.2`, silu(g, groupNorm(g, w, `${prefix}.0`, h, { eps: 1e-5 })));
}

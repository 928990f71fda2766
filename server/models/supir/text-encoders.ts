/**
 * Compiles SDXL's two text encoders, as SUPIR's conditioner runs them, from checkpoint weights:
 *
 * - CLIP-L (FrozenCLIPEmbedder, `layer: hidden, layer_idx: 11`): `ids` int64 [B,77] → `hidden`
 *   [B,77,W] = hidden_states[layers−1], the input of the last layer with no final_layer_norm.
 *   The last layer and final_layer_norm are therefore not in the graph at all.
 * - OpenCLIP bigG (FrozenOpenCLIPEmbedder2, `layer: penultimate, always_return_pooled`): `ids` →
 *   `hidden` [B,77,W] = input of the last resblock (no ln_final) and `pooled` [B,E] =
 *   ln_final(last)[argmax(ids)] @ text_projection.
 *
 * Sizes come from the weight shapes (width from the token embedding, depth from the keys present,
 * context from the position embedding). Heads cannot be read from weights: both real towers use
 * 64-wide heads (12 for CLIP-L, 20 for bigG), which is the default; the tiny golden towers pass 2.
 * CLIP-L needs ids padded with 49407 and bigG ids padded with 0 (see tokenizer.ts): the pad value
 * changes CLIP-L's states past the eot and bigG's argmax.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import { GraphBuilder, type Value } from '../onnx/builder.ts';
import { layerNorm, param, type Weights } from '../onnx/layers.ts';
import { embed, eotRows, hfClipLayer, openClipResblock } from './text-blocks.ts';

/** Key prefixes in an SDXL checkpoint (and in SUPIR's, which embeds the SDXL conditioner). */
export const CLIP_L_PREFIX = 'conditioner.embedders.0.transformer.text_model';
export const BIGG_PREFIX = 'conditioner.embedders.1.model';

export interface TextEncoderConfig {
  prefix: string;
  width: number;
  layers: number;
  heads: number;
  /** Sequence length the graph is built for (77): the position embedding's length. */
  context: number;
  vocab: number;
  /** bigG only: text_projection's output size (1280 real, 32 tiny). */
  pooledDim?: number;
}

export interface TextEncoderOptions {
  prefix?: string;
  /** Attention heads; default width / 64, as in both real towers. */
  heads?: number;
}

export interface CompiledTextEncoder {
  config: TextEncoderConfig;
  /** The graph, for writers that store large weights beside the model. */
  graph: GraphBuilder;
  /** The ONNX model: input `ids` int64 [batch, context]; outputs as described above. */
  readonly bytes: Uint8Array;
}

function compiled(config: TextEncoderConfig, graph: GraphBuilder): CompiledTextEncoder {
  return {
    config,
    graph,
    get bytes() {
      return graph.toBytes();
    },
  };
}

function countLayers(w: Weights, probe: (i: number) => string): number {
  let n = 0;
  while (w.has(probe(n))) n++;
  return n;
}

function finish(prefix: string, width: number, layers: number, context: number, vocab: number, opts: TextEncoderOptions): TextEncoderConfig {
  const heads = opts.heads ?? width / 64;
  if (layers < 2) throw new StudioError('BAD_INPUT', `text encoder '${prefix}' has ${layers} layers; its penultimate state needs at least 2`);
  if (!Number.isInteger(heads) || heads < 1 || width % heads !== 0) {
    throw new StudioError('BAD_INPUT', `text encoder '${prefix}': width ${width} does not split into ${heads} heads`);
  }
  return { prefix, width, layers, heads, context, vocab };
}

export function clipLConfig(w: Weights, opts: TextEncoderOptions = {}): TextEncoderConfig {
  const prefix = opts.prefix ?? CLIP_L_PREFIX;
  const [vocab, width] = w.get(`${prefix}.embeddings.token_embedding.weight`).dims as [number, number];
  const context = w.get(`${prefix}.embeddings.position_embedding.weight`).dims[0]!;
  const layers = countLayers(w, (i) => `${prefix}.encoder.layers.${i}.layer_norm1.weight`);
  return finish(prefix, width, layers, context, vocab, opts);
}

export function bigGConfig(w: Weights, opts: TextEncoderOptions = {}): TextEncoderConfig {
  const prefix = opts.prefix ?? BIGG_PREFIX;
  const [vocab, width] = w.get(`${prefix}.token_embedding.weight`).dims as [number, number];
  const context = w.get(`${prefix}.positional_embedding`).dims[0]!;
  const layers = countLayers(w, (i) => `${prefix}.transformer.resblocks.${i}.ln_1.weight`);
  const pooledDim = w.get(`${prefix}.text_projection`).dims[1]!;
  return { ...finish(prefix, width, layers, context, vocab, opts), pooledDim };
}

function idsInput(g: GraphBuilder, c: TextEncoderConfig): Value {
  return g.input('ids', 'int64', ['batch', c.context]);
}

export function compileClipL(w: Weights, opts: TextEncoderOptions = {}): CompiledTextEncoder {
  const c = clipLConfig(w, opts);
  const g = new GraphBuilder({ name: 'sdxl_clip_l' });
  const ids = idsInput(g, c);
  const p = c.prefix;
  const tokens = param(g, w, `${p}.embeddings.token_embedding.weight`, [c.vocab, c.width]);
  let x = embed(g, tokens, param(g, w, `${p}.embeddings.position_embedding.weight`, [c.context, c.width]), ids);
  // hidden_states[layers − 1] is the output of layer layers − 2: the last layer never runs.
  for (let i = 0; i < c.layers - 1; i++) x = hfClipLayer(g, w, `${p}.encoder.layers.${i}`, x, c.width, c.heads);
  g.output(x, 'hidden', 'float32', ['batch', c.context, c.width]);
  return compiled(c, g);
}

export function compileBigG(w: Weights, opts: TextEncoderOptions = {}): CompiledTextEncoder {
  const c = bigGConfig(w, opts);
  const g = new GraphBuilder({ name: 'sdxl_open_clip_bigg' });
  const ids = idsInput(g, c);
  const p = c.prefix;
  const tokens = param(g, w, `${p}.token_embedding.weight`, [c.vocab, c.width]);
  let x = embed(g, tokens, param(g, w, `${p}.positional_embedding`, [c.context, c.width]), ids);
  for (let i = 0; i < c.layers; i++) {
    if (i === c.layers - 1) g.output(x, 'hidden', 'float32', ['batch', c.context, c.width]);
    x = openClipResblock(g, w, `${p}.transformer.resblocks.${i}`, x, c.width, c.heads);
  }
  // ln_final is per position, so normalising only the picked rows gives the same values.
  const eot = layerNorm(g, w, `${p}.ln_final`, eotRows(g, ids, x, c.context));
  const pooled = g.op('MatMul', [eot, param(g, w, `${p}.text_projection`, [c.width, c.pooledDim!])]);
  g.output(pooled, 'pooled', 'float32', ['batch', c.pooledDim!]);
  return compiled(c, g);
}

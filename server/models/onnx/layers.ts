/**
 * Building blocks shared by every network compiled from a checkpoint (SDXL UNet, GLVControl,
 * ZeroSFT, VAE, CLIP): each takes the checkpoint key prefix of its weights and adds initializers
 * named exactly by those keys, in the checkpoint's own layout, so loading is a name-checked join.
 * Layout transforms (a Linear's transpose) are graph ops that onnxruntime folds at load.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import type { GraphBuilder, LazyWeight, Value } from './builder.ts';
import { contentHash } from './proto.ts';

/**
 * A float32 weight: in memory, or lazy (read from the checkpoint only when the model is written,
 * which is how the converter keeps multi-GB networks out of memory; see pack/weights.ts).
 */
export interface WeightTensor<D extends Float32Array | LazyWeight = Float32Array | LazyWeight> {
  data: D;
  dims: number[];
}

/** The weights a network is compiled from, by checkpoint key (compilers take either kind). */
export interface Weights<D extends Float32Array | LazyWeight = Float32Array | LazyWeight> {
  has(key: string): boolean;
  get(key: string): WeightTensor<D>;
}

export function weightsFromMap<D extends Float32Array | LazyWeight>(map: Map<string, WeightTensor<D>>, source: string): Weights<D> {
  return {
    has: (key) => map.has(key),
    get(key) {
      const t = map.get(key);
      if (!t) throw new StudioError('NOT_FOUND', `${source} has no weight '${key}'`);
      return t;
    },
  };
}

/**
 * A weight that is not kept in memory: `read` is called once now, to hash the values (the builder
 * deduplicates by that hash, exactly as for in-memory weights), and again when the model is written.
 * The second read is checked against the hash, so a file changed in between fails loudly instead
 * of breaking the deduplication silently. `read` must give a new array each time.
 */
export async function lazyWeight(read: () => Promise<Float32Array>, dims: number[], what: string): Promise<LazyWeight> {
  const hash = contentHash(await read(), dims, 'float32');
  return {
    lazy: true,
    dtype: 'float32',
    dims,
    hash,
    async read() {
      const data = await read();
      if (data.length !== dims.reduce((a, d) => a * d, 1) || contentHash(data, dims, 'float32') !== hash) {
        throw new StudioError('BAD_INPUT', `${what} changed while the model was being converted`);
      }
      return data;
    },
  };
}

/** The initializer for checkpoint key `key`, checked against the expected rank or shape. */
export function param(g: GraphBuilder, w: Weights, key: string, expect?: number | number[]): Value {
  const t = w.get(key);
  if (typeof expect === 'number' && t.dims.length !== expect) {
    throw new StudioError('BAD_INPUT', `weight '${key}' has shape [${t.dims.join(', ')}], expected rank ${expect}`);
  }
  if (Array.isArray(expect) && (expect.length !== t.dims.length || expect.some((d, i) => d >= 0 && d !== t.dims[i]))) {
    throw new StudioError('BAD_INPUT', `weight '${key}' has shape [${t.dims.join(', ')}], expected [${expect.join(', ')}]`);
  }
  return g.initializer(key, t.data, t.dims, 'float32');
}

/** torch.nn.Linear over the last axis: x @ W^T + b (W stored [out, in]). */
export function linear(g: GraphBuilder, w: Weights, prefix: string, x: Value): Value {
  const weight = param(g, w, `${prefix}.weight`, 2);
  let y = g.op('MatMul', [x, g.op('Transpose', [weight], { perm: [1, 0] })]);
  if (w.has(`${prefix}.bias`)) y = g.op('Add', [y, param(g, w, `${prefix}.bias`, 1)]);
  return y;
}

/** torch.nn.Conv2d with 'same'-style symmetric padding of kernel // 2 unless given. */
export function conv2d(g: GraphBuilder, w: Weights, prefix: string, x: Value, opts: { stride?: number; pads?: [number, number, number, number] } = {}): Value {
  const weight = w.get(`${prefix}.weight`);
  if (weight.dims.length !== 4) throw new StudioError('BAD_INPUT', `weight '${prefix}.weight' is not a 2-D convolution kernel`);
  const [, , kh, kw] = weight.dims as [number, number, number, number];
  const pads = opts.pads ?? [Math.floor(kh / 2), Math.floor(kw / 2), Math.floor(kh / 2), Math.floor(kw / 2)];
  const inputs = [x, param(g, w, `${prefix}.weight`)];
  if (w.has(`${prefix}.bias`)) inputs.push(param(g, w, `${prefix}.bias`, 1));
  const stride = opts.stride ?? 1;
  return g.op('Conv', inputs, { pads, strides: [stride, stride], kernel_shape: [kh, kw] });
}

/**
 * torch.nn.GroupNorm on NCHW (or NC...) input with affine weights: normalised per group through
 * InstanceNormalization over a [N, groups, -1] view (opset 17 has no GroupNormalization), then
 * the per-channel scale and shift.
 */
export function groupNorm(g: GraphBuilder, w: Weights, prefix: string, x: Value, opts: { groups?: number; eps: number; rank?: number }): Value {
  const groups = opts.groups ?? 32;
  const gamma = w.get(`${prefix}.weight`);
  const channels = gamma.dims[0]!;
  if (channels % groups !== 0) throw new StudioError('BAD_INPUT', `'${prefix}' has ${channels} channels, not divisible into ${groups} groups`);
  const shape = g.op('Shape', [x]);
  const grouped = g.op('Reshape', [x, g.int64s([0, groups, -1])]);
  const ones = g.constant(new Float32Array(groups).fill(1), [groups]);
  const zeros = g.constant(new Float32Array(groups), [groups]);
  const normed = g.op('Reshape', [g.op('InstanceNormalization', [grouped, ones, zeros], { epsilon: { float: opts.eps } }), shape]);
  const rank = opts.rank ?? 4;
  const bshape = [channels, ...Array<number>(rank - 2).fill(1)];
  const scale = g.op('Reshape', [param(g, w, `${prefix}.weight`, [channels]), g.int64s(bshape)]);
  const shift = g.op('Reshape', [param(g, w, `${prefix}.bias`, [channels]), g.int64s(bshape)]);
  return g.op('Add', [g.op('Mul', [normed, scale]), shift]);
}

/** torch.nn.LayerNorm over the last axis. */
export function layerNorm(g: GraphBuilder, w: Weights, prefix: string, x: Value, eps = 1e-5): Value {
  return g.op('LayerNormalization', [x, param(g, w, `${prefix}.weight`, 1), param(g, w, `${prefix}.bias`, 1)], { axis: -1, epsilon: { float: eps } });
}

export function silu(g: GraphBuilder, x: Value): Value {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}

/** Exact GELU: x * (1 + erf(x / sqrt 2)) / 2. */
export function gelu(g: GraphBuilder, x: Value): Value {
  const erf = g.op('Erf', [g.op('Div', [x, g.scalar(Math.SQRT2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.scalar(1)])]), g.scalar(0.5)]);
}

/** OpenAI CLIP's quick GELU: x * sigmoid(1.702 x). */
export function quickGelu(g: GraphBuilder, x: Value): Value {
  return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.scalar(1.702)])])]);
}

/**
 * Multi-head scaled dot-product attention on [B, T, heads*dim] tensors: softmax(q k^T / sqrt(dim)) v,
 * heads split contiguously, optionally causal (each position attends to itself and those before).
 *
 * One fused op, onnxruntime's com.microsoft MultiHeadAttention (CPU, CUDA and WebGPU kernels; CUDA
 * picks flash or memory-efficient attention), so the [B, heads, Tq, Tk] scores are never a tensor
 * of the graph: at a 1024 px SDXL image one self-attention layer would otherwise hold
 * 2 x 10 x 4096² fp32 scores (1.3 GB) plus the softmax's copy.
 */
export function attention(g: GraphBuilder, q: Value, k: Value, v: Value, heads: number, dim: number, opts: { causal?: boolean } = {}): Value {
  return g.op('MultiHeadAttention', [q, k, v], { num_heads: heads, scale: { float: 1 / Math.sqrt(dim) }, ...(opts.causal ? { unidirectional: 1 } : {}) });
}

/** NCHW [B, C, H, W] → tokens [B, H*W, C]. */
export function toTokens(g: GraphBuilder, x: Value): Value {
  return g.op('Transpose', [g.op('Reshape', [x, g.int64s([0, 0, -1])])], { perm: [0, 2, 1] });
}

/** Tokens [B, H*W, C] back to NCHW with the spatial shape of `like`. */
export function fromTokens(g: GraphBuilder, tokens: Value, like: Value): Value {
  return g.op('Reshape', [g.op('Transpose', [tokens], { perm: [0, 2, 1] }), g.op('Shape', [like])]);
}

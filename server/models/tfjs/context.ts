/** Shared state of one TF.js → ONNX conversion, passed to every layer emitter. */
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { badModel, type KerasLayer } from './manifest.ts';
import type { Weight } from './weights.ts';

/**
 * A converted Keras tensor, always NCHW in the graph. `scale` is its spatial size relative to
 * the model input (for the multiply-add count). `upsample` marks a nearest UpSampling2D not yet
 * emitted: a following conv may fold it (see conv.ts); anything else materialises it.
 * `prescaled` marks a conv output whose weights already hold the factor of its only reader, a
 * MultiplyBeta (see residualScale), which then passes it through.
 */
export interface Tensor {
  readonly value: Value;
  readonly channels: number;
  readonly scale: readonly [number, number];
  readonly upsample?: { readonly source: Tensor; readonly size: readonly [number, number] };
  readonly prescaled?: number;
}

export interface ConvertContext {
  readonly g: GraphBuilder;
  readonly file: string;
  readonly weights: ReadonlyMap<string, Weight>;
  readonly foldUpsample: boolean;
  /** Fold esrgan-thick's residual scaling into convolutions (default true; see residualScale). */
  readonly foldScale: boolean;
  /** The layers that read each layer's output, by layer name. */
  readonly readers: ReadonlyMap<string, readonly KerasLayer[]>;
  /** Multiply-adds per input pixel, summed over convolutions as TF.js would run them. */
  macsPerInputPixel: number;
}

export function layerError(ctx: ConvertContext, layer: KerasLayer, reason: string): Error {
  return badModel(ctx.file, `layer '${layer.name}' (${layer.className}): ${reason}`);
}

/** Finds `<layer>/<kind>`, also under a name prefix some exporters add (`model/<layer>/kernel`). */
export function layerWeight(ctx: ConvertContext, layer: KerasLayer, kind: string): Weight {
  const exact = ctx.weights.get(`${layer.name}/${kind}`);
  if (exact) return exact;
  for (const [name, w] of ctx.weights) {
    if (name.endsWith(`/${layer.name}/${kind}`) || name === `${layer.name}/${kind}:0`) return w;
  }
  throw layerError(ctx, layer, `weight '${layer.name}/${kind}' is not in the weights manifest`);
}

/** esrgan-thick's MultiplyBeta factor (the package JS's BETA, 0.2). */
export function betaOf(layer: KerasLayer): number {
  return typeof layer.config.beta === 'number' ? layer.config.beta : 0.2;
}

/**
 * The factor a conv may fold into its weights and bias: its output's only reader is a
 * MultiplyBeta and nothing (no activation, no second inbound node) sits between them. Both
 * onnxruntime (ConvMulFusion) and the fold give conv(x, β·w) + β·b for β·(conv(x, w) + b).
 */
export function residualScale(ctx: ConvertContext, layer: KerasLayer, activationName: unknown): number | undefined {
  if (!ctx.foldScale || layer.inbound.length !== 1 || (activationName !== undefined && activationName !== null && activationName !== 'linear')) return undefined;
  const readers = ctx.readers.get(layer.name) ?? [];
  const reader = readers.length === 1 ? readers[0]! : undefined;
  return reader?.className === 'MultiplyBeta' && reader.inbound.length === 1 ? betaOf(reader) : undefined;
}

export function configNumbers(ctx: ConvertContext, layer: KerasLayer, key: string, fallback?: number[]): number[] {
  const v = layer.config[key];
  if (v === undefined && fallback) return fallback;
  if (typeof v === 'number' && Number.isInteger(v)) return [v, v];
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x))) return v as number[];
  throw layerError(ctx, layer, `config '${key}' must be an int or a list of ints, got ${JSON.stringify(v)}`);
}

export function checkChannelsLast(ctx: ConvertContext, layer: KerasLayer): void {
  const fmt = layer.config.data_format;
  if (fmt !== undefined && fmt !== 'channels_last') throw layerError(ctx, layer, `data_format '${String(fmt)}' is not supported`);
}

/** Applies a Keras activation by name (fused into Conv2D or as an Activation layer). */
export function activation(ctx: ConvertContext, layer: KerasLayer, name: unknown, x: Value): Value {
  const { g } = ctx;
  switch (name) {
    case undefined:
    case null:
    case 'linear':
      return x;
    case 'relu':
      return g.op('Relu', [x]);
    case 'relu6':
      return g.op('Clip', [x, g.scalar(0), g.scalar(6)]);
    case 'sigmoid':
      return g.op('Sigmoid', [x]);
    case 'tanh':
      return g.op('Tanh', [x]);
    case 'swish':
    case 'silu':
      return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    default:
      throw layerError(ctx, layer, `activation '${String(name)}' is not supported`);
  }
}

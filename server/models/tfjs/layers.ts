/** The table of supported Keras layer classes and their ONNX emitters (all NCHW). */
import { activation, betaOf, layerError, type ConvertContext, type Tensor } from './context.ts';
import { conv2d } from './conv.ts';
import type { KerasLayer } from './manifest.ts';
import { materialise, pixelShuffle, upSampling2d } from './upsample.ts';

type Emitter = (ctx: ConvertContext, layer: KerasLayer, inputs: Tensor[]) => Tensor;

const single = (fn: (ctx: ConvertContext, layer: KerasLayer, input: Tensor) => Tensor): Emitter =>
  (ctx, layer, inputs) => {
    if (inputs.length !== 1) throw layerError(ctx, layer, `expects 1 input, got ${inputs.length}`);
    return fn(ctx, layer, inputs[0]!);
  };

/** Element-wise layers keep channels and scale; inputs must agree (Keras does not broadcast). */
function elementwise(op: 'Add' | 'Mul' | 'Sub'): Emitter {
  return (ctx, layer, inputs) => {
    const [first, ...rest] = inputs;
    if (!first || rest.length === 0) throw layerError(ctx, layer, `expects 2 or more inputs, got ${inputs.length}`);
    let acc = materialise(ctx, first);
    for (const [i, t] of rest.entries()) {
      if (t.channels !== first.channels) throw layerError(ctx, layer, `input ${i + 1} has ${t.channels} channels, input 0 has ${first.channels}`);
      acc = ctx.g.op(op, [acc, materialise(ctx, t)], {}, { name: layer.name });
    }
    return { value: acc, channels: first.channels, scale: first.scale };
  };
}

/** Keras NHWC axis → NCHW axis (channels -1/3 → 1). */
const NCHW_AXIS = [0, 2, 3, 1] as const;

const concatenate: Emitter = (ctx, layer, inputs) => {
  const raw = typeof layer.config.axis === 'number' ? layer.config.axis : -1;
  const axis = NCHW_AXIS[raw < 0 ? raw + 4 : raw];
  if (axis === undefined) throw layerError(ctx, layer, `axis ${raw} is out of range for 4-D tensors`);
  if (inputs.length < 1) throw layerError(ctx, layer, 'no inputs');
  const value = ctx.g.op('Concat', inputs.map((t) => materialise(ctx, t)), { axis }, { name: layer.name });
  const channels = axis === 1 ? inputs.reduce((a, t) => a + t.channels, 0) : inputs[0]!.channels;
  return { value, channels, scale: inputs[0]!.scale };
};

const activationLayer = single((ctx, layer, input) => ({
  ...input,
  upsample: undefined,
  value: activation(ctx, layer, layer.config.activation, materialise(ctx, input)),
}));

const leakyRelu = single((ctx, layer, input) => {
  // Keras 2 calls it alpha (default 0.3), Keras 3 negative_slope.
  const alpha = Number(layer.config.negative_slope ?? layer.config.alpha ?? 0.3);
  const value = ctx.g.op('LeakyRelu', [materialise(ctx, input)], { alpha: { float: alpha } }, { name: layer.name });
  return { value, channels: input.channels, scale: input.scale };
});

/**
 * esrgan-thick's residual scaling: the package JS multiplies by a constant BETA = 0.2. After a
 * conv the factor is already in its weights (conv.ts); elsewhere (the scale of a whole RRDB,
 * after an Add) it is a 1x1 depthwise conv of weight β rather than a Mul: the same single
 * multiply per value, but one that onnxruntime keeps in its blocked NCHWc layout and fuses with
 * the Add that follows. A Mul by a scalar is not an NCHWc op, so each one sent every later conv
 * of the model through layout conversions (ReorderInput/ReorderOutput) and plain-layout Concats.
 */
const multiplyBeta = single((ctx, layer, input) => {
  const beta = betaOf(layer);
  if (input.prescaled !== undefined) {
    if (input.prescaled !== beta) throw layerError(ctx, layer, `input was scaled by ${input.prescaled}, not ${beta}`);
    return { value: input.value, channels: input.channels, scale: input.scale };
  }
  const x = materialise(ctx, input);
  const c = input.channels;
  const value = ctx.foldScale
    ? ctx.g.op('Conv', [x, ctx.g.initializer(`${layer.name}.weight`, new Float32Array(c).fill(beta), [c, 1, 1, 1])], { kernel_shape: [1, 1], group: c }, { name: layer.name })
    : ctx.g.op('Mul', [x, ctx.g.scalar(beta)], {}, { name: layer.name });
  return { value, channels: c, scale: input.scale };
});

export const LAYER_EMITTERS: Readonly<Record<string, Emitter>> = {
  Conv2D: single(conv2d),
  Activation: activationLayer,
  LeakyReLU: leakyRelu,
  Add: elementwise('Add'),
  Subtract: elementwise('Sub'),
  Multiply: elementwise('Mul'),
  Concatenate: concatenate,
  UpSampling2D: single(upSampling2d),
  MultiplyBeta: multiplyBeta,
};

export function emitterFor(className: string): Emitter | undefined {
  if (/^PixelShuffle\d+x$/.test(className)) return single(pixelShuffle);
  return Object.hasOwn(LAYER_EMITTERS, className) ? LAYER_EMITTERS[className] : undefined;
}

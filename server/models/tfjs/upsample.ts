/**
 * Keras UpSampling2D (nearest) and the custom PixelShuffle layers of @upscalerjs/esrgan-thick.
 * The upsample is deferred (see Tensor.upsample) so conv.ts can fold it into the next conv.
 */
import { checkChannelsLast, configNumbers, layerError, type ConvertContext, type Tensor } from './context.ts';
import type { KerasLayer } from './manifest.ts';

export function upSampling2d(ctx: ConvertContext, layer: KerasLayer, input: Tensor): Tensor {
  checkChannelsLast(ctx, layer);
  const interpolation = layer.config.interpolation ?? 'nearest';
  // tfjs-layers' bilinear path uses resizeBilinear without half-pixel centres; nothing we ship
  // uses it and it is unverified, so refuse rather than guess.
  if (interpolation !== 'nearest') throw layerError(ctx, layer, `interpolation '${String(interpolation)}' is not supported`);
  const [sh = 1, sw = 1] = configNumbers(ctx, layer, 'size', [2, 2]);
  const source = input.upsample ? { ...input, value: materialise(ctx, input), upsample: undefined } : input;
  const scale: [number, number] = [source.scale[0] * sh, source.scale[1] * sw];
  // The value is only a placeholder name until materialised; no node has been emitted yet.
  return { value: source.value, channels: source.channels, scale, upsample: { source, size: [sh, sw] } };
}

/** Emits the deferred upsample: Resize with floor(asymmetric) coordinates repeats each pixel. */
export function materialise(ctx: ConvertContext, t: Tensor): Tensor['value'] {
  const up = t.upsample;
  if (!up) return t.value;
  const { g } = ctx;
  const scales = g.constant(Float32Array.of(1, 1, up.size[0], up.size[1]), [4]);
  return g.op('Resize', [up.source.value, null, scales], {
    mode: 'nearest',
    nearest_mode: 'floor',
    coordinate_transformation_mode: 'asymmetric',
  });
}

/**
 * PixelShuffle{2,3,4,8}x is `tf.depthToSpace(x, scale, 'NHWC')` in the package's JS: output
 * (s·i + a, s·j + b, c) reads channel (a·s + b)·C + c, which is ONNX DepthToSpace in DCR mode.
 */
export function pixelShuffle(ctx: ConvertContext, layer: KerasLayer, input: Tensor): Tensor {
  const fromName = /^PixelShuffle(\d+)x$/.exec(layer.className)?.[1];
  const s = typeof layer.config.scale === 'number' ? layer.config.scale : Number(fromName);
  if (!Number.isInteger(s) || s < 1) throw layerError(ctx, layer, 'no integer scale');
  if (input.channels % (s * s) !== 0) throw layerError(ctx, layer, `${input.channels} channels do not divide by ${s * s}`);
  const value = ctx.g.op('DepthToSpace', [materialise(ctx, input)], { blocksize: s, mode: 'DCR' }, { name: layer.name });
  return { value, channels: input.channels / (s * s), scale: [input.scale[0] * s, input.scale[1] * s] };
}

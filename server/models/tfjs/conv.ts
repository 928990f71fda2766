/**
 * Keras Conv2D → ONNX Conv (NCHW, OIHW weights), plus two rewrites. A nearest UpSampling2D by s
 * whose only reader is a stride-1 'same' conv becomes a conv at LOW resolution with s² times the
 * output channels, then DepthToSpace. Same result, but the s²-times larger upsampled tensor (48
 * channels at 16x the pixels in slim x4) is never built: 1.1-1.4x faster. And a conv whose only
 * reader is a MultiplyBeta (esrgan-thick's residual scaling) takes the factor into its weights and
 * bias (see residualScale in context.ts and multiplyBeta in layers.ts).
 */
import { activation, checkChannelsLast, configNumbers, layerError, layerWeight, residualScale, type ConvertContext, type Tensor } from './context.ts';
import type { KerasLayer } from './manifest.ts';
import { materialise } from './upsample.ts';

export function conv2d(ctx: ConvertContext, layer: KerasLayer, input: Tensor): Tensor {
  checkChannelsLast(ctx, layer);
  const kernel = layerWeight(ctx, layer, 'kernel');
  const [kh, kw, cinPerGroup, cout] = kernel.shape;
  if (kernel.shape.length !== 4 || kh === undefined || kw === undefined || cinPerGroup === undefined || cout === undefined) {
    throw layerError(ctx, layer, `kernel shape [${kernel.shape.join(', ')}] is not [h, w, in, out]`);
  }
  const strides = configNumbers(ctx, layer, 'strides', [1, 1]);
  const dilation = configNumbers(ctx, layer, 'dilation_rate', [1, 1]);
  const groups = typeof layer.config.groups === 'number' ? layer.config.groups : 1;
  const padding = layer.config.padding ?? 'valid';
  if (padding !== 'same' && padding !== 'valid') throw layerError(ctx, layer, `padding '${String(padding)}' is not supported`);
  const cin = input.upsample ? input.upsample.source.channels : input.channels;
  if (cinPerGroup * groups !== cin) throw layerError(ctx, layer, `kernel expects ${cinPerGroup * groups} input channels, got ${cin}`);
  const beta = residualScale(ctx, layer, layer.config.activation);
  const rawBias = layer.config.use_bias === false ? undefined : layerWeight(ctx, layer, 'bias').data;
  const bias = beta === undefined ? rawBias : rawBias?.map((v) => v * beta);
  const kernelData = beta === undefined ? kernel.data : kernel.data.map((v) => v * beta);
  const [sy = 1, sx = 1] = strides;
  const [dy = 1, dx = 1] = dilation;
  const scale: [number, number] = [input.scale[0] / sy, input.scale[1] / sx];
  ctx.macsPerInputPixel += kh * kw * cinPerGroup * cout * scale[0] * scale[1];

  const up = input.upsample;
  const foldable = up && ctx.foldUpsample && up.size[0] === up.size[1] && padding === 'same' && groups === 1
    && sy === 1 && sx === 1 && dy === 1 && dx === 1 && kh % 2 === 1 && kw % 2 === 1;
  const { g } = ctx;
  let out;
  if (foldable) {
    const s = up.size[0];
    const folded = foldUpsampleWeights(hwioToOihw(kernelData, kh, kw, cin, cout), cout, cin, kh, kw, s);
    const w = g.initializer(`${layer.name}.weight_folded_x${s}`, folded.weight, [cout * s * s, cin, folded.kh, folded.kw]);
    const b = bias ? g.initializer(`${layer.name}.bias_folded_x${s}`, repeat(bias, s * s), [cout * s * s]) : null;
    const ry = (folded.kh - 1) / 2;
    const rx = (folded.kw - 1) / 2;
    const low = g.op('Conv', [up.source.value, w, b], { kernel_shape: [folded.kh, folded.kw], pads: [ry, rx, ry, rx] }, { name: layer.name });
    out = g.op('DepthToSpace', [low], { blocksize: s, mode: 'DCR' }, { name: `${layer.name}.depth_to_space` });
  } else {
    const x = up ? materialise(ctx, input) : input.value;
    const w = g.initializer(`${layer.name}.weight`, hwioToOihw(kernelData, kh, kw, cinPerGroup, cout), [cout, cinPerGroup, kh, kw]);
    const b = bias ? g.initializer(`${layer.name}.bias`, bias, [cout]) : null;
    const attrs: Record<string, number[] | number | string> = { kernel_shape: [kh, kw], strides: [sy, sx], dilations: [dy, dx], group: groups };
    if (padding === 'same') {
      if (sy === 1 && sx === 1) attrs.pads = samePads(kh, dy, kw, dx);
      // TF puts the odd extra pixel at the end, which is ONNX's SAME_UPPER; with strides the
      // amount depends on the input size, so leave it to the runtime.
      else attrs.auto_pad = 'SAME_UPPER';
    }
    out = g.op('Conv', [x, w, b], attrs, { name: layer.name });
  }
  return { value: activation(ctx, layer, layer.config.activation, out), channels: cout, scale, ...(beta === undefined ? {} : { prescaled: beta }) };
}

/** Stride-1 'same' padding as TF computes it: total (k-1)·d, the extra pixel after. */
function samePads(kh: number, dy: number, kw: number, dx: number): number[] {
  const th = (kh - 1) * dy;
  const tw = (kw - 1) * dx;
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

/** Keras stores kernels as [h, w, in, out]; ONNX wants [out, in, h, w]. */
export function hwioToOihw(src: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const from = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) dst[((o * cin + i) * kh + y) * kw + x] = src[from + o]!;
      }
    }
  }
  return dst;
}

/**
 * Output pixel (s·i + a, s·j + b) of a (2r+1)² conv over a nearest-upsampled input reads input
 * pixel (i + ⌊(a+dy)/s⌋, j + ⌊(b+dx)/s⌋) for each tap (dy, dx): a conv of radius ⌈r/s⌉ at low
 * resolution, one kernel per phase (a, b). Zero padding agrees because an upsampled pixel is
 * outside the image exactly when its source pixel is. Phase (a, b) goes to output channels
 * (a·s + b)·cout + o, the channel order of DepthToSpace in DCR mode.
 */
export function foldUpsampleWeights(w: Float32Array, cout: number, cin: number, kh: number, kw: number, s: number) {
  const rh = (kh - 1) / 2;
  const rw = (kw - 1) / 2;
  const Rh = Math.ceil(rh / s);
  const Rw = Math.ceil(rw / s);
  const fkh = 2 * Rh + 1;
  const fkw = 2 * Rw + 1;
  const weight = new Float32Array(s * s * cout * cin * fkh * fkw);
  for (let a = 0; a < s; a++) {
    for (let b = 0; b < s; b++) {
      for (let o = 0; o < cout; o++) {
        const oc = (a * s + b) * cout + o;
        for (let i = 0; i < cin; i++) {
          for (let ky = 0; ky < kh; ky++) {
            const ey = Math.floor((a + ky - rh) / s) + Rh;
            for (let kx = 0; kx < kw; kx++) {
              const ex = Math.floor((b + kx - rw) / s) + Rw;
              weight[((oc * cin + i) * fkh + ey) * fkw + ex]! += w[((o * cin + i) * kh + ky) * kw + kx]!;
            }
          }
        }
      }
    }
  }
  return { weight, kh: fkh, kw: fkw };
}

function repeat(v: Float32Array, times: number): Float32Array {
  const out = new Float32Array(v.length * times);
  for (let t = 0; t < times; t++) out.set(v, t * v.length);
  return out;
}

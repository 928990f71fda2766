/**
 * GLVControl.forward(x = LQ latent, timesteps, xt = UNet input, context, y): the SDXL encoder
 * with its own embeddings, run on xt, plus `input_hint_block(x)` (one 3×3 conv on the control
 * latent) added after conv_in. Returns the input-block outputs and the middle output: the 10
 * features LightGLVUNet's project modules read. No decoder, and no control_scale here.
 */
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { conv2d, type Weights } from '../onnx/layers.ts';
import type { TrunkArch } from './unet-arch.ts';
import { embedding } from './unet-blocks.ts';
import { trunk } from './unet-trunk.ts';

export interface ControlInputs {
  /** The LQ latent (c['control']). */
  hint: Value;
  xt: Value;
  timesteps: Value;
  context: Value;
  y: Value | null;
}

export function glvControl(g: GraphBuilder, w: Weights, a: TrunkArch, inp: ControlInputs, numTimesteps = 1000): Value[] {
  const emb = embedding(g, w, a.prefix, inp.timesteps, a.admInChannels > 0 ? inp.y : null, a.modelChannels, numTimesteps);
  const guided = conv2d(g, w, `${a.prefix}.input_hint_block.0`, inp.hint);
  const { skips, middle } = trunk(g, w, a, inp.xt, emb, inp.context, (h) => g.op('Add', [h, guided]));
  return [...skips, middle];
}

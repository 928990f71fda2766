/**
 * The encoder half shared by the SDXL UNet and GLVControl: input blocks then the middle block,
 * returning every input block's output (the UNet's skips, GLVControl's features) and the
 * middle output. GLVControl adds its hint right after input_blocks[0], before that output is
 * recorded, which `afterConvIn` expresses without a second copy of the loop.
 */
import type { GraphBuilder, Value } from '../onnx/builder.ts';
import { conv2d, type Weights } from '../onnx/layers.ts';
import type { TrunkArch } from './unet-arch.ts';
import { downsample, resBlock, spatialTransformer } from './unet-blocks.ts';

export interface TrunkOutputs {
  /** Outputs of input_blocks[0..n−1], in order. */
  skips: Value[];
  middle: Value;
}

export function trunk(g: GraphBuilder, w: Weights, a: TrunkArch, x: Value, emb: Value, context: Value, afterConvIn?: (h: Value) => Value): TrunkOutputs {
  const skips: Value[] = [];
  let h = x;
  for (const block of a.input) {
    if (block.kind === 'conv') {
      h = conv2d(g, w, block.prefix, h);
      if (afterConvIn) h = afterConvIn(h);
    } else if (block.kind === 'down') {
      h = downsample(g, w, block.prefix, h);
    } else {
      h = resBlock(g, w, block.res, h, emb);
      if (block.transformer) h = spatialTransformer(g, w, block.transformer, h, context);
    }
    skips.push(h);
  }
  h = resBlock(g, w, a.middle.res0, h, emb);
  h = spatialTransformer(g, w, a.middle.transformer, h, context);
  return { skips, middle: resBlock(g, w, a.middle.res1, h, emb) };
}

import { defineNode } from '../api/define.ts';
import { imageToModel, latentDownscale, modelToImage, packOf, packVae } from './lib/pack-session.ts';
import { tileGrid, vaeTileWidget } from './lib/vae-tiles.ts';
import { autoVaeTile } from './lib/memory-estimate.ts';

/**
 * SUPIR's stage 1 (batchify_denoise): the degradation-robust encoder turns the low-quality image
 * into the control latent `_z`, and decoding `_z` gives the "stage-1 denoised" image, the
 * colour-fix reference and the input of the x_center encode. Neither is clamped, as in the
 * official code: the reference must carry the decoder's exact values for the fix to match.
 */
export default defineNode({
  id: 'SupirStage1',
  displayName: 'SUPIR Stage-1 Denoise',
  category: 'supir',
  description:
    "Removes degradations with SUPIR's denoise encoder. Outputs the stage-1 image (the colour-fix reference, unclamped) and the control latent for the sampler. Image sides must be multiples of 64 (use SUPIR Resize).",
  inputs: { model: { type: 'SUPIR_MODEL' }, image: { type: 'IMAGE' } },
  widgets: { tile_size: vaeTileWidget() },
  outputs: { image: 'IMAGE', control: 'LATENT' },
  async execute({ model, image, tile_size }, ctx) {
    const manifest = packOf(model);
    const tilePx = autoVaeTile(tile_size, manifest, image.w, image.h);
    // Two passes, one half of the node's progress each: the encoder's tiles, then the decoder's.
    const half = (pass: 0 | 1) => (done: number, total: number): void => ctx.progress(pass + done / total, 2);
    const opts = { signal: ctx.signal };
    const encoder = packVae(ctx.env, model, manifest, { encoder: tileGrid(tilePx, 'encoder', 8, half(0)) });
    const z = await encoder.encodeWithDenoise(imageToModel(image), opts);
    const downscale = latentDownscale(image, z.dims);
    ctx.progress(1, 2);
    const decoder = packVae(ctx.env, model, manifest, { decoder: tileGrid(tilePx, 'decoder', downscale, half(1)) });
    const decoded = await decoder.decode(z, opts);
    ctx.progress(2, 2);
    const [n, c, h, w] = z.dims as [number, number, number, number];
    return {
      image: modelToImage(decoded),
      control: { data: z.data, n, c, h, w, scaled: true, downscale },
    };
  },
});

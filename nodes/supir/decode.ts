import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { boolean } from '../api/widgets.ts';
import { LATENT_CHANNELS } from './lib/pack-contract.ts';
import { modelToImage, packOf, packVae } from './lib/pack-session.ts';
import { tileGrid, vaeTileWidget } from './lib/vae-tiles.ts';
import { autoVaeTile } from './lib/memory-estimate.ts';

/**
 * SUPIR's decode_first_stage: decoder(post_quant_conv(z / scale)). The result is left unclamped
 * by default because the official pipeline colour-fixes the raw decoder output (values past
 * [-1, 1] included) and clips only the final 8-bit image; clamping here would change the fix.
 */
export default defineNode({
  id: 'SupirDecode',
  displayName: 'SUPIR Decode',
  category: 'supir',
  description:
    'Decodes a SUPIR latent with the SDXL VAE decoder. Unclamped by default, as the official pipeline hands the raw values to the colour fix; saving clamps to 0..1.',
  inputs: { model: { type: 'SUPIR_MODEL' }, latent: { type: 'LATENT' } },
  widgets: {
    clamp: boolean({ default: false, description: 'Clamp to 0..1 (leave off before SUPIR Colour Fix for parity with the official code).' }),
    tile_size: vaeTileWidget(),
  },
  outputs: { image: 'IMAGE' },
  async execute({ model, latent, clamp, tile_size }, ctx) {
    const manifest = packOf(model);
    if (latent.c !== LATENT_CHANNELS) throw new InputError('latent', `the SDXL VAE decodes ${LATENT_CHANNELS}-channel latents, this one has ${latent.c}`);
    // An unscaled latent (straight from a VAE encoder) is brought into the sampler's space first.
    const scale = latent.scaled ? 1 : manifest.scale_factor;
    const data = scale === 1 ? latent.data : latent.data.map((v) => v * scale);
    const grid = tileGrid(autoVaeTile(tile_size, manifest, latent.w * latent.downscale, latent.h * latent.downscale), 'decoder', latent.downscale, (done, total) => ctx.progress(done, total));
    const decoded = await packVae(ctx.env, model, manifest, { decoder: grid }).decode({ data, dims: [latent.n, latent.c, latent.h, latent.w] }, { signal: ctx.signal });
    ctx.progress(1, 1);
    return { image: modelToImage(decoded, clamp) };
  },
});

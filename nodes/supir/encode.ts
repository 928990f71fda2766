import { defineNode } from '../api/define.ts';
import { seed } from '../api/widgets.ts';
import { COMPONENT } from './lib/pack-contract.ts';
import { imageToModel, latentDownscale, lazyRunner, packOf } from './lib/pack-session.ts';
import { SupirVae, type VaeRunner } from './lib/vae-pipeline.ts';
import { tileGrid, tiledRunner, vaeTileWidget } from './lib/vae-tiles.ts';
import { autoVaeTile } from './lib/memory-estimate.ts';

/**
 * SUPIR's encode_first_stage: the plain SDXL encoder's posterior, *sampled* (the official wrapper
 * always samples), times the latent scale. Fed the stage-1 image it gives x_center, the target of
 * restoration guidance. The draw comes from the seed, so the result is reproducible.
 */
export default defineNode({
  id: 'SupirEncode',
  displayName: 'SUPIR Encode',
  category: 'supir',
  description:
    'Encodes an image with the SDXL VAE encoder into a scaled latent, sampling the posterior with the seed as SUPIR does (fed the stage-1 image, it gives the restoration-guidance target).',
  inputs: { model: { type: 'SUPIR_MODEL' }, image: { type: 'IMAGE' } },
  widgets: { seed: seed({ default: 1234, description: 'Seeds the posterior sample (mean + std · noise).' }), tile_size: vaeTileWidget() },
  outputs: { latent: 'LATENT' },
  async execute({ model, image, seed: s, tile_size }, ctx) {
    const manifest = packOf(model);
    // The noise must match the latent's shape, known only once the encoder has run: the runner
    // keeps its one result so that posterior() and encode() share a single encoder pass.
    const grid = tileGrid(autoVaeTile(tile_size, manifest, image.w, image.h), 'encoder', 8, (done, total) => ctx.progress(done, total));
    const encoder = tiledRunner(lazyRunner(ctx.env, model, COMPONENT.vaeEncoder, manifest), grid);
    let result: ReturnType<VaeRunner['run']> | undefined;
    const once: VaeRunner = { run: (feeds, opts) => (result ??= encoder.run(feeds, opts)) };
    const vae = new SupirVae(
      { encoder: once, denoiseEncoder: lazyRunner(ctx.env, model, COMPONENT.vaeDenoiseEncoder, manifest), decoder: lazyRunner(ctx.env, model, COMPONENT.vaeDecoder, manifest) },
      manifest.scale_factor,
    );
    const x = imageToModel(image);
    const opts = { signal: ctx.signal };
    const { mean } = await vae.posterior(x, opts);
    const downscale = latentDownscale(image, mean.dims);
    const noise = ctx.rng(s).fillNormal(new Float32Array(mean.data.length));
    const z = await vae.encode(x, noise, opts);
    const [n, c, h, w] = z.dims as [number, number, number, number];
    return { latent: { data: z.data, n, c, h, w, scaled: true, downscale } };
  },
});

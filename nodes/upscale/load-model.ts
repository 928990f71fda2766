import { defineNode } from '../api/define.ts';
import type { NodeEnv } from '../api/env.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { requireModels, requireRuntime } from '../api/require.ts';
import { AUTO_ORDER, type ProviderName } from '../api/runtime.ts';
import { combo } from '../api/widgets.ts';

export const DEFAULT_UPSCALE_MODEL = 'esrgan-medium x4';
export const PROVIDER_CHOICES = ['auto', 'cuda', 'webgpu', 'cpu'] as const;

/**
 * The input side a one-size model (MAXIM) is converted for by default: on the CPU a tile whose run
 * takes a second or two (Stop acts between runs), on a GPU a larger one.
 */
export const FIXED_TILE = { cpu: 128, gpu: 256 } as const;

/**
 * Opens an image-to-image model: one of those that ship with the product (MAXIM denoise, deblur,
 * derain, dehaze, low-light enhance and retouch at x1; ESRGAN slim, medium and thick at
 * x2/x3/x4/x8; converted from their npm packages on first use) or an ONNX file the user put in the
 * models folder. Opening it here makes a broken file fail on this node, not later.
 */
export default defineNode({
  id: 'LoadUpscaleModel',
  displayName: 'Load Restore Model',
  category: 'upscale',
  description: 'Opens an image-to-image model (shipped MAXIM restoration and ESRGAN upscaling models, or ONNX files in the models folder) on an execution provider.',
  inputs: {},
  widgets: {
    model_name: combo({
      options: (env) => env.models?.list('upscale').map((m) => m.name) ?? [],
      default: DEFAULT_UPSCALE_MODEL,
      description: 'maxim-* restore at the same size (denoising, deblurring, deraining, dehazing, low-light enhancement, retouching); esrgan-<size> x<scale> upscale; your own are the .onnx files in the models folder.',
    }),
    provider: combo({
      options: PROVIDER_CHOICES,
      default: 'auto',
      description: 'auto tries CUDA, then WebGPU, then the CPU.',
    }),
  },
  outputs: { model: 'UPSCALE_MODEL' },
  async fingerprint({ model_name, provider }, env) {
    const models = requireModels(env);
    const fixed = models.list('upscale').find((m) => m.name === model_name)?.tileMultiple;
    const tile = fixed ? await defaultTile(env, provider as (typeof PROVIDER_CHOICES)[number]) : undefined;
    return (await models.resolve(model_name, tile ? { tile } : {})).hash;
  },
  async execute({ model_name, provider }, ctx) {
    const models = requireModels(ctx.env);
    const entry = models.list('upscale').find((m) => m.name === model_name);
    const tile = entry?.tileMultiple ? await defaultTile(ctx.env, provider as (typeof PROVIDER_CHOICES)[number]) : undefined;
    let resolved: Awaited<ReturnType<typeof models.resolve>>;
    try {
      resolved = await models.resolve(model_name, tile ? { tile } : {});
      await requireRuntime(ctx.env).load(resolved.path, { provider: provider as (typeof PROVIDER_CHOICES)[number] });
    } catch (err) {
      if (err instanceof StudioError) throw new InputError(err.code === 'NOT_FOUND' || err.code === 'BAD_INPUT' ? 'model_name' : 'provider', err.message, err.code);
      throw err;
    }
    return {
      model: {
        kind: 'upscale',
        id: resolved.path,
        hash: resolved.hash,
        name: model_name,
        provider,
        ...(resolved.entry.scale ? { scale: resolved.entry.scale } : {}),
        ...(tile && resolved.entry.tileMultiple ? { tile, tileMultiple: resolved.entry.tileMultiple } : {}),
      },
    };
  },
});

/** The tile for the provider this choice will run on (auto: the first one available). */
async function defaultTile(env: NodeEnv, choice: (typeof PROVIDER_CHOICES)[number]): Promise<number> {
  let provider: ProviderName = choice === 'auto' ? 'cpu' : choice;
  if (choice === 'auto') {
    const available = new Set((await requireRuntime(env).providers()).filter((p) => p.available).map((p) => p.name));
    provider = AUTO_ORDER.find((p) => available.has(p)) ?? 'cpu';
  }
  return provider === 'cpu' ? FIXED_TILE.cpu : FIXED_TILE.gpu;
}

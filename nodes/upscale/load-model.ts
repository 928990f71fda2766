import { defineNode } from '../api/define.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { requireModels, requireRuntime } from '../api/require.ts';
import { combo } from '../api/widgets.ts';

export const DEFAULT_UPSCALE_MODEL = 'esrgan-medium x4';
export const PROVIDER_CHOICES = ['auto', 'cuda', 'webgpu', 'cpu'] as const;

/**
 * Opens a super-resolution model: one of those that ship with the product (ESRGAN slim, medium and
 * thick at x2/x3/x4/x8, converted from their npm packages on first use) or an ONNX file the user
 * put in the models folder. Opening it here makes a broken file fail on this node, not later.
 */
export default defineNode({
  id: 'LoadUpscaleModel',
  displayName: 'Load Upscale Model',
  category: 'upscale',
  description: 'Opens a super-resolution model (shipped ESRGAN models, or ONNX files in the models folder) on an execution provider.',
  inputs: {},
  widgets: {
    model_name: combo({
      options: (env) => env.models?.list('upscale').map((m) => m.name) ?? [],
      default: DEFAULT_UPSCALE_MODEL,
      description: 'Shipped models are named "<size> x<scale>"; your own are the .onnx files in the models folder.',
    }),
    provider: combo({
      options: PROVIDER_CHOICES,
      default: 'auto',
      description: 'auto tries CUDA, then WebGPU, then the CPU.',
    }),
  },
  outputs: { model: 'UPSCALE_MODEL' },
  async fingerprint({ model_name }, env) {
    return (await requireModels(env).resolve(model_name)).hash;
  },
  async execute({ model_name, provider }, ctx) {
    const resolved = await requireModels(ctx.env).resolve(model_name);
    try {
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
      },
    };
  },
});

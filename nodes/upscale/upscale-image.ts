import { defineNode, type NodeContext } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { requireRuntime } from '../api/require.ts';
import type { ModelSession, TensorData } from '../api/runtime.ts';
import type { ModelHandle } from '../api/sockets.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import { autoTileSize, extractTiles, mergeTiles, planTiles } from '../api/tiling.ts';
import { int } from '../api/widgets.ts';

/** Tiles are sized to keep one model run's activations within this many bytes. */
const TILE_MEMORY_BUDGET = 512 * 1024 * 1024;

/**
 * Runs a super-resolution model over an image of any size: tiles with overlap, blended back with a
 * smooth ramp, one progress step per tile. The model's scale is read from its first output.
 */
export default defineNode({
  id: 'UpscaleImage',
  displayName: 'Upscale Image (model)',
  category: 'upscale',
  description: 'Enlarges every image of the batch with a super-resolution model, tile by tile.',
  inputs: { model: { type: 'UPSCALE_MODEL' }, image: { type: 'IMAGE' } },
  widgets: {
    tile_size: int({ default: 0, min: 0, max: 4096, step: 8, description: '0 picks the largest tile that fits the memory budget.' }),
    overlap: int({ default: 16, min: 0, max: 256, step: 2, description: 'Input pixels shared by neighbouring tiles, blended smoothly.' }),
  },
  outputs: { image: 'IMAGE' },
  async execute({ model, image, tile_size, overlap }, ctx) {
    if (model.kind !== 'upscale') throw new InputError('model', `expects an upscale model, got a ${model.kind} model`);
    if (image.c !== 3) throw new InputError('image', `expects 3 colour channels, got ${image.c}`);
    const session = await requireRuntime(ctx.env).load(model.id, { provider: model.provider as 'auto' });
    checkSession(session, model);
    const scale = model.scale ?? 4;
    const outPixels = image.w * scale * image.h * scale;
    if (outPixels > ctx.env.limits.maxPixels) {
      throw new InputError('image', `x${scale} of ${image.w}x${image.h} would be ${(outPixels / 1e6).toFixed(1)} MP, over the ${(ctx.env.limits.maxPixels / 1e6).toFixed(0)} MP limit`, 'TOO_LARGE');
    }
    const tile = tile_size > 0 ? tile_size : autoTileSize({ bytesPerPixel: 4 * (256 + 3 * scale * scale), memoryBudgetBytes: TILE_MEMORY_BUDGET, multiple: 8 });
    if (overlap >= Math.min(tile, Math.max(image.w, image.h))) throw new InputError('overlap', `${overlap} px must be smaller than the tile (${tile} px)`);
    const plan = planTiles(image.w, image.h, { tile, overlap: Math.min(overlap, tile - 1) });
    const out = createImage(image.n, 3, image.h * scale, image.w * scale);
    const total = image.n * plan.tiles.length;
    for (let i = 0; i < image.n; i++) {
      const item = batchItem(image, i);
      // One tile covers the image: nothing to cut or blend (saves a full-size weighted pass).
      const single = plan.tiles.length === 1;
      const tiles = single ? item : extractTiles(item, plan);
      const upscaled = await runTiles(session, tiles, scale, ctx, i * plan.tiles.length, total);
      out.data.set(single ? upscaled.data : mergeTiles(upscaled, plan, scale).data, i * 3 * out.h * out.w);
    }
    return { image: out };
  },
});

async function runTiles(session: ModelSession, tiles: ImageTensor, scale: number, ctx: NodeContext, done: number, total: number): Promise<ImageTensor> {
  const out = createImage(tiles.n, 3, tiles.h * scale, tiles.w * scale);
  const plane = 3 * tiles.h * tiles.w;
  const inputName = session.inputs[0]!.name;
  const outputName = session.outputs[0]!.name;
  for (let t = 0; t < tiles.n; t++) {
    const feed: TensorData = { data: tiles.data.slice(t * plane, (t + 1) * plane), dims: [1, 3, tiles.h, tiles.w] };
    const result = (await session.run({ [inputName]: feed }, { signal: ctx.signal }))[outputName]!;
    const [, c, h, w] = result.dims;
    if (c !== 3 || h !== tiles.h * scale || w !== tiles.w * scale) {
      throw new InputError('model', `gave ${result.dims.join('x')} for a ${tiles.w}x${tiles.h} tile; expected 1x3x${tiles.h * scale}x${tiles.w * scale} (x${scale})`);
    }
    out.data.set(result.data, t * 3 * h * w);
    ctx.progress(done + t + 1, total);
  }
  return out;
}

/** One 4-D float image input and output, or a clear error instead of an ORT shape message. */
function checkSession(session: ModelSession, model: ModelHandle): void {
  const input = session.inputs[0];
  const output = session.outputs[0];
  const describe = (t: { dims: Array<number | string> }): string => `[${t.dims.join(', ')}]`;
  if (session.inputs.length !== 1 || !input || input.dims.length !== 4 || (typeof input.dims[1] === 'number' && input.dims[1] !== 3)) {
    throw new InputError('model', `${model.name ?? model.id} does not take one Nx3xHxW image (its inputs: ${session.inputs.map(describe).join(', ')})`);
  }
  if (!output || output.dims.length !== 4) {
    throw new InputError('model', `${model.name ?? model.id} does not give an Nx3xHxW image (its outputs: ${session.outputs.map(describe).join(', ')})`);
  }
}

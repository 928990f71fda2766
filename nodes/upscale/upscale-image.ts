import { defineNode, type NodeContext } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { requireRuntime } from '../api/require.ts';
import type { ModelSession, TensorData } from '../api/runtime.ts';
import type { ModelHandle, TilePlan } from '../api/sockets.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import { autoTileSize, extractTile, planTiles, TileBlender } from '../api/tiling.ts';
import { int } from '../api/widgets.ts';
import { modelMacsPerInputPixel } from './model-cost.ts';

/** Tiles are sized to keep one model run's activations within this many bytes. */
const TILE_MEMORY_BUDGET = 512 * 1024 * 1024;

/**
 * One model run does at most this many multiply-adds (model-cost.ts), unless a 64 px tile alone
 * needs more. A run cannot be stopped inside onnxruntime, so Stop takes effect when the run in
 * flight ends: on a 2-core CPU that reaches 20-90 GMAC/s with these models, 16 GMAC is 0.2-0.8 s
 * (esrgan-medium x4: 144 px tiles; esrgan-thick: 64 px, 0.4-1.3 s). Small runs cost the overlap
 * they share (16 px of 144: 27 % more pixels than one whole run, against 21 % at 176 px).
 */
export const RUN_MACS = 16e9;

/** The smallest tile a run is cut to: below it the overlap would be most of the work. */
const MIN_RUN_TILE = 64;

/**
 * The tile side, in input pixels: the widget's value (or the memory budget's choice for 0), made
 * smaller where needed so that one run stays within RUN_MACS.
 */
export function runTileSize(opts: { tileSize: number; scale: number; macsPerInputPixel: number }): number {
  const memory = autoTileSize({ bytesPerPixel: 4 * (256 + 3 * opts.scale * opts.scale), memoryBudgetBytes: TILE_MEMORY_BUDGET, multiple: 8 });
  const wanted = opts.tileSize > 0 ? opts.tileSize : memory;
  const bySpeed = opts.macsPerInputPixel > 0 ? Math.floor(Math.sqrt(RUN_MACS / opts.macsPerInputPixel) / 8) * 8 : wanted;
  return Math.min(wanted, Math.max(MIN_RUN_TILE, bySpeed));
}

/**
 * Runs a super-resolution model over an image of any size: tiles with overlap, blended back with a
 * smooth ramp as each one arrives, one progress step per tile. Tiles are small enough that each
 * model run is short (Stop acts between runs) and the model's scale is read from its first output.
 */
export default defineNode({
  id: 'UpscaleImage',
  displayName: 'Upscale Image (model)',
  category: 'upscale',
  description: 'Enlarges every image of the batch with a super-resolution model, tile by tile.',
  inputs: { model: { type: 'UPSCALE_MODEL' }, image: { type: 'IMAGE' } },
  widgets: {
    tile_size: int({
      default: 0,
      min: 0,
      max: 4096,
      step: 8,
      description: 'Largest tile, in input pixels; 0 picks the largest that fits the memory budget. Tiles are made smaller where one model run would take long, so that Stop acts within about a second.',
    }),
    overlap: int({ default: 16, min: 0, max: 256, step: 2, description: 'Input pixels shared by neighbouring tiles, blended smoothly (at most half a tile).' }),
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
    if (tile_size > 0 && overlap >= Math.min(tile_size, Math.max(image.w, image.h))) throw new InputError('overlap', `${overlap} px must be smaller than the tile (${tile_size} px)`);
    const tile = runTileSize({ tileSize: tile_size, scale, macsPerInputPixel: modelMacsPerInputPixel(model.id, model.hash) });
    const plan = planTiles(image.w, image.h, { tile, overlap: Math.min(overlap, Math.floor(tile / 2)) });
    const out = createImage(image.n, 3, image.h * scale, image.w * scale);
    const total = image.n * plan.tiles.length;
    const blender = plan.tiles.length > 1 ? new TileBlender(plan, scale, 3) : null;
    for (let i = 0; i < image.n; i++) {
      const item = batchItem(image, i);
      const target = out.data.subarray(i * 3 * out.h * out.w, (i + 1) * 3 * out.h * out.w);
      await runTiles(session, item, plan, scale, target, blender, ctx, i * plan.tiles.length, total);
    }
    return { image: out };
  },
});

/**
 * Runs the model on each tile of one image and blends the result into `target` at once, so that
 * neither the cut tiles nor their outputs pile up. One tile covering the image goes through
 * unweighted (a full-size weighted pass would change nothing).
 */
async function runTiles(
  session: ModelSession,
  item: ImageTensor,
  plan: TilePlan,
  scale: number,
  target: Float32Array,
  blender: TileBlender | null,
  ctx: NodeContext,
  done: number,
  total: number,
): Promise<void> {
  const inputName = session.inputs[0]!.name;
  const outputName = session.outputs[0]!.name;
  for (let t = 0; t < plan.tiles.length; t++) {
    ctx.checkAborted();
    const tile = blender ? extractTile(item, plan, t) : item;
    const feed: TensorData = { data: tile.data, dims: [1, 3, tile.h, tile.w] };
    const result = (await session.run({ [inputName]: feed }, { signal: ctx.signal }))[outputName]!;
    const [, c, h, w] = result.dims;
    if (c !== 3 || h !== tile.h * scale || w !== tile.w * scale) {
      throw new InputError('model', `gave ${result.dims.join('x')} for a ${tile.w}x${tile.h} tile; expected 1x3x${tile.h * scale}x${tile.w * scale} (x${scale})`);
    }
    if (blender) blender.add(target, t, result.data);
    else target.set(result.data);
    ctx.progress(done + t + 1, total);
  }
  blender?.normalise(target);
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

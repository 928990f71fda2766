import { defineNode, type NodeContext } from '../api/define.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { requireModels, requireRuntime } from '../api/require.ts';
import type { ModelSession, ProviderChoice, TensorData } from '../api/runtime.ts';
import type { ModelHandle, TilePlan } from '../api/sockets.ts';
import { batchItem, createImage, type ImageTensor } from '../api/tensor.ts';
import { autoTileSize, extractTile, planTiles, TileBlender } from '../api/tiling.ts';
import { float, int } from '../api/widgets.ts';
import { resampleRows } from '../image/resize.ts';
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
 * Runs an image-to-image model (restoration at x1, or super-resolution) over an image of any
 * size: tiles with overlap, blended back with a smooth ramp as each one arrives, one progress step
 * per tile. Tiles are small enough that each model run is short (Stop acts between runs). Models
 * made for one input size (MAXIM) get tiles of exactly that size, the image padded by reflection
 * where it is smaller. `strength` mixes the result with the input (enlarged bicubically for x2+).
 */
export default defineNode({
  id: 'UpscaleImage',
  displayName: 'Restore Image (model)',
  category: 'upscale',
  description: 'Runs an image model on every image of the batch, tile by tile: MAXIM restoration (denoise, deblur, derain, dehaze, low light, retouch) or ESRGAN upscaling.',
  inputs: { model: { type: 'UPSCALE_MODEL' }, image: { type: 'IMAGE' } },
  widgets: {
    tile_size: int({
      default: 0,
      min: 0,
      max: 4096,
      step: 8,
      description: 'Largest tile, in input pixels; 0 picks the largest that fits the memory budget (MAXIM: the size the model was opened with). Tiles are made smaller where one model run would take long, so that Stop acts within about a second. MAXIM tiles are rounded up to a multiple of 64 (another size converts the model once more).',
    }),
    overlap: int({ default: 16, min: 0, max: 256, step: 2, description: 'Input pixels shared by neighbouring tiles, blended smoothly (at most half a tile).' }),
    strength: float({
      default: 1,
      min: 0,
      max: 1,
      step: 0.05,
      description: "How much of the model's result to keep: 1 = all of it, 0.5 = half way between it and the input (enlarged bicubically when the model upscales).",
    }),
  },
  outputs: { image: 'IMAGE' },
  async execute({ model, image, tile_size, overlap, strength }, ctx) {
    if (model.kind !== 'upscale') throw new InputError('model', `expects an upscale model, got a ${model.kind} model`);
    if (image.c !== 3) throw new InputError('image', `expects 3 colour channels, got ${image.c}`);
    const fixed = model.tileMultiple ? fixedTile(model, tile_size) : 0;
    const session = await openSession(model, fixed, ctx);
    checkSession(session, model);
    const scale = model.scale ?? 4;
    const outPixels = image.w * scale * image.h * scale;
    if (outPixels > ctx.env.limits.maxPixels) {
      throw new InputError('image', `x${scale} of ${image.w}x${image.h} would be ${(outPixels / 1e6).toFixed(1)} MP, over the ${(ctx.env.limits.maxPixels / 1e6).toFixed(0)} MP limit`, 'TOO_LARGE');
    }
    if (tile_size > 0 && overlap >= Math.min(tile_size, Math.max(image.w, image.h))) throw new InputError('overlap', `${overlap} px must be smaller than the tile (${tile_size} px)`);
    const tile = fixed || evenTile(runTileSize({ tileSize: tile_size, scale, macsPerInputPixel: modelMacsPerInputPixel(model.id, model.hash) }), image.w, image.h, overlap);
    const plan = planTiles(image.w, image.h, { tile, overlap: Math.min(overlap, Math.floor(tile / 2)) });
    const out = createImage(image.n, 3, image.h * scale, image.w * scale);
    const total = image.n * plan.tiles.length;
    const blender = plan.tiles.length > 1 ? new TileBlender(plan, scale, 3) : null;
    for (let i = 0; i < image.n; i++) {
      const item = batchItem(image, i);
      const target = out.data.subarray(i * 3 * out.h * out.w, (i + 1) * 3 * out.h * out.w);
      await runTiles(session, item, plan, { scale, fixed }, target, blender, ctx, i * plan.tiles.length, total);
      if (strength < 1) mixWithInput(target, item, scale, strength);
    }
    return { image: out };
  },
});

/**
 * The smallest tile (a multiple of 8, at most `cap`) that covers the image with as few tiles per
 * side as `cap` needs: a cap just under the image's side would otherwise give tiles of nearly its
 * size, overlapping by most of it (a 256 px image under a 248 px cap: four 248 px runs, 3.75x the
 * pixels, where 136 px tiles do 1.13x).
 */
export function evenTile(cap: number, width: number, height: number, overlap: number): number {
  const ov = Math.min(overlap, Math.floor(cap / 2));
  let tile = 0;
  for (const side of [width, height]) {
    if (side <= cap) {
      tile = Math.max(tile, Math.min(cap, Math.ceil(side / 8) * 8));
      continue;
    }
    const n = Math.ceil((side - ov) / (cap - ov));
    tile = Math.max(tile, Math.min(cap, Math.ceil(Math.ceil((side + (n - 1) * ov) / n) / 8) * 8));
  }
  return tile;
}

/** The square input side for a one-size model: the widget's (rounded up to the multiple) or the model's own. */
function fixedTile(model: ModelHandle, tileSize: number): number {
  const multiple = model.tileMultiple!;
  return tileSize > 0 ? Math.ceil(tileSize / multiple) * multiple : (model.tile ?? multiple * 2);
}

/** The model's session; a one-size model at another side is another file, converted on first use. */
async function openSession(model: ModelHandle, fixed: number, ctx: NodeContext): Promise<ModelSession> {
  let file = model.id;
  if (fixed && fixed !== model.tile) {
    if (!model.name) throw new InputError('tile_size', `${model.id} is made for ${model.tile} px tiles; set tile_size to 0 or ${model.tile}`);
    try {
      file = (await requireModels(ctx.env).resolve(model.name, { tile: fixed })).path;
    } catch (err) {
      if (err instanceof StudioError) throw new InputError('tile_size', err.message, err.code);
      throw err;
    }
  }
  return requireRuntime(ctx.env).load(file, { provider: (model.provider ?? 'auto') as ProviderChoice });
}

/**
 * target ← input + strength · (target − input), the input enlarged to the target's size first
 * (bicubic), one row at a time: no enlarged copy of the input is held.
 */
function mixWithInput(target: Float32Array, item: ImageTensor, scale: number, strength: number): void {
  const W = item.w * scale;
  const H = item.h * scale;
  const mixRow = (ch: number, y: number, src: ArrayLike<number>): void => {
    const at = (ch * H + y) * W;
    for (let x = 0; x < W; x++) {
      // The input as the float32 image a resampled copy would hold, then the same arithmetic.
      const base = Math.fround(src[x]!);
      target[at + x] = base + strength * (target[at + x]! - base);
    }
  };
  if (scale === 1) {
    for (let ch = 0; ch < item.c; ch++) for (let y = 0; y < H; y++) mixRow(ch, y, item.data.subarray((ch * H + y) * W, (ch * H + y + 1) * W));
  } else {
    resampleRows(item, W, H, 'bicubic', mixRow);
  }
}

/**
 * Runs the model on each tile of one image and blends the result into `target` at once, so that
 * neither the cut tiles nor their outputs pile up. One tile covering the image goes through
 * unweighted (a full-size weighted pass would change nothing).
 */
async function runTiles(
  session: ModelSession,
  item: ImageTensor,
  plan: TilePlan,
  { scale, fixed }: { scale: number; fixed: number },
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
    const input = fixed ? padReflect(tile, fixed) : tile;
    const feed: TensorData = { data: input.data, dims: [1, 3, input.h, input.w] };
    let result = (await session.run({ [inputName]: feed }, { signal: ctx.signal }))[outputName]!;
    const [, c, h, w] = result.dims;
    if (c !== 3 || h !== input.h * scale || w !== input.w * scale) {
      throw new InputError('model', `gave ${result.dims.join('x')} for a ${input.w}x${input.h} tile; expected 1x3x${input.h * scale}x${input.w * scale} (x${scale})`);
    }
    if (input !== tile) result = { data: cropTopLeft(result.data, w, h, tile.w * scale, tile.h * scale), dims: [1, 3, tile.h * scale, tile.w * scale] };
    if (blender) blender.add(target, t, result.data);
    else target.set(result.data);
    ctx.progress(done + t + 1, total);
  }
  blender?.normalise(target);
}

/**
 * The tile grown to size x size by mirroring at its right and bottom edges (an image smaller than
 * a one-size model's input); the model's output is cropped back to the tile's own area.
 */
export function padReflect(tile: ImageTensor, size: number): ImageTensor {
  if (tile.w === size && tile.h === size) return tile;
  if (tile.w > size || tile.h > size) throw new RangeError(`a ${tile.w}x${tile.h} tile does not fit in ${size}x${size}`);
  const mirror = (i: number, n: number): number => {
    // Reflection without repeating the edge (numpy 'reflect'), folded as often as needed.
    if (n === 1) return 0;
    const period = 2 * (n - 1);
    const m = i % period;
    return m < n ? m : period - m;
  };
  const out = createImage(1, tile.c, size, size);
  for (let ch = 0; ch < tile.c; ch++) {
    const src = ch * tile.h * tile.w;
    const dst = ch * size * size;
    for (let y = 0; y < size; y++) {
      const row = src + mirror(y, tile.h) * tile.w;
      for (let x = 0; x < size; x++) out.data[dst + y * size + x] = tile.data[row + mirror(x, tile.w)]!;
    }
  }
  return out;
}

function cropTopLeft(data: Float32Array, w: number, h: number, cw: number, ch: number): Float32Array {
  const out = new Float32Array(3 * cw * ch);
  for (let c = 0; c < 3; c++) for (let y = 0; y < ch; y++) out.set(data.subarray(c * w * h + y * w, c * w * h + y * w + cw), (c * ch + y) * cw);
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

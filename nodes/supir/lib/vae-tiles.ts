/**
 * Tiled VAE passes, to bound the memory of large images: the input is cut into overlapping tiles
 * (nodes/api/tiling.ts), each tile runs through the unmodified graph, and every output is blended
 * back with the tiler's partition-of-unity ramps.
 *
 * This is the simple overlap-and-blend scheme, not the official tilevae.py, which aggregates
 * GroupNorm statistics over all tiles so that its result equals the untiled network. Here every
 * tile normalises with its own statistics, so the result differs from the untiled one (measured
 * in test/supir/nodes-tiles.test.ts); it is off (tile size 0) unless asked for.
 */
import { StudioError } from '../../api/errors.ts';
import type { TensorData } from '../../api/runtime.ts';
import type { TilePlan } from '../../api/sockets.ts';
import type { ImageTensor } from '../../api/tensor.ts';
import { extractTiles, mergeTiles, planTiles } from '../../api/tiling.ts';
import { int } from '../../api/widgets.ts';
import type { VaeRunner } from './vae-pipeline.ts';

export interface TileGrid {
  /** Input elements per plan unit (8 px for an encoder, so tiles stay aligned to latent cells). */
  unit: number;
  /** Tile side and minimum overlap, in units. */
  tile: number;
  overlap: number;
  /** Called after each tile, for progress and interruption. */
  onTile?: (done: number, total: number) => void;
}

/** Encoder tiles are laid on an 8-pixel grid: whole latent cells for any VAE of downscale 8 or less. */
export const ENCODER_UNIT = 8;

/**
 * The grid for a tile side in image pixels, overlap a quarter of it; null (untiled) for 0. The
 * decoder's input is the latent, so its grid is in latent cells of `downscale` pixels.
 */
export function tileGrid(tilePx: number, role: 'encoder' | 'decoder', downscale: number, onTile?: TileGrid['onTile']): TileGrid | null {
  const unit = role === 'encoder' ? ENCODER_UNIT : 1;
  const tile = Math.floor(tilePx / (role === 'encoder' ? ENCODER_UNIT : downscale));
  if (!(tile > 0)) return null; // 0 (or a missing value) means untiled
  return { unit, tile, overlap: Math.floor(tile / 4), ...(onTile ? { onTile } : {}) };
}

/** The tile-size widget of the VAE nodes. */
export const vaeTileWidget = () =>
  int({
    default: -1,
    min: -1,
    max: 8192,
    step: 64,
    description:
      '-1 (auto) tiles where the memory estimate says an untiled pass would need over 2 GB (512 px tiles), else runs whole. 0 runs the VAE on the whole image. Otherwise it runs on overlapping tiles of this many pixels, which bounds memory; each tile is normalised on its own, so tones may shift slightly.',
  });

function scalePlan(plan: TilePlan, s: number): TilePlan {
  return { ...plan, width: plan.width * s, height: plan.height * s, tiles: plan.tiles.map((t) => ({ x: t.x * s, y: t.y * s, w: t.w * s, h: t.h * s })) };
}

const asImage = (t: TensorData): ImageTensor => {
  const [n, c, h, w] = t.dims as [number, number, number, number];
  return { data: t.data, n, c, h, w };
};

/**
 * A runner that runs `inner` tile by tile on its one NCHW float input and blends each NCHW output.
 * Inputs that fit in one tile, or whose sides are not whole units, run untiled.
 */
export function tiledRunner(inner: VaeRunner, grid: TileGrid | null): VaeRunner {
  if (!grid) return inner;
  return {
    async run(feeds, opts) {
      const entries = Object.entries(feeds);
      const [name, input] = entries[0] ?? [];
      if (entries.length !== 1 || !name || !(input?.data instanceof Float32Array) || input.dims.length !== 4) return inner.run(feeds, opts);
      const image = asImage(input as TensorData);
      if (image.h % grid.unit !== 0 || image.w % grid.unit !== 0) return inner.run(feeds, opts);
      const plan = planTiles(image.w / grid.unit, image.h / grid.unit, { tile: grid.tile, overlap: Math.min(grid.overlap, grid.tile - 1) });
      if (plan.tiles.length === 1) return inner.run(feeds, opts);
      const tiles = extractTiles(image, scalePlan(plan, grid.unit));
      const plane = tiles.c * tiles.h * tiles.w;
      const parts: Record<string, Float32Array[]> = {};
      const shapes: Record<string, number[]> = {};
      for (let i = 0; i < tiles.n; i++) {
        const outs = await inner.run({ [name]: { data: tiles.data.subarray(i * plane, (i + 1) * plane), dims: [1, tiles.c, tiles.h, tiles.w] } }, opts);
        for (const [key, t] of Object.entries(outs)) {
          (parts[key] ??= []).push(t.data);
          shapes[key] = t.dims;
        }
        grid.onTile?.(i + 1, tiles.n);
      }
      const result: Record<string, TensorData> = {};
      for (const [key, list] of Object.entries(parts)) {
        const [, c, h, w] = shapes[key] as [number, number, number, number];
        // Output cells per plan unit: 8/ds for an encoder, ds for a decoder.
        const scale = h / plan.tiles[0]!.h;
        if (!Number.isInteger(scale) || scale * plan.tiles[0]!.w !== w) {
          throw new StudioError('INTERNAL', `tiled VAE: a ${tiles.w}x${tiles.h} tile gave a ${w}x${h} '${key}', not a whole multiple of the ${grid.unit}-pixel grid`);
        }
        const data = new Float32Array(list.length * c * h * w);
        list.forEach((d, i) => data.set(d, i * c * h * w));
        const merged = mergeTiles({ data, n: list.length, c, h, w }, plan, scale);
        result[key] = { data: merged.data, dims: [merged.n, merged.c, merged.h, merged.w] };
      }
      return result;
    },
  };
}

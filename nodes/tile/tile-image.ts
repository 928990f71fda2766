import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { extractTiles, planTiles } from '../api/tiling.ts';
import { int } from '../api/widgets.ts';

/**
 * Cuts an image into overlapping tiles (a batch) and the plan that puts them back, so that any
 * per-tile processing can be drawn as a graph between Tile Image and Merge Tiles.
 */
export default defineNode({
  id: 'TileImage',
  displayName: 'Tile Image',
  category: 'image/tiles',
  description: 'Splits every image into overlapping tiles of equal size; Merge Tiles blends them back.',
  inputs: { image: { type: 'IMAGE' } },
  widgets: {
    tile_size: int({ default: 512, min: 16, max: 8192, step: 8 }),
    overlap: int({ default: 32, min: 0, max: 1024, step: 2, description: 'Pixels shared by neighbours, blended with a smooth ramp.' }),
  },
  outputs: { tiles: 'IMAGE', plan: 'TILE_PLAN' },
  execute({ image, tile_size, overlap }) {
    if (overlap >= tile_size) throw new InputError('overlap', `${overlap} px must be smaller than the tile (${tile_size} px)`);
    const plan = planTiles(image.w, image.h, { tile: tile_size, overlap });
    return { tiles: extractTiles(image, plan), plan };
  },
});

import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import { mergeTiles } from '../api/tiling.ts';

/**
 * Blends tiles back into whole images. The tiles may have been enlarged on the way (an upscaler
 * between Tile Image and here): the scale is read from their size against the plan's.
 */
export default defineNode({
  id: 'MergeTiles',
  displayName: 'Merge Tiles',
  category: 'image/tiles',
  description: 'Blends a batch of tiles back into images following the plan made by Tile Image.',
  inputs: { tiles: { type: 'IMAGE' }, plan: { type: 'TILE_PLAN' } },
  widgets: {},
  outputs: { image: 'IMAGE' },
  execute({ tiles, plan }) {
    const first = plan.tiles[0]!;
    const scale = tiles.w / first.w;
    if (!Number.isInteger(scale) || tiles.h !== first.h * scale) {
      throw new InputError('tiles', `${tiles.w}x${tiles.h} tiles do not match the plan's ${first.w}x${first.h} tiles at a whole scale`);
    }
    if (tiles.n % plan.tiles.length !== 0) {
      throw new InputError('tiles', `got ${tiles.n} tiles; the plan needs a multiple of ${plan.tiles.length}`);
    }
    return { image: mergeTiles(tiles, plan, scale) };
  },
});

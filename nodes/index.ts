import type { AnyNodeDefinition } from './api/define.ts';
import ImageCrop from './image/crop.ts';
import LoadImage from './image/load.ts';
import PreviewImage from './image/preview.ts';
import ImageResize from './image/resize.ts';
import SaveImage from './image/save.ts';
import { primitiveNodes } from './primitive/primitives.ts';
import MergeTiles from './tile/merge-tiles.ts';
import TileImage from './tile/tile-image.ts';
import LoadUpscaleModel from './upscale/load-model.ts';
import UpscaleImage from './upscale/upscale-image.ts';

/**
 * Every node the studio offers, in the order the editor's menus list them. Explicit rather than
 * discovered from the folder, so that a stray file can never become a node.
 */
export const catalogue: AnyNodeDefinition[] = [
  LoadImage,
  SaveImage,
  PreviewImage,
  ImageResize,
  ImageCrop,
  TileImage,
  MergeTiles,
  LoadUpscaleModel,
  UpscaleImage,
  ...primitiveNodes,
];

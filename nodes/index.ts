import type { AnyNodeDefinition } from './api/define.ts';
import ImageCrop from './image/crop.ts';
import LoadImage from './image/load.ts';
import PreviewImage from './image/preview.ts';
import ImageResize from './image/resize.ts';
import SaveImage from './image/save.ts';
import { primitiveNodes } from './primitive/primitives.ts';

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
  ...primitiveNodes,
];

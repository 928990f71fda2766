import type { AnyNodeDefinition } from './api/define.ts';
import ImageGrid from './compare/grid.ts';
import CompareImages from './compare/compare.ts';
import ImageMetrics from './compare/metrics.ts';
import Sweep from './compare/sweep.ts';
import ImageCrop from './image/crop.ts';
import DegradeRealESRGAN from './degrade/degrade.ts';
import { degradeOpNodes } from './degrade/ops.ts';
import LoadImage from './image/load.ts';
import LoadImageFolder from './image/load-folder.ts';
import PreviewImage from './image/preview.ts';
import ImageResize from './image/resize.ts';
import SaveImage from './image/save.ts';
import { primitiveNodes } from './primitive/primitives.ts';
import MergeTiles from './tile/merge-tiles.ts';
import TileImage from './tile/tile-image.ts';
import LoadUpscaleModel from './upscale/load-model.ts';
import UpscaleImage from './upscale/upscale-image.ts';
import ColourFix from './supir/colour-fix.ts';
import SupirDecode from './supir/decode.ts';
import SupirEncode from './supir/encode.ts';
import LoadSupirModel from './supir/load-model.ts';
import SupirResize from './supir/resize.ts';
import SupirStage1 from './supir/stage1.ts';
import SupirSample from './supir/sample.ts';
import TextEncodeSDXL from './supir/text-encode.ts';
import CaptionVLM from './caption/caption.ts';

/**
 * Every node the studio offers, in the order the editor's menus list them. Explicit rather than
 * discovered from the folder, so that a stray file can never become a node.
 */
export const catalogue: AnyNodeDefinition[] = [
  LoadImage,
  LoadImageFolder,
  SaveImage,
  PreviewImage,
  ImageResize,
  ImageCrop,
  DegradeRealESRGAN,
  ...degradeOpNodes,
  TileImage,
  MergeTiles,
  LoadUpscaleModel,
  UpscaleImage,
  LoadSupirModel,
  SupirResize,
  SupirStage1,
  TextEncodeSDXL,
  CaptionVLM,
  SupirEncode,
  SupirSample,
  SupirDecode,
  ColourFix,
  Sweep,
  ImageGrid,
  ImageMetrics,
  CompareImages,
  ...primitiveNodes,
];

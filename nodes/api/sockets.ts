import type { ImageTensor, LatentTensor, Tensor } from './tensor.ts';

/**
 * The closed list of socket types. The executor's link checks and the editor's link colours both
 * read this one list (the editor through `GET /api/nodes`).
 */
export const SOCKET_TYPES = [
  'IMAGE',
  'LATENT',
  'CONDITIONING',
  'SUPIR_MODEL',
  'UPSCALE_MODEL',
  'TILE_PLAN',
  'STRING',
  'INT',
  'FLOAT',
  'BOOLEAN',
] as const;

export type SocketType = (typeof SOCKET_TYPES)[number];

/** Positive and negative cross-attention context plus the pooled vector, as SDXL uses them. */
export interface Conditioning {
  crossattn: Tensor;
  vector: Tensor;
  /** One entry per tile when the conditioning differs across tiles (SUPIR's tiled captions). */
  perTile?: Array<{ crossattn: Tensor; vector: Tensor }>;
}

/** A reference to a model held by the runtime: never the weights themselves. */
export interface ModelHandle {
  kind: string;
  /** What the runtime opens: the ONNX file's path. */
  id: string;
  /** Content hash of the weights, so that cache keys change when the file does. */
  hash: string;
  /** The name the user picked ("esrgan-medium x4"). */
  name?: string;
  /** Output pixels per input pixel along each side, where the model has a fixed one. */
  scale?: number;
  /** Execution provider asked for: 'auto', 'cuda', 'webgpu' or 'cpu'. */
  provider?: string;
  /**
   * For a model made for one square input size (MAXIM): the side `id` takes, and the multiple
   * any other side must be (another side is another file, from the model library).
   */
  tile?: number;
  tileMultiple?: number;
}

export interface TileRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface TilePlan {
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  tiles: TileRect[];
}

export interface SocketValueMap {
  IMAGE: ImageTensor;
  LATENT: LatentTensor;
  CONDITIONING: Conditioning;
  /** A SUPIR model pack (Load SUPIR Model): what the SUPIR nodes take. */
  SUPIR_MODEL: ModelHandle;
  /** A super-resolution model (Load Upscale Model): what Upscale Image takes. */
  UPSCALE_MODEL: ModelHandle;
  TILE_PLAN: TilePlan;
  STRING: string;
  INT: number;
  FLOAT: number;
  BOOLEAN: boolean;
}

/** Link colours shown by the editor, one per type, chosen to stay apart on a dark canvas. */
export const SOCKET_COLOURS: Record<SocketType, string> = {
  IMAGE: '#64b5f6',
  LATENT: '#ff9cf9',
  CONDITIONING: '#ffa931',
  SUPIR_MODEL: '#b39ddb',
  UPSCALE_MODEL: '#ffd54f',
  TILE_PLAN: '#4db6ac',
  STRING: '#81c784',
  INT: '#29b6f6',
  FLOAT: '#aed581',
  BOOLEAN: '#e57373',
};

export function isSocketType(value: unknown): value is SocketType {
  return typeof value === 'string' && (SOCKET_TYPES as readonly string[]).includes(value);
}

/** Whether an output of type `from` may feed an input of type `to` (INT widens to FLOAT). */
export function socketAccepts(to: SocketType, from: SocketType): boolean {
  return to === from || (to === 'FLOAT' && from === 'INT');
}

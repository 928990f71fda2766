/**
 * The shapes of the UNet's two repeated blocks as read from the weights: what unet-arch.ts finds
 * and unet-blocks.ts builds. Kept apart from both so that the block builders (which zerosft.ts
 * uses) do not depend on the architecture reader (which uses zerosft.ts).
 */

export interface ResBlockArch {
  prefix: string;
  inChannels: number;
  outChannels: number;
  /** A 1×1 skip_connection conv when in ≠ out channels (else identity). */
  skipConv: boolean;
}

export interface TransformerArch {
  prefix: string;
  /** inner_dim = heads · dimHead (proj_in's output size); equals the block's channels in SDXL. */
  innerDim: number;
  depth: number;
  heads: number;
  dimHead: number;
  contextDim: number;
}

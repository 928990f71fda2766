/** The body of GET /api/supir/estimate (docs/api.md): the memory a SUPIR run of a pack needs at a size. */
export interface SupirEstimateJson {
  pack: string;
  precision: string;
  width: number;
  height: number;
  /** Whether the estimate assumes the tiled VAE: width x height is over tiledVaeAbove². */
  tiledVae: boolean;
  /** The largest square side (px) whose untiled VAE pass stays within the VAE budget. */
  tiledVaeAbove: number;
  peak: number;
  stages: Array<{ stage: string; weights: number; activations: number; peak: number }>;
  /** "about 8.4 GB at 1024x1024 (fp16; sampling 8.4 GB); tiled VAE on" */
  text: string;
}

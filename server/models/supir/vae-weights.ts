/**
 * Gathers the `first_stage_model.*` tensors the VAE graphs need: into memory, or (`lazy`) as lazy
 * weights that are hashed now and read again when the model is written, so the sources must stay
 * open until then (the converter's way, see onnx/export.ts). A real SUPIR setup
 * spreads them over two files: the SDXL base checkpoint holds encoder, decoder, quant_conv and
 * post_quant_conv; the SUPIR checkpoint adds denoise_encoder. Sources are read in the order given
 * and a later source's tensor replaces an earlier one of the same name, as SUPIR's own loading
 * (SDXL first, then the SUPIR delta) does; a merged checkpoint view works as a single source.
 */
import { lazyWeight, weightsFromMap, type Weights, type WeightTensor } from '../onnx/layers.ts';
import { VAE_PREFIX } from './vae-config.ts';

/**
 * Some converted VAEs store the attention q/k/v/proj_out as Linear [C, C] rather than 1×1 conv
 * [C, C, 1, 1]; the data is identical, so only the shape is normalised.
 */
const ATTN_PROJECTION = /\.(attn_1|attn\.\d+)\.(q|k|v|proj_out)\.weight$/;

export function normaliseVaeDims(key: string, dims: number[]): number[] {
  return ATTN_PROJECTION.test(key) && dims.length === 2 ? [...dims, 1, 1] : dims;
}

/**
 * What is read from a file, structurally: a SafetensorsFile (shapes via `entry`) and the
 * checkpoint layer's format-independent view (shapes via `shape`) both fit, without this module
 * depending on either reader.
 */
export type VaeTensorSource = {
  readonly path: string;
  keys(): string[];
  float32(key: string): Promise<Float32Array>;
} & ({ shape(key: string): number[] } | { entry(key: string): { shape: number[] } });

function shapeOf(src: VaeTensorSource, key: string): number[] {
  return 'shape' in src ? src.shape(key) : src.entry(key).shape;
}

/** Every tensor under `${root}.` from `sources` (later sources win), as float32 (lazy ones with `lazy`). */
export async function readVaeWeights(sources: readonly VaeTensorSource[], root?: string, opts?: { lazy?: false }): Promise<Weights<Float32Array>>;
export async function readVaeWeights(sources: readonly VaeTensorSource[], root: string | undefined, opts: { lazy: true }): Promise<Weights>;
export async function readVaeWeights(sources: readonly VaeTensorSource[], root = VAE_PREFIX, opts: { lazy?: boolean } = {}): Promise<Weights> {
  // Which source wins each key first, so a tensor another source replaces is never read.
  const owner = new Map<string, VaeTensorSource>();
  for (const src of sources) {
    for (const key of src.keys()) if (key.startsWith(`${root}.`)) owner.set(key, src);
  }
  const map = new Map<string, WeightTensor>();
  for (const [key, src] of owner) {
    const dims = normaliseVaeDims(key, [...shapeOf(src, key)]);
    const read = () => src.float32(key);
    map.set(key, { data: opts.lazy ? await lazyWeight(read, dims, `tensor '${key}' of ${src.path}`) : await read(), dims });
  }
  return weightsFromMap(map, sources.map((s) => s.path).join(' + ') || 'no files');
}

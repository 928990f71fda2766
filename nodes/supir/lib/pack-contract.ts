/**
 * The SUPIR model pack contract: what `supir-studio convert` compiles (server/models/pack/), what
 * the manifest records and its reader checks (pack-manifest.ts), and what the SUPIR nodes open and
 * feed. Component names, files, tensor names, dtypes and dims, which components may be stored at
 * half precision, the latent's channels and the SDXL latent scale are defined here and nowhere
 * else: the compiler, the reader and the nodes import them, so they cannot drift apart.
 *
 * Tensor names are checked at compile time: `ComponentFeeds<C>` and `componentOutput(C, ...)` only
 * take names this table lists for component C.
 */
import { StudioError } from '../../api/errors.ts';
import type { AnyTensorData, TensorData } from '../../api/runtime.ts';

/** sgm's `scale_factor` for the SDXL VAE (0.18215 was SD 1.x), applied in vae-pipeline.ts only. */
export const SDXL_VAE_SCALE = 0.13025;

/** Channels of the SDXL VAE latent, which is also GLVControl's hint input. */
export const LATENT_CHANNELS = 4;

/** The denoiser_step graph downsamples the latent twice (SDXL's three UNet levels): sides in multiples of 4 cells. */
export const DENOISER_LATENT_MULTIPLE = 4;

/** CLIP's token context: every text-encoder row is 77 ids. */
export const TEXT_TOKENS = 77;

/**
 * A pack's precision, chosen at conversion (`convert --precision`): fp16 stores (and, where the
 * compiler supports it, computes) the components marked `halfPrecision` in float16.
 */
export const PACK_PRECISIONS = ['fp32', 'fp16'] as const;
export type PackPrecision = (typeof PACK_PRECISIONS)[number];

/** The weights dtype recorded per component for each precision. */
export type WeightsDtype = 'float32' | 'float16';
export const PRECISION_DTYPE: Readonly<Record<PackPrecision, WeightsDtype>> = { fp32: 'float32', fp16: 'float16' };

export function isPackPrecision(value: unknown): value is PackPrecision {
  return typeof value === 'string' && (PACK_PRECISIONS as readonly string[]).includes(value);
}

export type TensorDtype = 'float32' | 'float16' | 'int64' | 'int32';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: TensorDtype;
  /** Symbolic dimensions (batch, height, ...) are strings. */
  readonly dims: ReadonlyArray<number | string>;
}

export interface ComponentContract {
  /** The ONNX file inside the pack; its external weights are `<file>.data`. */
  readonly file: string;
  /**
   * Whether an fp16 pack stores this component in float16. The VAE never is: the official SDXL
   * AE gives NaN in fp16 (the official code runs it in bf16 or fp32).
   */
  readonly halfPrecision: boolean;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

/** The components' names, for code: `COMPONENT.clipL` rather than a string typed by hand. */
export const COMPONENT = {
  denoiserStep: 'denoiser_step',
  vaeEncoder: 'vae_encoder',
  vaeDenoiseEncoder: 'vae_denoise_encoder',
  vaeDecoder: 'vae_decoder',
  clipL: 'clip_l',
  clipBigG: 'clip_bigg',
} as const;

const image = <N extends string>(name: N) => ({ name, dtype: 'float32', dims: ['batch', 3, 'height', 'width'] }) as const;
const latent = <N extends string>(name: N) => ({ name, dtype: 'float32', dims: ['batch', LATENT_CHANNELS, 'lh', 'lw'] }) as const;
const tokenIds = { name: 'ids', dtype: 'int64', dims: ['batch', TEXT_TOKENS] } as const;
const hidden = { name: 'hidden', dtype: 'float32', dims: ['batch', TEXT_TOKENS, 'width'] } as const;
const vaeEncoder = { halfPrecision: false, inputs: [image('image')], outputs: [latent('mean'), latent('logvar')] } as const;

/**
 * Every component, in conversion order. The interface stays float32 (int64 for ids and
 * timesteps) at every precision: the runtime feeds and reads float32.
 */
export const SUPIR_PACK = {
  [COMPONENT.denoiserStep]: {
    file: `${COMPONENT.denoiserStep}.onnx`,
    halfPrecision: true,
    inputs: [
      latent('x'),
      { name: 'timesteps', dtype: 'int64', dims: ['batch'] },
      { name: 'context', dtype: 'float32', dims: ['batch', 'tokens', 'context_dim'] },
      { name: 'y', dtype: 'float32', dims: ['batch', 'adm_in_channels'] },
      latent('control'),
      { name: 'control_scale', dtype: 'float32', dims: [] },
    ],
    outputs: [latent('out')],
  },
  [COMPONENT.vaeEncoder]: { file: `${COMPONENT.vaeEncoder}.onnx`, ...vaeEncoder },
  [COMPONENT.vaeDenoiseEncoder]: { file: `${COMPONENT.vaeDenoiseEncoder}.onnx`, ...vaeEncoder },
  [COMPONENT.vaeDecoder]: { file: `${COMPONENT.vaeDecoder}.onnx`, halfPrecision: false, inputs: [latent('latent')], outputs: [image('image')] },
  [COMPONENT.clipL]: { file: `${COMPONENT.clipL}.onnx`, halfPrecision: true, inputs: [tokenIds], outputs: [hidden] },
  [COMPONENT.clipBigG]: {
    file: `${COMPONENT.clipBigG}.onnx`,
    halfPrecision: true,
    inputs: [tokenIds],
    outputs: [hidden, { name: 'pooled', dtype: 'float32', dims: ['batch', 'pooled_dim'] }],
  },
} as const satisfies Record<string, ComponentContract>;

export type SupirComponent = keyof typeof SUPIR_PACK;

/** Every component a pack must hold for the SUPIR nodes, in conversion order. */
export const SUPIR_COMPONENTS = Object.keys(SUPIR_PACK) as readonly SupirComponent[];

/** The `kind` of the ModelHandle Load SUPIR Model gives. */
export const SUPIR_MODEL_KIND = 'supir';

export type InputName<C extends SupirComponent> = (typeof SUPIR_PACK)[C]['inputs'][number]['name'];
export type OutputName<C extends SupirComponent> = (typeof SUPIR_PACK)[C]['outputs'][number]['name'];

/** The feeds of one run of component C: exactly its inputs, by name. */
export type ComponentFeeds<C extends SupirComponent> = Record<InputName<C>, AnyTensorData>;

export function isSupirComponent(name: string): name is SupirComponent {
  return Object.hasOwn(SUPIR_PACK, name);
}

export function componentContract(name: SupirComponent): ComponentContract {
  return SUPIR_PACK[name];
}

/** The weights dtype of a component in a pack of the given precision. */
export function componentDtype(name: SupirComponent, precision: PackPrecision): WeightsDtype {
  return SUPIR_PACK[name].halfPrecision ? PRECISION_DTYPE[precision] : 'float32';
}

/** One named output of a run of component C, or an error naming the component and what it gave. */
export function componentOutput<C extends SupirComponent>(component: C, outs: Record<string, TensorData>, name: OutputName<C>): TensorData {
  const t = outs[name];
  if (!t) throw new StudioError('INTERNAL', `${component} returned no '${name}' (got ${Object.keys(outs).join(', ') || 'nothing'})`);
  return t;
}

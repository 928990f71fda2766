/**
 * The VAE as SUPIRModel calls it, over the three compiled graphs (vae.ts). This is the only place
 * the SDXL latent scale factor is applied: every latent that leaves this class (the control input
 * `_z`, `x_center`, a sampler result fed back to `decode`) is in the sampler's scaled space,
 * while the graphs themselves work unscaled like sgm's AutoencoderKL.
 *
 * The element-wise steps round to float32 after each operation (Math.fround), as torch does in
 * fp32, so results agree with the official code to the last bit or two.
 */
import { StudioError } from '../../api/errors.ts';
import type { ModelSession, TensorData } from '../../api/runtime.ts';
import { COMPONENT, componentOutput, SDXL_VAE_SCALE, type ComponentFeeds } from './pack-contract.ts';

/** What the pipeline needs from a session: the runtime's ModelSession, or a test's adaptor. */
export type VaeRunner = Pick<ModelSession, 'run'>;

export interface VaeSessions {
  /** image → mean, logvar (unscaled, logvar clamped). */
  encoder: VaeRunner;
  /** image → mean (unscaled; its logvar is unused), with SUPIR's degradation-robust weights. */
  denoiseEncoder: VaeRunner;
  /** unscaled latent → image. */
  decoder: VaeRunner;
}

type RunOpts = { signal?: AbortSignal };

function map(t: TensorData, f: (v: number, i: number) => number): TensorData {
  const data = new Float32Array(t.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(f(t.data[i]!, i));
  return { data, dims: [...t.dims] };
}

export class SupirVae {
  /** The factor as the float32 torch multiplies by. */
  private readonly scale32: number;

  constructor(
    private readonly sessions: VaeSessions,
    readonly scale = SDXL_VAE_SCALE,
  ) {
    this.scale32 = Math.fround(scale);
  }

  /** `encode_first_stage_with_denoise(x, use_sample=False)`: scale · mean(quant_conv(denoise_encoder(x))) = `_z`. */
  async encodeWithDenoise(image: TensorData, opts: RunOpts = {}): Promise<TensorData> {
    const feeds: ComponentFeeds<typeof COMPONENT.vaeDenoiseEncoder> = { image };
    const outs = await this.sessions.denoiseEncoder.run(feeds, opts);
    return map(componentOutput(COMPONENT.vaeDenoiseEncoder, outs, 'mean'), (v) => this.scale32 * v);
  }

  /** The plain encoder's diagonal Gaussian, unscaled: mean and clamped logvar. */
  async posterior(image: TensorData, opts: RunOpts = {}): Promise<{ mean: TensorData; logvar: TensorData }> {
    const feeds: ComponentFeeds<typeof COMPONENT.vaeEncoder> = { image };
    const outs = await this.sessions.encoder.run(feeds, opts);
    return { mean: componentOutput(COMPONENT.vaeEncoder, outs, 'mean'), logvar: componentOutput(COMPONENT.vaeEncoder, outs, 'logvar') };
  }

  /**
   * `encode_first_stage(x)`: scale · (mean + std · noise), std = exp(logvar / 2). The official
   * wrapper always samples; `noise` is that torch.randn draw, standard normal, shaped like the latent.
   */
  async encode(image: TensorData, noise: Float32Array, opts: RunOpts = {}): Promise<TensorData> {
    const { mean, logvar } = await this.posterior(image, opts);
    if (noise.length !== mean.data.length) {
      throw new StudioError('BAD_INPUT', `encode noise has ${noise.length} values, the latent [${mean.dims.join(', ')}] needs ${mean.data.length}`);
    }
    return map(mean, (m, i) => {
      const std = Math.fround(Math.exp(Math.fround(0.5 * logvar.data[i]!)));
      return this.scale32 * Math.fround(m + Math.fround(std * noise[i]!));
    });
  }

  /** `decode_first_stage(z)`: decoder(post_quant_conv(z / scale)); not clamped, as in SUPIR. */
  async decode(z: TensorData, opts: RunOpts = {}): Promise<TensorData> {
    const feeds: ComponentFeeds<typeof COMPONENT.vaeDecoder> = { latent: map(z, (v) => v / this.scale32) };
    return componentOutput(COMPONENT.vaeDecoder, await this.sessions.decoder.run(feeds, opts), 'image');
  }

  /** Stage 1 (`batchify_denoise`): the control latent `_z` and the denoised image `x_stage1`. */
  async stage1(image: TensorData, opts: RunOpts = {}): Promise<{ z: TensorData; image: TensorData }> {
    const z = await this.encodeWithDenoise(image, opts);
    return { z, image: await this.decode(z, opts) };
  }
}

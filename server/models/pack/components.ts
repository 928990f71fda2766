/**
 * The components of a SUPIR model pack, how each is compiled from the merged checkpoint, and the
 * interface it offers the SUPIR nodes. One table, so the converter, the manifest and the loader
 * agree on names.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { compileBigG, compileClipL } from '../supir/text-encoders.ts';
import { buildDenoiserStep } from '../supir/unet.ts';
import { decoderGraph, encoderGraph } from '../supir/vae.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import { readVaeWeights } from '../supir/vae-weights.ts';
import { readWeights } from './weights.ts';

type Spec = { name: string; dtype: 'float32' | 'int64'; dims: Array<number | string> };

export interface CompileOptions {
  /** UNet attention head width (64 in SDXL; the yaml's num_head_channels). */
  numHeadChannels?: number;
  /** Text-encoder heads, when not width/64. */
  clipLHeads?: number;
  bigGHeads?: number;
}

export interface ComponentDef {
  name: string;
  file: string;
  /** The VAE stays float32 in --fp16 packs: the official AE gives NaN in fp16. */
  fp16Allowed: boolean;
  inputs: Spec[];
  outputs: Spec[];
  compile(ck: Checkpoint, opts: CompileOptions): Promise<{ graph: GraphBuilder; architecture: Record<string, unknown> }>;
}

const image = (name: string): Spec => ({ name, dtype: 'float32', dims: ['batch', 3, 'height', 'width'] });
const latent = (name: string): Spec => ({ name, dtype: 'float32', dims: ['batch', 4, 'lh', 'lw'] });

export const COMPONENTS: readonly ComponentDef[] = [
  {
    name: 'denoiser_step',
    file: 'denoiser_step.onnx',
    fp16Allowed: true,
    inputs: [
      latent('x'),
      { name: 'timesteps', dtype: 'int64', dims: ['batch'] },
      { name: 'context', dtype: 'float32', dims: ['batch', 'tokens', 'context_dim'] },
      { name: 'y', dtype: 'float32', dims: ['batch', 'adm_in_channels'] },
      latent('control'),
      { name: 'control_scale', dtype: 'float32', dims: [] },
    ],
    outputs: [latent('out')],
    async compile(ck, opts) {
      const w = await readWeights(ck, ['model.diffusion_model.', 'model.control_model.']);
      const { graph, arch } = buildDenoiserStep(w, opts.numHeadChannels ? { numHeadChannels: opts.numHeadChannels } : {});
      return { graph, architecture: { unet: arch.unet, control: { ...arch.control } } };
    },
  },
  ...(['encoder', 'denoise_encoder'] as const).map(
    (tower): ComponentDef => ({
      name: `vae_${tower}`,
      file: `vae_${tower}.onnx`,
      fp16Allowed: false,
      inputs: [image('image')],
      outputs: [latent('mean'), latent('logvar')],
      async compile(ck) {
        return { graph: encoderGraph(await readVaeWeights([ck], undefined, { lazy: true }), tower), architecture: {} };
      },
    }),
  ),
  {
    name: 'vae_decoder',
    file: 'vae_decoder.onnx',
    fp16Allowed: false,
    inputs: [latent('latent')],
    outputs: [image('image')],
    async compile(ck) {
      return { graph: decoderGraph(await readVaeWeights([ck], undefined, { lazy: true })), architecture: {} };
    },
  },
  {
    name: 'clip_l',
    file: 'clip_l.onnx',
    fp16Allowed: true,
    inputs: [{ name: 'ids', dtype: 'int64', dims: ['batch', 77] }],
    outputs: [{ name: 'hidden', dtype: 'float32', dims: ['batch', 77, 'width'] }],
    async compile(ck, opts) {
      const w = await readWeights(ck, ['conditioner.embedders.0.']);
      const { config, graph } = compileClipL(w, opts.clipLHeads ? { heads: opts.clipLHeads } : {});
      return { graph, architecture: { clip_l: config } };
    },
  },
  {
    name: 'clip_bigg',
    file: 'clip_bigg.onnx',
    fp16Allowed: true,
    inputs: [{ name: 'ids', dtype: 'int64', dims: ['batch', 77] }],
    outputs: [
      { name: 'hidden', dtype: 'float32', dims: ['batch', 77, 'width'] },
      { name: 'pooled', dtype: 'float32', dims: ['batch', 'pooled_dim'] },
    ],
    async compile(ck, opts) {
      const w = await readWeights(ck, ['conditioner.embedders.1.']);
      const { config, graph } = compileBigG(w, opts.bigGHeads ? { heads: opts.bigGHeads } : {});
      return { graph, architecture: { clip_bigg: config } };
    },
  },
];

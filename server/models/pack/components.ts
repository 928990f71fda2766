/**
 * How each component of a SUPIR model pack is compiled from the merged checkpoint. What the
 * components are (names, files, interfaces, which may be half precision) is the pack contract,
 * nodes/supir/lib/pack-contract.ts, shared with the manifest reader and the nodes; this file only
 * adds the compile step to each.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { compileBigG, compileClipL } from '../supir/text-encoders.ts';
import { buildDenoiserStep } from '../supir/unet.ts';
import { decoderGraph, encoderGraph } from '../supir/vae.ts';
import type { GraphBuilder } from '../onnx/builder.ts';
import { readVaeWeights } from '../supir/vae-weights.ts';
import { COMPONENT, SUPIR_COMPONENTS, SUPIR_PACK, type ComponentContract, type SupirComponent } from '../../../nodes/supir/lib/pack-contract.ts';
import { readWeights } from './weights.ts';
import { vaeConfig } from '../supir/vae-config.ts';

export interface CompileOptions {
  /** UNet attention head width (64 in SDXL; the yaml's num_head_channels). */
  numHeadChannels?: number;
  /** Text-encoder heads, when not width/64. */
  clipLHeads?: number;
  bigGHeads?: number;
}

type Compile = (ck: Checkpoint, opts: CompileOptions) => Promise<{ graph: GraphBuilder; architecture: Record<string, unknown> }>;

export interface ComponentDef extends ComponentContract {
  name: SupirComponent;
  compile: Compile;
}

const vaeEncoder =
  (tower: 'encoder' | 'denoise_encoder'): Compile =>
  async (ck) => ({ graph: encoderGraph(await readVaeWeights([ck], undefined, { lazy: true }), tower), architecture: {} });

const COMPILERS: Record<SupirComponent, Compile> = {
  [COMPONENT.denoiserStep]: async (ck, opts) => {
    const w = await readWeights(ck, ['model.diffusion_model.', 'model.control_model.']);
    const { graph, arch } = buildDenoiserStep(w, opts.numHeadChannels ? { numHeadChannels: opts.numHeadChannels } : {});
    return { graph, architecture: { unet: arch.unet, control: { ...arch.control } } };
  },
  [COMPONENT.vaeEncoder]: vaeEncoder('encoder'),
  [COMPONENT.vaeDenoiseEncoder]: vaeEncoder('denoise_encoder'),
  [COMPONENT.vaeDecoder]: async (ck) => {
    const w = await readVaeWeights([ck], undefined, { lazy: true });
    // What the memory estimate needs of the VAE (nodes/supir/lib/memory-estimate.ts).
    const c = vaeConfig(w);
    return { graph: decoderGraph(w), architecture: { vae: { levelChannels: c.decoder.levelChannels, factor: c.factor } } };
  },
  [COMPONENT.clipL]: async (ck, opts) => {
    const w = await readWeights(ck, ['conditioner.embedders.0.']);
    const { config, graph } = compileClipL(w, opts.clipLHeads ? { heads: opts.clipLHeads } : {});
    return { graph, architecture: { clip_l: config } };
  },
  [COMPONENT.clipBigG]: async (ck, opts) => {
    const w = await readWeights(ck, ['conditioner.embedders.1.']);
    const { config, graph } = compileBigG(w, opts.bigGHeads ? { heads: opts.bigGHeads } : {});
    return { graph, architecture: { clip_bigg: config } };
  },
};

/** Every component of the contract, in its order, with its compiler. */
export const COMPONENTS: readonly ComponentDef[] = SUPIR_COMPONENTS.map((name) => ({ name, ...SUPIR_PACK[name], compile: COMPILERS[name] }));

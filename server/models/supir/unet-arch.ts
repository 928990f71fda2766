/**
 * The SDXL-style UNet trunk (sgm `UNetModel` / SUPIR `GLVControl`) read back from the weights:
 * block layout, channels, transformer depths and the conditioning sizes all follow from key names
 * and shapes, so one compiler serves the tiny golden model (32, [1,2,2]) and SDXL (320, [1,2,4],
 * depth [1,2,10], context 2048, adm 2816). The one number the weights cannot give is the head
 * split of the attention: heads = channels / num_head_channels (a yaml value; 64 for SDXL).
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import type { Weights } from '../onnx/layers.ts';
import type { ResBlockArch, TransformerArch } from './block-arch.ts';
import { projectArch, type ProjectArch, type ZeroCrossAttnArch, type ZeroSftArch } from './zerosft.ts';

export type { ResBlockArch, TransformerArch };

export type InputBlockArch =
  | { kind: 'conv'; prefix: string; outChannels: number }
  | { kind: 'res'; level: number; res: ResBlockArch; transformer?: TransformerArch }
  | { kind: 'down'; level: number; prefix: string; channels: number };

export interface OutputBlockArch {
  index: number;
  res: ResBlockArch;
  transformer?: TransformerArch;
  /** Prefix of the Upsample conv (`output_blocks.k.N.conv`'s parent), if the block upsamples. */
  upsample?: string;
}

/** Time/label embedding, input blocks and middle block: what GLVControl and the UNet share. */
export interface TrunkArch {
  prefix: string;
  inChannels: number;
  modelChannels: number;
  timeEmbedDim: number;
  /** adm_in_channels of label_emb (`num_classes: sequential`); 0 if the model has none. */
  admInChannels: number;
  contextDim: number;
  channelMult: number[];
  numResBlocks: number;
  /** Transformer depth per level, 0 where the level has no attention. */
  transformerDepth: number[];
  input: InputBlockArch[];
  middle: { res0: ResBlockArch; transformer: TransformerArch; res1: ResBlockArch };
  /** Channels of each input block's output, then the middle block's (the 10 control features). */
  featureChannels: number[];
}

export interface ArchOptions {
  /** sgm num_head_channels (not stored in the weights): 64 in SDXL/SUPIR, 16 in the tiny config. */
  numHeadChannels?: number;
}

const dimsOf = (w: Weights, key: string): number[] => w.get(key).dims;

function countWhile(test: (i: number) => boolean): number {
  let n = 0;
  while (test(n)) n++;
  return n;
}

function bad(message: string): StudioError {
  return new StudioError('BAD_INPUT', message);
}

export function resBlockArch(w: Weights, prefix: string): ResBlockArch {
  const conv = dimsOf(w, `${prefix}.in_layers.2.weight`);
  return { prefix, inChannels: conv[1]!, outChannels: conv[0]!, skipConv: w.has(`${prefix}.skip_connection.weight`) };
}

export function transformerArch(w: Weights, prefix: string, numHeadChannels: number): TransformerArch {
  const projIn = dimsOf(w, `${prefix}.proj_in.weight`);
  // use_linear_in_transformer: proj_in is a Linear [inner, C]; the conv variant (SD 1.x) has rank 4.
  if (projIn.length !== 2) throw bad(`'${prefix}.proj_in' is a convolution: only use_linear_in_transformer models are supported`);
  const innerDim = projIn[0]!;
  if (innerDim % numHeadChannels !== 0) throw bad(`'${prefix}' has ${innerDim} channels, not a multiple of num_head_channels ${numHeadChannels}`);
  const depth = countWhile((j) => w.has(`${prefix}.transformer_blocks.${j}.norm1.weight`));
  if (depth === 0) throw bad(`'${prefix}' has no transformer_blocks`);
  const contextDim = dimsOf(w, `${prefix}.transformer_blocks.0.attn2.to_k.weight`)[1]!;
  return { prefix, innerDim, depth, heads: innerDim / numHeadChannels, dimHead: numHeadChannels, contextDim };
}

/** Reads the shared trunk under `prefix` (e.g. `model.diffusion_model`). */
export function trunkArch(w: Weights, prefix: string, opts: ArchOptions = {}): TrunkArch {
  const nhc = opts.numHeadChannels ?? 64;
  if (!w.has(`${prefix}.time_embed.0.weight`)) throw new StudioError('NOT_FOUND', `no UNet weights under '${prefix}'`);
  const [timeEmbedDim, modelChannels] = dimsOf(w, `${prefix}.time_embed.0.weight`) as [number, number];
  const admInChannels = w.has(`${prefix}.label_emb.0.0.weight`) ? dimsOf(w, `${prefix}.label_emb.0.0.weight`)[1]! : 0;
  const convIn = dimsOf(w, `${prefix}.input_blocks.0.0.weight`);
  const input: InputBlockArch[] = [{ kind: 'conv', prefix: `${prefix}.input_blocks.0.0`, outChannels: convIn[0]! }];
  const featureChannels = [convIn[0]!];
  const levelChannels: number[] = [];
  const resPerLevel: number[] = [0];
  const transformerDepth: number[] = [0];
  let level = 0;
  for (let i = 1; w.has(`${prefix}.input_blocks.${i}.0.op.weight`) || w.has(`${prefix}.input_blocks.${i}.0.in_layers.2.weight`); i++) {
    const p = `${prefix}.input_blocks.${i}`;
    if (w.has(`${p}.0.op.weight`)) {
      const channels = dimsOf(w, `${p}.0.op.weight`)[0]!;
      input.push({ kind: 'down', level, prefix: `${p}.0.op`, channels });
      featureChannels.push(channels);
      level++;
      resPerLevel.push(0);
      transformerDepth.push(0);
      continue;
    }
    const res = resBlockArch(w, `${p}.0`);
    const transformer = w.has(`${p}.1.proj_in.weight`) ? transformerArch(w, `${p}.1`, nhc) : undefined;
    input.push(transformer ? { kind: 'res', level, res, transformer } : { kind: 'res', level, res });
    featureChannels.push(res.outChannels);
    levelChannels[level] = res.outChannels;
    resPerLevel[level]! += 1;
    if (transformer) transformerDepth[level] = transformer.depth;
  }
  if (levelChannels.length !== resPerLevel.length || resPerLevel.some((n) => n !== resPerLevel[0])) {
    throw bad(`'${prefix}' input blocks do not form levels of equal ResBlock counts (${resPerLevel.join(', ')})`);
  }
  const mid = `${prefix}.middle_block`;
  const middle = { res0: resBlockArch(w, `${mid}.0`), transformer: transformerArch(w, `${mid}.1`, nhc), res1: resBlockArch(w, `${mid}.2`) };
  featureChannels.push(middle.res1.outChannels);
  return {
    prefix,
    inChannels: convIn[1]!,
    modelChannels,
    timeEmbedDim,
    admInChannels,
    contextDim: middle.transformer.contextDim,
    channelMult: levelChannels.map((c) => c / modelChannels),
    numResBlocks: resPerLevel[0]!,
    transformerDepth,
    input,
    middle,
    featureChannels,
  };
}

/** The decoder half of the UNet (`output_blocks.*`), in forward order. */
export function outputBlocksArch(w: Weights, prefix: string, opts: ArchOptions = {}): OutputBlockArch[] {
  const nhc = opts.numHeadChannels ?? 64;
  const count = countWhile((k) => w.has(`${prefix}.output_blocks.${k}.0.in_layers.2.weight`));
  return Array.from({ length: count }, (_, index) => {
    const p = `${prefix}.output_blocks.${index}`;
    const res = resBlockArch(w, `${p}.0`);
    const transformer = w.has(`${p}.1.proj_in.weight`) ? transformerArch(w, `${p}.1`, nhc) : undefined;
    const up = transformer ? `${p}.2` : `${p}.1`;
    const block: OutputBlockArch = { index, res };
    if (transformer) block.transformer = transformer;
    if (w.has(`${up}.conv.weight`)) block.upsample = up;
    return block;
  });
}

/** Where each project module sits in LightGLVUNet.forward, and which control feature it reads. */
export interface DecoderStep {
  /** ZeroSFT replacing cat([h, skip]) before output block `index`. */
  sft: number;
  /** ZeroCrossAttn between the transformer and the Upsample (blocks with both). */
  xattn?: number;
  /** Index into the control features (8 − k for SDXL). */
  control: number;
}

export interface SupirUnetArch {
  unet: TrunkArch;
  output: OutputBlockArch[];
  control: TrunkArch;
  /** input_hint_block.0 input channels (the LQ latent's). */
  hintChannels: number;
  projects: ProjectArch[];
  /** The ZeroSFT on the middle-block output (the last project module, last control feature). */
  middle: { sft: number; control: number };
  decoder: DecoderStep[];
  /** LightGLVUNet's constructor lists, over the ZeroSFT modules in order (cf. supir_tiny_config.json). */
  lists: { condOutputChannels: number[]; projectChannels: number[]; concatChannels: number[] };
}

export interface SupirArchOptions extends ArchOptions {
  unetPrefix?: string;
  controlPrefix?: string;
}

/**
 * LightGLVUNet + GLVControl, with the project modules matched to the places the official forward
 * consumes them (from the last module backwards: middle, then per output block one ZeroSFT and,
 * for [ResBlock, SpatialTransformer, Upsample] blocks, one ZeroCrossAttn), checking every size.
 */
export function supirUnetArch(w: Weights, opts: SupirArchOptions = {}): SupirUnetArch {
  const up = opts.unetPrefix ?? 'model.diffusion_model';
  const cp = opts.controlPrefix ?? 'model.control_model';
  const unet = trunkArch(w, up, opts);
  const control = trunkArch(w, cp, opts);
  const output = outputBlocksArch(w, up, opts);
  const pm = (i: number): string => `${up}.project_modules.${i}`;
  const nProjects = countWhile((i) => w.has(`${pm(i)}.zero_conv.weight`) || w.has(`${pm(i)}.attn.to_q.weight`));
  // An SDXL checkpoint alone has no project modules: the SUPIR checkpoint supplies them.
  if (nProjects === 0) throw new StudioError('NOT_FOUND', `no SUPIR project_modules under '${up}' (is the SUPIR checkpoint merged in?)`);
  const projects = Array.from({ length: nProjects }, (_, i) => projectArch(w, pm(i)));
  const skips = unet.featureChannels.slice(0, -1);
  if (output.length !== skips.length || control.featureChannels.length !== unet.featureChannels.length) {
    throw bad(`'${up}' has ${output.length} output blocks for ${skips.length} input blocks and ${control.featureChannels.length} control features`);
  }
  let next = projects.length - 1;
  let ci = control.featureChannels.length - 1;
  const take = (kind: ProjectArch['kind'], where: string): number => {
    const p = projects[next];
    if (!p || p.kind !== kind) throw bad(`project module ${next} ${where} should be ${kind === 'sft' ? 'ZeroSFT' : 'ZeroCrossAttn'}`);
    return next--;
  };
  const sftFits = (i: number, normNc: number, concat: number): void => {
    const p = projects[i] as ZeroSftArch;
    if (p.labelNc !== control.featureChannels[ci] || p.normNc !== normNc || p.concatChannels !== concat) {
      throw bad(`'${p.prefix}' is ZeroSFT(${p.labelNc}, ${p.normNc}, concat ${p.concatChannels}), expected (${control.featureChannels[ci]}, ${normNc}, concat ${concat})`);
    }
  };
  let h = unet.middle.res1.outChannels;
  const middle = { sft: take('sft', 'after the middle block'), control: ci };
  sftFits(middle.sft, h, 0);
  ci--;
  const decoder = output.map((block, k): DecoderStep => {
    const step: DecoderStep = { sft: take('sft', `before output block ${k}`), control: ci };
    sftFits(step.sft, skips[skips.length - 1 - k]!, h);
    if (block.res.inChannels !== skips[skips.length - 1 - k]! + h) throw bad(`output block ${k} takes ${block.res.inChannels} channels, not skip + decoder`);
    h = block.res.outChannels;
    if (block.transformer && block.upsample) {
      step.xattn = take('xattn', `in output block ${k}`);
      const x = projects[step.xattn] as ZeroCrossAttnArch;
      if (x.queryDim !== h || x.contextDim !== control.featureChannels[ci]) throw bad(`'${x.prefix}' attends ${x.queryDim} over ${x.contextDim} channels, expected ${h} over ${control.featureChannels[ci]}`);
    }
    ci--;
    return step;
  });
  if (next !== -1) throw bad(`'${up}' has ${next + 1} project modules the forward never uses`);
  const sfts = projects.filter((p): p is ZeroSftArch => p.kind === 'sft');
  return {
    unet,
    output,
    control,
    hintChannels: dimsOf(w, `${cp}.input_hint_block.0.weight`)[1]!,
    projects,
    middle,
    decoder,
    lists: { condOutputChannels: sfts.map((p) => p.normNc), projectChannels: sfts.map((p) => p.labelNc), concatChannels: sfts.map((p) => p.concatChannels) },
  };
}

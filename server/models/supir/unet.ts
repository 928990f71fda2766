/**
 * `denoiser_step`: ControlWrapper.forward as ONE ONNX graph, GLVControl then LightGLVUNet, so a
 * sampling step is one session run (onnxruntime-node copies every input and output between host
 * and GPU, so the 10 control features must stay inside). Inputs: x (already ·c_in), integer
 * timesteps (sigma indices), context, y, control (the LQ latent) and control_scale; output: out
 * (the eps prediction). Weight initializers are named by checkpoint keys.
 */
import { StudioError } from '../../../nodes/api/errors.ts';
import { GraphBuilder, type Value } from '../onnx/builder.ts';
import type { Weights } from '../onnx/layers.ts';
import { glvControl } from './control.ts';
import { supirUnetArch, type SupirArchOptions, type SupirUnetArch } from './unet-arch.ts';
import { embedding, outHead, resBlock, spatialTransformer, upsample } from './unet-blocks.ts';
import { trunk } from './unet-trunk.ts';
import { zeroCrossAttn, zeroSft, type ZeroCrossAttnArch, type ZeroSftArch } from './zerosft.ts';

export interface DenoiserStepOptions extends SupirArchOptions {
  /** Also output `control_feat.i` (GLVControl's features) and `project_out.i` (each project module's output). */
  debugOutputs?: boolean;
  /**
   * dtype of the `timesteps` input. int64 as the official code; float32 for callers that can only
   * pass floats (the indices 0..999 are exact either way).
   */
  timesteps?: 'int64' | 'float32';
  /** Training timesteps (rows of the embedding table): 1000 for SDXL. */
  numTimesteps?: number;
}

export interface DenoiserStepGraph {
  graph: GraphBuilder;
  arch: SupirUnetArch;
}

/** Inputs of LightGLVUNet.forward beyond x, already embedded where it applies. */
interface DecoderInputs {
  emb: Value;
  context: Value;
  control: Value[];
  controlScale: Value;
}

/**
 * LightGLVUNet.forward after the encoder: ZeroSFT on the middle output, then per output block a
 * ZeroSFT replacing cat([h, skip]) and, before an Upsample that follows a transformer, a
 * ZeroCrossAttn. `projectOut` collects each project module's output (for debugging).
 */
function lightGlvDecoder(g: GraphBuilder, w: Weights, a: SupirUnetArch, skips: Value[], middle: Value, inp: DecoderInputs, projectOut: Value[]): Value {
  const sft = (i: number, c: number, h: Value, hOri: Value | null): Value =>
    (projectOut[i] = zeroSft(g, w, a.projects[i] as ZeroSftArch, inp.control[c]!, h, hOri, inp.controlScale));
  let h = sft(a.middle.sft, a.middle.control, middle, null);
  a.output.forEach((block, k) => {
    const step = a.decoder[k]!;
    h = sft(step.sft, step.control, skips[skips.length - 1 - k]!, h);
    h = resBlock(g, w, block.res, h, inp.emb);
    if (block.transformer) h = spatialTransformer(g, w, block.transformer, h, inp.context);
    if (step.xattn !== undefined) {
      h = projectOut[step.xattn] = zeroCrossAttn(g, w, a.projects[step.xattn] as ZeroCrossAttnArch, inp.control[step.control]!, h, inp.controlScale);
    }
    if (block.upsample) h = upsample(g, w, block.upsample, h);
  });
  return outHead(g, w, `${a.unet.prefix}.out`, h);
}

/** Compiles the whole network from `w` (any Weights source holding both model prefixes). */
export function buildDenoiserStep(w: Weights, opts: DenoiserStepOptions = {}): DenoiserStepGraph {
  const arch = supirUnetArch(w, opts);
  const { unet, control } = arch;
  const count = opts.numTimesteps ?? 1000;
  if (unet.contextDim !== control.contextDim || unet.admInChannels !== control.admInChannels) {
    throw new StudioError('BAD_INPUT', 'the UNet and GLVControl disagree on context_dim or adm_in_channels');
  }
  const g = new GraphBuilder({ name: 'denoiser_step' });
  const x = g.input('x', 'float32', ['batch', unet.inChannels, 'height', 'width']);
  const tsIn = g.input('timesteps', opts.timesteps ?? 'int64', ['batch']);
  const context = g.input('context', 'float32', ['batch', 'tokens', unet.contextDim]);
  const y = unet.admInChannels > 0 ? g.input('y', 'float32', ['batch', unet.admInChannels]) : null;
  const hint = g.input('control', 'float32', ['batch', arch.hintChannels, 'height', 'width']);
  const controlScale = g.input('control_scale', 'float32', []);
  const timesteps = opts.timesteps === 'float32' ? g.op('Cast', [tsIn], { to: 7 }) : tsIn;

  const features = glvControl(g, w, control, { hint, xt: x, timesteps, context, y }, count);
  const emb = embedding(g, w, unet.prefix, timesteps, y, unet.modelChannels, count);
  const { skips, middle } = trunk(g, w, unet, x, emb, context);
  const projectOut: Value[] = [];
  const out = lightGlvDecoder(g, w, arch, skips, middle, { emb, context, control: features, controlScale }, projectOut);

  g.output(out, 'out', 'float32', ['batch', w.get(`${unet.prefix}.out.2.weight`).dims[0]!, 'height', 'width']);
  if (opts.debugOutputs) {
    features.forEach((f, i) => g.output(f, `control_feat.${i}`, 'float32', ['batch', control.featureChannels[i]!, `fh${i}`, `fw${i}`]));
    projectOut.forEach((p, i) => {
      const m = arch.projects[i]!;
      const channels = m.kind === 'sft' ? m.normNc + m.concatChannels : m.queryDim;
      g.output(p, `project_out.${i}`, 'float32', ['batch', channels, `ph${i}`, `pw${i}`]);
    });
  }
  return { graph: g, arch };
}

import path from 'node:path';
import { defineNode, type NodeContext } from '../api/define.ts';
import { InputError, StudioError } from '../api/errors.ts';
import { requireRuntime } from '../api/require.ts';
import type { ProviderChoice } from '../api/runtime.ts';
import type { Conditioning } from '../api/sockets.ts';
import { shapeOf, type LatentTensor } from '../api/tensor.ts';
import { boolean, combo, float, int, seed } from '../api/widgets.ts';
import { denoise, type DenoiserCond } from './lib/denoiser.ts';
import { latent2rgb } from './lib/latent-preview.ts';
import { COMPONENT, DENOISER_LATENT_MULTIPLE as LATENT_MULTIPLE, LATENT_CHANNELS, SDXL_VAE_SCALE, SUPIR_MODEL_KIND, SUPIR_PACK } from './lib/pack-contract.ts';
import type { BatchedDenoiser, StepCallback } from './lib/sampler.ts';
import { batchedControl, batchedText, sessionDenoiserStep, tileConds } from './lib/sampler-cond.ts';
import { latentWindows, tiledDenoiser } from './lib/sampler-tiles.ts';
import { PRESET_NAMES, withPreset } from './lib/sampler-presets.ts';
import { runSampler, SAMPLERS } from './lib/sampler-run.ts';
import { checkGpuRoom, cudaFreeBytes } from './lib/gpu-memory.ts';
import { estimateInput, samplingActivations } from './lib/memory-estimate.ts';
import { packOf } from './lib/pack-session.ts';

/** At most this many previews per second: each one is encoded and sent to every editor. */
const PREVIEW_INTERVAL_MS = 100;

/**
 * SUPIR's diffusion stage: samples a restored latent guided by the stage-1 latent (`control`,
 * GLVControl's input) and, with restoration_scale > 0, pulled toward `x_center`. Defaults: 50
 * steps, CFG 4 ramping up from 1, control 1, churn 5, s_noise 1.003, restoration guidance off
 * (the official CLI's and ComfyUI-SUPIR's choices).
 *
 * Random draws, all from one generator seeded by `seed`, in this order: the initial noise
 * (N(0,1) of the latent's shape), then one latent-sized N(0,1) draw per step that needs one
 * (RestoreEDM: every step when s_churn > 0; DPM++ 2M: steps 1..n−2, the SDE noise).
 *
 * DPM++ 2M Karras is the official RestoreDPMPP2MSampler: LinearCFG and a constant control scale,
 * no restoration guidance, no control ramp, no churn (the official class ignores them). Our
 * variant "+ restoration guidance (not in the paper)" adds RestoreEDM's ramp and guidance.
 */
export default defineNode({
  id: 'SupirSample',
  displayName: 'SUPIR Sample',
  category: 'supir',
  description: 'Restores a latent with the SUPIR diffusion model, guided by the stage-1 latent and the prompts.',
  inputs: {
    model: { type: 'SUPIR_MODEL' },
    positive: { type: 'CONDITIONING' },
    negative: { type: 'CONDITIONING' },
    control: { type: 'LATENT', description: 'The stage-1 latent (_z): what GLVControl sees.' },
    x_center: { type: 'LATENT', optional: true, description: 'Target of the restoration guidance; the control latent when unlinked.' },
  },
  widgets: {
    preset: combo({ options: PRESET_NAMES, default: 'custom', description: 'SUPIR quality / SUPIR fidelity / paper (τ_r 4, 100 steps, CFG 7.5) replace the sampling widgets below; Lightning (10 DPM++ steps, low CFG, for Lightning SDXL bases) also picks the sampler; custom uses them as set.' }),
    sampler: combo({ options: SAMPLERS, default: 'RestoreEDM', description: 'RestoreEDM is the paper\'s sampler. DPM++ 2M Karras (SDE) is the official DPM++ sampler, for few-step "lightning" bases: it ignores restoration_scale, s_churn and the control ramp, as the official code does. The "+ restoration guidance" variant (ours, not in the paper) applies them.' }),
    steps: int({ default: 50, min: 1, max: 500 }),
    seed: seed({ default: 1234 }),
    cfg_scale: float({ default: 4.0, min: 0, max: 30, step: 0.1, description: 'Classifier-free guidance scale (at the end of sampling when linear_cfg is on).' }),
    cfg_scale_start: float({ default: 1.0, min: 0, max: 30, step: 0.1, description: 'CFG scale at the start (highest noise) when linear_cfg is on.' }),
    linear_cfg: boolean({ default: true, description: 'Ramp CFG linearly in sigma from cfg_scale_start to cfg_scale.' }),
    control_scale: float({ default: 1.0, min: 0, max: 2, step: 0.01, description: 'Strength of the stage-1 latent\'s control (s_stage2).' }),
    control_scale_start: float({ default: 0.0, min: 0, max: 2, step: 0.01, description: 'Control scale at the start when linear_control_scale is on.' }),
    linear_control_scale: boolean({ default: false, description: 'Ramp the control scale linearly in sigma from control_scale_start to control_scale (not with the official DPM++).' }),
    restoration_scale: float({ default: -1, min: -1, max: 20, step: 0.1, description: 'τ_r: pull toward x_center, weighted (σ/σmax)^τ_r; -1 turns it off (the paper uses 4; not with the official DPM++).' }),
    s_churn: float({ default: 5, min: 0, max: 100, step: 0.1, description: 'EDM churn (RestoreEDM only): noise re-injected each step.' }),
    s_noise: float({ default: 1.003, min: 0, max: 2, step: 0.001 }),
    tile_size: int({ default: 0, min: 0, max: 1024, step: 4, description: 'Tile side in latent cells (×8 px); 0 samples the whole latent at once.' }),
    tile_stride: int({ default: 64, min: 1, max: 1024, step: 4, description: 'Distance between tile origins in latent cells.' }),
  },
  outputs: { latent: 'LATENT' },
  validate: ({ tile_size, tile_stride }) => tileProblems(tile_size, tile_stride),
  async execute(widgets, ctx) {
    const args = withPreset(widgets, widgets.preset);
    const { model, control } = args;
    if (model.kind !== SUPIR_MODEL_KIND) throw new InputError('model', `expects a SUPIR model, got a ${model.kind} model`);
    const xCenter = checkLatents(control, args.x_center, args.tile_size);
    const { n, c, h, w } = control;
    const text = batchedText(args.negative, args.positive, n);
    const full: DenoiserCond = { ...text, control: batchedControl(control.data, [n, c, h, w]) };
    const provider = model.provider as ProviderChoice | undefined;
    const session = await requireRuntime(ctx.env)
      .load(path.join(model.id, SUPIR_PACK[COMPONENT.denoiserStep].file), provider ? { provider } : {})
      .catch((err: unknown) => {
        // A pack without a usable denoiser_step is the model input's fault, not this node's.
        throw err instanceof StudioError && (err.code === 'NOT_FOUND' || err.code === 'BAD_INPUT') ? new InputError('model', err.message, err.code) : err;
      });
    if (session.provider === 'cuda') {
      // The weights are on the device now: what must still fit is one call's activations.
      const side = (cells: number): number => (args.tile_size > 0 ? Math.min(args.tile_size, cells) : cells);
      const needed = n * samplingActivations(estimateInput(packOf(model)), side(h), side(w));
      checkGpuRoom(needed, await cudaFreeBytes(), `a ${w}x${h}-cell latent${args.tile_size > 0 ? ` in ${args.tile_size}-cell tiles` : ''}`);
    }
    const step = sessionDenoiserStep(session, ctx.signal);
    const network: BatchedDenoiser<DenoiserCond> = async (x, sigma, cond, cs) => {
      const [n2, , th, tw] = cond.control.dims;
      return (await denoise(step, { data: x, dims: [n2!, c, th!, tw!] }, sigma, cond, cs)).data;
    };
    const rng = ctx.rng(args.seed);
    const noise = rng.fillNormal(new Float32Array(control.data.length));
    const draw = new Float32Array(noise.length);
    ctx.checkAborted();
    const progress = new StepProgress(ctx, args.steps, args.tile_size > 0 ? latentWindows(control.h, control.w, args.tile_size, args.tile_stride).length : 1);
    const out = await runSampler(args, {
      denoiser: args.tile_size > 0 ? tiled(progress.counting(network), full, args, control) : network,
      cond: full,
      shape: [n, c, h, w],
      noise,
      drawNoise: () => rng.fillNormal(draw),
      xCenter,
      onStep: reporter(ctx, progress, control),
    });
    return { latent: { data: out, n, c, h, w, scaled: true, downscale: control.downscale } };
  },
});

/**
 * The control latent must be in the sampler's (scaled) space and x_center the same shape. The
 * network sees whole latents, or tiles: then only the tile (and any side shorter than the tile,
 * which becomes the window) must be a multiple of LATENT_MULTIPLE, as with the official sampler.
 */
function checkLatents(control: LatentTensor, xCenter: LatentTensor | undefined, tile: number): Float32Array {
  if (!control.scaled) throw new InputError('control', `expects a scaled latent (×${SDXL_VAE_SCALE}), as the SUPIR encode nodes give`);
  if (control.c !== LATENT_CHANNELS) throw new InputError('control', `has ${control.c} channels; an SDXL latent has ${LATENT_CHANNELS}`);
  const windowSide = (side: number): number => (tile > 0 ? Math.min(tile, side) : side);
  if (windowSide(control.h) % LATENT_MULTIPLE || windowSide(control.w) % LATENT_MULTIPLE) {
    const what = tile > 0 ? `sides shorter than the tile (${tile})` : 'sides';
    throw new InputError('control', `is ${control.w}x${control.h} cells; the model needs ${what} in multiples of ${LATENT_MULTIPLE} cells (images in multiples of ${LATENT_MULTIPLE * control.downscale} px)`);
  }
  if (!xCenter) return control.data;
  if (!xCenter.scaled) throw new InputError('x_center', `expects a scaled latent (×${SDXL_VAE_SCALE})`);
  if (shapeOf(xCenter) !== shapeOf(control)) throw new InputError('x_center', `is ${shapeOf(xCenter)}, the control latent is ${shapeOf(control)}`);
  return xCenter.data;
}

type TileArgs = { tile_size: number; tile_stride: number; positive: Conditioning; negative: Conditioning };

/** Widget checks, also run at execution because linked values skip validation. */
function tileProblems(tile: number, stride: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (tile > 0 && tile % LATENT_MULTIPLE !== 0) out.push(['tile_size', `must be a multiple of ${LATENT_MULTIPLE}`]);
  if (tile > 0 && stride > tile) out.push(['tile_stride', `${stride} is larger than the tile (${tile}): cells would be skipped`]);
  return out;
}

/**
 * The tiled denoiser, with per-tile prompts where the conditioning carries them (untiled
 * sampling uses the conditioning's main prompt only).
 */
function tiled(network: BatchedDenoiser<DenoiserCond>, full: DenoiserCond, args: TileArgs, control: LatentTensor): BatchedDenoiser<DenoiserCond> {
  const [problem] = tileProblems(args.tile_size, args.tile_stride);
  if (problem) throw new InputError(problem[0], problem[1]);
  const windows = latentWindows(control.h, control.w, args.tile_size, args.tile_stride);
  for (const input of ['positive', 'negative'] as const) {
    const per = args[input].perTile;
    if (per && per.length !== windows.length) throw new InputError(input, `has ${per.length} per-tile prompts; tile_size ${args.tile_size} / stride ${args.tile_stride} gives ${windows.length} tiles (per-tile captions must be made with this tile_size and tile_stride)`);
  }
  const pos = args.positive.perTile;
  const neg = args.negative.perTile;
  const text = (j: number): Pick<DenoiserCond, 'context' | 'y'> =>
    pos || neg ? batchedText(neg?.[j] ?? args.negative, pos?.[j] ?? args.positive, control.n) : full;
  const conds = tileConds(full.control, windows, text);
  return tiledDenoiser(network, [control.n, control.c, control.h, control.w], windows, (j) => conds[j]!);
}

/**
 * Progress in steps, and within a step in tiles when sampling is tiled: each tile's denoiser call
 * moves the node's percent (and checks for Stop), so that a step of many tiles is not one long
 * silence. A sampler may call the denoiser more than once a step (Heun, 2S); the share of a step
 * per call is learnt from the first step and never runs past the step's end.
 */
class StepProgress {
  #step = 0;
  #calls = 0;
  #callsPerStep: number;

  constructor(
    private readonly ctx: NodeContext,
    readonly steps: number,
    windows: number,
  ) {
    this.#callsPerStep = windows;
  }

  /** The network, reporting a fraction of the current step after each call. */
  counting<T>(network: BatchedDenoiser<T>): BatchedDenoiser<T> {
    return async (x, sigma, cond, cs) => {
      const out = await network(x, sigma, cond, cs);
      this.#calls++;
      if (this.#calls < this.#callsPerStep) this.ctx.progress(this.#step + this.#calls / this.#callsPerStep, this.steps);
      else this.ctx.checkAborted();
      return out;
    };
  }

  stepDone(i: number): void {
    if (i === 0) this.#callsPerStep = Math.max(this.#callsPerStep, this.#calls);
    this.#step = i + 1;
    this.#calls = 0;
    this.ctx.progress(i + 1, this.steps);
  }
}

/** Progress every step; a preview of the current x0 estimate at most every PREVIEW_INTERVAL_MS and at the end. */
function reporter(ctx: NodeContext, progress: StepProgress, latent: LatentTensor): StepCallback {
  let last = -Infinity;
  return (i, _x, denoised) => {
    const now = performance.now();
    if (i === progress.steps - 1 || now - last >= PREVIEW_INTERVAL_MS) {
      last = now;
      ctx.preview(latent2rgb({ data: denoised, c: latent.c, h: latent.h, w: latent.w }), { step: i });
    }
    progress.stepDone(i);
  };
}

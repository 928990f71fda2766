/**
 * Glue between the SUPIR Sample node and the samplers: the batched [uncond; cond] conditioning
 * as sgm's guider builds it (`torch.cat((uc[k], c[k]))` for crossattn, vector and control, the
 * control latent duplicated), per-tile conditioning, and the compiled `denoiser_step` session as
 * a DenoiserStep.
 */
import { InputError, StudioError } from '../../api/errors.ts';
import type { ModelSession, TensorData } from '../../api/runtime.ts';
import type { Tensor } from '../../api/tensor.ts';
import type { DenoiserCond, DenoiserStep } from './denoiser.ts';
import { copyWindow, type LatentWindow } from './sampler-tiles.ts';

export interface TextCond {
  crossattn: Tensor;
  vector: Tensor;
}

/** The session as a DenoiserStep; the signal makes an interrupt reject between runs. */
export function sessionDenoiserStep(session: Pick<ModelSession, 'run' | 'inputs'>, signal?: AbortSignal): DenoiserStep {
  const floatTimesteps = session.inputs.find((i) => i.name === 'timesteps')?.dtype === 'float32';
  return async ({ x, timesteps, cond, controlScale }) => {
    const outs = await session.run(
      {
        x,
        timesteps: floatTimesteps ? { data: Float32Array.from(timesteps), dims: [timesteps.length] } : { data: BigInt64Array.from(timesteps, BigInt), dims: [timesteps.length] },
        context: cond.context,
        y: cond.y,
        control: cond.control,
        control_scale: { data: Float32Array.of(controlScale), dims: [] },
      },
      signal ? { signal } : {},
    );
    const out = outs.out;
    if (!out) throw new StudioError('INTERNAL', `denoiser_step gave no 'out' (got ${Object.keys(outs).join(', ')})`);
    return out;
  };
}

/**
 * `n` copies of a conditioning's rows (it has 1 or n of them), uncond before cond, as one
 * [2n, ...] tensor. Errors name the input at fault.
 */
function stackPair(negative: Tensor, positive: Tensor, n: number, what: string): TensorData {
  const rows = (t: Tensor, input: string): Float32Array[] => {
    const b = t.shape[0]!;
    if (b !== 1 && b !== n) throw new InputError(input, `${what} has a batch of ${b}; the latent has ${n} (use 1 or ${n})`);
    const per = t.data.length / b;
    return Array.from({ length: n }, (_, i) => t.data.subarray((b === 1 ? 0 : i) * per, ((b === 1 ? 0 : i) + 1) * per));
  };
  const inner = positive.shape.slice(1);
  if (negative.shape.slice(1).join() !== inner.join()) {
    throw new InputError('negative', `${what} is ${negative.shape.slice(1).join('x')} per item, positive is ${inner.join('x')}: both must come from the same text encoders`);
  }
  const parts = [...rows(negative, 'negative'), ...rows(positive, 'positive')];
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((off, p) => (data.set(p, off), off + p.length), 0);
  return { data, dims: [2 * n, ...inner] };
}

/** The text half of the batched conditioning: context [2n, T, D] and y [2n, adm]. */
export function batchedText(negative: TextCond, positive: TextCond, n: number): Pick<DenoiserCond, 'context' | 'y'> {
  return { context: stackPair(negative.crossattn, positive.crossattn, n, 'crossattn'), y: stackPair(negative.vector, positive.vector, n, 'vector') };
}

/** [control; control] for a [n, c, h, w] latent. */
export function batchedControl(control: Float32Array, dims: readonly number[]): TensorData {
  const data = new Float32Array(2 * control.length);
  data.set(control, 0);
  data.set(control, control.length);
  return { data, dims: [2 * dims[0]!, ...dims.slice(1)] };
}

/** Window j's conditioning: the control slice and the text (per tile where given). */
export function tileConds(control: TensorData, windows: readonly LatentWindow[], text: (j: number) => Pick<DenoiserCond, 'context' | 'y'>): DenoiserCond[] {
  const [n2, c, h, w] = control.dims as [number, number, number, number];
  return windows.map((win, j) => {
    const data = new Float32Array(n2 * c * win.h * win.w);
    copyWindow(control.data, data, win, n2 * c, h, w);
    return { ...text(j), control: { data, dims: [n2, c, win.h, win.w] } };
  });
}

/**
 * How SUPIR nodes reach a model pack: the SUPIR_MODEL handle from Load SUPIR Model names the pack
 * folder; components are opened through the runtime (which caches sessions per file and provider,
 * so nothing is cached here), and image tensors cross into the graphs' [-1, 1] range here.
 */
import path from 'node:path';
import { InputError, StudioError } from '../../api/errors.ts';
import type { NodeEnv } from '../../api/env.ts';
import { requireRuntime } from '../../api/require.ts';
import type { ModelSession, ProviderChoice, TensorData } from '../../api/runtime.ts';
import type { ModelHandle } from '../../api/sockets.ts';
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { COMPONENT, SUPIR_COMPONENTS, SUPIR_MODEL_KIND, type SupirComponent } from './pack-contract.ts';
import { readPack, type PackManifest } from './pack-manifest.ts';
import { ClipTokenizer } from './tokenizer.ts';
import { SupirVae, type VaeRunner } from './vae-pipeline.ts';
import { tiledRunner, type TileGrid } from './vae-tiles.ts';

/** The pack behind a SUPIR_MODEL input, re-read so that a pack changed since loading is noticed. */
export function packOf(model: ModelHandle, input = 'model'): PackManifest {
  if (model.kind !== SUPIR_MODEL_KIND) {
    throw new InputError(input, `expects a SUPIR model pack (from 'Load SUPIR Model'), got a ${model.kind} model`);
  }
  return readPack(model.id, { require: [...SUPIR_COMPONENTS] });
}

/** Opens one component on the provider the model was loaded for (the runtime reuses open sessions). */
export async function openComponent(env: NodeEnv, model: ModelHandle, name: SupirComponent, manifest = packOf(model)): Promise<ModelSession> {
  const component = manifest.components[name];
  if (!component) throw new StudioError('NOT_FOUND', `model pack ${model.id} has no '${name}' component`);
  const provider = (model.provider ?? 'auto') as ProviderChoice;
  return requireRuntime(env).load(path.join(model.id, component.file), { provider });
}

/**
 * A runner that opens its session on first use: a node builds a SupirVae over all three VAE
 * graphs but only the ones it runs get loaded (Decode never needs the encoders in memory).
 */
export function lazyRunner(env: NodeEnv, model: ModelHandle, name: SupirComponent, manifest: PackManifest): VaeRunner {
  return { run: async (feeds, opts) => (await openComponent(env, model, name, manifest)).run(feeds, opts) };
}

/**
 * The pack's VAE as SupirVae drives it, with the pack's own latent scale factor; encoders and
 * decoder run tile by tile where a grid is given (vae-tiles.ts).
 */
export function packVae(env: NodeEnv, model: ModelHandle, manifest = packOf(model), tiles: { encoder?: TileGrid | null; decoder?: TileGrid | null } = {}): SupirVae {
  const runner = (name: SupirComponent, grid: TileGrid | null = null): VaeRunner => tiledRunner(lazyRunner(env, model, name, manifest), grid);
  return new SupirVae(
    { encoder: runner(COMPONENT.vaeEncoder, tiles.encoder), denoiseEncoder: runner(COMPONENT.vaeDenoiseEncoder, tiles.encoder), decoder: runner(COMPONENT.vaeDecoder, tiles.decoder) },
    manifest.scale_factor,
  );
}

/** Tokenizers per vocabulary file and pack version: building one parses 49k merges (~100 ms). */
const tokenizers = new Map<string, Promise<ClipTokenizer>>();

export function packTokenizer(model: ModelHandle, manifest = packOf(model)): Promise<ClipTokenizer> {
  const vocab = manifest.tokenizer?.vocab;
  if (!vocab) throw new StudioError('NOT_FOUND', `model pack ${model.id} has no tokenizer vocabulary: convert it again with this version`);
  const key = `${path.join(model.id, vocab)}#${model.hash}`;
  let pending = tokenizers.get(key);
  if (!pending) {
    pending = ClipTokenizer.load(path.join(model.id, vocab));
    tokenizers.set(key, pending);
    // A failed read must not stick: the next run retries (the file may have been restored).
    pending.catch(() => tokenizers.delete(key));
  }
  return pending;
}

/** IMAGE (0..1, RGB) → the VAE's input range [-1, 1], as PIL2Tensor's x/255·2−1. */
export function imageToModel(image: ImageTensor, input = 'image'): TensorData {
  if (image.c !== 3) throw new InputError(input, `SUPIR works on RGB images, this one has ${image.c} channels`);
  const data = new Float32Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = image.data[i]! * 2 - 1;
  return { data, dims: [image.n, image.c, image.h, image.w] };
}

/**
 * A decoder output ([-1, 1], NCHW) → IMAGE 0..1. Not clamped unless asked: the official pipeline
 * colour-fixes and resizes the unclamped values and only clips the final 8-bit image.
 */
export function modelToImage(t: TensorData, clamp = false): ImageTensor {
  const [n, c, h, w] = t.dims as [number, number, number, number];
  const image = createImage(n, c, h, w);
  for (let i = 0; i < image.data.length; i++) {
    const v = (t.data[i]! + 1) / 2;
    image.data[i] = clamp ? Math.min(1, Math.max(0, v)) : v;
  }
  return image;
}

/** Pixels per latent cell, or an InputError when the image does not divide into whole cells. */
export function latentDownscale(image: ImageTensor, latentDims: number[], input = 'image'): number {
  const [, , lh, lw] = latentDims as [number, number, number, number];
  const ds = image.h / lh;
  if (!Number.isInteger(ds) || ds !== image.w / lw) {
    throw new InputError(input, `${image.w}x${image.h} does not divide into whole latent cells (got a ${lw}x${lh} latent): resize it to multiples of 64 first (SUPIR Resize)`);
  }
  return ds;
}
